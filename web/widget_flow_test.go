package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The whole widget conversation over HTTP and the real socket: start,
// hello, a retried message stored once, an agent joins and replies, read
// receipts and typing both ways, the last agent leaves and the visitor
// rates, then writes again and the conversation returns to Unassigned.
func TestWidgetFlow(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		dash := e.agentSock(alice)

		v := e.startVisitor("Vera")
		conv := v.start.Conversation
		if len(v.token) != 43 || conv.Status != inbox.StatusOpen || v.start.Contact.Name != "Vera" || v.start.ExpiresAt.IsZero() {
			t.Fatalf("start = %+v", v.start)
		}
		s, hello := v.connect(0)
		if hello.Conversation == nil || hello.Conversation.ID != conv.ID || hello.Conversation.Seq != 1 || len(hello.Agents) != 0 {
			t.Fatalf("hello = %s", hello)
		}
		if ev := s.event(t, inbox.EventConversationCreated); ev.Seq != 1 {
			t.Fatalf("catch-up = %+v", ev)
		}

		// A message and its retry: one message, two acks.
		s.send(t, map[string]any{"type": "message", "client_id": "c-1", "text": "Hello, anyone?"})
		var acked int64
		for range 2 {
			f := s.next(t)
			switch f.Type {
			case "ack":
				if f.ClientID != "c-1" || f.Message == nil {
					t.Fatalf("ack = %s", f)
				}
				acked = f.Message.ID
			case "event":
				if f.Event.Type != inbox.EventMessageAdded || f.Event.Seq != 2 {
					t.Fatalf("event = %s", f)
				}
			default:
				t.Fatalf("frame = %s", f)
			}
		}
		s.send(t, map[string]any{"type": "message", "client_id": "c-1", "text": "Hello, anyone?"})
		if f := s.nextOf(t, "ack"); f.Message.ID != acked {
			t.Fatalf("ack of the retry = %s, want message %d", f, acked)
		}
		s.quiet(t)
		page, _ := e.store.Messages(ctx, conv.ID, inbox.MessageQuery{})
		if len(page.Messages) != 1 {
			t.Fatalf("%d messages stored, want 1", len(page.Messages))
		}
		agentNext(t, dash, "event", func(f agentFrame) bool { return f.Event.Type == inbox.EventMessageAdded })

		// Typing, visitor to agents and back.
		s.send(t, map[string]any{"type": "typing", "typing": true})
		f := agentNext(t, dash, "typing", nil)
		if f.ConversationID != conv.ID || f.ContactID != v.start.Contact.ID || f.Typing == nil || !*f.Typing {
			t.Fatalf("agent's typing frame = %+v", f)
		}

		// Two agents join: the widget shows their names.
		noError(t, "Join()", e.store.Join(ctx, conv.ID, alice.ID))
		var j inbox.Joined
		if ev := s.event(t, inbox.EventJoined); ev.Decode(&j) != nil || j.AgentName != "alice" || !j.Responsible {
			t.Fatalf("joined = %s", ev.Data)
		}
		noError(t, "Join()", e.store.Join(ctx, conv.ID, bob.ID))
		s.event(t, inbox.EventJoined)
		dash.send(t, map[string]any{"type": "typing", "conversation_id": conv.ID, "typing": true})
		if f := s.nextOf(t, "typing"); f.AgentID != alice.ID || f.Name != "alice" || !f.Typing {
			t.Fatalf("visitor's typing frame = %s", f)
		}

		// An agent reply, read by the visitor: agents see it read.
		v.storedOnline(t)
		reply, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &alice.ID, Text: "Hi Vera!"})
		noError(t, "AddMessage(reply)", err)
		if ev := s.event(t, inbox.EventMessageAdded); ev.Seq != reply.Seq {
			t.Fatalf("reply event = %+v", ev)
		}
		s.send(t, map[string]any{"type": "read", "up_to": reply.Seq})
		var mr inbox.MessagesRead
		if ev := s.event(t, inbox.EventMessagesRead); ev.Decode(&mr) != nil || mr.Reader != "contact" || fmtIDs(mr.MessageIDs) != fmtIDs([]int64{reply.ID}) {
			t.Fatalf("messages_read = %s", ev.Data)
		}
		agentNext(t, dash, "event", func(f agentFrame) bool { return f.Event.Type == inbox.EventMessagesRead })

		// /state shows the same conversation.
		var st stateAnswer
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if st.Conversation == nil || st.Conversation.ID != conv.ID || len(st.Messages) != 2 || len(st.Agents) != 2 || st.Agents[0].Name != "alice" {
			t.Fatalf("state = %+v", st)
		}
		if st.Limits.MaxUploadBytes != int64(e.srv.cfg.Limits.MaxUploadBytes) || st.Limits.MaxMessageBytes == 0 {
			t.Fatalf("state limits = %+v, want the config's", st.Limits)
		}
		if st.Agents[0].Presence != inbox.PresenceOnline || st.Agents[1].Presence != inbox.PresenceOffline {
			t.Fatalf("agents' presence in state = %+v, want alice online (her dashboard is open), bob offline", st.Agents)
		}
		v.do("POST", "/api/v1/widget/rating", map[string]any{"score": 5}).want(http.StatusConflict)

		// Both leave: closed, and the visitor rates for both.
		noError(t, "Leave()", e.store.Leave(ctx, conv.ID, alice.ID))
		s.event(t, inbox.EventLeft)
		noError(t, "Leave()", e.store.Leave(ctx, conv.ID, bob.ID))
		s.event(t, inbox.EventLeft)
		if ev := s.event(t, inbox.EventClosed); ev == nil {
			t.Fatal("no closed event")
		}
		var rated ratingAnswer
		v.do("POST", "/api/v1/widget/rating", map[string]any{"score": 4, "comment": "Quick"}).want(http.StatusCreated).decode(&rated)
		var ra inbox.Rated
		if ev := s.event(t, inbox.EventRated); ev.Decode(&ra) != nil || ra.Score != 4 || fmtIDs(ra.AgentIDs) != fmtIDs([]int64{alice.ID, bob.ID}) {
			t.Fatalf("rated = %s", ev.Data)
		}
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if st.Rating == nil || st.Rating.Score != 4 || st.Conversation.Status != inbox.StatusClosed {
			t.Fatalf("state after rating = %+v", st)
		}
		// Both left; the history still names them.
		if len(st.Agents) != 0 || len(st.Authors) != 2 || st.Authors[0].Name != "alice" || st.Authors[1].Name != "bob" {
			t.Fatalf("state after both left: agents %+v, authors %+v; want no agents and authors alice, bob", st.Agents, st.Authors)
		}

		// Writing again reopens it into Unassigned (rule 4).
		s.send(t, map[string]any{"type": "message", "client_id": "c-2", "text": "One more thing"})
		var added inbox.MessageAdded
		for {
			f := s.next(t)
			if f.Type == "event" {
				if f.Event.Decode(&added) != nil || !added.Reopened {
					t.Fatalf("event = %s, want a reopening message", f)
				}
				break
			}
		}
		page2, err := e.store.ListConversations(ctx, inbox.ListQuery{Column: inbox.ColumnUnassigned, AgentID: alice.ID})
		noError(t, "ListConversations()", err)
		if len(page2.Items) != 1 || page2.Items[0].ID != conv.ID {
			t.Fatalf("Unassigned = %+v, want the reopened conversation", page2.Items)
		}

		// Older messages.
		var older widgetMessagesAnswer
		v.do("GET", "/api/v1/widget/messages?before=100&limit=2", nil).want(http.StatusOK).decode(&older)
		if len(older.Messages) != 2 || !older.HasBefore {
			t.Fatalf("messages = %+v", older)
		}
		s.send(t, map[string]any{"type": "ping"})
		s.nextOf(t, "pong")
	})
}

// A visitor who reconnects with last_seq gets what they missed, in order,
// once, then live events.
func TestWidgetResume(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		v := e.startVisitor("Rae")
		conv := v.start.Conversation
		s, _ := v.connect(1)
		s.quiet(t)        // nothing after seq 1 yet
		v.storedOnline(t) // online, within the grace once closed: replies go by chat
		s.conn.WriteClose(1000, nil)

		noError(t, "Join()", e.store.Join(ctx, conv.ID, alice.ID))
		for _, text := range []string{"one", "two"} {
			_, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &alice.ID, Text: text})
			noError(t, "AddMessage()", err)
		}
		s2, hello := v.connect(1)
		if hello.Conversation.Seq != 4 || len(hello.Agents) != 1 || hello.Agents[0].Name != "alice" {
			t.Fatalf("hello = %s", hello)
		}
		for _, want := range []int64{2, 3, 4} {
			if f := s2.nextOf(t, "event"); f.Event.Seq != want {
				t.Fatalf("resumed frame = %s, want seq %d", f, want)
			}
		}
		_, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &alice.ID, Text: "three"})
		noError(t, "AddMessage()", err)
		if f := s2.nextOf(t, "event"); f.Event.Seq != 5 {
			t.Fatalf("live frame = %s, want seq 5", f)
		}
		s2.quiet(t)

		// A seq the server never had, or of events no longer kept: resync.
		s3, _ := v.connect(99)
		s3.nextOf(t, "resync")
		_, err = e.store.PruneEvents(ctx, time.Now().Add(time.Hour))
		noError(t, "PruneEvents()", err)
		s4, _ := v.connect(1)
		s4.nextOf(t, "resync")
	})
}
