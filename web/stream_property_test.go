package web

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// streamCheck is one client of a socket (an agent's dashboard, a widget)
// across its connections: what it holds of each conversation, and what
// its current connection delivered. It checks the sockets' guarantees
// (docs/protocol.md): per conversation, one connection delivers each seq
// at most once and in increasing order, without a gap unless a resync
// came; and the client ends up with every event or a resync telling it
// to reload.
type streamCheck struct {
	t     *testing.T
	name  string
	store *inbox.Store
	// held: the client has every event up to this seq (from its
	// connections, or from a reload after a resync); gap: it received one
	// after a hole, which only a resync may settle.
	held map[int64]int64
	gap  map[int64]bool
	// The current connection: the last seq it delivered, and the
	// conversations it resynced since their last event.
	conn     map[int64]int64
	resynced map[int64]bool
	events   int
}

func newStreamCheck(t *testing.T, name string, store *inbox.Store, convs []int64) *streamCheck {
	s := &streamCheck{t: t, name: name, store: store, held: map[int64]int64{}, gap: map[int64]bool{}}
	for _, id := range convs {
		s.held[id] = s.dbSeq(id) // loaded over HTTP
	}
	s.newConn()
	return s
}

func (s *streamCheck) newConn() {
	s.conn, s.resynced = map[int64]int64{}, map[int64]bool{}
}

func (s *streamCheck) dbSeq(id int64) int64 {
	s.t.Helper()
	c, err := s.store.Conversation(context.Background(), id)
	noError(s.t, "Conversation()", err)
	return c.Seq
}

func (s *streamCheck) event(ev *inbox.Event) {
	s.t.Helper()
	id := ev.ConversationID
	if last, ok := s.conn[id]; ok {
		if ev.Seq <= last {
			s.t.Fatalf("%s: conversation %d: seq %d after %d on one connection (twice or out of order)", s.name, id, ev.Seq, last)
		}
		if ev.Seq != last+1 && !s.resynced[id] {
			s.t.Fatalf("%s: conversation %d: seq %d after %d on one connection, without a resync", s.name, id, ev.Seq, last)
		}
	}
	s.conn[id] = ev.Seq
	delete(s.resynced, id)
	s.events++
	switch held := s.held[id]; {
	case ev.Seq <= held: // had it already, from another connection or a reload
	case ev.Seq == held+1 && !s.gap[id]:
		s.held[id] = ev.Seq
	default:
		s.gap[id] = true
	}
}

// resync reloads the conversation, as the client does.
func (s *streamCheck) resync(id int64) {
	s.held[id], s.gap[id], s.resynced[id] = s.dbSeq(id), false, true
}

// caughtUp reports whether the client holds every stored event.
func (s *streamCheck) caughtUp() bool {
	for id, held := range s.held {
		if s.gap[id] || held != s.dbSeq(id) {
			return false
		}
	}
	return true
}

func (s *streamCheck) cursors() map[string]int64 {
	m := map[string]int64{}
	for id, held := range s.held {
		m[itoa(id)] = held
	}
	return m
}

// propAgent is the agent's side: its socket and its checks.
type propAgent struct {
	*streamCheck
	e *wsEnv
	c *wsClient
	// waits: the connection was opened with ?resume=1, its events wait
	// for the resume; pruned: events were pruned. Such a connection has no
	// resync unless events were pruned.
	waits, pruned bool
}

func (a *propAgent) frame(f agentFrame) {
	a.t.Helper()
	switch f.Type {
	case "event":
		a.event(f.Event)
	case "resync":
		if a.waits && !a.pruned {
			a.t.Fatalf("%s: %+v on a connection that held its events for the resume, nothing pruned", a.name, f)
		}
		if f.ConversationID == 0 {
			for id := range a.held {
				a.resync(id)
			}
			a.newConn() // a new Follower: it starts afresh
			return
		}
		a.resync(f.ConversationID)
	case "error", "undecodable":
		a.t.Fatalf("%s: %+v", a.name, f)
	}
}

func (a *propAgent) converge() {
	a.t.Helper()
	deadline := time.After(10 * time.Second)
	for !a.caughtUp() {
		select {
		case f := <-a.c.frames:
			a.frame(f)
		case err := <-a.c.closed:
			a.t.Fatalf("%s: socket closed: %v", a.name, err)
		case <-deadline:
			a.t.Fatalf("%s: not caught up within 10 s: holds %v (gaps %v)", a.name, a.held, a.gap)
		}
	}
}

// reconnect drops the socket (taking what it still delivers), runs
// meanwhile while it is down, and reconnects, with ?resume=1 if held;
// between runs after the hello and before the resume.
func (a *propAgent) reconnect(held bool, meanwhile, between func()) {
	a.t.Helper()
	if a.c != nil {
		a.c.conn.WriteClose(1000, nil)
	drain:
		for {
			select {
			case f := <-a.c.frames:
				a.frame(f)
			case <-a.c.closed:
				break drain
			case <-time.After(frameWait):
				a.t.Fatalf("%s: not closed within %v", a.name, frameWait)
			}
		}
		for len(a.c.frames) > 0 {
			a.frame(<-a.c.frames)
		}
	}
	meanwhile()
	path := "/api/v1/ws"
	if held {
		path += "?resume=1"
	}
	c, _, err := a.e.dialPath(a.t, nil, path)
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	a.c, a.waits = c, held
	a.newConn()
	if f := c.next(a.t); f.Type != "hello" {
		a.t.Fatalf("%s: first frame %+v, want hello", a.name, f)
	}
	between()
	c.send(a.t, agentCommand{Type: "resume", Cursors: a.cursors()})
}

// propVisitor is a widget: its socket and its checks.
type propVisitor struct {
	*streamCheck
	v    *visitor
	s    *vsock
	conv int64
}

func (p *propVisitor) frame(f vframe) {
	p.t.Helper()
	switch f.Type {
	case "event":
		p.event(f.Event)
	case "resync":
		p.resync(p.conv)
	case "error":
		p.t.Fatalf("%s: %s", p.name, f)
	}
}

func (p *propVisitor) converge() {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for !p.caughtUp() {
		select {
		case f := <-p.s.frames:
			p.frame(f)
		case err := <-p.s.closed:
			p.t.Fatalf("%s: socket closed: %v", p.name, err)
		case <-deadline:
			p.t.Fatalf("%s: not caught up within 10 s: holds %v (gaps %v)", p.name, p.held, p.gap)
		}
	}
}

// reconnect closes the visitor's socket and opens another, resuming from
// what it holds; named: its auth names the conversation, as the widget's
// does once it knows it.
func (p *propVisitor) reconnect(meanwhile func(), named bool) {
	p.t.Helper()
	if p.s != nil {
		p.s.conn.WriteClose(1000, nil)
	drain:
		for {
			select {
			case f := <-p.s.frames:
				p.frame(f)
			case <-p.s.closed:
				break drain
			case <-time.After(frameWait):
				p.t.Fatalf("%s: not closed within %v", p.name, frameWait)
			}
		}
		for len(p.s.frames) > 0 {
			p.frame(<-p.s.frames)
		}
	}
	meanwhile()
	if named {
		p.s, _ = p.v.connect(p.held[p.conv])
	} else {
		p.s, _ = p.v.connectUnnamed(p.held[p.conv])
	}
	p.newConn()
}

// Both sockets keep their guarantees whatever interleaving of commits
// (concurrent ones among them), drops, resumes, pruning and commits
// between a socket's first read and its subscription a seeded random
// driver makes. MICROCHAT_PROPERTY_SEED replays a logged seed.
func TestSocketStreamProperty(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		seed := uint64(time.Now().UnixNano())
		if s := os.Getenv("MICROCHAT_PROPERTY_SEED"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			noError(t, "MICROCHAT_PROPERTY_SEED", err)
			seed = n
		}
		t.Logf("seed %d (MICROCHAT_PROPERTY_SEED=%d replays it)", seed, seed)
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		ctx := context.Background()
		e := newWSEnv(t, url)
		vs := []*visitor{e.env.startVisitor("Pia"), e.env.startVisitor("Quinn")}
		convs := []int64{e.conv.ID, vs[0].start.Conversation.ID, vs[1].start.Conversation.ID}

		var commits atomic.Int64
		commit := func(conv int64) {
			commits.Add(1)
			var err error
			if commits.Load()%3 == 0 {
				_, _, err = e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &e.agent.ID, Text: "reply"})
			} else {
				_, _, err = e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorContact, Text: "hi"})
			}
			if err != nil {
				t.Errorf("AddMessage() = %v", err)
			}
		}
		// inject, when set, is committed by the next visitor socket
		// between its first read and its subscription (unnamed), or
		// between its subscription and its one read (named).
		var inject atomic.Bool
		hook := func(id int64) {
			if inject.CompareAndSwap(true, false) {
				commit(id)
			}
		}
		webchat.TestHookBeforeSubscribe, webchat.TestHookAfterHintSubscribe = hook, hook
		t.Cleanup(func() { webchat.TestHookBeforeSubscribe, webchat.TestHookAfterHintSubscribe = nil, nil })

		// Commits: 1 to 3 at once in one conversation, or one each in
		// several. The plan is drawn here, so that a burst run in the
		// background leaves the driver's random sequence as it was.
		plan := func() func() {
			var targets []int64
			conv := convs[rng.IntN(len(convs))]
			for range 1 + rng.IntN(3) {
				if rng.IntN(3) == 0 {
					conv = convs[rng.IntN(len(convs))]
				}
				targets = append(targets, conv)
			}
			return func() {
				var wg sync.WaitGroup
				for _, conv := range targets {
					wg.Go(func() { commit(conv) })
				}
				wg.Wait()
			}
		}
		burst := func() { plan()() }
		maybe := func() {
			if rng.IntN(2) == 0 {
				burst()
			}
		}
		joined := map[int64]bool{}

		agent := &propAgent{streamCheck: newStreamCheck(t, "agent", e.store, convs), e: e}
		agent.reconnect(false, func() {}, func() {})
		visitors := make([]*propVisitor, len(vs))
		for i, v := range vs {
			visitors[i] = &propVisitor{streamCheck: newStreamCheck(t, "visitor "+strconv.Itoa(i), e.store, convs[i+1:i+2]), v: v, conv: convs[i+1]}
			visitors[i].reconnect(func() {}, true)
		}
		steps := 40
		if testing.Short() {
			steps = 15
		}
		for step := range steps {
			switch op := rng.IntN(10); {
			case op < 3:
				burst()
			case op == 3:
				conv := convs[rng.IntN(len(convs))]
				change := e.store.Join
				if joined[conv] {
					change = e.store.Leave
				}
				noError(t, "Join() or Leave()", change(ctx, conv, e.agent.ID))
				joined[conv] = !joined[conv]
			case op < 6:
				agent.reconnect(rng.IntN(2) == 0, maybe, maybe)
			case op < 8:
				inject.Store(rng.IntN(2) == 0)
				visitors[rng.IntN(len(visitors))].reconnect(maybe, rng.IntN(2) == 0)
			case op == 8:
				// A resume on the same connection, maybe racing a commit.
				var bg sync.WaitGroup
				bg.Go(plan())
				agent.c.send(t, agentCommand{Type: "resume", Cursors: agent.cursors()})
				bg.Wait()
			default:
				if rng.IntN(3) == 0 {
					_, err := e.store.PruneEvents(ctx, time.Now().Add(time.Hour))
					noError(t, "PruneEvents()", err)
					agent.pruned = true
				}
				burst()
			}
			agent.converge()
			for _, p := range visitors {
				p.converge()
			}
			if t.Failed() {
				t.Fatalf("step %d failed", step)
			}
		}
		t.Logf("%d commits; %d events to the agent, %d and %d to the visitors",
			commits.Load(), agent.events, visitors[0].events, visitors[1].events)
	})
}
