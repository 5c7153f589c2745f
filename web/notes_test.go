package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Private notes (issue 13, item 6) through every entry point: an agent
// writes one with POST .../messages or the agents' socket, and every
// agent sees it as it comes; the visitor never does, neither over the
// widget's HTTP API nor on its socket, live or caught up, and the
// widget's own numbering just skips its seq.
func TestNotesNeverReachTheVisitor(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		dash := e.agentSock(alice)
		ac, bc := e.login(alice.Email), e.login(bob.Email)

		v := e.startVisitor("Vera")
		conv := v.start.Conversation.ID
		path := "/api/v1/conversations/" + itoa64(conv)
		hello := e.contactSays(conv, "Hello?")
		s, _ := v.connect(0)
		s.event(t, inbox.EventConversationCreated)
		s.event(t, inbox.EventMessageAdded)
		v.storedOnline(t)
		noError(t, "Join()", e.store.Join(ctx, conv, alice.ID))
		s.event(t, inbox.EventJoined)

		// Bob's note with a file, over HTTP.
		var up attachmentAnswer
		bc.upload(path+"/attachments", "internal.txt", []byte("internal only")).want(http.StatusCreated).decode(&up)
		var n1 replyAnswer
		bc.do("POST", path+"/messages", map[string]any{"channel": "note", "text": "VIP: refund at once", "attachment_ids": []int64{up.Attachment.ID}}).
			want(http.StatusCreated).decode(&n1)
		if n1.Channel != inbox.ChannelNote || n1.Reason != inbox.ReasonNote || n1.Message.Channel != inbox.ChannelNote ||
			n1.Message.State != inbox.StateSent || len(n1.Message.Attachments) != 1 {
			t.Fatalf("POST note = %+v, want a note, sent, with its file", n1)
		}
		// Alice's, over her socket.
		dash.send(t, map[string]any{"type": "message", "conversation_id": conv, "client_id": "n-2", "text": "she asked twice", "channel": "note"})
		ack, before := dash.answer(t, "n-2")
		if ack.Type != "ack" || ack.Channel != inbox.ChannelNote || ack.Reason != inbox.ReasonNote || ack.Created == nil || !*ack.Created ||
			ack.Message == nil || ack.Message.Channel != inbox.ChannelNote || ack.Message.State != inbox.StateSent {
			t.Fatalf("ack of a note = %+v", ack)
		}
		n2 := *ack.Message
		// The agents' socket carries both notes (some may have come
		// before the ack).
		seen := map[int64]inbox.Message{}
		for _, ev := range before {
			m := addedMessage(t, ev)
			seen[m.ID] = m
		}
		for _, id := range []int64{n1.Message.ID, n2.ID} {
			if _, ok := seen[id]; !ok {
				f := agentNext(t, dash, "event", func(f agentFrame) bool {
					return f.Event.Type == inbox.EventMessageAdded && addedMessage(t, f.Event).ID == id
				})
				seen[id] = addedMessage(t, f.Event)
			}
			if seen[id].Channel != inbox.ChannelNote {
				t.Fatalf("agent's event of note %d = %+v", id, seen[id])
			}
		}

		// The visitor's next event is the reply that follows: its seq
		// skips the notes'.
		var reply replyAnswer
		ac.do("POST", path+"/messages", map[string]any{"channel": "chat", "text": "Hello Vera"}).want(http.StatusCreated).decode(&reply)
		if m := addedMessage(t, s.event(t, inbox.EventMessageAdded)); m.ID != reply.Message.ID || m.Seq != n2.Seq+1 {
			t.Fatalf("visitor's next message = %+v, want the reply %d at seq %d", m, reply.Message.ID, n2.Seq+1)
		}
		s.quiet(t)

		// /state and /messages hold no note, nor the name of an agent who
		// only wrote one.
		var st stateAnswer
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if texts(st.Messages) != "[Hello? Hello Vera]" || len(st.Authors) != 1 || st.Authors[0].ID != alice.ID {
			t.Fatalf("state: messages %s, authors %+v; want no note and alice alone", texts(st.Messages), st.Authors)
		}
		var older widgetMessagesAnswer
		v.do("GET", "/api/v1/widget/messages?limit=1&before="+itoa64(reply.Message.Seq), nil).want(http.StatusOK).decode(&older)
		if texts(older.Messages) != "[Hello?]" || older.HasBefore {
			t.Fatalf("messages before the reply = %s (has_before %v), want the visitor's hello alone", texts(older.Messages), older.HasBefore)
		}

		// The note's file is the agents' only.
		aid := itoa64(up.Attachment.ID)
		v.do("GET", "/api/v1/widget/attachments/"+aid, nil).want(http.StatusNotFound)
		ac.do("GET", path+"/attachments/"+aid, nil).want(http.StatusOK)

		// The visitor reads everything: the notes are not among what they
		// read, and stay sent.
		s.send(t, map[string]any{"type": "read", "up_to": reply.Message.Seq})
		var read inbox.MessagesRead
		if ev := s.event(t, inbox.EventMessagesRead); ev.Decode(&read) != nil || fmtIDs(read.MessageIDs) != fmtIDs([]int64{reply.Message.ID}) {
			t.Fatalf("messages_read = %s, want the reply alone", ev.Data)
		}
		var page inbox.MessagePage
		ac.do("GET", path+"/messages", nil).want(http.StatusOK).decode(&page)
		for _, m := range page.Messages {
			if m.Channel == inbox.ChannelNote && m.State != inbox.StateSent {
				t.Fatalf("note after the visitor read = %+v, want sent", m)
			}
		}
		if len(page.Messages) != 4 {
			t.Fatalf("agents' messages = %d, want 4 with the notes", len(page.Messages))
		}

		// A reconnect from before the notes catches up without them.
		s2, _ := v.connect(hello.Seq)
		for _, typ := range []string{inbox.EventJoined, inbox.EventMessageAdded, inbox.EventMessagesRead} {
			if ev := s2.event(t, typ); typ == inbox.EventMessageAdded && addedMessage(t, ev).ID != reply.Message.ID {
				t.Fatalf("catch-up message = %s, want the reply", ev.Data)
			}
		}
		s2.quiet(t)

		// Once closed, a note reopens nothing and tells the visitor
		// nothing.
		noError(t, "Leave()", e.store.Leave(ctx, conv, alice.ID))
		s.event(t, inbox.EventLeft)
		s.event(t, inbox.EventClosed)
		bc.do("POST", path+"/messages", map[string]any{"channel": "note", "text": "closed for good"}).want(http.StatusCreated)
		agentNext(t, dash, "event", func(f agentFrame) bool {
			return f.Event.Type == inbox.EventMessageAdded && addedMessage(t, f.Event).Text == "closed for good"
		})
		s.quiet(t)
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if st.Conversation.Status != inbox.StatusClosed || texts(st.Messages) != "[Hello? Hello Vera]" {
			t.Fatalf("state after a note in the closed conversation: %+v, %s", st.Conversation, texts(st.Messages))
		}

		// The composer's preview.
		var d inbox.ReplyDecision
		ac.do("GET", path+"/reply-channel?channel=note", nil).want(http.StatusOK).decode(&d)
		if d.Channel != inbox.ChannelNote || d.State != inbox.StateSent || d.Reason != inbox.ReasonNote {
			t.Fatalf("reply-channel?channel=note = %+v", d)
		}
	})
}

// texts lists the messages' texts.
func texts(ms []inbox.Message) string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return fmt.Sprint(out)
}
