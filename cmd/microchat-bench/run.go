package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// bench is one run: its options, its sockets and what they measured.
type bench struct {
	o        options
	log      io.Writer
	api      *api
	host     string // the URL's host:port, for Host headers
	dialHost string // the address dialled (localhost is 127.0.0.1)
	// agentAPI, agentHost and agentDialHost are the agents' node's
	// (-agent-url), the same as the visitors' without it.
	agentAPI                 *api
	agentHost, agentDialHost string
	// storm is the reconnect storm's state (-storm), nil without it.
	storm *storm
	// stormCtx bounds the storm's reconnects: the run's.
	stormCtx context.Context
	// restart restarts the visitors' node; nil runs -restart-cmd (tests
	// cut a proxy's connections instead).
	restart func(context.Context) error
	sources []netip.Addr
	runID   string

	errs     errorCounts
	visitors []*visitor // connected, in connection order
	agents   []*agent
	active   []*visitor

	// from and until bound the measured messages, by send time (clock);
	// both 0 until the load starts, so that nothing is measured before.
	from, until atomic.Int64
	// v2a: a visitor's message reaching its conversation's agent; a2v: an
	// agent's reply reaching the visitor; ack: a visitor's message
	// acknowledged on its socket; reply: an agent's reply acknowledged on
	// the agent's socket, or its POST answered (-reply).
	v2a, a2v, ack, reply recorder

	sentV2A, sentA2V, recvV2A, recvA2V atomic.Int64
	// replyAcks counts the acks of agent replies sent over the socket.
	replyAcks    atomic.Int64
	openVisitors atomic.Int64
	// closing is set when the tool closes its sockets, so that the
	// closes are not counted as errors.
	closing atomic.Bool

	// hooks is the webhook receiver (-webhook), nil without it; it
	// listens on hookListener, or on -webhook when that is nil (tests
	// give one on a port of the system's choice).
	hooks        *hookReceiver
	hookListener net.Listener
	// sentAll and ackedAll count every message the tool sent and every
	// one the server acknowledged, warmup and drain included: what the
	// webhook should deliver.
	sentAll, ackedAll atomic.Int64
}

// received records a measured message that arrived, if it was sent in
// the measured window.
func (b *bench) received(r *recorder, n *atomic.Int64, sent int64) {
	if sent < b.from.Load() || sent >= b.until.Load() {
		return
	}
	r.add(time.Duration(clock() - sent))
	if n != nil {
		n.Add(1)
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// messageFrame is a widget message frame (or the floor's copy of one)
// whose text carries sent.
func (b *bench) messageFrame(dir byte, owner int, sent int64, kind string, i int) []byte {
	text := messageText(dir, owner, sent, b.o.Size)
	f := make([]byte, 0, len(text)+80)
	f = append(f, `{"type":"message","client_id":"`...)
	f = append(f, b.clientID(kind, i)...)
	f = append(f, `","text":"`...)
	f = append(f, text...)
	f = append(f, `"}`...)
	return f
}

// replyFrame is an agent's reply as a message frame of the agents'
// socket. The text and client id need no JSON escaping.
func replyFrame(conversationID int64, clientID, text string) []byte {
	f := make([]byte, 0, len(text)+len(clientID)+80)
	f = append(f, `{"type":"message","conversation_id":`...)
	f = strconv.AppendInt(f, conversationID, 10)
	f = append(f, `,"client_id":"`...)
	f = append(f, clientID...)
	f = append(f, `","text":"`...)
	f = append(f, text...)
	f = append(f, `"}`...)
	return f
}

func (b *bench) clientID(kind string, i int) string {
	return "mcb-" + b.runID + "-" + kind + "-" + strconv.Itoa(i)
}

// newBench returns a run of o against its -url, with no sockets yet.
func newBench(o options, log io.Writer) (*bench, error) {
	u, dialHost, err := node(o.URL)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	rand.Read(id)
	b := &bench{o: o, log: log, host: u.Host, dialHost: dialHost, runID: hex.EncodeToString(id)}
	b.api = newAPI(u, dialHost, o.Concurrency+o.Senders)
	b.agentAPI, b.agentHost, b.agentDialHost = b.api, b.host, b.dialHost
	if o.AgentURL != "" {
		au, adial, err := node(o.AgentURL)
		if err != nil {
			return nil, err
		}
		b.agentAPI, b.agentHost, b.agentDialHost = newAPI(au, adial, o.Concurrency+o.Senders), au.Host, adial
	}
	if o.Storm {
		b.storm = newStorm(o.Seed)
	}
	if o.Webhook != "" {
		if b.hooks, err = newHookReceiver(o.WebhookSecret); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// node parses a node's URL (-url, -agent-url) and returns it with the
// address to dial (localhost is 127.0.0.1).
func node(raw string) (*url.URL, string, error) {
	u, err := targetURL(raw)
	if err != nil {
		return nil, "", err
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	dialHost := net.JoinHostPort(u.Hostname(), port)
	if strings.EqualFold(u.Hostname(), "localhost") {
		dialHost = net.JoinHostPort("127.0.0.1", port)
	}
	return u, dialHost, nil
}

// run carries out one run. The Summary it returns (even with an error)
// holds what was measured up to then.
func run(ctx context.Context, o options, log io.Writer) (*Summary, error) {
	b, err := newBench(o, log)
	if err != nil {
		return nil, err
	}
	return b.run(ctx)
}

// run carries out the run b was made for.
func (b *bench) run(ctx context.Context) (*Summary, error) {
	o := b.o
	var err error
	defer b.api.hc.CloseIdleConnections()
	defer b.agentAPI.hc.CloseIdleConnections()

	s := &Summary{Target: b.api.base, AgentTarget: b.agentAPI.base, Started: time.Now().UTC(), LoadAverage: loadAverage(), Options: o.summary()}
	defer func() { s.Errors = b.errs.snapshot() }()

	// Where the sockets come from, and whether this process may hold them.
	sockets := o.Visitors + o.Agents
	floorConns := 0
	if o.Floor && !o.Idle && o.Rate > 0 {
		floorConns = min(max(o.Active, 1), maxFloorConns)
	}
	if b.sources, err = parseSources(o.Sources, sockets, addrsInUse()); err != nil {
		return nil, err
	}
	if per := (sockets + len(b.sources) - 1) / len(b.sources); per > maxPerSource {
		return nil, fmt.Errorf("%d sockets over %d source addresses is %d each; one address has about %d ports: give more -sources", sockets, len(b.sources), per, maxPerSource)
	}
	s.Sources = describeSources(b.sources)
	s.OpenFiles.Needed = uint64(sockets + floorConns + o.Concurrency + o.Senders + 64)
	cur, hard, err := raiseOpenFiles()
	s.OpenFiles.Limit, s.OpenFiles.Hard = cur, hard
	switch {
	case err != nil:
		s.Warnings = append(s.Warnings, "open-file limit: "+err.Error())
	case cur < s.OpenFiles.Needed:
		w := fmt.Sprintf("open-file limit %d (hard %d) is below the %d this run needs: expect 'too many open files'", cur, hard, s.OpenFiles.Needed)
		s.Warnings = append(s.Warnings, w)
		b.progress("warning: %s", w)
	}
	b.progress("target %s, run %s, %d sockets from %s (%d each at most), open-file limit %d", s.Target, b.runID, sockets, s.Sources, (sockets+len(b.sources)-1)/len(b.sources), cur)
	if b.hooks != nil {
		ln := b.hookListener
		if ln == nil {
			if ln, err = net.Listen("tcp", o.Webhook); err != nil {
				return s, fmt.Errorf("-webhook: %w", err)
			}
		}
		defer serveHooks(ln, b.hooks)()
		b.progress("webhook receiver on http://%s/", ln.Addr())
	}

	// (6) The floor first, while the server is idle.
	if floorConns > 0 {
		warm, dur := min(o.Warmup, maxFloorWarmup), min(o.Duration, maxFloorDuration)
		b.progress("floor: bare gws echo in a child process, %d sockets, %g messages/s for %v after %v", floorConns, o.Rate, dur, warm)
		f := b.runFloor(ctx, o.Rate, floorConns, warm, dur)
		s.Floor = &f
		if f.Error != "" {
			b.errs.add("floor: " + f.Error)
		}
	}

	// Agents: logins, then their sockets, before the memory baseline.
	var logins []agentLogin
	if o.Agents > 0 {
		b.progress("logging %d agents in", o.Agents)
		if logins, err = b.loginAgents(ctx); err != nil {
			return s, err
		}
	}

	// (1) Visitor tokens.
	b.progress("minting %d visitor tokens (%d at once)", o.Visitors, o.Concurrency)
	minted, mintTime, err := b.mintVisitors(ctx)
	s.Visitors.Wanted, s.Visitors.Minted = o.Visitors, len(minted)
	s.Visitors.MintSeconds = mintTime.Seconds()
	s.Visitors.MintRate = rate(len(minted), mintTime)
	if err != nil {
		return s, err
	}
	b.progress("minted %d in %.1f s (%.0f/s)", len(minted), mintTime.Seconds(), s.Visitors.MintRate)

	defer b.closeAll()
	for i, l := range logins {
		a := &agent{b: b, idx: i, login: l}
		if kind, err := a.connect(ctx, b.sources[i%len(b.sources)]); err != nil {
			b.errs.add(kind)
			return s, fmt.Errorf("agent %d's socket: %v", i, err)
		}
		b.agents = append(b.agents, a)
	}
	s.Agents.Wanted, s.Agents.Connected = o.Agents, len(b.agents)

	// (5) Memory before the visitor sockets.
	before, err := b.api.metrics(ctx)
	if err != nil {
		return s, err
	}
	s.Memory.Before = &before

	// (2) Visitor sockets, pinged from the first on: connecting thousands
	// may take longer than the server waits for a silent socket.
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	defer stopHeartbeat()
	go b.heartbeat(hbCtx, minted)
	b.progress("opening %d visitor sockets (%d at once)", len(minted), o.Concurrency)
	meter := startMeter()
	connectTime := b.connectVisitors(ctx, minted)
	meter.stop(&s.CPU.Connect)
	s.Visitors.Connected = len(b.visitors)
	s.Visitors.ConnectSeconds = connectTime.Seconds()
	s.Visitors.ConnectRate = rate(len(b.visitors), connectTime)
	b.progress("%d connected in %.2f s (%.0f/s)", len(b.visitors), connectTime.Seconds(), s.Visitors.ConnectRate)
	if m, err := b.api.metrics(ctx); err == nil {
		s.Memory.Connected = &m
		s.CPU.Connect.server(s.Memory.Before, &m)
		if len(b.visitors) > 0 {
			s.Visitors.ServerCPUPerConnect = math.Round(s.CPU.Connect.ServerCPU/float64(len(b.visitors))*1e6) / 1e3
		}
	}
	if ctx.Err() != nil {
		return s, ctx.Err()
	}

	if o.Idle {
		b.progress("holding them for %v", o.Duration)
		s.Memory.Samples = b.hold(ctx, o.Duration)
		m, err := b.api.metrics(ctx)
		if err != nil {
			return s, err
		}
		s.Memory.After = &m
	} else {
		// (3) The agents join the active conversations.
		b.pickActive()
		if len(b.active) > 0 && len(b.agents) > 0 {
			b.progress("%d agents joining %d conversations", len(b.agents), len(b.active))
			s.Agents.Joined = b.joinActive(ctx)
		}
		// Hold the sockets a moment before reading memory, so that the
		// joins' events are delivered.
		sleep(ctx, 2*time.Second)
		m, err := b.api.metrics(ctx)
		if err != nil {
			return s, err
		}
		s.Memory.After = &m
		// (4) The load, and the storm in the middle of it.
		if b.storm != nil {
			b.stormCtx = ctx
			ids := make([]int64, len(b.active))
			for i, v := range b.active {
				ids[i] = v.start.Conversation.ID
			}
			b.storm.track(ids)
		}
		loaded := make(chan struct{})
		if o.Rate > 0 && len(b.active) > 0 {
			b.progress("driving %g messages/s over %d conversations for %v after %v of warmup", o.Rate, len(b.active), o.Duration, o.Warmup)
			go func() {
				defer close(loaded)
				meter := startMeter()
				s.Messages = b.drive(ctx)
				meter.stop(&s.CPU.Load)
				if s.Floor != nil {
					s.Floor.ratios(s.Messages)
				}
			}()
		} else {
			close(loaded)
		}
		if b.storm != nil {
			if o.Rate > 0 && o.Duration < o.StormSettle+15*time.Second {
				s.Warnings = append(s.Warnings, fmt.Sprintf("-duration %v is shorter than -storm-settle plus 15 s: the load may end before the visitors are back", o.Duration))
			}
			sleep(ctx, o.Warmup+o.StormSettle)
			before, err := b.api.metrics(ctx)
			if err != nil {
				b.errs.add("storm: reading the node's memory before: " + errKind(err))
			}
			s.Storm = b.runStorm(ctx, &before)
			<-loaded
			b.fillStorm(s.Storm)
			b.finishStorm(s.Storm)
		}
		<-loaded
		if m, err := b.api.metrics(ctx); err == nil {
			s.Memory.End = &m
			if s.Messages != nil && b.storm == nil { // the storm restarted the server: its CPU counter too
				s.CPU.Load.server(s.Memory.After, &m)
			}
		}
		if b.hooks != nil {
			s.Webhook = b.finishHooks(ctx, s.Memory.After)
		}
	}
	s.Visitors.Held = int(b.openVisitors.Load())
	for _, a := range b.agents {
		if a.open.Load() {
			s.Agents.Held++
		}
	}
	s.Memory.perSocket(s.Visitors.Held)
	return s, ctx.Err()
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// sleep waits for d or ctx.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// The widget pings every 25 s, and the server drops a socket that sent
// nothing for 75 s; the tool pings each visitor socket as often, spread
// over the period (a shared ticker, not a timer per socket).
const pingEvery = 25 * time.Second

// heartbeat pings the open sockets of visitors until ctx is done: every
// second, the 25th of them whose turn it is.
func (b *bench) heartbeat(ctx context.Context, visitors []*visitor) {
	const slots = int(pingEvery / time.Second)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := tick % slots; i < len(visitors); i += slots {
			if v := visitors[i]; v.open.Load() {
				if err := v.socket().WriteString(`{"type":"ping"}`); err != nil && !b.closing.Load() {
					b.errs.add("visitor ping: " + errKind(err))
				}
			}
		}
	}
}

// hold waits for d, reading the server's memory every holdSample; the
// samples show whether a collection ran meanwhile (a quiet server collects
// garbage only when forced, every two minutes).
func (b *bench) hold(ctx context.Context, d time.Duration) []MemorySample {
	var out []MemorySample
	start := time.Now()
	for {
		left := d - time.Since(start)
		if left <= 0 || ctx.Err() != nil {
			return out
		}
		sleep(ctx, min(left, holdSample))
		if m, err := b.api.metrics(ctx); err == nil {
			out = append(out, MemorySample{At: round2(time.Since(start).Seconds()), RSS: m.RSS, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse})
		}
	}
}

const holdSample = 10 * time.Second

// loginAgents logs the admin in, creates the other agents unless they
// exist, and logs them in. Each login goes from its own source address,
// since logins are limited per client IP.
func (b *bench) loginAgents(ctx context.Context) ([]agentLogin, error) {
	admin, err := b.loginWithRetry(ctx, 0, b.o.Email, b.o.Password)
	if err != nil {
		return nil, err
	}
	logins := []agentLogin{admin}
	for i := 1; i < b.o.Agents; i++ {
		pw := benchAgentPassword(b.o.Password, i)
		if err := b.agentAPI.ensureAgent(ctx, &admin, i, pw); err != nil {
			return nil, err
		}
		l, err := b.loginWithRetry(ctx, i, benchAgentEmail(i), pw)
		if err != nil {
			return nil, fmt.Errorf("%w (an agent %s made by another admin's run has another password)", err, benchAgentEmail(i))
		}
		l.Index = i
		logins = append(logins, l)
	}
	return logins, nil
}

func (b *bench) loginWithRetry(ctx context.Context, i int, email, password string) (agentLogin, error) {
	hc := httpClient(b.agentDialHost, &b.sources[i%len(b.sources)], 1)
	defer hc.CloseIdleConnections()
	for try := 0; ; try++ {
		l, err := b.agentAPI.login(ctx, hc, email, password)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == 429 && try < 2 {
			b.errs.add("login: HTTP 429 (retried; raise limits.login_attempts_per_minute)")
			sleep(ctx, min(max(ae.RetryAfter, time.Second), 65*time.Second))
			continue
		}
		return l, err
	}
}

// mintVisitors mints the visitor tokens, o.Concurrency at once. A mint
// refused with 429 is retried after Retry-After (at most 5 s), three
// times. The first mint goes alone: if the server has no widget API, the
// run stops there.
func (b *bench) mintVisitors(ctx context.Context) ([]*visitor, time.Duration, error) {
	out := make([]*visitor, b.o.Visitors)
	start := time.Now()
	if b.o.Visitors == 0 {
		return nil, 0, nil
	}
	// Each visitor starts from the source address its socket will use, as
	// a browser does.
	clients := make([]*http.Client, len(b.sources))
	for i := range clients {
		clients[i] = httpClient(b.dialHost, &b.sources[i], max(2, b.o.Concurrency/len(clients)))
		defer clients[i].CloseIdleConnections()
	}
	if err := b.mintOne(ctx, clients[0], out, 0); err != nil {
		return nil, 0, fmt.Errorf("minting the first visitor token: %w", err)
	}
	forEach(ctx, b.o.Visitors-1, b.o.Concurrency, func(i int) {
		if err := b.mintOne(ctx, clients[(i+1)%len(clients)], out, i+1); err != nil {
			b.errs.add(kindOf(err))
		}
	})
	d := time.Since(start)
	minted := out[:0]
	for _, v := range out {
		if v != nil {
			minted = append(minted, v)
		}
	}
	if len(minted) < b.o.Visitors {
		b.progress("minted only %d of %d visitor tokens (see the errors)", len(minted), b.o.Visitors)
	}
	return minted, d, ctx.Err()
}

func (b *bench) mintOne(ctx context.Context, hc *http.Client, out []*visitor, i int) error {
	for try := 0; ; try++ {
		vs, err := b.api.mint(ctx, hc, "Load visitor "+strconv.Itoa(i+1))
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == 429 && try < 3 {
			b.errs.add("mint: HTTP 429 (retried; raise widget.rate_limits.starts_per_minute_per_ip)")
			sleep(ctx, min(max(ae.RetryAfter, 100*time.Millisecond), 5*time.Second))
			continue
		}
		if err != nil {
			return err
		}
		out[i] = &visitor{b: b, idx: i, start: vs, owner: -1}
		return nil
	}
}

func kindOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.kind()
	}
	return errKind(err)
}

// forEach calls fn(0..n-1) from at most par goroutines, stopping early
// when ctx is done.
func forEach(ctx context.Context, n, par int, fn func(i int)) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// connectVisitors opens the minted visitors' sockets, each from the source
// address it was minted from, and returns the time until the last hello.
func (b *bench) connectVisitors(ctx context.Context, minted []*visitor) time.Duration {
	ok := make([]bool, len(minted))
	start := time.Now()
	forEach(ctx, len(minted), b.o.Concurrency, func(i int) {
		v := minted[i]
		kind, err := v.connect(ctx, b.sources[v.idx%len(b.sources)])
		if err != nil {
			b.errs.add(kind)
			v.abandon()
			return
		}
		ok[i] = true
	})
	d := time.Since(start)
	for i, v := range minted {
		if ok[i] {
			b.visitors = append(b.visitors, v)
		}
	}
	return d
}

// pickActive chooses, by the seed, which connected visitors' conversations
// carry messages, and which agent owns each (round robin).
func (b *bench) pickActive() {
	k := min(b.o.Active, len(b.visitors))
	rng := mrand.New(mrand.NewPCG(b.o.Seed, 0x6d6362))
	perm := rng.Perm(len(b.visitors))
	b.active = make([]*visitor, k)
	for j := range k {
		v := b.visitors[perm[j]]
		if len(b.agents) > 0 {
			v.owner = j % len(b.agents)
		}
		b.active[j] = v
	}
}

// joinActive has each active conversation's owner join it; it returns how
// many joins succeeded.
func (b *bench) joinActive(ctx context.Context) int {
	var n atomic.Int64
	forEach(ctx, len(b.active), min(b.o.Concurrency, 32), func(j int) {
		v := b.active[j]
		if err := b.agentAPI.join(ctx, &b.agents[v.owner].login, v.start.Conversation.ID); err != nil {
			b.errs.add(kindOf(err))
			return
		}
		n.Add(1)
	})
	return int(n.Load())
}

// drive sends messages at o.Rate for o.Warmup+o.Duration: half from the
// active visitors over their sockets, half as their owners' replies (over
// the owners' sockets or HTTP, per -reply); then waits up to drainTime for
// the last to arrive and be acknowledged.
func (b *bench) drive(ctx context.Context) *MessageSummary {
	o := b.o
	rv, ra := o.Rate/2, o.Rate/2
	if len(b.agents) == 0 {
		rv, ra = o.Rate, 0
	}
	start := clock()
	b.from.Store(start + int64(o.Warmup))
	b.until.Store(start + int64(o.Warmup+o.Duration))
	if b.hooks != nil {
		b.hooks.measure(epoch.Add(time.Duration(b.from.Load())), epoch.Add(time.Duration(b.until.Load())))
	}
	until := b.until.Load()
	k := len(b.active)

	vjobs, ajobs := make(chan job, 8192), make(chan job, 8192)
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for j := range vjobs {
				b.sendVisitor(j, b.active[j.i%k])
			}
		})
	}
	for range o.Senders {
		workers.Go(func() {
			for j := range ajobs {
				b.sendAgent(ctx, j, b.active[(j.i+k/2)%k])
			}
		})
	}
	var gens sync.WaitGroup
	gens.Go(func() {
		pace(ctx, rv, start, until, func(j job) {
			select {
			case vjobs <- j:
			default:
				b.errs.add("visitor message not sent: send queue full (the tool is behind)")
			}
		})
		close(vjobs)
	})
	gens.Go(func() {
		pace(ctx, ra, start, until, func(j job) {
			select {
			case ajobs <- j:
			default:
				b.errs.add("agent reply not sent: all -senders waiting on the server")
			}
		})
		close(ajobs)
	})
	gens.Wait()
	workers.Wait()
	acked := func() bool { return o.Reply != replySocket || b.replyAcks.Load() >= b.sentA2V.Load() }
	drain(ctx, drainTime, func() bool {
		return b.recvV2A.Load() >= b.sentV2A.Load() && b.recvA2V.Load() >= b.sentA2V.Load() && acked()
	})

	m := &MessageSummary{
		TargetRate:      o.Rate,
		Conversations:   k,
		WarmupSeconds:   o.Warmup.Seconds(),
		DurationSeconds: o.Duration.Seconds(),
		SentV2A:         b.sentV2A.Load(),
		SentA2V:         b.sentA2V.Load(),
		ReceivedV2A:     b.recvV2A.Load(),
		ReceivedA2V:     b.recvA2V.Load(),
		VisitorToAgent:  b.v2a.latency(),
		AgentToVisitor:  b.a2v.latency(),
		VisitorAck:      b.ack.latency(),
		AgentReply:      b.reply.latency(),
	}
	if len(b.agents) == 0 {
		m.ReceivedV2A = int64(m.VisitorAck.N) // no agent to receive: count the acks
	}
	m.SentRate = math.Round(float64(m.SentV2A+m.SentA2V)/o.Duration.Seconds()*10) / 10
	m.AchievedRate = math.Round(float64(m.ReceivedV2A+m.ReceivedA2V)/o.Duration.Seconds()*10) / 10
	m.LostV2A = max(0, m.SentV2A-m.ReceivedV2A)
	m.LostA2V = max(0, m.SentA2V-m.ReceivedA2V)
	if m.LostV2A > 0 {
		b.errs.add("visitor->agent not received within " + drainTime.String())
	}
	if m.LostA2V > 0 {
		b.errs.add("agent->visitor not received within " + drainTime.String())
	}
	if !acked() {
		b.errs.add("agent reply not acknowledged within " + drainTime.String())
	}
	return m
}

// finishHooks waits up to -webhook-grace for the deliveries of the
// messages the server acknowledged, and returns what the receiver
// measured, with the server's webhook attempts since before (its
// /metrics before the load).
func (b *bench) finishHooks(ctx context.Context, before *ServerMemory) *WebhookSummary {
	b.progress("waiting up to %v for the webhook deliveries of %d messages (%d arrived)", b.o.WebhookGrace, b.ackedAll.Load(), b.hooks.ownArrived())
	start := time.Now()
	drain(ctx, b.o.WebhookGrace, func() bool { return b.hooks.ownArrived() >= b.ackedAll.Load() })
	h := b.hooks.summary(b.o.Duration)
	h.Listen = b.o.Webhook
	if b.hookListener != nil {
		h.Listen = b.hookListener.Addr().String()
	}
	h.GraceSeconds = round2(time.Since(start).Seconds())
	h.Sent, h.Acknowledged = b.sentAll.Load(), b.ackedAll.Load()
	h.Missing = max(0, h.Acknowledged-h.Arrived)
	if h.Missing > 0 {
		b.errs.add("webhook: message.created not received within -webhook-grace")
	}
	if h.BadSignatures > 0 {
		b.errs.add("webhook: bad signature")
	}
	if m, err := b.api.metrics(ctx); err == nil && before != nil {
		h.Attempts = map[string]float64{}
		for k, v := range m.WebhookAttempts {
			h.Attempts[k] = v - before.WebhookAttempts[k]
		}
	}
	return h
}

// drainTime is how long the last messages may take to arrive.
const drainTime = 5 * time.Second

// sendVisitor sends message j from visitor v. Its latency counts from when
// it was handed out (j.at), so that time spent waiting for a sender counts
// too.
func (b *bench) sendVisitor(j job, v *visitor) {
	t := j.at
	if !v.open.Load() && b.storm != nil {
		b.storm.skipped.Add(1) // its socket is down: a visitor types nothing meanwhile
		return
	}
	frame := b.messageFrame('v', v.owner, t, "v", j.i)
	if b.storm != nil {
		v.keep(b.clientID("v", j.i), frame)
	}
	err := v.socket().WriteMessage(gws.OpcodeText, frame)
	if err != nil {
		b.errs.add("visitor send: " + errKind(err))
		return
	}
	b.sentAll.Add(1)
	if t >= b.from.Load() && t < b.until.Load() {
		b.sentV2A.Add(1)
	}
}

// sendAgent sends reply j as v's conversation's owner, timed from when it
// was handed out: until the POST's answer here, or until the ack that the
// owner's socket receives (agent.OnMessage). Several senders write to one
// agent's socket at once; gws's writes take the connection's lock.
func (b *bench) sendAgent(ctx context.Context, j job, v *visitor) {
	t := j.at
	owner := b.agents[v.owner]
	clientID, text := b.clientID("a", j.i), messageText('a', v.owner, t, b.o.Size)
	if b.o.Reply == replySocket {
		if err := owner.conn.WriteMessage(gws.OpcodeText, replyFrame(v.start.Conversation.ID, clientID, text)); err != nil {
			b.errs.add("agent reply send: " + errKind(err))
			return
		}
	} else if seq, err := b.agentAPI.reply(ctx, &owner.login, v.start.Conversation.ID, clientID, text); err != nil {
		b.errs.add(kindOf(err))
		return
	} else {
		b.ackedAll.Add(1)
		if b.storm != nil {
			b.storm.stored(v.start.Conversation.ID, seq)
		}
	}
	b.sentAll.Add(1)
	if t >= b.from.Load() && t < b.until.Load() {
		b.sentA2V.Add(1)
		if b.o.Reply == replyHTTP {
			b.reply.add(time.Duration(clock() - t))
		}
	}
}

// job is the i-th message of a stream, handed out at at (clock).
type job struct {
	i  int
	at int64
}

// pace calls fn with jobs 0, 1, ... due at rate per second from start
// (clock) until until, catching up in bursts when it falls behind. Go's
// timers here wake about once a millisecond, so it checks every
// millisecond and hands out what is due. A job's at is when it was handed
// out, within about a millisecond of when it was due: latencies count
// from then, including any wait for a free sender, so that a slow server
// cannot hide its queue in the tool's (no coordinated omission).
func pace(ctx context.Context, rate float64, start, until int64, fn func(j job)) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		now := clock()
		if now >= until {
			return
		}
		due := int(float64(now-start)/1e9*rate) + 1
		for ; n < due; n++ {
			fn(job{i: n, at: now})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain waits until done says so, for at most d.
func drain(ctx context.Context, d time.Duration, done func() bool) {
	deadline := time.Now().Add(d)
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// closeAll closes every socket the tool opened.
func (b *bench) closeAll() {
	b.closing.Store(true)
	forEach(context.Background(), len(b.visitors), 64, func(i int) {
		if c := b.visitors[i].socket(); c != nil {
			c.WriteClose(1000, nil)
		}
	})
	for _, a := range b.agents {
		a.conn.WriteClose(1000, nil)
	}
}
