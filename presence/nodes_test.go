package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// runShared runs fn on SQLite and on PostgreSQL with the URL of one fresh
// database that several Stores (nodes) open together.
func runShared(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, inboxtest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, inboxtest.SharedPostgres(t)) })
}

// node is one Store and its Tracker, in manual mode, on the cluster's
// clock; events records the presence events its Store published.
type node struct {
	t  *testing.T
	s  *inbox.Store
	p  *Tracker
	mu sync.Mutex
	// events are "contact 3 online", "agent 1 idle", in order.
	events []string
	closed bool
}

type cluster struct {
	t     *testing.T
	url   string
	clock *inboxtest.Clock
	nodes map[string]*node
	c     inbox.Contact
	c2    inbox.Contact
	a     inbox.Agent
}

func newCluster(t *testing.T, url string, ids ...string) *cluster {
	t.Helper()
	cl := &cluster{t: t, url: url, clock: inboxtest.NewClock(), nodes: map[string]*node{}}
	for _, id := range ids {
		cl.start(id)
	}
	ctx := context.Background()
	s := cl.nodes[ids[0]].s
	var err error
	if cl.c, err = s.CreateContact(ctx, inbox.NewContact{Name: "Cy"}); err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	if cl.c2, err = s.CreateContact(ctx, inbox.NewContact{Name: "Di"}); err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	if cl.a, err = s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "A", Password: "0123456789"}); err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	return cl
}

// start opens a Store named id on the cluster's database, with a Tracker
// that is closed when the test ends unless it was closed or "killed".
func (cl *cluster) start(id string) *node {
	cl.t.Helper()
	// NoBus: each node records the events it publishes itself; with the
	// bus it would also receive the other nodes' a moment later (that
	// they cross is inbox's TestBus*).
	s := inboxtest.Open(cl.t, cl.url, &inbox.Options{NodeID: id, Now: cl.clock.Now, Logger: quiet, NoBus: true})
	n := &node{t: cl.t, s: s}
	n.p = New(s, Options{Grace: testGrace, Manual: true, AfterFunc: cl.clock.AfterFunc,
		Logger: quiet})
	s.Hub().SubscribeFunc(0, func(ev inbox.Event) {
		var what string
		switch ev.Type {
		case inbox.EventContactPresence:
			var p inbox.ContactPresence
			json.Unmarshal(ev.Data, &p)
			what = fmt.Sprintf("contact %d %v", p.ContactID, map[bool]string{true: "online", false: "offline"}[p.Online])
		case inbox.EventPresence:
			if ev.ConversationID != 0 {
				return // the same once per conversation
			}
			var p inbox.AgentPresence
			json.Unmarshal(ev.Data, &p)
			what = fmt.Sprintf("agent %d %s", p.AgentID, p.Presence)
		default:
			return
		}
		n.mu.Lock()
		n.events = append(n.events, what)
		n.mu.Unlock()
	})
	cl.t.Cleanup(func() {
		if !n.closed {
			n.p.Close()
		}
	})
	cl.nodes[id] = n
	return n
}

// takeEvents returns and forgets the presence events the node published.
func (n *node) takeEvents() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ev := n.events
	n.events = nil
	return ev
}

func (n *node) flush() {
	n.t.Helper()
	if err := n.p.Flush(); err != nil {
		n.t.Fatalf("Flush() = %v", err)
	}
}

func (n *node) beat() {
	n.t.Helper()
	if err := n.p.Beat(context.Background()); err != nil {
		n.t.Fatalf("Beat() = %v", err)
	}
}

// online reads the contact's stored presence through the node's Store.
func (n *node) online(id int64) bool {
	n.t.Helper()
	c, err := n.s.Contact(context.Background(), id)
	if err != nil {
		n.t.Fatalf("Contact() = %v", err)
	}
	return c.Online
}

func (n *node) agent(id int64) string {
	n.t.Helper()
	a, err := n.s.Agent(context.Background(), id)
	if err != nil {
		n.t.Fatalf("Agent() = %v", err)
	}
	return a.Presence
}

// advance moves the clock by d in heartbeat steps, each node in beating
// beating once per step (the others are silent: dead).
func (cl *cluster) advance(d time.Duration, beating ...string) {
	cl.t.Helper()
	for step := time.Duration(0); step < d; step += inbox.NodeHeartbeat {
		cl.clock.Advance(min(inbox.NodeHeartbeat, d-step))
		for _, id := range beating {
			cl.nodes[id].beat()
		}
	}
}

func wantEvents(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: events %q, want %q", what, got, want)
	}
}

// A visitor on node A is online for node B; with a tab on A and one on B
// they go offline when both are closed, and only that change is stored
// and announced. The agent is the aggregate: online if any node says so,
// else idle if any, else offline.
func TestPresenceAcrossNodes(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newCluster(t, url, "a", "b")
		a, b := cl.nodes["a"], cl.nodes["b"]
		a.beat()
		b.beat()
		if a.p.Nodes() != 1 || b.p.Nodes() != 2 {
			// b's beat saw a; a's saw only itself (b had not beaten yet).
			t.Fatalf("nodes seen: a %d, b %d; want 1, 2", a.p.Nodes(), b.p.Nodes())
		}
		a.beat()
		if a.p.Nodes() != 2 {
			t.Fatalf("a sees %d nodes, want 2", a.p.Nodes())
		}
		id := cl.c.ID
		a.p.ContactConnected(id)
		a.flush()
		if !b.online(id) {
			t.Fatalf("a visitor on a is offline for b")
		}
		wantEvents(t, "on a", a.takeEvents(), fmt.Sprintf("contact %d online", id))

		b.p.ContactConnected(id) // a second tab, on b
		b.flush()
		wantEvents(t, "second tab on b", b.takeEvents())
		a.p.ContactDisconnected(id)
		cl.advance(testGrace, "a", "b")
		a.flush()
		if !a.online(id) {
			t.Fatalf("offline with a tab still open on b")
		}
		wantEvents(t, "tab on a closed", append(a.takeEvents(), b.takeEvents()...))
		b.p.ContactDisconnected(id)
		cl.advance(testGrace-time.Second, "a", "b")
		b.flush()
		if !a.online(id) {
			t.Fatalf("offline before the grace ended on b")
		}
		cl.advance(time.Second, "a", "b")
		b.flush()
		if a.online(id) {
			t.Fatalf("online with both tabs closed")
		}
		wantEvents(t, "both closed", append(a.takeEvents(), b.takeEvents()...), fmt.Sprintf("contact %d offline", id))

		ag := cl.a.ID
		a.p.AgentConnected(ag)
		a.p.AgentIdle(ag, true)
		a.flush()
		b.p.AgentConnected(ag)
		b.flush()
		if got := a.agent(ag); got != inbox.PresenceOnline {
			t.Fatalf("agent idle on a, online on b: %s", got)
		}
		b.p.AgentDisconnected(ag)
		cl.advance(testGrace, "a", "b")
		b.flush()
		if got := a.agent(ag); got != inbox.PresenceIdle {
			t.Fatalf("agent idle on a only: %s", got)
		}
		a.p.AgentDisconnected(ag)
		cl.advance(testGrace, "a", "b")
		a.flush()
		if got := b.agent(ag); got != inbox.PresenceOffline {
			t.Fatalf("agent on no node: %s", got)
		}
		wantEvents(t, "agent, from a", a.takeEvents(), fmt.Sprintf("agent %d idle", ag), fmt.Sprintf("agent %d offline", ag))
		wantEvents(t, "agent, from b", b.takeEvents(), fmt.Sprintf("agent %d online", ag), fmt.Sprintf("agent %d idle", ag))
	})
}

// A node that stops beating (dies without Close) takes its visitors and
// agents with it once it has been silent for the grace (at least
// inbox.NodeDeadAfter): a live node reaps it, once, announcing each
// change once; a visitor with a tab on the live node stays online. If
// the "dead" node was only stalled, it stores its presence again.
func TestNodeDeath(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newCluster(t, url, "a", "b")
		a, b := cl.nodes["a"], cl.nodes["b"]
		a.beat()
		b.beat()
		x, y, ag := cl.c.ID, cl.c2.ID, cl.a.ID
		a.p.ContactConnected(x)
		a.p.ContactConnected(y)
		a.p.AgentConnected(ag)
		a.flush()
		b.p.ContactConnected(y)
		b.flush()
		a.takeEvents()
		b.takeEvents()

		// a dies: only b beats from now on.
		reapAfter := b.p.ReapAfter()
		if reapAfter != testGrace {
			t.Fatalf("ReapAfter() = %v, want the grace %v", reapAfter, testGrace)
		}
		cl.advance(reapAfter, "b")
		if !b.online(x) || b.agent(ag) != inbox.PresenceOnline {
			t.Fatalf("a's visitor or agent offline before a was silent longer than the grace")
		}
		if b.p.Nodes() != 1 {
			t.Fatalf("b sees %d live nodes, want 1 (a silent for %v)", b.p.Nodes(), reapAfter)
		}
		cl.advance(inbox.NodeHeartbeat, "b")
		if b.online(x) || !b.online(y) || b.agent(ag) != inbox.PresenceOffline {
			t.Fatalf("after a was reaped: x online %v, y online %v, agent %s; want false, true, offline",
				b.online(x), b.online(y), b.agent(ag))
		}
		wantEvents(t, "a reaped", b.takeEvents(), fmt.Sprintf("contact %d offline", x), fmt.Sprintf("agent %d offline", ag))
		cl.advance(5*inbox.NodeHeartbeat, "b")
		wantEvents(t, "beats after the reaping", b.takeEvents())

		// y's last tab, on b, closes: nobody has y.
		b.p.ContactDisconnected(y)
		cl.advance(testGrace, "b")
		b.flush()
		if b.online(y) {
			t.Fatalf("y online with no tab on a live node")
		}
		b.takeEvents()

		// a was only stalled: its next beat finds it was reaped, and it
		// stores again what it counts (x, y, the agent).
		a.beat()
		a.flush()
		if !b.online(x) || !b.online(y) || b.agent(ag) != inbox.PresenceOnline {
			t.Fatalf("after a came back: x online %v, y online %v, agent %s", b.online(x), b.online(y), b.agent(ag))
		}
		back := a.takeEvents()
		slices.Sort(back) // written in the order of a map
		wantEvents(t, "a back", back, fmt.Sprintf("agent %d online", ag), fmt.Sprintf("contact %d online", x), fmt.Sprintf("contact %d online", y))
	})
}

// Two live nodes that find the same node dead at once reap it once: one
// of them removes it and announces its visitors offline, the other finds
// nothing to do.
func TestNodeReapedOnce(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newCluster(t, url, "a", "b", "c")
		a, b, c := cl.nodes["a"], cl.nodes["b"], cl.nodes["c"]
		for round := 0; round < 3; round++ {
			a.beat()
			a.p.ContactConnected(cl.c.ID)
			a.p.AgentConnected(cl.a.ID)
			a.flush()
			b.beat()
			c.beat()
			a.takeEvents()
			cl.advance(a.p.ReapAfter(), "b", "c") // not yet: the bound is "older than"
			if !b.online(cl.c.ID) {
				t.Fatalf("round %d: reaped too early", round)
			}
			cl.clock.Advance(time.Millisecond)
			var wg sync.WaitGroup
			reaped := make([][]string, 2)
			for i, n := range []*node{b, c} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := n.s.ReapNodes(context.Background(), n.p.ReapAfter())
					if err != nil {
						t.Errorf("ReapNodes() = %v", err)
					}
					reaped[i] = st.Reaped
				}()
			}
			wg.Wait()
			if got := fmt.Sprint(append(reaped[0], reaped[1]...)); got != "[a]" {
				t.Fatalf("round %d: reaped %s, want [a] once", round, got)
			}
			wantEvents(t, fmt.Sprintf("round %d", round), append(b.takeEvents(), c.takeEvents()...),
				fmt.Sprintf("contact %d offline", cl.c.ID), fmt.Sprintf("agent %d offline", cl.a.ID))
			if b.online(cl.c.ID) || b.agent(cl.a.ID) != inbox.PresenceOffline {
				t.Fatalf("round %d: still online after the reaping", round)
			}
			// a disconnects what it counted: forgotten once offline is
			// written (it was reaped: the writes find it again).
			a.p.ContactDisconnected(cl.c.ID)
			a.p.AgentDisconnected(cl.a.ID)
			cl.clock.Advance(testGrace)
			a.beat()
			a.flush()
			a.takeEvents()
		}
	})
}

// A process killed without Close leaves its rows; the next process on
// the database reaps them: at once when it has the same node_id, after
// the grace otherwise. Before issue 14 its visitors stayed online for
// good on SQLite.
func TestRestartAfterCrash(t *testing.T) {
	for _, sameID := range []bool{true, false} {
		t.Run(fmt.Sprintf("same id %v", sameID), func(t *testing.T) {
			runShared(t, func(t *testing.T, url string) {
				cl := newCluster(t, url, "a")
				a := cl.nodes["a"]
				a.beat()
				a.p.ContactConnected(cl.c.ID)
				a.p.AgentConnected(cl.a.ID)
				a.flush()
				a.closed = true // kill -9: no Close; the Store stays open, unused
				cl.clock.Advance(5 * time.Second)
				id := "a2"
				if sameID {
					id = "a"
				}
				n := cl.start(id)
				n.beat()
				if sameID {
					if n.online(cl.c.ID) || n.agent(cl.a.ID) != inbox.PresenceOffline {
						t.Fatalf("online after a restart with the same node id")
					}
					wantEvents(t, "restart", n.takeEvents(), fmt.Sprintf("contact %d offline", cl.c.ID), fmt.Sprintf("agent %d offline", cl.a.ID))
					return
				}
				if !n.online(cl.c.ID) {
					t.Fatalf("offline at once after a restart with a new node id: the grace is %v", testGrace)
				}
				cl.advance(testGrace, "a2")
				if n.online(cl.c.ID) || n.agent(cl.a.ID) != inbox.PresenceOffline {
					t.Fatalf("still online %v after the crash", testGrace+5*time.Second)
				}
			})
		})
	}
}

// A Tracker that is not manual beats on its own, timed by
// Options.AfterFunc, and Close removes its node at once.
func TestHeartbeatGoroutine(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{NodeID: "a", Now: clock.Now})
		other := inboxtest.Open(t, url, &inbox.Options{NodeID: "b", Now: clock.Now})
		c, err := s.CreateContact(context.Background(), inbox.NewContact{Name: "Cy"})
		if err != nil {
			t.Fatal(err)
		}
		p := New(s, Options{Grace: testGrace, AfterFunc: clock.AfterFunc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		closed := false
		t.Cleanup(func() {
			if !closed {
				p.Close()
			}
		})
		inboxtest.Eventually(t, "the first beat", func() bool { return p.Nodes() == 1 })
		ob := New(other, Options{Grace: testGrace, Manual: true, AfterFunc: clock.AfterFunc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(ob.Close)
		if err := ob.Beat(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			inboxtest.Eventually(t, "the beat's timer", func() bool { return clock.Timers() == 1 })
			clock.Advance(inbox.NodeHeartbeat)
		}
		inboxtest.Eventually(t, "a beat that sees b", func() bool { return p.Nodes() == 2 })
		p.ContactConnected(c.ID)
		inboxtest.Eventually(t, "the contact online", func() bool {
			ct, err := other.Contact(context.Background(), c.ID)
			return err == nil && ct.Online
		})
		p.Close()
		closed = true
		if ct, err := other.Contact(context.Background(), c.ID); err != nil || ct.Online {
			t.Fatalf("after Close: online %v, %v", ct.Online, err)
		}
		if err := ob.Beat(context.Background()); err != nil || ob.Nodes() != 1 {
			t.Fatalf("b sees %d nodes after a closed (%v), want 1", ob.Nodes(), err)
		}
	})
}
