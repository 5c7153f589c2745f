package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A message stored through the widget's socket, the agents' socket or
// the HTTP API reaches the sockets of the node that stored it with the id
// of its stored event, as /events (and every other node, which reads it
// from the database) has it.
func TestLiveEventIDsAreStored(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		dash := e.agentSock(alice)
		web := e.login("alice@example.com")
		// Another conversation's event first: ids and seqs differ.
		e.conversation("Olga", "")
		v := e.startVisitor("Vera")
		conv := v.start.Conversation.ID
		vs, _ := v.connect(0)
		vs.event(t, inbox.EventConversationCreated)
		// Stored online first, or the replies would be queued (rule 5).
		v.storedOnline(t)

		var live []*inbox.Event // each message's event on both sockets
		received := func(via string) {
			t.Helper()
			f := agentNext(t, dash, "event", func(f agentFrame) bool { return f.Event.Type == inbox.EventMessageAdded })
			live = append(live, f.Event)
			for {
				if f := vs.find(t, "event"); f.Event.Type == inbox.EventMessageAdded {
					live = append(live, f.Event)
					break
				}
			}
			if a, b := live[len(live)-2], live[len(live)-1]; a.Seq != b.Seq {
				t.Fatalf("%s: the agent's socket got seq %d, the visitor's %d", via, a.Seq, b.Seq)
			}
		}
		vs.send(t, map[string]any{"type": "message", "client_id": "w-1", "text": "From the widget"})
		received("widget socket")
		dash.send(t, messageFrame(conv, "a-1", "From the agent's socket"))
		received("agent socket")
		web.do("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv),
			map[string]any{"text": "From the API", "client_id": "h-1"}).want(http.StatusCreated)
		received("HTTP")

		var stored eventList
		web.do("GET", fmt.Sprintf("/api/v1/conversations/%d/events", conv), nil).want(http.StatusOK).decode(&stored)
		ids := map[int64]int64{} // seq to event id
		for _, ev := range stored.Events {
			ids[ev.Seq] = ev.ID
		}
		for _, ev := range live {
			if ev.ID == 0 || ev.ID != ids[ev.Seq] {
				t.Errorf("live message_added seq %d has id %d; /events has %d", ev.Seq, ev.ID, ids[ev.Seq])
			}
		}
	})
}
