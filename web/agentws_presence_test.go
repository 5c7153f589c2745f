package web

import (
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/presence"
)

// Every agent's socket hears a colleague's presence change (online, idle,
// offline) and name change as an agent_presence frame, once per change,
// whether or not the colleague takes part in any conversation: the
// dashboard's list of colleagues stays live (docs/protocol.md).
func TestAgentPresenceFrames(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		const grace = 30 * time.Second
		clock := inboxtest.NewClock()
		e := newEnvPresence(t, inboxtest.Open(t, url, nil), nil,
			presence.Options{Grace: grace, Manual: true, AfterFunc: clock.AfterFunc})
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		tracker := e.srv.presence
		flush := func() {
			t.Helper()
			noError(t, "Tracker.Flush()", tracker.Flush())
		}
		isAlice := func(want string) func(agentFrame) bool {
			return func(f agentFrame) bool { return f.AgentID == alice.ID && f.Presence == want }
		}
		dash := e.agentSock(bob)
		flush() // Bob online: not told to Bob himself

		a := e.agentSock(alice) // counted before its hello
		flush()
		if f := agentNext(t, dash, "agent_presence", isAlice("online")); f.Name == "" {
			t.Fatalf("agent_presence = %+v, want her name", f)
		}
		a.send(t, map[string]string{"type": "presence", "presence": "idle"})
		inboxtest.Eventually(t, "Alice idle", func() bool { flush(); return agentPresence(t, e, alice.ID) == inbox.PresenceIdle })
		agentNext(t, dash, "agent_presence", isAlice("idle"))
		a.send(t, map[string]string{"type": "presence", "presence": "online"})
		inboxtest.Eventually(t, "Alice online", func() bool { flush(); return agentPresence(t, e, alice.ID) == inbox.PresenceOnline })
		agentNext(t, dash, "agent_presence", isAlice("online"))

		// A rename comes with the current presence.
		if _, err := e.store.RenameAgent(t.Context(), alice.ID, "Alice Moreau"); err != nil {
			t.Fatalf("RenameAgent() = %v", err)
		}
		if f := agentNext(t, dash, "agent_presence", isAlice("online")); f.Name != "Alice Moreau" {
			t.Fatalf("agent_presence after the rename = %+v", f)
		}

		a.conn.WriteClose(1000, nil)
		inboxtest.Eventually(t, "Alice offline after the grace", func() bool {
			clock.Advance(2 * grace)
			flush()
			return agentPresence(t, e, alice.ID) == inbox.PresenceOffline
		})
		agentNext(t, dash, "agent_presence", isAlice("offline"))
		// Each change once, and nothing of Bob's own: nothing more comes
		// before the answer to a ping.
		dash.send(t, map[string]string{"type": "ping"})
		for f := dash.next(t); f.Type != "pong"; f = dash.next(t) {
			if f.Type == "agent_presence" {
				t.Fatalf("a frame more: %+v", f)
			}
		}
	})
}

// agentPresence is the agent's stored presence.
func agentPresence(t *testing.T, e *env, id int64) string {
	t.Helper()
	a, err := e.store.Agent(t.Context(), id)
	noError(t, "Agent()", err)
	return a.Presence
}
