package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/prometheus/client_golang/prometheus"
)

// The delivery worker (issue 15 item 3). One node at a time runs it (the
// worker lock "webhooks", inbox.Store.Lead); it runs one sender per
// enabled webhook, so that a slow or dead endpoint holds only its own
// deliveries. A sender reads the due deliveries (inbox DueDeliveries) in
// runs, one run per conversation (or contact), and sends up to
// Concurrency runs at once, each in order, one delivery at a time; a
// delivery that fails stops its run, and is tried again after a backoff
// while the conversation's later deliveries wait for it. Outcomes are
// recorded by group commit: whatever runs ended while the last record was
// written are written together, and only then are their conversations
// free for the next poll, so that nothing is sent twice by this node.
//
// A node that dies after a receiver answered but before the record sends
// that delivery again once the lock moves (at least once: receivers drop
// duplicates by webhook-id).

// Backoff of a failing delivery: the n-th retry waits firstRetry doubled
// n-1 times, at most maxRetry, stretched by up to a quarter at random
// (jitter, so that deliveries failed together do not return together).
// A delivery is given up once the waits without their jitter add up to
// Options.RetryFor: with jitter it has been tried for at least that long.
const (
	firstRetry = 5 * time.Second
	maxRetry   = time.Hour
)

// retryWait is the wait before retry n (1, 2, ...), without jitter.
func retryWait(n int) time.Duration {
	d := firstRetry
	for i := 1; i < n && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

// givenUp reports whether a delivery that failed its attempt n (1, 2,
// ...) is given up: the waits before its retries so far add up to
// retryFor.
func givenUp(n int, retryFor time.Duration) bool {
	var sum time.Duration
	for i := 1; i < n; i++ {
		sum += retryWait(i)
	}
	return sum >= retryFor
}

// Options configures a Worker. Store is required.
type Options struct {
	Store *inbox.Store
	// Guard checks each attempt's addresses (no SSRF); its zero value
	// refuses the default ranges and allows nothing more.
	Guard Guard
	// Timeout bounds one attempt (default 10 s); RetryFor how long a
	// failing delivery is retried (default 24 h); Concurrency how many
	// runs (conversations) of one webhook are in flight (default 16).
	Timeout     time.Duration
	RetryFor    time.Duration
	Concurrency int
	// Client sends the deliveries; nil is NewClient(Guard, Timeout).
	Client *http.Client
	Logger *slog.Logger
	// AfterFunc starts a timer (default time.AfterFunc): the sender's
	// polls for retries come due (every Poll, default 1 s) and the
	// reload of the webhooks (every 5 s). Tests drive a clock, with the
	// store's (inbox.Options.Now), which times the deliveries.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	Poll      time.Duration
	// Gap is the least time between a sender's reads and writes of its
	// deliveries (default 20 ms), and so what it adds to a delivery's
	// lag at most.
	Gap time.Duration
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
}

// Worker sends the webhooks' deliveries.
type Worker struct {
	o   Options
	log *slog.Logger
}

// New returns a Worker; Run starts it.
func New(o Options) *Worker {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Client == nil {
		o.Client = NewClient(o.Guard, o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Gap <= 0 {
		o.Gap = 20 * time.Millisecond
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	return &Worker{o: o, log: o.Logger.With("pkg", "webhook")}
}

var (
	attemptsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "microchat_webhook_attempts_total",
		Help: "Webhook delivery attempts, by outcome: ok (2xx), retry (failed, tried again later), failed (given up).",
	}, []string{"outcome"})
	dueSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "microchat_webhook_due_seconds",
		Help: "How long the earliest delivery a webhook's sender took at its last poll had been due, in seconds: 0 when it keeps up; growing, it falls behind.",
	}, []string{"webhook_id"})
	sendersRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "microchat_webhook_senders",
		Help: "Webhooks this node sends deliveries to now (it holds the worker lock \"webhooks\").",
	})
)

// Collectors are the worker's Prometheus metrics.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{attemptsTotal, dueSeconds, sendersRunning}
}

// reloadEvery is how often Run reads the webhooks again besides the
// notices of a change.
const reloadEvery = 5 * time.Second

// Run sends deliveries until ctx ends, and returns once every attempt in
// flight ended. Run it where one node at a time does (the worker lock
// "webhooks").
func (w *Worker) Run(ctx context.Context) {
	store := w.o.Store
	reload := make(chan struct{}, 1)
	kick := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	stopRevoked := store.Hub().OnRevoked(func(r inbox.Revoked) {
		if r.Webhooks {
			kick(reload)
		}
	})
	defer stopRevoked()

	senders := map[int64]*sender{}
	// New events wake every sender: most are deliveries to send now. The
	// hub calls this under its lock: it reads a snapshot, never waits.
	var wakes atomic.Pointer[[]chan struct{}]
	sub := store.Hub().SubscribeFunc(0, func(inbox.Event) {
		if list := wakes.Load(); list != nil {
			for _, c := range *list {
				kick(c)
			}
		}
	})
	defer sub.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		for _, s := range senders {
			s.stop()
		}
	}()
	for {
		hooks, err := store.EnabledWebhooks(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("webhooks: cannot read the webhooks; trying again", "err", err, "retry_in", reloadEvery)
		}
		if err == nil {
			for id, s := range senders {
				if !slices.ContainsFunc(hooks, func(h inbox.Webhook) bool { return h.ID == id }) {
					s.stop()
					delete(senders, id)
					dueSeconds.DeleteLabelValues(strconv.FormatInt(id, 10))
				}
			}
			for _, h := range hooks {
				secrets, err := store.WebhookSecrets(ctx, h.ID)
				if err != nil {
					continue
				}
				if s := senders[h.ID]; s != nil {
					s.set(h.URL, secrets.List())
					continue
				}
				s := w.newSender(ctx, h.ID, h.URL, secrets.List())
				senders[h.ID] = s
				wg.Go(s.run)
			}
			list := make([]chan struct{}, 0, len(senders))
			for _, s := range senders {
				list = append(list, s.wake)
			}
			wakes.Store(&list)
			sendersRunning.Set(float64(len(senders)))
		}
		if !w.sleep(ctx, reload, reloadEvery) {
			sendersRunning.Set(0)
			return
		}
	}
}

// sleep waits d on the worker's clock, or a kick on c; false when ctx
// ended.
func (w *Worker) sleep(ctx context.Context, c <-chan struct{}, d time.Duration) bool {
	t := make(chan struct{})
	stop := w.o.AfterFunc(d, func() { close(t) })
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-c:
	case <-t:
	}
	return true
}

// sender sends one webhook's deliveries.
type sender struct {
	w    *Worker
	id   int64
	ctx  context.Context
	stop context.CancelFunc
	wake chan struct{}

	mu      sync.Mutex
	url     string
	secrets []string

	// queue holds the runs polled and not started yet; Concurrency
	// goroutines take them (run). ended receives each run's outcomes
	// when it ends.
	queue chan []inbox.Delivery
	ended chan runEnd
}

// queued is how many runs a sender holds per unit of Concurrency, polled
// and not yet recorded: enough that one poll every Gap keeps its
// goroutines busy (runs are mostly of one delivery under a chat load).
const queued = 16

type runEnd struct {
	stream int64
	outs   []inbox.DeliveryOutcome
}

func (w *Worker) newSender(ctx context.Context, id int64, url string, secrets []string) *sender {
	ctx, cancel := context.WithCancel(ctx)
	n := w.o.Concurrency * queued
	return &sender{w: w, id: id, ctx: ctx, stop: cancel, wake: make(chan struct{}, 1), url: url, secrets: secrets,
		queue: make(chan []inbox.Delivery, n), ended: make(chan runEnd, n)}
}

func (s *sender) set(url string, secrets []string) {
	s.mu.Lock()
	s.url, s.secrets = url, secrets
	s.mu.Unlock()
}

func (s *sender) target() (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url, s.secrets
}

// run polls and sends until the sender is stopped, then waits for its
// runs in flight, whose outcomes are not recorded: a delivery cut short
// is sent again. Its reads and writes are at least Options.Gap apart:
// under load each poll and each record serves many deliveries at once
// instead of one each (the record is a write transaction, which on
// SQLite queues behind the chat's).
func (s *sender) run() {
	o := s.w.o
	var runs sync.WaitGroup
	defer runs.Wait()
	for range o.Concurrency {
		runs.Go(func() {
			for {
				select {
				case <-s.ctx.Done():
					return
				case run := <-s.queue:
					s.ended <- runEnd{streamOf(run[0]), s.send(run)}
				}
			}
		})
	}
	limit := o.Concurrency * queued
	busy := map[int64]bool{}
	poll := true
	var ends []runEnd
	signal := func(c chan struct{}) func() {
		return func() {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	tick, cool := make(chan struct{}, 1), make(chan struct{}, 1)
	stopTick := o.AfterFunc(o.Poll, signal(tick))
	stopCool := func() bool { return false }
	cooling := false
	defer func() {
		stopTick()
		stopCool()
	}()
	for {
		if !cooling && (len(ends) > 0 || poll && len(busy) < limit) {
			if len(ends) > 0 {
				if !s.record(ends) {
					return
				}
				for _, e := range ends {
					delete(busy, e.stream)
				}
				ends, poll = nil, true
			}
			if poll && len(busy) < limit {
				poll = false
				s.poll(busy, limit)
			}
			cooling, stopCool = true, o.AfterFunc(o.Gap, signal(cool))
		}
		select {
		case <-s.ctx.Done():
			return
		case e := <-s.ended:
			ends = append(ends, e)
		case <-s.wake:
			poll = true
		case <-tick:
			poll = true
			stopTick = o.AfterFunc(o.Poll, signal(tick))
		case <-cool:
			cooling = false
		}
	}
}

// poll queues the due runs of streams not busy, as many as there is
// room for (limit runs busy).
func (s *sender) poll(busy map[int64]bool, limit int) {
	o := s.w.o
	list := make([]int64, 0, len(busy))
	for st := range busy {
		list = append(list, st)
	}
	due, err := o.Store.DueDeliveries(s.ctx, s.id, list, 1024, limit-len(busy))
	if err != nil && s.ctx.Err() == nil {
		s.w.log.Warn("webhooks: cannot read the due deliveries", "webhook_id", s.id, "err", err)
	}
	if len(due) > 0 {
		// The secrets as of now, not of the last reload: a rotation
		// (overlap 0 when a secret leaked) signs from the next poll on.
		if sec, err := o.Store.WebhookSecrets(s.ctx, s.id); err == nil {
			url, _ := s.target()
			s.set(url, sec.List())
		}
	}
	behind := 0.0
	if len(due) > 0 {
		behind = max(o.Store.Now().Sub(due[0][0].NextAt).Seconds(), 0)
	}
	dueSeconds.WithLabelValues(strconv.FormatInt(s.id, 10)).Set(behind)
	for _, run := range due {
		busy[streamOf(run[0])] = true
		s.queue <- run // room: at most limit runs are busy
	}
}

// record stores the outcomes of the runs that ended, before their
// conversations are free again, so that the next poll does not return
// them; false when the sender is stopping. An outcome the database did
// not take is lost, and its delivery sent again (at least once).
func (s *sender) record(ends []runEnd) bool {
	var outs []inbox.DeliveryOutcome
	for _, e := range ends {
		outs = append(outs, e.outs...)
	}
	if err := s.w.o.Store.RecordDeliveries(s.ctx, s.id, outs); err != nil {
		if s.ctx.Err() != nil {
			return false
		}
		s.w.log.Warn("webhooks: cannot record delivery outcomes; they will be sent again", "webhook_id", s.id, "err", err)
	}
	return true
}

func streamOf(d inbox.Delivery) int64 {
	if d.ConversationID != 0 {
		return d.ConversationID
	}
	return -d.ContactID
}

// send sends a run in order and stops at its first failure; it returns
// the outcomes to record (none for an attempt cut short by the stop).
func (s *sender) send(run []inbox.Delivery) []inbox.DeliveryOutcome {
	o := s.w.o
	var outs []inbox.DeliveryOutcome
	for _, d := range run {
		url, secrets := s.target()
		// webhook-timestamp is the wall clock's: receivers compare it
		// with theirs.
		res := Send(s.ctx, o.Client, url, d.MsgID(), time.Now(), d.Body, secrets)
		if s.ctx.Err() != nil {
			return outs
		}
		out := inbox.DeliveryOutcome{ID: d.ID, OK: res.OK(), At: o.Store.Now(), Status: res.Status, Body: res.Body}
		if out.OK {
			attemptsTotal.WithLabelValues("ok").Inc()
			outs = append(outs, out)
			continue
		}
		out.Error = failure(res)
		n := d.Attempts + 1
		if givenUp(n, o.RetryFor) {
			attemptsTotal.WithLabelValues("failed").Inc()
			s.w.log.Warn("webhooks: delivery given up; admins can replay it", "webhook_id", s.id, "delivery_id", d.ID,
				"type", d.Type, "attempts", n, "err", out.Error)
		} else {
			attemptsTotal.WithLabelValues("retry").Inc()
			wait := retryWait(n)
			wait += time.Duration(float64(wait) / 4 * o.Jitter())
			out.RetryAt = out.At.Add(wait)
			s.w.log.Debug("webhooks: delivery failed; trying again", "webhook_id", s.id, "delivery_id", d.ID,
				"attempt", n, "retry_in", wait, "err", out.Error)
		}
		return append(outs, out)
	}
	return outs
}

// failure says why an attempt failed, for admins.
func failure(r Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("the receiver answered HTTP %d, not 2xx", r.Status)
}
