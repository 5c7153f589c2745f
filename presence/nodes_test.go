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
	grace time.Duration // every node's
	nodes map[string]*node
	c     inbox.Contact
	c2    inbox.Contact
	a     inbox.Agent
}

// newCluster starts the nodes ids with the grace testGrace, and creates
// two contacts and an agent.
func newCluster(t *testing.T, url string, ids ...string) *cluster {
	t.Helper()
	return newClusterGrace(t, url, testGrace, ids...)
}

func newClusterGrace(t *testing.T, url string, grace time.Duration, ids ...string) *cluster {
	t.Helper()
	cl := &cluster{t: t, url: url, clock: inboxtest.NewClock(), grace: grace, nodes: map[string]*node{}}
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
	n.p = New(s, Options{Grace: cl.grace, Manual: true, AfterFunc: cl.clock.AfterFunc,
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

// A node that stops (Close) after its sockets closed leaves its visitors
// and agents their grace, as if each socket had closed at the stop: one
// who reconnects to another node within it never shows offline and no
// presence event is sent (a rolling restart); one who does not goes
// offline once the grace has passed since the stop, not before and not
// at the dead-node bound, announced once by the node still running. A
// transition queued at the stop is written by Close. A stopped node does
// not count as live. With a grace shorter than inbox.NodeDeadAfter too.
func TestGracefulStop(t *testing.T) {
	for _, grace := range []time.Duration{testGrace, 4 * time.Second} {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			runShared(t, func(t *testing.T, url string) {
				testGracefulStop(t, url, grace)
			})
		})
	}
}

func testGracefulStop(t *testing.T, url string, grace time.Duration) {
	ctx := context.Background()
	cl := newClusterGrace(t, url, grace, "a", "b")
	a, b := cl.nodes["a"], cl.nodes["b"]
	gone, err := a.s.CreateAgent(ctx, inbox.NewAgent{Email: "g@example.com", Name: "G", Password: "0123456789"})
	if err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	left, err := a.s.CreateContact(ctx, inbox.NewContact{Name: "Lu"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	// x and agent ag move to b; y and agent gone do not come back; w
	// left before the stop, but a had not written it yet.
	x, y, w, ag := cl.c.ID, cl.c2.ID, left.ID, cl.a.ID
	a.beat()
	b.beat()
	for _, id := range []int64{x, y, w} {
		a.p.ContactConnected(id)
	}
	a.p.AgentConnected(ag)
	a.p.AgentConnected(gone.ID)
	a.flush()
	a.p.ContactDisconnected(w)
	cl.advance(grace, "a", "b")
	a.takeEvents()
	b.takeEvents()

	// SIGTERM: a's sockets close (1001), then the Tracker.
	for _, id := range []int64{x, y} {
		a.p.ContactDisconnected(id)
	}
	a.p.AgentDisconnected(ag)
	a.p.AgentDisconnected(gone.ID)
	a.p.Close()
	a.closed = true
	wantEvents(t, "a stops", a.takeEvents(), fmt.Sprintf("contact %d offline", w))
	if !b.online(x) || !b.online(y) || b.online(w) || b.agent(ag) != inbox.PresenceOnline || b.agent(gone.ID) != inbox.PresenceOnline {
		t.Fatalf("after a stopped: x online %v, y online %v, w online %v, agents %s and %s; want true, true, false, online, online",
			b.online(x), b.online(y), b.online(w), b.agent(ag), b.agent(gone.ID))
	}
	b.beat()
	if b.p.Nodes() != 1 {
		t.Fatalf("b sees %d live nodes after a stopped, want 1", b.p.Nodes())
	}

	// x and the agent reconnect to b, a second later.
	cl.advance(time.Second, "b")
	b.p.ContactConnected(x)
	b.p.AgentConnected(ag)
	b.flush()
	wantEvents(t, "x and the agent back on b", b.takeEvents())

	cl.advance(grace-time.Second-time.Millisecond, "b")
	if !b.online(y) || b.agent(gone.ID) != inbox.PresenceOnline {
		t.Fatalf("y online %v, agent %s just before the grace since the stop ended; want true, online", b.online(y), b.agent(gone.ID))
	}
	wantEvents(t, "within the grace", b.takeEvents())
	cl.advance(time.Millisecond, "b")
	if b.online(y) || b.agent(gone.ID) != inbox.PresenceOffline {
		t.Fatalf("y online %v, agent %s once the grace since the stop ended; want false, offline", b.online(y), b.agent(gone.ID))
	}
	if !b.online(x) || b.agent(ag) != inbox.PresenceOnline {
		t.Fatalf("x online %v, agent %s: they came back on b", b.online(x), b.agent(ag))
	}
	wantEvents(t, "the grace since the stop ended", b.takeEvents(),
		fmt.Sprintf("contact %d offline", y), fmt.Sprintf("agent %d offline", gone.ID))
	cl.advance(inbox.NodeDeadAfter+cl.grace, "b")
	wantEvents(t, "beats after", b.takeEvents())
	wantEvents(t, "a after its stop", a.takeEvents())
}

// A visitor and an agent whose last socket on a node closed before the
// node stopped go offline when their grace runs out, as if it had not
// stopped: not a whole grace after the stop (a tester saw a visitor
// who left 20 s before a SIGTERM shown offline 51 s after leaving, with
// offline_after 30 s).
func TestGraceRunningAtStop(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newClusterGrace(t, url, testGrace, "a", "b")
		a, b := cl.nodes["a"], cl.nodes["b"]
		z, h := cl.c.ID, cl.a.ID
		a.beat()
		b.beat()
		a.p.ContactConnected(z)
		a.p.AgentConnected(h)
		a.flush()
		a.takeEvents()
		b.takeEvents()
		a.p.ContactDisconnected(z)
		a.p.AgentDisconnected(h)
		const before = 20 * time.Second // they left this long before the stop
		cl.advance(before, "a", "b")
		a.p.Close()
		a.closed = true
		wantEvents(t, "a stops", a.takeEvents())

		cl.advance(testGrace-before-time.Second, "b")
		if !b.online(z) || b.agent(h) != inbox.PresenceOnline {
			t.Fatalf("a second before their grace ends: contact online %v, agent %s; want online", b.online(z), b.agent(h))
		}
		wantEvents(t, "within their grace", b.takeEvents())
		// Their grace ends within the next second (rounded up to the
		// second), and the reaper runs at the next beat.
		cl.advance(time.Second+inbox.NodeHeartbeat, "b")
		if b.online(z) || b.agent(h) != inbox.PresenceOffline {
			t.Fatalf("once their grace ended: contact online %v, agent %s; want offline (a whole grace after the stop would be %v later)",
				b.online(z), b.agent(h), before)
		}
		wantEvents(t, "their grace ended", b.takeEvents(),
			fmt.Sprintf("contact %d offline", z), fmt.Sprintf("agent %d offline", h))
		cl.advance(testGrace, "b")
		wantEvents(t, "a's own expiry", b.takeEvents())
	})
}

// A node cut off from the database stops counting the others once the
// others would count it dead (a tester's cut-off node said 3 nodes for
// 40 s while the two others said 2); a shorter blip keeps the count.
func TestNodesWhileCutOff(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newClusterGrace(t, url, testGrace, "a", "b")
		a, b := cl.nodes["a"], cl.nodes["b"]
		a.beat()
		b.beat()
		a.beat()
		if n := a.p.Nodes(); n != 2 {
			t.Fatalf("a sees %d nodes, want 2", n)
		}
		a.s.Close() // every read and write fails from now on
		cl.clock.Advance(inbox.NodeHeartbeat)
		if err := a.p.Beat(context.Background()); err == nil {
			t.Fatal("Beat() on a closed store = nil")
		}
		if n := a.p.Nodes(); n != 2 {
			t.Fatalf("a sees %d nodes after one failed beat, want still 2", n)
		}
		cl.clock.Advance(inbox.NodeDeadAfter)
		if err := a.p.Beat(context.Background()); err == nil {
			t.Fatal("Beat() on a closed store = nil")
		}
		if n := a.p.Nodes(); n != 1 {
			t.Fatalf("a sees %d nodes cut off for %v, want 1 (itself)", n, inbox.NodeDeadAfter+inbox.NodeHeartbeat)
		}
		a.closed = true
	})
}

// Without a grace (offline_after 0) a node that stops takes its visitors
// and agents offline at once, announced once.
func TestStopWithoutGrace(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newClusterGrace(t, url, 0, "a", "b")
		a, b := cl.nodes["a"], cl.nodes["b"]
		a.beat()
		b.beat()
		a.p.ContactConnected(cl.c.ID)
		a.p.AgentConnected(cl.a.ID)
		a.flush()
		a.takeEvents()
		a.p.ContactDisconnected(cl.c.ID)
		a.p.AgentDisconnected(cl.a.ID)
		a.p.Close()
		a.closed = true
		if b.online(cl.c.ID) || b.agent(cl.a.ID) != inbox.PresenceOffline {
			t.Fatalf("after a stopped without a grace: online %v, agent %s", b.online(cl.c.ID), b.agent(cl.a.ID))
		}
		wantEvents(t, "a stopped", a.takeEvents(), fmt.Sprintf("contact %d offline", cl.c.ID), fmt.Sprintf("agent %d offline", cl.a.ID))
		b.beat()
		wantEvents(t, "b's beat", b.takeEvents())
	})
}

// A process that stops, or is killed without Close, leaves its rows; the
// next process on the database (SQLite's one node, or a cluster's last)
// reaps them by the grace rule: after the grace since the stop, or since
// the last heartbeat of a killed node with the same node_id (whose rows
// the new process retires rather than reaping them at once, which blinked
// its visitors offline at every restart), or after max(grace,
// inbox.NodeDeadAfter) since the last heartbeat of a killed node with
// another id. Meanwhile a visitor who reconnects to the new process stays
// online throughout, even under the same node id. Before issue 14 a
// killed node's visitors stayed online for good on SQLite.
func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sameID, crash bool
	}{
		{"stop, same id", true, false},
		{"stop, new id", false, false},
		{"kill, same id", true, true},
		{"kill, new id", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runShared(t, func(t *testing.T, url string) {
				cl := newCluster(t, url, "a")
				a := cl.nodes["a"]
				x, y, ag := cl.c.ID, cl.c2.ID, cl.a.ID
				a.beat()
				a.p.ContactConnected(x)
				a.p.ContactConnected(y)
				a.p.AgentConnected(ag)
				a.flush()
				a.takeEvents()
				// The last heartbeat and the stop (or kill) are now.
				if tc.crash {
					a.closed = true // kill -9: no Close; the Store stays open, unused
				} else {
					a.p.ContactDisconnected(x)
					a.p.ContactDisconnected(y)
					a.p.AgentDisconnected(ag)
					a.p.Close()
					a.closed = true
					wantEvents(t, "stop", a.takeEvents())
				}
				cl.clock.Advance(5 * time.Second)
				id := "a2"
				if tc.sameID {
					id = "a"
				}
				n := cl.start(id)
				n.beat()
				if !n.online(x) || !n.online(y) || n.agent(ag) != inbox.PresenceOnline {
					t.Fatalf("after the restart: x online %v, y online %v, agent %s; want online within the grace %v",
						n.online(x), n.online(y), n.agent(ag), testGrace)
				}
				if (tc.sameID || !tc.crash) && n.p.Nodes() != 1 {
					t.Fatalf("%d live nodes, want 1: the predecessor is not running", n.p.Nodes())
				}
				// x comes back, to the new process.
				n.p.ContactConnected(x)
				n.flush()
				wantEvents(t, "restart, x back", n.takeEvents())

				cl.advance(testGrace-5*time.Second-time.Millisecond, id)
				if !n.online(y) || n.agent(ag) != inbox.PresenceOnline {
					t.Fatalf("y online %v, agent %s before the grace ended", n.online(y), n.agent(ag))
				}
				wantEvents(t, "within the grace", n.takeEvents())
				cl.advance(2*time.Millisecond, id)
				if n.online(y) || n.agent(ag) != inbox.PresenceOffline || !n.online(x) {
					t.Fatalf("once the grace ended: x online %v, y online %v, agent %s; want true, false, offline",
						n.online(x), n.online(y), n.agent(ag))
				}
				wantEvents(t, "the grace ended", n.takeEvents(), fmt.Sprintf("contact %d offline", y), fmt.Sprintf("agent %d offline", ag))
				cl.advance(inbox.NodeDeadAfter+testGrace, id)
				wantEvents(t, "beats after", n.takeEvents())
			})
		})
	}
}

// A process that starts with the node_id of a stopped one whose grace is
// over, while another node reaps the stopped one: whichever goes first,
// the stopped rows are removed once and their visitor announced offline
// once, and the new process's own row stays.
func TestRestartWhileReaping(t *testing.T) {
	runShared(t, func(t *testing.T, url string) {
		cl := newCluster(t, url, "a", "b")
		b := cl.nodes["b"]
		b.beat()
		for round := 0; round < 3; round++ {
			a := cl.nodes["a"]
			a.beat()
			a.p.ContactConnected(cl.c.ID)
			a.flush()
			a.p.ContactDisconnected(cl.c.ID)
			a.p.Close()
			a.closed = true
			a.takeEvents()
			b.takeEvents()
			cl.clock.Advance(testGrace)
			n := cl.start("a")
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := n.s.Heartbeat(context.Background()); err != nil {
					t.Errorf("round %d: the new process's Heartbeat() = %v", round, err)
				}
			})
			wg.Go(func() {
				if _, err := b.s.ReapNodes(context.Background(), testGrace); err != nil {
					t.Errorf("round %d: ReapNodes() = %v", round, err)
				}
			})
			wg.Wait()
			b.beat() // reaps the retired rows if the restart went first
			wantEvents(t, fmt.Sprintf("round %d", round), append(b.takeEvents(), n.takeEvents()...),
				fmt.Sprintf("contact %d offline", cl.c.ID))
			if b.online(cl.c.ID) {
				t.Fatalf("round %d: online after the reaping", round)
			}
			n.beat()
			if n.p.Nodes() != 2 {
				t.Fatalf("round %d: the new process sees %d live nodes, want 2", round, n.p.Nodes())
			}
			b.beat()
		}
	})
}

// A Tracker that is not manual beats on its own, timed by
// Options.AfterFunc; Close marks its node stopped, and another node
// removes its presence once the grace has passed since.
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
		p.ContactDisconnected(c.ID)
		p.Close()
		closed = true
		if ct, err := other.Contact(context.Background(), c.ID); err != nil || !ct.Online {
			t.Fatalf("after Close: online %v, %v; want online for the grace", ct.Online, err)
		}
		if err := ob.Beat(context.Background()); err != nil || ob.Nodes() != 1 {
			t.Fatalf("b sees %d nodes after a closed (%v), want 1", ob.Nodes(), err)
		}
		clock.Advance(testGrace)
		if err := ob.Beat(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ct, err := other.Contact(context.Background(), c.ID); err != nil || ct.Online {
			t.Fatalf("the grace after Close: online %v, %v; want offline", ct.Online, err)
		}
	})
}
