package webchat

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/microdeets/microchat/inbox"
)

// The agent-name cache reads a name once, forgets it on the agent's
// presence event without a conversation (a rename publishes one), and
// does not keep a name read while such an event came.
func TestAgentNamesCache(t *testing.T) {
	var n agentNames
	reads := 0
	names := map[int64]string{7: "Ann"}
	var during func() // runs inside the next read
	read := func(_ context.Context, id int64) (inbox.Agent, error) {
		reads++
		name := names[id]
		if during != nil {
			during()
			during = nil
		}
		return inbox.Agent{ID: id, Name: name}, nil
	}
	get := func(want string, wantReads int) {
		t.Helper()
		got, err := n.name(context.Background(), 7, read)
		if err != nil || got != want || reads != wantReads {
			t.Fatalf("name() = %q, %v after %d reads; want %q after %d", got, err, reads, want, wantReads)
		}
	}
	presence := func(conv, agent int64) inbox.Event {
		data, _ := json.Marshal(inbox.AgentPresence{AgentID: agent, Name: "x", Presence: inbox.PresenceOnline})
		return inbox.Event{ConversationID: conv, Type: inbox.EventPresence, Data: data}
	}
	get("Ann", 1)
	get("Ann", 1) // cached

	// Another agent's event, or one in a conversation, keeps it.
	n.event(presence(0, 8))
	n.event(presence(3, 7))
	get("Ann", 1)

	// The rename's event forgets it.
	names[7] = "Anna"
	n.event(presence(0, 7))
	get("Anna", 2)

	// A read overtaken by a rename is answered but not kept.
	n.event(presence(0, 7))
	during = func() {
		names[7] = "Annabel"
		n.event(presence(0, 7))
	}
	get("Anna", 3)
	get("Annabel", 4)
	get("Annabel", 4)
}
