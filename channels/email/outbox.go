package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

// The sending side of the email channel. Every outgoing mail is a row of
// the durable outbox, written in the transaction of what caused it (an
// agent's reply, a digest, a survey). The Worker claims due rows with a
// lease, composes each (Compose), sends it (Send) and records the outcome:
//
//   - sent (2xx after the final dot): OutboxSent, with the raw bytes;
//   - a 4xx answer, a timeout, a refused connection: OutboxRetry after a
//     growing, jittered delay (30 s, 1 min, 2 min, ... up to 30 min), and
//     OutboxFailed once the delays add up to a day;
//   - a 5xx answer to MAIL, RCPT or DATA, or a mail that cannot be
//     composed: OutboxFailed with the server's answer, which the agent
//     sees on the message.
//
// A worker that dies after DATA and before the outcome is recorded leaves
// the row claimed; once the lease expires any worker sends it again with
// the same Message-ID: at most one duplicate, never a lost mail.
//
// The same worker runs continuity (rule 7): every tick (1 s) it asks the
// store to queue the digests that are due, then claims what is due, so a
// digest leaves within about a second of email_after_unread expiring.

// Outbox is the store's side of sending; *inbox.Store implements it.
type Outbox interface {
	// ClaimOutbox marks up to limit due rows as being sent until lease
	// from now and returns them: pending rows whose next attempt is due,
	// and rows whose lease expired (a worker died while sending).
	ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]inbox.OutboundEmail, error)
	// OutboxSent records that the server accepted the mail raw.
	OutboxSent(ctx context.Context, id int64, raw []byte) error
	// OutboxRetry puts the row back for another attempt at at.
	OutboxRetry(ctx context.Context, id int64, at time.Time, reason string) error
	// OutboxFailed gives the mail up; reason is shown to the agent.
	OutboxFailed(ctx context.Context, id int64, reason string) error
	// EnqueueDigests queues the continuity mail of every conversation
	// with agent chat messages unread for longer than after (rule 7) and
	// says how many it queued.
	EnqueueDigests(ctx context.Context, after time.Duration) (int, error)
}

// WorkerOptions configure a Worker. Outbox and at least one mailbox are
// required; every zero field means its default.
type WorkerOptions struct {
	Outbox Outbox
	// Mailboxes are the configured mailboxes; a row is sent from the one
	// named by its Mailbox field, else from the first.
	Mailboxes []config.Mailbox
	// BaseURL is the server's public URL, for the survey's rating links
	// (config base_url).
	BaseURL string
	// EmailAfterUnread is config email_after_unread (rule 7): how long
	// agent chat messages may stay unread before they are mailed. 0 sends
	// no digests.
	EmailAfterUnread time.Duration
	// Lease is how long a claimed row is ours before another worker may
	// send it again (default 5 min). It is kept longer than an attempt
	// (SMTP.AttemptTimeout is shortened to fit when needed).
	Lease time.Duration
	// PerMailbox is how many mails of one mailbox are sent at once
	// (default 3): submission servers limit a login's connections.
	PerMailbox int
	// FirstRetry and MaxRetry bound the delay before the next attempt
	// after a temporary failure: FirstRetry after the first, doubling up
	// to MaxRetry (defaults 30 s and 30 min), each ±20% at random.
	FirstRetry, MaxRetry time.Duration
	// GiveUpAfter is how long a mail is retried before it fails (default
	// 24 h): when the delays since its first attempt would pass it.
	GiveUpAfter time.Duration
	// ShutdownGrace is how long the sends in progress may go on once
	// Run's context ends (default 10 s); then they are cut.
	ShutdownGrace time.Duration
	// SMTP tunes the SMTP client (timeouts, TLS roots).
	SMTP *SMTPOptions
	// Tick drives continuity and the claiming of due rows (retries); nil
	// is a 1 s ticker. Tests send on it.
	Tick <-chan time.Time
	// Now is the clock for retry times and the Date header (default
	// time.Now); Rand returns a number in [0, 1) for the jitter (default
	// math/rand/v2). Tests set both.
	Now  func() time.Time
	Rand func() float64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TimersHeld, when set, says whether this node runs the timers:
	// digests are queued only while it returns true (Channel sets it to
	// whether the node holds the "timers" worker lock). Nil queues them
	// on every tick. Sending is not affected: rows are claimed, so every
	// node sends.
	TimersHeld func() bool
}

// Worker sends the outbox's mail and queues the continuity digests. One
// goroutine (Run) claims rows and hands each to a goroutine of its own,
// at most PerMailbox at once per mailbox; Wake makes it claim at once.
type Worker struct {
	o         WorkerOptions
	smtp      SMTPOptions
	log       *slog.Logger
	mailboxes map[string]config.Mailbox
	// sem holds a token per send in progress, per mailbox name.
	sem      map[string]chan struct{}
	slots    int
	inflight atomic.Int64
	wake     chan struct{}
	wg       sync.WaitGroup
}

// NewWorker returns a Worker; Run starts it.
func NewWorker(o WorkerOptions) *Worker {
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.PerMailbox <= 0 {
		o.PerMailbox = 3
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = 30 * time.Second
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 30 * time.Minute
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 24 * time.Hour
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	w := &Worker{
		o:         o,
		smtp:      o.SMTP.withDefaults(),
		log:       o.Logger,
		mailboxes: map[string]config.Mailbox{},
		sem:       map[string]chan struct{}{},
		wake:      make(chan struct{}, 1),
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("component", "email.outbox")
	// An attempt ends well within its lease, so that nobody sends the
	// mail again while it is still being sent.
	if limit := o.Lease * 3 / 5; w.smtp.AttemptTimeout > limit {
		w.smtp.AttemptTimeout = limit
	}
	for _, mb := range o.Mailboxes {
		w.mailboxes[mb.Name] = mb
		w.sem[mb.Name] = make(chan struct{}, o.PerMailbox)
	}
	w.slots = o.PerMailbox * len(o.Mailboxes)
	return w
}

// Wake makes the worker claim due mail now rather than at its next tick:
// the email channel's Deliver calls it after an outbox row was committed.
// It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends, then waits for the sends in progress, for up
// to ShutdownGrace (their outcome is still recorded), and returns ctx's
// error.
func (w *Worker) Run(ctx context.Context) error {
	if len(w.o.Mailboxes) == 0 {
		return errors.New("email outbox: no mailbox configured")
	}
	tick := w.o.Tick
	if tick == nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	defer w.wg.Wait()
	w.claim(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			if w.o.EmailAfterUnread > 0 && (w.o.TimersHeld == nil || w.o.TimersHeld()) {
				n, err := w.o.Outbox.EnqueueDigests(ctx, w.o.EmailAfterUnread)
				if err != nil && ctx.Err() == nil {
					w.log.Error("queueing continuity digests", "err", err)
				} else if n > 0 {
					w.log.Info("continuity digests queued", "count", n)
				}
			}
			w.claim(ctx)
		case <-w.wake:
			w.claim(ctx)
		}
	}
}

// claim claims due rows while there are free slots and starts a send for
// each.
func (w *Worker) claim(ctx context.Context) {
	for ctx.Err() == nil {
		free := w.slots - int(w.inflight.Load())
		if free <= 0 {
			return // a finishing send wakes us
		}
		rows, err := w.o.Outbox.ClaimOutbox(ctx, free, w.o.Lease)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("claiming the outbox", "err", err)
			}
			return
		}
		for _, m := range rows {
			w.inflight.Add(1)
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.deliver(ctx, m)
				w.inflight.Add(-1)
				w.Wake()
			}()
		}
		if len(rows) < free {
			return
		}
	}
}

// deliver sends one claimed row and records the outcome.
func (w *Worker) deliver(ctx context.Context, m inbox.OutboundEmail) {
	mb, ok := w.mailboxes[m.Mailbox]
	if !ok {
		mb = w.o.Mailboxes[0]
	}
	log := w.log.With("outbox_id", m.ID, "kind", m.Kind, "mailbox", mb.Name, "message_id", m.MessageID, "attempt", m.Attempts+1)
	// The send must end before the lease does. A shutdown (ctx) lets it
	// finish for ShutdownGrace: cut in the middle, a mail the server
	// accepted might be sent again.
	sendCtx, cancelSend := context.WithTimeout(context.WithoutCancel(ctx), w.o.Lease*4/5)
	defer cancelSend()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(w.o.ShutdownGrace, cancelSend) })()
	// The outcome is recorded even after a shutdown: a sent mail then is
	// not sent again.
	record := func(f func(ctx context.Context) error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := f(rctx); err != nil {
			log.Error("recording the outcome of a send; the mail is sent again when its lease expires", "err", err)
		}
	}

	raw, err := Compose(m, mb, w.o.BaseURL, w.o.Now())
	if err != nil {
		log.Error("mail cannot be composed", "err", err)
		record(func(ctx context.Context) error { return w.o.Outbox.OutboxFailed(ctx, m.ID, err.Error()) })
		return
	}
	select {
	case w.sem[mb.Name] <- struct{}{}:
	case <-ctx.Done():
	case <-sendCtx.Done():
	}
	if ctx.Err() != nil || sendCtx.Err() != nil {
		// Still waiting for a turn: give it back for the next claim.
		reason := "not sent before shutdown"
		if ctx.Err() == nil {
			reason = "not sent within its lease: other mail of the mailbox went first"
		}
		record(func(rctx context.Context) error { return w.o.Outbox.OutboxRetry(rctx, m.ID, w.o.Now(), reason) })
		return
	}
	refused, err := Send(sendCtx, mb, m.To.Addr, ccAddrs(m.Cc), raw, &w.smtp)
	<-w.sem[mb.Name]

	var se *SendError
	switch {
	case err == nil:
		if len(refused) > 0 {
			log.Warn("sent without the Cc recipients the server refused", "refused", refused)
		} else {
			log.Info("sent")
		}
		record(func(ctx context.Context) error { return w.o.Outbox.OutboxSent(ctx, m.ID, raw) })
	case errors.As(err, &se) && se.Permanent:
		log.Warn("refused by the SMTP server", "reply", se.Reply)
		record(func(ctx context.Context) error { return w.o.Outbox.OutboxFailed(ctx, m.ID, se.Reply) })
	default:
		delay, giveUp := w.retryAfter(m.Attempts)
		if giveUp {
			reason := fmt.Sprintf("not sent after %d attempts in %v: %v", m.Attempts+1, w.o.GiveUpAfter, err)
			log.Warn("giving up", "err", err)
			record(func(ctx context.Context) error { return w.o.Outbox.OutboxFailed(ctx, m.ID, reason) })
			return
		}
		at := w.o.Now().Add(delay)
		log.Warn("send failed, will retry", "err", err, "retry_at", at)
		record(func(ctx context.Context) error { return w.o.Outbox.OutboxRetry(ctx, m.ID, at, err.Error()) })
	}
}

// retryAfter is the delay before the next attempt of a mail that failed
// temporarily after attempts earlier attempts, and whether to give up
// instead: when the delays since the first attempt would pass
// GiveUpAfter. Delays double from FirstRetry to MaxRetry, with ±20%
// jitter so that mail queued together does not retry together.
func (w *Worker) retryAfter(attempts int) (time.Duration, bool) {
	var total, d time.Duration
	for i := 0; i <= attempts; i++ {
		d = doubled(w.o.FirstRetry, w.o.MaxRetry, i)
		total += d
	}
	if total > w.o.GiveUpAfter {
		return 0, true
	}
	return time.Duration(float64(d) * (0.8 + 0.4*w.o.Rand())), false
}

func ccAddrs(l []inbox.Address) []string {
	r := make([]string, len(l))
	for i, a := range l {
		r[i] = a.Addr
	}
	return r
}
