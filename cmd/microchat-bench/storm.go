package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The reconnect storm (-storm): while the load runs, the node the visitors
// are on (-url) is restarted by -restart-cmd, a real process killed and
// started again; every visitor socket comes back after a random delay
// within -storm-spread from its drop, retrying with the widget's backoff
// (0.5 s doubling to 30 s, full jitter) while the node is down, and
// resumes with the last seq it received (docs/widget-protocol.md). The
// agents reply on through it all (from another node with -agent-url, or
// over HTTP retried by nobody: a reply refused while the node is down was
// never stored and is not counted).
//
// Measured: when every visitor is back, from the command's start; each
// visitor's time from its drop to its new hello; the catch-up time of the
// active conversations: from the start of the reconnect that succeeded
// until the visitor has every agent message that was stored (its storing
// answered) before its hello and after the seq it resumed from; agent
// messages stored but never received by their visitor (lost) or received
// twice (duplicated); and the node's memory a -storm-settle after the
// sockets were up, before the restart, and as long after all were back.

// restartTimeout bounds -restart-cmd.
const restartTimeout = 2 * time.Minute

// Reconnect backoff after a failed attempt: the widget's (socket.js).
const (
	backoffFirst = 500 * time.Millisecond
	backoffCap   = 30 * time.Second
)

// storm is the state of a reconnect storm, shared by the sockets' read
// loops and the reconnecting goroutines.
type storm struct {
	// restarting is set when the restart command starts: from then on a
	// visitor socket closed by the server reconnects.
	restarting atomic.Bool
	t0         int64 // clock when the command started

	rngMu sync.Mutex
	rng   *mrand.Rand

	mu    sync.Mutex
	convs map[int64]*convTrack // active conversations by id, set before the load

	dropped, back, failed, gaveUp, pending, resyncs, skipped, resent atomic.Int64
	duplicated                                                       atomic.Int64
	firstBack, lastBack                                              atomic.Int64 // clock
	// down: a visitor's drop until its new hello; catchUp: the start of
	// its successful reconnect until it has every message it missed;
	// catchUpHello the same from its hello.
	down, catchUp, catchUpHello recorder
	caughtUp                    atomic.Int64 // visitors with something to catch up that did
	closeKinds                  errorCounts
}

// convTrack is what one active conversation's visitor was sent and got.
type convTrack struct {
	mu sync.Mutex
	// stored are the seqs of agent messages stored, with when the tool
	// had the answer (clock); got those the visitor received.
	stored map[int64]int64
	got    map[int64]bool
	// waiting are the seqs the current socket must catch up, since
	// (clock) the start of its reconnect, hello (clock) its hello.
	waiting      map[int64]bool
	since, hello int64
}

func newStorm(seed uint64) *storm {
	return &storm{rng: mrand.New(mrand.NewPCG(seed, 0x73746f726d)), convs: map[int64]*convTrack{}}
}

// track registers the active conversations, before the load.
func (st *storm) track(ids []int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, id := range ids {
		st.convs[id] = &convTrack{stored: map[int64]int64{}, got: map[int64]bool{}}
	}
}

func (st *storm) conv(id int64) *convTrack {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.convs[id]
}

// stored records that an agent message was stored in conversation id at
// seq (its ack or its POST's answer).
func (st *storm) stored(id, seq int64) {
	c := st.conv(id)
	if c == nil || seq <= 0 {
		return
	}
	c.mu.Lock()
	if _, ok := c.stored[seq]; !ok {
		c.stored[seq] = clock()
	}
	c.mu.Unlock()
}

// received records the event of an agent message at seq on v's socket.
func (st *storm) received(v *visitor, seq int64) {
	c := st.conv(v.start.Conversation.ID)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got[seq] {
		st.duplicated.Add(1)
		return
	}
	c.got[seq] = true
	if c.waiting != nil && c.waiting[seq] {
		delete(c.waiting, seq)
		if len(c.waiting) == 0 {
			c.waiting = nil
			now := clock()
			st.catchUp.add(time.Duration(now - c.since))
			st.catchUpHello.add(time.Duration(now - c.hello))
			st.caughtUp.Add(1)
		}
	}
}

// resumed is v's hello after a reconnect (in its read loop, before the
// events that follow it): from now on it must get every agent message
// stored so far after the seq it resumed from.
func (st *storm) resumed(v *visitor) {
	now := clock()
	v.resuming.Store(false)
	st.back.Add(1)
	st.pending.Add(-1)
	st.firstBack.CompareAndSwap(0, now)
	for {
		last := st.lastBack.Load()
		if now <= last || st.lastBack.CompareAndSwap(last, now) {
			break
		}
	}
	if c := st.conv(v.start.Conversation.ID); c != nil {
		c.mu.Lock()
		from := v.authSeq.Load()
		c.waiting, c.since, c.hello = nil, v.attemptAt.Load(), now
		for seq, at := range c.stored {
			if seq > from && at <= now && !c.got[seq] {
				if c.waiting == nil {
					c.waiting = map[int64]bool{}
				}
				c.waiting[seq] = true
			}
		}
		c.mu.Unlock()
	}
}

// drop is v's socket closed by the server during the storm: it comes back
// after a random delay within spread.
func (st *storm) drop(v *visitor, kind string) {
	if !v.resuming.CompareAndSwap(false, true) {
		return // a failed attempt's socket: the reconnect loop goes on
	}
	st.dropped.Add(1)
	st.pending.Add(1)
	st.closeKinds.add(kind)
	droppedAt := clock()
	go v.b.reconnect(v, droppedAt, st.jitter(v.b.o.StormSpread))
}

// jitter is a random duration in [0, d).
func (st *storm) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	st.rngMu.Lock()
	defer st.rngMu.Unlock()
	return time.Duration(st.rng.Int64N(int64(d)))
}

// reconnect brings v back after delay, then with backoff, until the storm's
// deadline.
func (b *bench) reconnect(v *visitor, droppedAt int64, delay time.Duration) {
	st := b.storm
	ctx := b.stormCtx
	sleep(ctx, delay)
	backoff := backoffFirst
	deadline := time.Duration(st.t0) + b.o.StormWait + restartTimeout
	for ctx.Err() == nil && !b.closing.Load() {
		wait := max(helloTimeout, deadline-time.Duration(clock()))
		if _, err := v.connectWithin(ctx, v.src, wait); err == nil {
			st.down.add(time.Duration(clock() - droppedAt))
			return
		}
		v.abandon()
		st.failed.Add(1)
		if time.Duration(clock()) > deadline {
			break
		}
		sleep(ctx, st.jitter(backoff))
		backoff = min(2*backoff, backoffCap)
	}
	if v.resuming.CompareAndSwap(true, false) {
		st.gaveUp.Add(1)
		st.pending.Add(-1)
	}
}

// restartCommand runs cmd with sh -c; its error carries the output.
func restartCommand(cmd string) func(context.Context) error {
	return func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}

// StormSummary is what the reconnect storm measured.
type StormSummary struct {
	Node       string `json:"node"`
	RestartCmd string `json:"restart_cmd"`
	// RestartSeconds is how long the command took (killing the process
	// and starting the new one); RestartError why it failed.
	RestartSeconds float64 `json:"restart_seconds"`
	RestartError   string  `json:"restart_error,omitempty"`
	SpreadSeconds  float64 `json:"spread_seconds"`
	// SocketsBefore were open when the command started.
	SocketsBefore int `json:"sockets_before"`
	Dropped       int `json:"dropped"`
	Back          int `json:"back"`
	GaveUp        int `json:"gave_up"`
	// FailedAttempts are reconnects refused or cut (the node still down).
	FailedAttempts int `json:"failed_attempts"`
	// FirstBackSeconds and AllBackSeconds count from the command's start
	// to the first hello and to the last (all back); AllBack says whether
	// every dropped socket came back within the wait.
	FirstBackSeconds float64 `json:"first_back_seconds"`
	AllBackSeconds   float64 `json:"all_back_seconds"`
	AllBack          bool    `json:"all_back"`
	// ReconnectRate is hellos per second from the first to the last.
	ReconnectRate float64 `json:"reconnect_rate"`
	// Down is each visitor's drop until its new hello.
	Down Latency `json:"down"`
	// CatchUp is, for each active conversation's visitor that had missed
	// agent messages, the start of its successful reconnect until it had
	// them all; CatchUpWaiting those still missing some at the end.
	CatchUp Latency `json:"catch_up"`
	// CatchUpAfterHello is the same from the hello: the replay alone,
	// without the dial, handshake and auth.
	CatchUpAfterHello Latency `json:"catch_up_after_hello"`
	CatchUpWaiting    int     `json:"catch_up_waiting"`
	Conversations     int     `json:"conversations"`
	// AgentStored are agent messages stored in the active conversations
	// during the whole load; Lost those their visitor never received,
	// Duplicated those received more than once.
	AgentStored int64 `json:"agent_stored"`
	Lost        int64 `json:"lost"`
	Duplicated  int64 `json:"duplicated"`
	Resyncs     int64 `json:"resyncs"`
	// ResentVisitorMessages were sent again after a reconnect, not
	// acknowledged before the drop.
	ResentVisitorMessages int64 `json:"resent_visitor_messages"`
	// SkippedVisitorMessages were not sent: their socket was down.
	SkippedVisitorMessages int64            `json:"skipped_visitor_messages"`
	CloseKinds             map[string]int64 `json:"close_kinds"`
	// MemoryBefore and MemoryAfter are the node's, -storm-settle after
	// the sockets were up and after all were back; the ratios after over
	// before.
	MemoryBefore   *ServerMemory `json:"memory_before,omitempty"`
	MemoryAfter    *ServerMemory `json:"memory_after,omitempty"`
	RSSRatio       float64       `json:"rss_ratio"`
	HeapStackRatio float64       `json:"heap_stack_ratio"`
}

// runStorm restarts the node and waits until the visitors are back (or
// the wait is over), then the settle, and reads the node's memory.
func (b *bench) runStorm(ctx context.Context, before *ServerMemory) *StormSummary {
	o, st := b.o, b.storm
	s := &StormSummary{Node: b.api.base, RestartCmd: o.RestartCmd, SpreadSeconds: o.StormSpread.Seconds(), MemoryBefore: before}
	s.SocketsBefore = int(b.openVisitors.Load())
	b.progress("storm: restarting %s with %q (%d visitor sockets open)", b.api.base, o.RestartCmd, s.SocketsBefore)
	st.t0 = clock()
	st.restarting.Store(true)
	cctx, cancel := context.WithTimeout(ctx, restartTimeout)
	restart := b.restart
	if restart == nil {
		restart = restartCommand(o.RestartCmd)
	}
	err := restart(cctx)
	cancel()
	s.RestartSeconds = round2(time.Duration(clock() - st.t0).Seconds())
	if err != nil {
		s.RestartError = err.Error()
		b.errs.add("storm: restart command failed")
		b.progress("storm: the restart command failed: %s", s.RestartError)
	} else {
		b.progress("storm: restart command done in %.2f s", s.RestartSeconds)
	}
	deadline := time.Now().Add(o.StormWait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if int(st.dropped.Load()) >= s.SocketsBefore && st.pending.Load() == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.progress("storm: %d dropped, %d back, %d still away", st.dropped.Load(), st.back.Load(), st.pending.Load())
	b.fillStorm(s)
	if o.StormSettle > 0 {
		sleep(ctx, o.StormSettle)
	}
	if m, err := b.api.metrics(ctx); err == nil {
		s.MemoryAfter = &m
	} else {
		b.errs.add("storm: reading the node's memory after: " + errKind(err))
	}
	if s.MemoryBefore != nil && s.MemoryAfter != nil && s.MemoryBefore.RSS > 0 {
		s.RSSRatio = math2(s.MemoryAfter.RSS / s.MemoryBefore.RSS)
		s.HeapStackRatio = math2((s.MemoryAfter.HeapInuse + s.MemoryAfter.StackInuse) / (s.MemoryBefore.HeapInuse + s.MemoryBefore.StackInuse))
	}
	return s
}

// math2 rounds a ratio to three decimals.
func math2(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// fillStorm sets the reconnection figures of s so far.
func (b *bench) fillStorm(s *StormSummary) {
	st := b.storm
	s.Dropped, s.Back, s.GaveUp = int(st.dropped.Load()), int(st.back.Load()), int(st.gaveUp.Load())
	s.FailedAttempts = int(st.failed.Load())
	s.AllBack = s.Dropped > 0 && s.Dropped >= s.SocketsBefore && st.pending.Load() == 0 && s.GaveUp == 0
	if f, l := st.firstBack.Load(), st.lastBack.Load(); f > 0 {
		s.FirstBackSeconds = round2(time.Duration(f - st.t0).Seconds())
		s.AllBackSeconds = round2(time.Duration(l - st.t0).Seconds())
		if l > f {
			s.ReconnectRate = rate(s.Back-1, time.Duration(l-f))
		}
	}
	s.Down = st.down.latency()
	s.CloseKinds = st.closeKinds.snapshot()
}

// finishStorm counts, after the load and its drain, what was lost and
// duplicated, and the catch-ups still waiting.
func (b *bench) finishStorm(s *StormSummary) {
	st := b.storm
	st.mu.Lock()
	ids := make([]int64, 0, len(st.convs))
	for id := range st.convs {
		ids = append(ids, id)
	}
	st.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	s.Conversations = len(ids)
	for _, id := range ids {
		c := st.conv(id)
		c.mu.Lock()
		s.AgentStored += int64(len(c.stored))
		s.Lost += lostOf(c.stored, c.got)
		if len(c.waiting) > 0 {
			s.CatchUpWaiting++
		}
		c.mu.Unlock()
	}
	s.Duplicated = st.duplicated.Load()
	s.Resyncs = st.resyncs.Load()
	s.SkippedVisitorMessages = st.skipped.Load()
	s.ResentVisitorMessages = st.resent.Load()
	s.CatchUp = st.catchUp.latency()
	s.CatchUpAfterHello = st.catchUpHello.latency()
}

// lostOf counts the stored seqs not received.
func lostOf(stored map[int64]int64, got map[int64]bool) int64 {
	var n int64
	for seq := range stored {
		if !got[seq] {
			n++
		}
	}
	return n
}

// print writes the storm's figures for people.
func (s *StormSummary) print(p func(format string, args ...any)) {
	p("storm: restarted %s with %q in %.2f s%s", s.Node, s.RestartCmd, s.RestartSeconds, map[bool]string{true: "; FAILED: " + s.RestartError, false: ""}[s.RestartError != ""])
	p("storm: %s sockets open before; %s dropped; %s back (%s gave up), %s failed attempts; first back after %.2f s, all back after %.2f s: %s (target: all within 10 s)",
		itoa(int64(s.SocketsBefore)), itoa(int64(s.Dropped)), itoa(int64(s.Back)), itoa(int64(s.GaveUp)), itoa(int64(s.FailedAttempts)), s.FirstBackSeconds, s.AllBackSeconds,
		map[bool]string{true: "all back", false: "NOT all back"}[s.AllBack])
	p("storm: reconnect rate %s/s (first to last hello); drop to hello, ms: p50 %.0f, p99 %.0f, max %.0f (random delay within %.1f s)",
		itoa(int64(s.ReconnectRate)), s.Down.P50, s.Down.P99, s.Down.Max, s.SpreadSeconds)
	p("storm: catch-up of %d visitors that had missed agent messages, from the reconnect's dial, ms: p50 %.1f, p99 %.1f, max %.1f (target p99 <= 500); from its hello: p50 %.1f, p99 %.1f, max %.1f; %d still missing some",
		s.CatchUp.N, s.CatchUp.P50, s.CatchUp.P99, s.CatchUp.Max, s.CatchUpAfterHello.P50, s.CatchUpAfterHello.P99, s.CatchUpAfterHello.Max, s.CatchUpWaiting)
	p("storm: %s agent messages stored in %d conversations: %d lost, %d duplicated (target 0/0); %d resyncs; %s visitor messages not sent while their socket was down, %s sent again after it (not acknowledged before the drop)",
		itoa(s.AgentStored), s.Conversations, s.Lost, s.Duplicated, s.Resyncs, itoa(s.SkippedVisitorMessages), itoa(s.ResentVisitorMessages))
	if s.MemoryBefore != nil && s.MemoryAfter != nil {
		p("storm: node memory before / after, MB: RSS %.1f / %.1f (x%.3f), heap+stack %.1f / %.1f (x%.3f) (target: within 10%%)",
			s.MemoryBefore.RSS/1e6, s.MemoryAfter.RSS/1e6, s.RSSRatio,
			(s.MemoryBefore.HeapInuse+s.MemoryBefore.StackInuse)/1e6, (s.MemoryAfter.HeapInuse+s.MemoryAfter.StackInuse)/1e6, s.HeapStackRatio)
	}
	if len(s.CloseKinds) > 0 {
		var parts []string
		for _, k := range sortedKeys(s.CloseKinds) {
			parts = append(parts, fmt.Sprintf("%s %s", itoa(s.CloseKinds[k]), k))
		}
		p("storm: how the sockets dropped: %s", strings.Join(parts, "; "))
	}
}
