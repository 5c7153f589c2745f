package webchat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// Each field the widget must not see is cleared wherever it is set alone
// (so hiddenKeys names them all), the event is copied, never changed in
// place (every subscriber shares it), and an event with nothing to hide
// is passed as it is, without decoding.
func TestVisitorEvent(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	id := int64(7)
	base := inbox.Message{ID: id, ConversationID: 3, Seq: 9, Author: inbox.AuthorContact, Channel: inbox.ChannelChat,
		Text: `"email":{ "html":" "error":" "uploader":"system" in the text`, State: inbox.StateSent, CreatedAt: at,
		Attachments: []inbox.Attachment{{ID: 1, ConversationID: 3, MessageID: &id, Uploader: inbox.AuthorContact, Name: "a.png"}}}
	report := inbox.Attachment{ID: 2, ConversationID: 3, MessageID: &id, Uploader: inbox.AuthorSystem, Name: "delivery-status-notification.eml"}
	for _, tc := range []struct {
		name string
		set  func(m *inbox.Message)
	}{
		{"email", func(m *inbox.Message) {
			m.Channel = inbox.ChannelEmail
			m.Email = &inbox.EmailInfo{Subject: "s", Cc: []inbox.Address{{Addr: "dave@corp.test"}}}
		}},
		{"html", func(m *inbox.Message) { m.HTML = "<p>hi</p>" }},
		{"error", func(m *inbox.Message) { m.State, m.Error = inbox.StateFailed, "550 no such user" }},
		{"report", func(m *inbox.Message) {
			m.Attachments = []inbox.Attachment{report, m.Attachments[0], report}
		}},
	} {
		m := base
		tc.set(&m)
		data, _ := json.Marshal(inbox.MessageAdded{Message: m, Reopened: true})
		ev := &inbox.Event{ID: 1, ConversationID: 3, Seq: 9, Type: inbox.EventMessageAdded, Data: data, At: at}
		got, ok := VisitorEvent(ev)
		if !ok || got == ev || string(ev.Data) != string(data) {
			t.Fatalf("%s: VisitorEvent() = %v, %v; want a copy, the event unchanged", tc.name, got, ok)
		}
		var p inbox.MessageAdded
		if err := got.Decode(&p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := base
		want.Channel, want.State = m.Channel, m.State
		wantJSON, _ := json.Marshal(inbox.MessageAdded{Message: want, Reopened: true})
		if string(got.Data) != string(wantJSON) || got.ID != ev.ID || got.Seq != ev.Seq || got.Type != ev.Type || !got.At.Equal(ev.At) {
			t.Fatalf("%s: visitor's event =\n%s\nwant\n%s", tc.name, got.Data, wantJSON)
		}
	}

	// Nothing to hide: the event itself, also with the keys in the text.
	data, _ := json.Marshal(inbox.MessageAdded{Message: base})
	ev := &inbox.Event{Seq: 9, Type: inbox.EventMessageAdded, Data: data}
	if got, ok := VisitorEvent(ev); got != ev || !ok {
		t.Fatalf("VisitorEvent(chat) = %p, want the event %p itself", got, ev)
	}

	// A failed send's error.
	data, _ = json.Marshal(inbox.MessageState{MessageIDs: []int64{7}, State: inbox.StateFailed, Error: "550 5.1.1 <uma@example.com>"})
	ev = &inbox.Event{Seq: 10, Type: inbox.EventMessageState, Data: data}
	got, ok := VisitorEvent(ev)
	if !ok || string(got.Data) != `{"message_ids":[7],"state":"failed"}` || !strings.Contains(string(ev.Data), "5.1.1") {
		t.Fatalf("VisitorEvent(failed) = %s, %v", got.Data, ok)
	}
	ev = &inbox.Event{Seq: 11, Type: inbox.EventMessageState, Data: []byte(`{"message_ids":[7],"state":"read"}`)}
	if got, _ := VisitorEvent(ev); got != ev {
		t.Fatalf("VisitorEvent(read) = %s, want the event itself", got.Data)
	}

	// Data that does not decode is not sent.
	ev = &inbox.Event{Seq: 12, Type: inbox.EventMessageAdded, Data: []byte(`{"message":{"email":{"subject":`)}
	if _, ok := VisitorEvent(ev); ok {
		t.Fatalf("VisitorEvent(undecodable) = ok, want not sent")
	}
}

// VisitorMessages clears the same fields of stored messages (GET
// /widget/state and /widget/messages).
func TestVisitorMessages(t *testing.T) {
	id := int64(7)
	msgs := []inbox.Message{
		{ID: 6, Text: "chat"},
		{ID: id, Text: "mail", HTML: "<p>mail</p>", Error: "550", Email: &inbox.EmailInfo{Subject: "s"},
			Attachments: []inbox.Attachment{{ID: 1, Uploader: inbox.AuthorSystem}, {ID: 2, Uploader: inbox.AuthorContact}}},
	}
	stored := msgs[1].Attachments
	got := VisitorMessages(msgs)
	if m := got[1]; m.Text != "mail" || m.HTML != "" || m.Error != "" || m.Email != nil || len(m.Attachments) != 1 || m.Attachments[0].ID != 2 {
		t.Fatalf("VisitorMessages() = %+v", m)
	}
	if stored[0].ID != 1 || stored[1].ID != 2 {
		t.Fatalf("the attachments given were changed: %+v", stored)
	}
	if got[0].Text != "chat" {
		t.Fatalf("VisitorMessages() = %+v", got[0])
	}
}
