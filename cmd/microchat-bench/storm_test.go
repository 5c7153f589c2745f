package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestErrKindClosed: a socket the tool closed itself is named so, not by
// its addresses (one error kind per socket otherwise).
func TestErrKindClosed(t *testing.T) {
	err := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	if got := errKind(err); got != "closed by the tool" {
		t.Errorf("errKind(%v) = %q", err, got)
	}
}

func TestJSONInt(t *testing.T) {
	for _, c := range []struct {
		frame, key string
		want       int64
		ok         bool
	}{
		{`{"type":"event","event":{"id":9,"conversation_id":7,"seq":12,"type":"message_added","data":{"message":{"seq":12}}}}`, "seq", 12, true},
		{`{"type":"ack","client_id":"x","message":{"id":3,"conversation_id":41,"seq":5}}`, "conversation_id", 41, true},
		{`{"type":"hello"}`, "seq", 0, false},
		{`{"seq":"x"}`, "seq", 0, false},
	} {
		got, ok := jsonInt([]byte(c.frame), c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("jsonInt(%s, %q) = %d, %v; want %d, %v", c.frame, c.key, got, ok, c.want, c.ok)
		}
	}
}

// TestStormBookkeeping drives the storm's records by hand: stored and
// received seqs, a resume that must catch up, a duplicate, a loss.
func TestStormBookkeeping(t *testing.T) {
	st := newStorm(1)
	st.track([]int64{7})
	v := &visitor{}
	v.start.Conversation.ID = 7
	other := &visitor{}
	other.start.Conversation.ID = 8 // not active: ignored

	for seq := int64(1); seq <= 4; seq++ {
		st.stored(7, seq)
	}
	st.stored(8, 1)
	st.received(v, 1)
	st.received(v, 2)
	st.received(other, 1)
	// The socket drops after seq 2 and resumes from it: 3 and 4 were
	// stored meanwhile.
	v.resuming.Store(true)
	st.pending.Add(1)
	v.authSeq.Store(2)
	v.attemptAt.Store(clock())
	st.resumed(v)
	if st.back.Load() != 1 || st.pending.Load() != 0 || v.resuming.Load() {
		t.Fatalf("after resumed: back %d, pending %d, resuming %v", st.back.Load(), st.pending.Load(), v.resuming.Load())
	}
	st.received(v, 3)
	if st.catchUp.count() != 0 {
		t.Fatal("caught up with seq 4 missing")
	}
	st.received(v, 4)
	if st.catchUp.count() != 1 || st.caughtUp.Load() != 1 {
		t.Fatalf("catch-ups %d, want 1 once seqs 3 and 4 came", st.catchUp.count())
	}
	st.received(v, 3) // again: a duplicate
	st.stored(7, 5)   // never received: lost
	b := &bench{storm: st}
	s := &StormSummary{}
	b.finishStorm(s)
	if s.Conversations != 1 || s.AgentStored != 5 || s.Lost != 1 || s.Duplicated != 1 || s.CatchUp.N != 1 || s.CatchUpWaiting != 0 {
		t.Errorf("summary %+v; want 1 conversation, 5 stored, 1 lost, 1 duplicated, 1 catch-up", s)
	}
}

// TestStormResumeNothingMissed: a visitor that missed nothing has no
// catch-up to time.
func TestStormResumeNothingMissed(t *testing.T) {
	st := newStorm(1)
	st.track([]int64{7})
	v := &visitor{}
	v.start.Conversation.ID = 7
	st.stored(7, 1)
	st.received(v, 1)
	v.authSeq.Store(1)
	st.resumed(v)
	st.received(v, 2) // live, after the resume
	if st.catchUp.count() != 0 {
		t.Errorf("catch-ups %d, want none", st.catchUp.count())
	}
}

func TestMedianAndRatios(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median(3,1,2) = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median(4,1,2,3) = %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median() = %v", m)
	}
	sum := func(v2a, a2v float64, lost int64) *Summary {
		return &Summary{Messages: &MessageSummary{VisitorToAgent: Latency{P50: v2a / 4, P99: v2a}, AgentToVisitor: Latency{P50: a2v / 4, P99: a2v}, LostA2V: lost}}
	}
	c := &Comparison{P99Target: 2, Single: []*Summary{sum(10, 10, 0), sum(12, 30, 0), sum(11, 11, 0)}, Cross: []*Summary{sum(20, 15, 0), sum(22, 16, 0), sum(100, 17, 0)}}
	c.ratios()
	if c.Ratios.VisitorToAgent.P99 != 2 || c.Ratios.AgentToVisitor.P99 != 1.5 || !c.Met {
		t.Errorf("ratios %+v, met %v; want v->a 22/11 = 2, a->v 16/11 = 1.5, met", c.Ratios, c.Met)
	}
	c.Cross[0].Messages.LostA2V = 1
	c.ratios()
	if c.Met {
		t.Error("a cross-node run lost a message, and the target is met")
	}
	c.Cross[0].Messages.LostA2V = 0
	c.Cross[1].Messages.VisitorToAgent.P99 = 23
	c.ratios()
	if c.Met {
		t.Errorf("ratio %v over 2, and the target is met", c.Ratios.VisitorToAgent.P99)
	}
	var out strings.Builder
	c.print(&out)
	if !strings.Contains(out.String(), "NOT met") || !strings.Contains(out.String(), "cross 3") {
		t.Errorf("comparison printed:\n%s", out.String())
	}
}

func TestStormFlags(t *testing.T) {
	var stderr strings.Builder
	base := []string{"-agents", "0"}
	for _, c := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"-storm"}, "-restart-cmd"},
		{[]string{"-storm", "-restart-cmd", "true", "-idle"}, "-idle"},
		{[]string{"-storm", "-restart-cmd", "true", "-storm-spread", "2m"}, "-storm-spread"},
		{[]string{"-storm", "-restart-cmd", "true"}, ""},
		{[]string{"-compare-single"}, "-agent-url"},
		{[]string{"-agent-url", "http://example.com:80"}, "loopback"},
		{[]string{"-agent-url", "http://127.0.0.1:18082", "-compare-single", "-rounds", "3"}, ""},
		{[]string{"-agent-url", "http://127.0.0.1:18082", "-compare-single", "-rounds", "0"}, "-rounds"},
	} {
		_, err := parseFlags(append(base, c.args...), &stderr)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("parseFlags(%v) = %v; want an error with %q", c.args, err, c.want)
		}
	}
	// Agents on the node that restarts must reply over HTTP.
	args := []string{"-agents", "1", "-email", "a@b.c", "-password", "p", "-storm", "-restart-cmd", "true"}
	if _, err := parseFlags(args, &stderr); err == nil || !strings.Contains(err.Error(), "-agent-url") {
		t.Errorf("storm with agent sockets on the restarted node: %v", err)
	}
	if _, err := parseFlags(append(args, "-reply", "http"), &stderr); err != nil {
		t.Errorf("storm with HTTP replies: %v", err)
	}
	o, _ := parseFlags([]string{"-agents", "0", "-agent-url", "http://127.0.0.1:2", "-compare-single", "-rounds", "2", "-duration", "10s", "-warmup", "1s"}, &stderr)
	if o.hardCap() != 4*(11*time.Second+setupBudget) {
		t.Errorf("hard cap of 2 rounds = %v", o.hardCap())
	}
}

// cutProxy forwards TCP connections to a backend; cut closes every one
// and refuses new ones for a while: a node's restart, seen from the
// sockets. Before it closes them it drops what the clients send until a
// message frame was dropped: messages a node that dies never stored.
type cutProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	conns   map[net.Conn]bool
	downTil time.Time
	// dropping is set while cut drops what clients send; dropped gets
	// a value when a write of at least minMessageFrame bytes was dropped.
	dropping atomic.Bool
	dropped  chan struct{}
}

// minMessageFrame is the least size of a visitor's message frame (a
// marker and 64 bytes of text); pongs and pings are smaller.
const minMessageFrame = 100

func newCutProxy(t *testing.T, backend string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}, dropped: make(chan struct{}, 1)}
	t.Cleanup(func() { ln.Close(); p.cut(0) })
	go p.serve()
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := time.Now().Before(p.downTil)
		if !down {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *cutProxy) forward(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	be, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer be.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(be, p.clientSide(c)); done <- struct{}{} }()
	go func() { io.Copy(c, be); done <- struct{}{} }()
	<-done
}

// clientSide reads what client c sends, dropping it while p drops.
func (p *cutProxy) clientSide(c net.Conn) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		for {
			n, err := c.Read(b)
			if err != nil || !p.dropping.Load() {
				return n, err
			}
			if n >= minMessageFrame {
				select {
				case p.dropped <- struct{}{}:
				default:
				}
			}
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// cutAfterDrop drops what clients send until a message frame was dropped
// (at most within wait), then cuts for down.
func (p *cutProxy) cutAfterDrop(wait, down time.Duration) error {
	p.dropping.Store(true)
	defer p.dropping.Store(false)
	var err error
	select {
	case <-p.dropped:
	case <-time.After(wait):
		err = fmt.Errorf("no visitor message frame came within %v to drop", wait)
	}
	p.cut(down)
	return err
}

// cut closes every connection and refuses new ones for down.
func (p *cutProxy) cut(down time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downTil = time.Now().Add(down)
	for c := range p.conns {
		c.Close()
	}
}

// TestStorm runs a storm against the real server behind a proxy that cuts
// every visitor socket and refuses connections for a moment; the agents
// reply over their sockets, straight to the server. Every visitor must be
// back and have every agent message once.
func TestStorm(t *testing.T) {
	srv := newServer(t)
	proxy := newCutProxy(t, strings.TrimPrefix(srv.url, "http://"))
	o := testOptions(proxy.url())
	o.AgentURL = srv.url
	o.Visitors, o.Agents, o.Active, o.Rate = 40, 2, 10, 200
	o.Duration, o.Warmup, o.Floor = 5*time.Second, 500*time.Millisecond, false
	o.Storm, o.RestartCmd = true, "(cut by the test's proxy)"
	o.StormSpread, o.StormSettle, o.StormWait = 500*time.Millisecond, 500*time.Millisecond, 10*time.Second
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	b, err := newBench(o, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	cuts := 0
	var cutErr error
	b.restart = func(context.Context) error {
		cuts++
		cutErr = proxy.cutAfterDrop(10*time.Second, 300*time.Millisecond)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := mustRun(t)(b.run(ctx))
	st := s.Storm
	if cutErr != nil {
		t.Fatal(cutErr)
	}
	if st == nil || cuts != 1 {
		t.Fatalf("storm %+v after %d cuts", st, cuts)
	}
	if st.SocketsBefore != 40 || st.Dropped != 40 || st.Back != 40 || !st.AllBack || st.GaveUp != 0 || s.Visitors.Held != 40 {
		t.Errorf("sockets before %d, dropped %d, back %d, all back %v, gave up %d, held %d; want 40 each, all back",
			st.SocketsBefore, st.Dropped, st.Back, st.AllBack, st.GaveUp, s.Visitors.Held)
	}
	if st.AllBackSeconds <= 0 || st.AllBackSeconds > 5 || st.Down.N != 40 {
		t.Errorf("all back after %v s, %d downs timed", st.AllBackSeconds, st.Down.N)
	}
	if st.AgentStored < 300 || st.Lost != 0 || st.Duplicated != 0 || st.Resyncs != 0 || st.CatchUpWaiting != 0 {
		t.Errorf("agent messages stored %d, lost %d, duplicated %d, resyncs %d, catch-ups waiting %d; want about 500 stored, nothing else",
			st.AgentStored, st.Lost, st.Duplicated, st.Resyncs, st.CatchUpWaiting)
	}
	// Replies went on while the visitors were away: some had to catch up.
	if st.CatchUp.N == 0 || st.CatchUp.P50 <= 0 {
		t.Errorf("catch-up %+v: want some", st.CatchUp)
	}
	if st.MemoryBefore == nil || st.MemoryAfter == nil || st.RSSRatio <= 0 {
		t.Errorf("memory before %v, after %v, ratio %v", st.MemoryBefore, st.MemoryAfter, st.RSSRatio)
	}
	// Visitor messages in flight at the cut are sent again after the
	// reconnect, as the widget's outbox does: none is lost.
	if s.Messages == nil || s.Messages.LostV2A != 0 || s.Messages.LostA2V != 0 {
		t.Errorf("messages %+v: want none lost", s.Messages)
	}
	for k := range s.Errors {
		// A send on a socket the cut closed fails (and is sent again).
		if !strings.HasPrefix(k, "visitor send") {
			t.Errorf("error %q: %d", k, s.Errors[k])
		}
	}
}
