package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

var ctx = context.Background()

// fixture is a store with two agents and one contact.
type fixture struct {
	s            *inbox.Store
	alice, bob   inbox.Agent
	contact      inbox.Contact
	subscription *inbox.Subscription
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	return newFixtureOpts(t, url, nil)
}

func newFixtureOpts(t *testing.T, url string, opts *inbox.Options) *fixture {
	t.Helper()
	s := inboxtest.Open(t, url, opts)
	f := &fixture{s: s}
	var err error
	if f.alice, err = s.CreateAgent(ctx, inbox.NewAgent{Email: "alice@example.com", Name: "Alice", Role: inbox.RoleAdmin, Password: "correct horse"}); err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	if f.bob, err = s.CreateAgent(ctx, inbox.NewAgent{Email: "bob@example.com", Name: "Bob", Password: "battery staple"}); err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	if f.contact, err = s.CreateContact(ctx, inbox.NewContact{Name: "Carol", Email: "Carol@Example.com"}); err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	return f
}

func (f *fixture) start(t *testing.T) inbox.Conversation {
	t.Helper()
	c, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelChat, "")
	if err != nil {
		t.Fatalf("StartConversation() = %v", err)
	}
	return c
}

func (f *fixture) say(t *testing.T, convID int64, author string, text string) inbox.Message {
	t.Helper()
	m := inbox.NewMessage{ConversationID: convID, Author: author, Text: text}
	if author == inbox.AuthorAgent {
		m.AgentID = &f.alice.ID
	}
	msg, _, err := f.s.AddMessage(ctx, m)
	if err != nil {
		t.Fatalf("AddMessage(%q) = %v", text, err)
	}
	return msg
}

func (f *fixture) column(t *testing.T, col string, agentID int64) []int64 {
	t.Helper()
	page, err := f.s.ListConversations(ctx, inbox.ListQuery{Column: col, AgentID: agentID})
	if err != nil {
		t.Fatalf("ListConversations(%s) = %v", col, err)
	}
	var ids []int64
	for _, it := range page.Items {
		ids = append(ids, it.ID)
	}
	return ids
}

func has(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// events returns all stored events of a conversation and checks that their
// sequence numbers are 1..n without gaps and end at the conversation's seq.
func events(t *testing.T, s *inbox.Store, convID int64) []inbox.Event {
	t.Helper()
	evs, err := s.EventsSince(ctx, convID, 0, 1000)
	if err != nil {
		t.Fatalf("EventsSince() = %v", err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d, want %d (types %v)", i, ev.Seq, i+1, types(evs))
		}
	}
	c, err := s.Conversation(ctx, convID)
	if err != nil {
		t.Fatalf("Conversation() = %v", err)
	}
	if c.Seq != int64(len(evs)) {
		t.Fatalf("conversation seq = %d, events = %d", c.Seq, len(evs))
	}
	return evs
}

func types(evs []inbox.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func TestUnassignedJoinLeave(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		sameStart(t, f.s, c.ID)
		if !has(f.column(t, inbox.ColumnUnassigned, f.alice.ID), c.ID) {
			t.Fatalf("new conversation not in Unassigned")
		}
		if err := f.s.Join(ctx, c.ID, f.alice.ID); err != nil {
			t.Fatalf("Join() = %v", err)
		}
		if err := f.s.Join(ctx, c.ID, f.alice.ID); err != nil {
			t.Fatalf("second Join() = %v", err)
		}
		if err := f.s.Join(ctx, c.ID, f.bob.ID); err != nil {
			t.Fatalf("Join(bob) = %v", err)
		}
		for _, agent := range []int64{f.alice.ID, f.bob.ID} {
			if has(f.column(t, inbox.ColumnUnassigned, agent), c.ID) {
				t.Fatalf("joined conversation still in Unassigned for agent %d", agent)
			}
			if !has(f.column(t, inbox.ColumnMine, agent), c.ID) {
				t.Fatalf("joined conversation not in Mine of agent %d", agent)
			}
		}
		parts, err := f.s.Participants(ctx, c.ID)
		if err != nil || len(parts) != 2 {
			t.Fatalf("Participants() = %v, %v; want 2", parts, err)
		}
		if parts[0].AgentID != f.alice.ID || !parts[0].Responsible || parts[1].Responsible {
			t.Fatalf("Participants() = %+v; want Alice responsible, Bob not", parts)
		}
		sameStart(t, f.s, c.ID)

		if err := f.s.Leave(ctx, c.ID, f.alice.ID); err != nil {
			t.Fatalf("Leave(alice) = %v", err)
		}
		sameStart(t, f.s, c.ID)
		if err := f.s.Leave(ctx, c.ID, f.alice.ID); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("second Leave(alice) = %v, want ErrConflict", err)
		}
		if conv, _ := f.s.Conversation(ctx, c.ID); conv.Status != inbox.StatusOpen {
			t.Fatalf("status after one of two left = %s", conv.Status)
		}
		if err := f.s.Leave(ctx, c.ID, f.bob.ID); err != nil {
			t.Fatalf("Leave(bob) = %v", err)
		}
		conv, _ := f.s.Conversation(ctx, c.ID)
		if conv.Status != inbox.StatusClosed || conv.ClosedAt == nil {
			t.Fatalf("after the last left: %+v, want closed", conv)
		}
		if !has(f.column(t, inbox.ColumnClosed, f.alice.ID), c.ID) || has(f.column(t, inbox.ColumnOpen, f.alice.ID), c.ID) {
			t.Fatalf("closed conversation in the wrong column")
		}
		evs := events(t, f.s, c.ID)
		want := []string{"conversation_created", "joined", "joined", "left", "left", "closed"}
		if fmt.Sprint(types(evs)) != fmt.Sprint(want) {
			t.Fatalf("events = %v, want %v", types(evs), want)
		}
		var closed inbox.Closed
		if err := evs[5].Decode(&closed); err != nil || !closed.SurveyOffered {
			t.Fatalf("closed event = %s, %v; want survey offered", evs[5].Data, err)
		}
		if err := f.s.Join(ctx, 999999, f.alice.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("Join(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestContactMessageReturnsToUnassigned(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "hello")
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		f.say(t, c.ID, inbox.AuthorAgent, "hi, how can I help?")
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))

		// An agent message does not reopen a closed conversation.
		f.say(t, c.ID, inbox.AuthorAgent, "one more thing")
		if conv, _ := f.s.Conversation(ctx, c.ID); conv.Status != inbox.StatusClosed {
			t.Fatalf("agent message reopened the conversation")
		}
		m := f.say(t, c.ID, inbox.AuthorContact, "I am back")
		if !has(f.column(t, inbox.ColumnUnassigned, f.bob.ID), c.ID) {
			t.Fatalf("contact message did not put the conversation back in Unassigned")
		}
		page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 4 || page.Messages[3].ID != m.ID {
			t.Fatalf("Messages() = %+v, %v; want the whole history of 4", page, err)
		}
		evs := events(t, f.s, c.ID)
		var added inbox.MessageAdded
		if err := evs[len(evs)-1].Decode(&added); err != nil || !added.Reopened || added.Message.Text != "I am back" {
			t.Fatalf("last event = %s, %v; want a reopening message", evs[len(evs)-1].Data, err)
		}
	})
}

func TestClientIDStoredOnce(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		in := inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "only once", ClientID: "c-1"}
		first, created, err := f.s.AddMessage(ctx, in)
		if err != nil || !created {
			t.Fatalf("AddMessage() = %v, %v", created, err)
		}
		again, created, err := f.s.AddMessage(ctx, in)
		if err != nil || created || again.ID != first.ID || again.Seq != first.Seq || again.Text != "only once" {
			t.Fatalf("retry = %+v, %v, %v; want the first message %d", again, created, err, first.ID)
		}
		// Many concurrent retries, batched together, still store one.
		errs := make(chan error, 20)
		ids := make(chan int64, 20)
		in.ClientID = "c-2"
		for range 20 {
			go func() {
				m, _, err := f.s.AddMessage(ctx, in)
				ids <- m.ID
				errs <- err
			}()
		}
		var id int64
		for range 20 {
			if err := inboxtest.Receive(t, errs, "a message stored"); err != nil {
				t.Fatalf("AddMessage() = %v", err)
			}
			got := inboxtest.Receive(t, ids, "a message id")
			if id != 0 && got != id {
				t.Fatalf("retries got ids %d and %d", id, got)
			}
			id = got
		}
		page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if len(page.Messages) != 2 {
			t.Fatalf("%d messages stored, want 2", len(page.Messages))
		}
		events(t, f.s, c.ID)
	})
}

func TestAddMessageInvalid(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		for _, tc := range []struct {
			name  string
			in    inbox.NewMessage
			field string
		}{
			{"empty", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "  "}, "text"},
			{"bad utf8", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "a\xffb"}, "text"},
			{"too long", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: string(make([]byte, 17<<10))}, "text"},
			{"author", inbox.NewMessage{ConversationID: c.ID, Author: "robot", Text: "x"}, "author"},
			{"agent without id", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, Text: "x"}, "agent_id"},
			{"channel", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Channel: "fax", Text: "x"}, "channel"},
			{"foreign attachment", inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "x", AttachmentIDs: []int64{424242}}, "attachment_ids"},
		} {
			_, _, err := f.s.AddMessage(ctx, tc.in)
			var inv *inbox.InvalidError
			if !errors.As(err, &inv) || inv.Field != tc.field {
				t.Fatalf("%s: AddMessage() = %v, want invalid %s", tc.name, err, tc.field)
			}
		}
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: 999999, Author: inbox.AuthorContact, Text: "x"}); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("AddMessage(unknown conversation) = %v, want ErrNotFound", err)
		}
		// Nothing of the failures was stored and no sequence number was used.
		if evs := events(t, f.s, c.ID); len(evs) != 1 {
			t.Fatalf("events = %v, want only the creation", types(evs))
		}
	})
}

// A batch with one bad message still commits the good ones.
func TestBadMessageDoesNotFailItsBatch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		other := f.start(t)
		att, err := f.s.AddAttachment(ctx, other.ID, contactUpload, "x.txt", "text/plain", []byte("x"))
		if err != nil {
			t.Fatalf("AddAttachment() = %v", err)
		}
		sub := f.s.Hub().Subscribe(c.ID, 100)
		defer sub.Close()
		errs := make(chan error, 41)
		for i := range 40 {
			go func() {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: fmt.Sprint("m", i)})
				errs <- err
			}()
		}
		go func() {
			// An attachment of another conversation.
			_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "bad", AttachmentIDs: []int64{att.ID}})
			errs <- err
		}()
		bad := 0
		for range 41 {
			if err := inboxtest.Receive(t, errs, "a message stored"); err != nil {
				bad++
			}
		}
		if bad != 1 {
			t.Fatalf("%d messages failed, want 1", bad)
		}
		if evs := events(t, f.s, c.ID); len(evs) != 41 {
			t.Fatalf("%d events, want 41", len(evs))
		}
		// Each stored message was published once, the bad one never:
		// events are published before AddMessage returns.
		seen := map[int64]bool{}
		for len(sub.C) > 0 {
			ev := <-sub.C
			var added inbox.MessageAdded
			if ev.Type != inbox.EventMessageAdded || ev.Decode(&added) != nil || added.Message.Text == "bad" || seen[ev.Seq] {
				t.Fatalf("published %s seq %d %s, want each good message once", ev.Type, ev.Seq, ev.Data)
			}
			seen[ev.Seq] = true
		}
		if len(seen) != 40 {
			t.Fatalf("%d messages published, want 40", len(seen))
		}
	})
}

func TestAttachments(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		a, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "report.pdf", "application/pdf", []byte("%PDF-1.4"))
		if err != nil {
			t.Fatalf("AddAttachment() = %v", err)
		}
		m, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, AttachmentIDs: []int64{a.ID}})
		if err != nil || len(m.Attachments) != 1 || m.Attachments[0].Name != "report.pdf" {
			t.Fatalf("AddMessage() = %+v, %v", m, err)
		}
		// Sent once only.
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "again", AttachmentIDs: []int64{a.ID}}); err == nil {
			t.Fatalf("attachment sent twice")
		}
		got, err := f.s.OpenAttachment(ctx, c.ID, 0, a.ID)
		if err != nil || string(got.Data) != "%PDF-1.4" {
			t.Fatalf("OpenAttachment() = %q, %v", got.Data, err)
		}
		other := f.start(t)
		if _, err := f.s.OpenAttachment(ctx, other.ID, 0, a.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenAttachment(other conversation) = %v, want ErrNotFound", err)
		}
		page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if len(page.Messages[0].Attachments) != 1 || page.Messages[0].Attachments[0].Data != nil {
			t.Fatalf("Messages() attachments = %+v", page.Messages[0].Attachments)
		}
	})
}

func TestHTMLSanitized(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		m, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Channel: inbox.ChannelEmail,
			Text: "hi", HTML: `<p onclick="x()">hi<script>alert(1)</script><img src=x onerror=alert(2)></p>`})
		if err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		for _, html := range []string{m.HTML, page.Messages[0].HTML} {
			for _, bad := range []string{"script", "onclick", "onerror"} {
				if contains(html, bad) {
					t.Fatalf("HTML %q still has %s", html, bad)
				}
			}
		}
		if conv, _ := f.s.Conversation(ctx, c.ID); !conv.HasEmail {
			t.Fatalf("conversation with an email message has no envelope flag")
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRatingCountsForEveryAgent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		if _, err := f.s.Rate(ctx, c.ID, 5, ""); err == nil {
			t.Fatalf("Rate() without any agent = nil error")
		}
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.bob.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.bob.ID))
		if _, err := f.s.Rate(ctx, c.ID, 6, ""); err == nil {
			t.Fatalf("Rate(6) = nil error")
		}
		r, err := f.s.Rate(ctx, c.ID, 4, "quick and kind")
		if err != nil {
			t.Fatalf("Rate() = %v", err)
		}
		evs := events(t, f.s, c.ID)
		var rated inbox.Rated
		if err := evs[len(evs)-1].Decode(&rated); err != nil || fmt.Sprint(rated.AgentIDs) != fmt.Sprint([]int64{f.alice.ID, f.bob.ID}) {
			t.Fatalf("rated = %+v, %v; want both agents", rated, err)
		}
		if r.Score != 4 || r.ContactID != f.contact.ID {
			t.Fatalf("Rate() = %+v", r)
		}
	})
}

func TestDeleteConversationAndEraseContact(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		keep := f.start(t)
		a, err := f.s.AddAttachment(ctx, c.ID, contactUpload, "a.txt", "text/plain", []byte("secret"))
		noErr(t, "AddAttachment()", err)
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "x", AttachmentIDs: []int64{a.ID}}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		f.say(t, keep.ID, inbox.AuthorContact, "keep me")
		sub := f.s.Hub().Subscribe(c.ID, 10)
		defer sub.Close()
		if err := f.s.DeleteConversation(ctx, c.ID); err != nil {
			t.Fatalf("DeleteConversation() = %v", err)
		}
		if ev := inboxtest.Receive(t, sub.C, "conversation_deleted"); ev.Type != inbox.EventConversationDeleted {
			t.Fatalf("published %s, want conversation_deleted", ev.Type)
		}
		if _, err := f.s.Conversation(ctx, c.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("Conversation(deleted) = %v", err)
		}
		if _, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{}); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("Messages(deleted) = %v", err)
		}
		if _, err := f.s.OpenAttachment(ctx, c.ID, 0, a.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenAttachment(deleted) = %v", err)
		}
		if _, err := f.s.EventsSince(ctx, c.ID, 0, 10); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("EventsSince(deleted) = %v", err)
		}
		if page, _ := f.s.Messages(ctx, keep.ID, inbox.MessageQuery{}); len(page.Messages) != 1 {
			t.Fatalf("the other conversation lost its messages")
		}
		if err := f.s.DeleteConversation(ctx, c.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("second DeleteConversation() = %v", err)
		}

		if err := f.s.EraseContact(ctx, f.contact.ID); err != nil {
			t.Fatalf("EraseContact() = %v", err)
		}
		if _, err := f.s.Contact(ctx, f.contact.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("Contact(erased) = %v", err)
		}
		if _, err := f.s.Conversation(ctx, keep.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("Conversation of erased contact = %v", err)
		}
	})
}

func TestMarkReadAndUnread(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "one")
		f.say(t, c.ID, inbox.AuthorContact, "two")
		item, err := f.s.ConversationItem(ctx, c.ID, f.alice.ID)
		if err != nil || item.Unread != 2 || item.LastMessage == nil || item.LastMessage.Text != "two" {
			t.Fatalf("ConversationItem() = %+v, %v; want 2 unread, last two", item, err)
		}
		if err := f.s.MarkRead(ctx, c.ID, f.alice.ID, 0); err != nil {
			t.Fatalf("MarkRead() = %v", err)
		}
		if item, err := f.s.ConversationItem(ctx, c.ID, f.alice.ID); err != nil || item.Unread != 0 {
			t.Fatalf("unread after MarkRead = %d", item.Unread)
		}
		if item, err := f.s.ConversationItem(ctx, c.ID, f.bob.ID); err != nil || item.Unread != 2 {
			t.Fatalf("Bob's unread = %d, want 2", item.Unread)
		}
		page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if page.Messages[0].State != inbox.StateRead {
			t.Fatalf("state after read = %s", page.Messages[0].State)
		}
		// Reading again adds no event; the contact reading agent messages does.
		n := len(events(t, f.s, c.ID))
		noErr(t, "MarkRead()", f.s.MarkRead(ctx, c.ID, f.bob.ID, 0))
		if len(events(t, f.s, c.ID)) != n {
			t.Fatalf("reading nothing new added an event")
		}
		m := f.say(t, c.ID, inbox.AuthorAgent, "answer")
		if err := f.s.SetMessageState(ctx, c.ID, []int64{m.ID}, inbox.StateDelivered); err != nil {
			t.Fatalf("SetMessageState() = %v", err)
		}
		if err := f.s.MarkRead(ctx, c.ID, 0, 0); err != nil {
			t.Fatalf("MarkRead(contact) = %v", err)
		}
		evs := events(t, f.s, c.ID)
		var read inbox.MessagesRead
		if err := evs[len(evs)-1].Decode(&read); err != nil || read.Reader != "contact" || fmt.Sprint(read.MessageIDs) != fmt.Sprint([]int64{m.ID}) {
			t.Fatalf("last event %s = %s, %v", evs[len(evs)-1].Type, evs[len(evs)-1].Data, err)
		}
		// States never go back.
		if err := f.s.SetMessageState(ctx, c.ID, []int64{m.ID}, inbox.StateSent); err != nil {
			t.Fatalf("SetMessageState(back) = %v", err)
		}
		if page, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{}); page.Messages[2].State != inbox.StateRead {
			t.Fatalf("state went back to %s", page.Messages[2].State)
		}
	})
}

func TestListPaging(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		var want []int64
		for i := range 7 {
			c := f.start(t)
			f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("m", i))
			want = append([]int64{c.ID}, want...)
		}
		var got []int64
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := f.s.ListConversations(ctx, inbox.ListQuery{Column: inbox.ColumnUnassigned, Cursor: cursor, Limit: 3})
			if err != nil {
				t.Fatalf("ListConversations() = %v", err)
			}
			for _, it := range page.Items {
				got = append(got, it.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
			if pages > 5 {
				t.Fatalf("paging does not end")
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pages = %v, want %v (newest activity first)", got, want)
		}
		if _, err := f.s.ListConversations(ctx, inbox.ListQuery{Column: "nope"}); err == nil {
			t.Fatalf("unknown column accepted")
		}
		if _, err := f.s.ListConversations(ctx, inbox.ListQuery{Column: inbox.ColumnOpen, Cursor: "!!"}); err == nil {
			t.Fatalf("bad cursor accepted")
		}
		counts, err := f.s.ColumnCounts(ctx, f.alice.ID)
		if err != nil || counts[inbox.ColumnUnassigned] != 7 || counts[inbox.ColumnMine] != 0 {
			t.Fatalf("ColumnCounts() = %v, %v", counts, err)
		}
	})
}

func TestMessagePagingBothWays(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		for i := range 10 {
			f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint(i))
		}
		newest, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{Limit: 4})
		if err != nil || len(newest.Messages) != 4 || newest.Messages[3].Text != "9" || !newest.HasBefore || newest.HasAfter {
			t.Fatalf("newest page = %+v, %v", newest, err)
		}
		older, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{Before: newest.Messages[0].Seq, Limit: 4})
		if older.Messages[0].Text != "2" || older.Messages[3].Text != "5" || !older.HasBefore || !older.HasAfter {
			t.Fatalf("older page = %+v", older)
		}
		newer, _ := f.s.Messages(ctx, c.ID, inbox.MessageQuery{After: older.Messages[3].Seq, Limit: 3})
		if newer.Messages[0].Text != "6" || newer.Messages[2].Text != "8" || !newer.HasAfter {
			t.Fatalf("newer page = %+v", newer)
		}
	})
}

func TestAgentsAndSessions(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		s := f.s
		var inv *inbox.InvalidError
		if _, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "ALICE@example.com", Name: "A2", Password: "0123456789"}); !errors.As(err, &inv) || inv.Field != "email" {
			t.Fatalf("CreateAgent(duplicate email) = %v, want invalid email", err)
		}
		for _, in := range []inbox.NewAgent{
			{Email: "x", Name: "X", Password: "0123456789"},
			{Email: "x@example.com", Name: "", Password: "0123456789"},
			{Email: "x@example.com", Name: "X", Password: "short"},
			{Email: "x@example.com", Name: "X", Password: "0123456789", Role: "owner"},
		} {
			if _, err := s.CreateAgent(ctx, in); err == nil {
				t.Fatalf("CreateAgent(%+v) accepted", in)
			}
		}
		if _, err := s.Authenticate(ctx, "alice@example.com", "wrong password"); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("Authenticate(wrong) = %v", err)
		}
		if _, err := s.Authenticate(ctx, "nobody@example.com", "correct horse"); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("Authenticate(unknown) = %v", err)
		}
		a, err := s.Authenticate(ctx, " Alice@Example.com", "correct horse")
		if err != nil || a.ID != f.alice.ID || !a.IsAdmin() {
			t.Fatalf("Authenticate() = %+v, %v", a, err)
		}
		token, sess, err := s.CreateSession(ctx, a.ID, time.Hour)
		if err != nil || sess.CSRFToken == "" || len(token) < 40 {
			t.Fatalf("CreateSession() = %q, %+v, %v", token, sess, err)
		}
		got, agent, err := s.SessionAgent(ctx, token)
		if err != nil || agent.ID != a.ID || got.CSRFToken != sess.CSRFToken {
			t.Fatalf("SessionAgent() = %+v, %+v, %v", got, agent, err)
		}
		if agent.Email != a.Email || agent.Name != a.Name || agent.Role != a.Role || agent.PasswordHash != a.PasswordHash ||
			!agent.CreatedAt.Equal(a.CreatedAt) || agent.Presence != a.Presence || got.ID != sess.ID || !got.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Fatalf("SessionAgent() = %+v, %+v; want the session %+v of agent %+v", got, agent, sess, a)
		}
		expired, _, err := s.CreateSession(ctx, a.ID, -time.Second)
		noErr(t, "CreateSession(expired)", err)
		if _, _, err := s.SessionAgent(ctx, expired); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("SessionAgent(expired) = %v", err)
		}
		if _, _, err := s.SessionAgent(ctx, "not a token"); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("SessionAgent(unknown) = %v", err)
		}
		noErr(t, "DeleteSession()", s.DeleteSession(ctx, token))
		if _, _, err := s.SessionAgent(ctx, token); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("SessionAgent(logged out) = %v", err)
		}
		if err := s.PruneSessions(ctx); err != nil {
			t.Fatalf("PruneSessions() = %v", err)
		}
		list, err := s.Agents(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "Alice" {
			t.Fatalf("Agents() = %+v, %v", list, err)
		}
	})
}

func TestSetupToken(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		token, err := s.CreateSetupToken(ctx, time.Hour)
		if err != nil {
			t.Fatalf("CreateSetupToken() = %v", err)
		}
		in := inbox.NewAgent{Email: "root@example.com", Name: "Root", Password: "0123456789"}
		if _, err := s.CompleteSetup(ctx, "guess", in); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("CompleteSetup(wrong token) = %v", err)
		}
		a, err := s.CompleteSetup(ctx, token, in)
		if err != nil || !a.IsAdmin() {
			t.Fatalf("CompleteSetup() = %+v, %v", a, err)
		}
		if _, err := s.CompleteSetup(ctx, token, inbox.NewAgent{Email: "two@example.com", Name: "Two", Password: "0123456789"}); err == nil {
			t.Fatalf("setup token worked twice")
		}
		if _, err := s.CreateSetupToken(ctx, time.Hour); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("CreateSetupToken() with an admin = %v, want ErrConflict", err)
		}
		created, err := s.EnsureAdmin(ctx, inbox.NewAgent{Email: "root@example.com", Password: "0123456789"})
		if err != nil || created {
			t.Fatalf("EnsureAdmin(existing) = %v, %v", created, err)
		}
	})
}

// Nodes that start at once with the same MICROCHAT_ADMIN_EMAIL all call
// EnsureAdmin: each counts no such agent, hashes the password (tens of
// milliseconds: the window) and inserts; one creates the admin and the
// others must find it, not fail (a node exited with status 2).
func TestEnsureAdminConcurrently(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		nodes := []*inbox.Store{inboxtest.Open(t, url, nil), inboxtest.Open(t, url, nil), inboxtest.Open(t, url, nil)}
		start := make(chan struct{})
		type result struct {
			created bool
			err     error
		}
		results := make(chan result, len(nodes))
		for _, s := range nodes {
			go func() {
				<-start
				created, err := s.EnsureAdmin(ctx, inbox.NewAgent{Email: "root@example.com", Password: "0123456789"})
				results <- result{created, err}
			}()
		}
		close(start)
		created := 0
		for range nodes {
			r := <-results
			if r.err != nil {
				t.Errorf("EnsureAdmin() = %v", r.err)
			}
			if r.created {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d calls created the admin, want 1", created)
		}
		if n, err := nodes[0].CountAgents(ctx, true); err != nil || n != 1 {
			t.Errorf("CountAgents() = %d, %v, want 1 admin", n, err)
		}
	})
}

// Two stores in one process keep to their own databases and dialects:
// gorm keeps the config it is opened with, and a shared one gave every
// store the dialect (and the callbacks) of the last one opened, so a
// PostgreSQL store opened before a SQLite one stopped locking rows.
func TestTwoStoresInOneProcess(t *testing.T) {
	pg := inboxtest.Open(t, inboxtest.PostgresURL(t), nil)
	a := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
	b := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
	if name := pg.Gorm().Dialector.Name(); name != "postgres" {
		t.Fatalf("the PostgreSQL store's dialect became %q", name)
	}
	ca, err := a.CreateContact(ctx, inbox.NewContact{Name: "Only in A"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	if c, err := b.Contact(ctx, ca.ID); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("store B sees %+v, %v from store A", c, err)
	}
	if c, err := a.Contact(ctx, ca.ID); err != nil || c.Name != "Only in A" {
		t.Fatalf("store A lost its contact: %+v, %v", c, err)
	}
}

// Messages queued together with AddMessageAsync, committed in as few
// batches as the appender makes: duplicates within the batch and of a
// stored message are stored once, an unknown conversation fails alone, a
// closed conversation reopens once, and every conversation's sequence
// stays without gaps.
func TestAddMessageAsyncBatch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		var convs []inbox.Conversation
		for range 4 {
			convs = append(convs, f.start(t))
		}
		old, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: convs[0].ID, Author: inbox.AuthorContact, Text: "stored before", ClientID: "old"})
		if err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		closed := convs[3].ID
		if err := f.s.Join(ctx, closed, f.alice.ID); err != nil {
			t.Fatalf("Join() = %v", err)
		}
		if err := f.s.Leave(ctx, closed, f.alice.ID); err != nil {
			t.Fatalf("Leave() = %v", err)
		}

		type result struct {
			key     string
			msg     inbox.Message
			created bool
			err     error
		}
		results := make(chan result, 100)
		queue := func(convID int64, clientID string) {
			key := fmt.Sprint(convID, "/", clientID)
			text := "text of " + key
			if clientID == "old" {
				text = "stored before" // a retry: the same content
			}
			err := f.s.AddMessageAsync(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorContact, Text: text, ClientID: clientID},
				func(m inbox.Message, created bool, err error) { results <- result{key, m, created, err} })
			if err != nil {
				t.Fatalf("AddMessageAsync(%s) = %v", key, err)
			}
		}
		n := 0
		for i := range 5 {
			for _, c := range convs {
				for range 2 { // each client id twice
					queue(c.ID, fmt.Sprint("k-", i))
					n++
				}
			}
		}
		queue(convs[0].ID, "old")
		queue(999999, "lost")
		n += 2

		byKey := map[string][]result{}
		for range n {
			r := inboxtest.Receive(t, results, "a message's result")
			byKey[r.key] = append(byKey[r.key], r)
		}
		if r := byKey[fmt.Sprint(convs[0].ID, "/old")][0]; r.err != nil || r.created || r.msg.ID != old.ID || r.msg.Text != "stored before" {
			t.Fatalf("retry of a stored client id = %+v, want message %d, not created", r, old.ID)
		}
		if r := byKey["999999/lost"][0]; !errors.Is(r.err, inbox.ErrNotFound) {
			t.Fatalf("unknown conversation = %v, want ErrNotFound", r.err)
		}
		for _, c := range convs {
			seqs := map[int64]bool{}
			for i := range 5 {
				rs := byKey[fmt.Sprint(c.ID, "/k-", i)]
				if len(rs) != 2 || rs[0].err != nil || rs[1].err != nil || rs[0].msg.ID != rs[1].msg.ID || rs[0].created == rs[1].created {
					t.Fatalf("conversation %d, k-%d: %+v; want one message, created once", c.ID, i, rs)
				}
				seqs[rs[0].msg.Seq] = true
			}
			evs := events(t, f.s, c.ID)
			if len(seqs) != 5 {
				t.Fatalf("conversation %d: sequence numbers %v, want 5 distinct", c.ID, seqs)
			}
			if c.ID == closed {
				reopened := 0
				for _, ev := range evs {
					var m inbox.MessageAdded
					if ev.Type == inbox.EventMessageAdded && ev.Decode(&m) == nil && m.Reopened {
						reopened++
					}
				}
				got, err := f.s.Conversation(ctx, closed)
				if err != nil || got.Status != inbox.StatusOpen || reopened != 1 {
					t.Fatalf("closed conversation after messages: %+v, %v, %d reopening events; want open, one", got, err, reopened)
				}
			}
		}
	})
}

// sameStart checks that ConversationStart's one read agrees with
// Conversation and Participants.
func sameStart(t *testing.T, s *inbox.Store, id int64) {
	t.Helper()
	wantConv, err := s.Conversation(ctx, id)
	if err != nil {
		t.Fatalf("Conversation() = %v", err)
	}
	wantParts, err := s.Participants(ctx, id)
	if err != nil {
		t.Fatalf("Participants() = %v", err)
	}
	conv, parts, err := s.ConversationStart(ctx, id)
	if err != nil {
		t.Fatalf("ConversationStart() = %v", err)
	}
	if conv.ID != wantConv.ID || conv.Seq != wantConv.Seq || conv.Status != wantConv.Status ||
		conv.ContactID != wantConv.ContactID || !conv.CreatedAt.Equal(wantConv.CreatedAt) {
		t.Fatalf("ConversationStart() conversation = %+v, want %+v", conv, wantConv)
	}
	if len(parts) != len(wantParts) {
		t.Fatalf("ConversationStart() agents = %+v, want %+v", parts, wantParts)
	}
	for i := range parts {
		if parts[i] != wantParts[i] {
			t.Fatalf("ConversationStart() agent %d = %+v, want %+v", i, parts[i], wantParts[i])
		}
	}
	if _, _, err := s.ConversationStart(ctx, id+1000000); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("ConversationStart(no such) = %v, want ErrNotFound", err)
	}
}
