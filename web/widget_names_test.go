package web

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// An agent's message on the visitor's socket carries agent_name, the
// agent's current display name, so that the widget can name a reply of
// an agent who wrote without joining (docs/widget-protocol.md, "Names");
// the visitor's own messages carry none, and a rename is followed.
func TestWidgetMessageAgentName(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		v := e.startVisitor("Vera")
		conv := v.start.Conversation.ID
		s, _ := v.connect(0)
		s.event(t, inbox.EventConversationCreated)
		v.storedOnline(t)

		e.contactSays(conv, "Hello?")
		name := func() (string, bool) {
			t.Helper()
			var d struct {
				Message map[string]any `json:"message"`
			}
			if err := json.Unmarshal(s.event(t, inbox.EventMessageAdded).Data, &d); err != nil {
				t.Fatalf("message_added data: %v", err)
			}
			n, ok := d.Message["agent_name"].(string)
			return n, ok
		}
		if n, ok := name(); ok {
			t.Fatalf("the visitor's own message has agent_name %q", n)
		}

		// Bob writes without joining.
		if _, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &bob.ID, Channel: inbox.ChannelChat, Text: "I can help."}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		if n, _ := name(); n != "bob" {
			t.Fatalf("agent_name = %q, want %q", n, "bob")
		}

		// Renamed: his next message carries the new name.
		newName := "Bob Martin"
		if _, err := e.store.UpdateAgent(ctx, bob.ID, inbox.AgentChange{Name: &newName}); err != nil {
			t.Fatalf("renaming: %v", err)
		}
		if _, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &bob.ID, Channel: inbox.ChannelChat, Text: "Still here."}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		if n, _ := name(); n != newName {
			t.Fatalf("agent_name after a rename = %q, want %q", n, newName)
		}
	})
}
