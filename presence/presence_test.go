package presence

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// presenceEnv is a Tracker in manual mode on a fake clock, with one
// contact and one agent: the test decides when grace periods end and
// when the writer runs.
type presenceEnv struct {
	t      *testing.T
	s      *inbox.Store
	p      *Tracker
	clock  *inboxtest.Clock
	c      inbox.Contact
	a      inbox.Agent
	closed bool
}

const testGrace = 30 * time.Second

func newPresenceEnv(t *testing.T, url string) *presenceEnv {
	t.Helper()
	ctx := context.Background()
	s := inboxtest.Open(t, url, nil)
	c, err := s.CreateContact(ctx, inbox.NewContact{Name: "Cy"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	a, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "A", Password: "0123456789"})
	if err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	clock := inboxtest.NewClock()
	p := New(s, Options{Grace: testGrace, Manual: true, AfterFunc: clock.AfterFunc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e := &presenceEnv{t: t, s: s, p: p, clock: clock, c: c, a: a}
	t.Cleanup(func() {
		if !e.closed {
			p.Close()
		}
	})
	return e
}

func (e *presenceEnv) flush() {
	e.t.Helper()
	if err := e.p.Flush(); err != nil {
		e.t.Fatalf("Flush() = %v", err)
	}
}

func (e *presenceEnv) online() bool {
	e.t.Helper()
	ct, err := e.s.Contact(context.Background(), e.c.ID)
	if err != nil {
		e.t.Fatalf("Contact() = %v", err)
	}
	return ct.Online
}

func (e *presenceEnv) agentPresence() string {
	e.t.Helper()
	ag, err := e.s.Agent(context.Background(), e.a.ID)
	if err != nil {
		e.t.Fatalf("Agent() = %v", err)
	}
	return ag.Presence
}

// want flushes and checks what is stored and how many writes it took.
func (e *presenceEnv) want(step string, online bool, writes int64) {
	e.t.Helper()
	e.flush()
	if got := e.online(); got != online || e.p.Writes() != writes {
		e.t.Fatalf("%s: online %v after %d writes; want %v after %d", step, got, e.p.Writes(), online, writes)
	}
}

// A Tracker writes transitions only: reconnects within the grace and
// extra sockets cost nothing; offline comes when the grace ends, not
// before; Close leaves everyone their grace (TestGracefulStop).
func TestPresence(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newPresenceEnv(t, url)
		p, id := e.p, e.c.ID

		p.ContactConnected(id)
		p.ContactConnected(id) // a second tab
		e.want("two sockets", true, 1)
		p.ContactDisconnected(id)
		p.ContactDisconnected(id)
		if n, grace := p.Sockets(id); n != 0 || !grace || e.clock.Timers() != 1 {
			t.Fatalf("after the last socket closed: %d sockets, grace %v, %d timers", n, grace, e.clock.Timers())
		}
		e.want("within the grace", true, 1)
		p.ContactConnected(id) // the next page, within the grace
		e.clock.Advance(2 * testGrace)
		e.want("after a page change", true, 1)

		p.ContactDisconnected(id)
		e.clock.Advance(testGrace - time.Millisecond)
		e.want("just before the grace ends", true, 1)
		e.clock.Advance(time.Millisecond)
		e.want("after the grace", false, 2)

		p.AgentConnected(e.a.ID)
		e.flush()
		if got := e.agentPresence(); got != inbox.PresenceOnline {
			t.Fatalf("agent %s, want online", got)
		}
		p.AgentIdle(e.a.ID, true)
		e.flush()
		if got := e.agentPresence(); got != inbox.PresenceIdle {
			t.Fatalf("agent %s, want idle", got)
		}
		p.ContactConnected(id)
		e.want("online again", true, 5)
		p.Close()
		e.closed = true
		if !e.online() || e.agentPresence() != inbox.PresenceIdle {
			t.Fatalf("after Close: contact online %v, agent %s; want online and idle for the grace", e.online(), e.agentPresence())
		}
	})
}

// The writer decides from what it has committed or is committing: a
// change that arrives while a write is in flight is compared with the
// value being written, not with the one before it (issue 11 item 23: the
// contact stayed online for good when their last socket closed during
// the write of online).
func TestPresenceChangeDuringWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(e *presenceEnv) // then the writer takes its batch
		during func(e *presenceEnv) // while the write is in flight
		online bool                 // the contact at the end
		agent  string               // the agent at the end
	}{{
		name: "grace ends while online is written",
		before: func(e *presenceEnv) {
			e.p.ContactConnected(e.c.ID)
			e.p.ContactDisconnected(e.c.ID)
		},
		during: func(e *presenceEnv) { e.clock.Advance(testGrace) },
		online: false, agent: inbox.PresenceOffline,
	}, {
		name: "agent's grace ends while online is written",
		before: func(e *presenceEnv) {
			e.p.AgentConnected(e.a.ID)
			e.p.AgentDisconnected(e.a.ID)
		},
		during: func(e *presenceEnv) { e.clock.Advance(testGrace) },
		online: false, agent: inbox.PresenceOffline,
	}, {
		name:   "contact leaves while online is written",
		before: func(e *presenceEnv) { e.p.ContactConnected(e.c.ID) },
		during: func(e *presenceEnv) { e.p.ContactDisconnected(e.c.ID); e.clock.Advance(testGrace) },
		online: false, agent: inbox.PresenceOffline,
	}, {
		name: "contact comes back while offline is written",
		before: func(e *presenceEnv) {
			e.p.ContactConnected(e.c.ID)
			e.flush()
			e.p.ContactDisconnected(e.c.ID)
			e.clock.Advance(testGrace)
		},
		during: func(e *presenceEnv) { e.p.ContactConnected(e.c.ID) },
		online: true, agent: inbox.PresenceOffline,
	}, {
		name:   "agent leaves while online is written",
		before: func(e *presenceEnv) { e.p.AgentConnected(e.a.ID) },
		during: func(e *presenceEnv) { e.p.AgentDisconnected(e.a.ID); e.clock.Advance(testGrace) },
		online: false, agent: inbox.PresenceOffline,
	}, {
		name:   "agent goes idle while online is written",
		before: func(e *presenceEnv) { e.p.AgentConnected(e.a.ID) },
		during: func(e *presenceEnv) { e.p.AgentIdle(e.a.ID, true) },
		online: false, agent: inbox.PresenceIdle,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) {
				e := newPresenceEnv(t, url)
				tc.before(e)
				ran := false
				e.p.SetAfterWrite(func() {
					if !ran {
						ran = true
						tc.during(e)
					}
				})
				e.flush()
				e.flush()
				if !ran {
					t.Fatalf("no write was in flight")
				}
				if e.online() != tc.online || e.agentPresence() != tc.agent {
					t.Fatalf("stored: contact online %v, agent %s; want %v, %s", e.online(), e.agentPresence(), tc.online, tc.agent)
				}
			})
		})
	}
}

// A contact that this Tracker has forgotten (offline committed) is
// offline as far as it knows, whatever the socket read from the database
// before: connecting writes online.
func TestPresenceAfterForgetting(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newPresenceEnv(t, url)
		p, id := e.p, e.c.ID
		p.ContactConnected(id)
		e.want("connected", true, 1)
		p.ContactDisconnected(id)
		e.clock.Advance(testGrace) // the socket's auth read online about here
		e.want("after the grace", false, 2)
		if n, grace := p.Sockets(id); n != 0 || grace {
			t.Fatalf("state kept: %d sockets, grace %v", n, grace)
		}
		p.ContactConnected(id)
		e.want("connected again", true, 3)
	})
}
