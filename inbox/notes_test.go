package inbox_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Private notes (issue 13, item 6): agent messages on channel note that
// the contact never sees and that go nowhere.

// note stores a private note of agent's.
func (f *fixture) note(t *testing.T, convID, agentID int64, text string, attachments ...int64) inbox.Message {
	t.Helper()
	m, d, created, err := f.s.AddReply(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorAgent, AgentID: &agentID,
		Channel: inbox.ChannelNote, Text: text, AttachmentIDs: attachments})
	if err != nil || !created || m.Channel != inbox.ChannelNote || m.State != inbox.StateSent || d.Channel != inbox.ChannelNote ||
		d.State != inbox.StateSent || d.Reason != inbox.ReasonNote {
		t.Fatalf("AddReply(note %q) = %+v, %+v, %v, %v; want a note, sent, %q", text, m, d, created, err, inbox.ReasonNote)
	}
	return m
}

// countingChannel is a testChannel that counts the calls of Reaches.
type countingChannel struct {
	testChannel
	mu      sync.Mutex
	reached int
}

func (c *countingChannel) Reaches(ct inbox.Contact) bool {
	c.mu.Lock()
	c.reached++
	c.mu.Unlock()
	return c.testChannel.Reaches(ct)
}

func (c *countingChannel) reaches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reached
}

// A note is decided without asking any channel, stored sent, handed to no
// channel's Deliver and given no outbox row, even for an offline contact
// with an email address whom a reply would mail. ReplyChannel previews it
// the same way.
func TestNoteAsksNoChannel(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		chat := &countingChannel{testChannel: testChannel{name: inbox.ChannelChat}}
		email := &countingChannel{testChannel: testChannel{name: inbox.ChannelEmail}}
		f := newFixtureOpts(t, url, &inbox.Options{Mailboxes: testMailboxes, Channels: []inbox.Channel{chat, email}})
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "Where is my order?")

		d, err := f.s.ReplyChannel(ctx, c.ID, inbox.ChannelNote)
		if err != nil || d.Channel != inbox.ChannelNote || d.State != inbox.StateSent || d.Reason != inbox.ReasonNote {
			t.Fatalf("ReplyChannel(note) = %+v, %v", d, err)
		}
		n := f.note(t, c.ID, f.alice.ID, "Carol is a VIP: refund without asking")
		if chat.reaches() != 0 || email.reaches() != 0 {
			t.Fatalf("Reaches called %d (chat), %d (email) times for a note, want 0", chat.reaches(), email.reaches())
		}
		if got := append(chat.deliveries(), email.deliveries()...); len(got) != 0 {
			t.Fatalf("a note was handed to a channel: %+v", got)
		}
		var rows int64
		noErr(t, "count outbox", f.s.Gorm().Raw(`SELECT COUNT(*) FROM email_outbox`).Scan(&rows).Error)
		if rows != 0 {
			t.Fatalf("%d outbox rows after a note, want 0", rows)
		}
		if got := f.message(t, c.ID, n.ID); got.Channel != inbox.ChannelNote || got.State != inbox.StateSent {
			t.Fatalf("stored note = %+v", got)
		}
		// The same conversation's reply still asks (the contact is
		// offline with an address: email), so the counts above mean
		// something.
		if _, d, _, err := f.reply(c.ID, inbox.ReplyAuto, "It ships today."); err != nil || d.Channel != inbox.ChannelEmail || email.reaches() == 0 {
			t.Fatalf("reply = %+v, %v (email asked %d times); want email", d, err, email.reaches())
		}

		// Only agents write notes.
		for _, author := range []string{inbox.AuthorContact, inbox.AuthorSystem} {
			_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: author, Channel: inbox.ChannelNote, Text: "x"})
			var inv *inbox.InvalidError
			if !errors.As(err, &inv) || inv.Field != "channel" {
				t.Fatalf("AddMessage(%s, note) = %v, want invalid channel", author, err)
			}
		}
	})
}

// A note reopens nothing and returns nothing to Unassigned, leaves the
// conversation's last activity as it was (the contact's view of it), and
// reaches the agents as a message_added event on channel note; the
// dashboard's list may show it as the last message.
func TestNoteChangesNothingForTheContact(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		f := newFixtureOpts(t, url, &inbox.Options{Now: clock.Now})
		sub := f.s.Hub().Subscribe(0, 100)
		defer sub.Close()
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "hello")
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		f.say(t, c.ID, inbox.AuthorAgent, "hi")
		clock.Advance(time.Minute)

		// Open and joined: it stays in Mine, out of Unassigned.
		before, err := f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		clock.Advance(time.Minute)
		n1 := f.note(t, c.ID, f.alice.ID, "checked the order")
		after, err := f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		if !after.LastActivityAt.Equal(before.LastActivityAt) || after.Seq != before.Seq+1 {
			t.Fatalf("after a note: last activity %v (was %v), seq %d (was %d); want the same activity, seq + 1",
				after.LastActivityAt, before.LastActivityAt, after.Seq, before.Seq)
		}
		if has(f.column(t, inbox.ColumnUnassigned, f.bob.ID), c.ID) || !has(f.column(t, inbox.ColumnMine, f.alice.ID), c.ID) {
			t.Fatalf("a note moved the joined conversation")
		}

		// Closed: a note neither reopens it nor puts it in Unassigned.
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
		closed, err := f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		clock.Advance(time.Minute)
		n2 := f.note(t, c.ID, f.bob.ID, "customer called: fixed by phone")
		after, err = f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		if after.Status != inbox.StatusClosed || after.ClosedAt == nil || !after.LastActivityAt.Equal(closed.LastActivityAt) {
			t.Fatalf("after a note in a closed conversation: %+v, want closed as it was (%+v)", after, closed)
		}
		if has(f.column(t, inbox.ColumnUnassigned, f.bob.ID), c.ID) || !has(f.column(t, inbox.ColumnClosed, f.bob.ID), c.ID) {
			t.Fatalf("a note moved the closed conversation out of Closed")
		}
		item, err := f.s.ConversationItem(ctx, c.ID, f.bob.ID)
		if err != nil || item.LastMessage == nil || item.LastMessage.ID != n2.ID || item.Unread != 1 {
			t.Fatalf("ConversationItem() = %+v, %v; want the note as last message, the contact's hello alone unread", item, err)
		}

		// The agents' events carry both notes, neither reopening.
		var notes []inbox.Message
		for len(notes) < 2 {
			ev := inboxtest.Receive(t, sub.C, "an event")
			var added inbox.MessageAdded
			if ev.Type != inbox.EventMessageAdded || ev.Decode(&added) != nil || added.Message.Channel != inbox.ChannelNote {
				continue
			}
			if added.Reopened {
				t.Fatalf("note event %s says reopened", ev.Data)
			}
			notes = append(notes, added.Message)
		}
		if notes[0].ID != n1.ID || notes[1].ID != n2.ID || notes[1].Text != n2.Text || notes[1].AgentID == nil || *notes[1].AgentID != f.bob.ID {
			t.Fatalf("note events = %+v, want %d and %d", notes, n1.ID, n2.ID)
		}
		events(t, f.s, c.ID) // the conversation's own seq has no gap
	})
}

// What the contact reads never holds a note: their page of messages
// (the note is not counted in its limit), the names of the agents in
// their history, their read receipts (a note stays sent), and the
// attachments they may download.
func TestNoteIsNotTheContacts(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		hello := f.say(t, c.ID, inbox.AuthorContact, "hello")
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		att, err := f.s.AddAttachment(ctx, c.ID, inbox.Uploader{Author: inbox.AuthorAgent, AgentID: f.bob.ID}, "invoice.txt", "text/plain", []byte("internal"))
		noErr(t, "AddAttachment()", err)
		n1 := f.note(t, c.ID, f.bob.ID, "see the invoice", att.ID)
		reply := f.say(t, c.ID, inbox.AuthorAgent, "hi Carol")
		n2 := f.note(t, c.ID, f.alice.ID, "she seems upset")

		page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{Contact: true, Limit: 1})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != reply.ID || !page.HasBefore {
			t.Fatalf("the contact's last page of 1 = %+v, %v; want the reply, more before", page, err)
		}
		page, err = f.s.Messages(ctx, c.ID, inbox.MessageQuery{Contact: true, Before: reply.Seq})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != hello.ID || page.HasBefore {
			t.Fatalf("the contact's page before the reply = %+v, %v; want hello alone", page, err)
		}
		page, err = f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 4 {
			t.Fatalf("the agents' page = %+v, %v; want all 4 messages, notes included", page, err)
		}

		authors, err := f.s.Authors(ctx, c.ID)
		if err != nil || len(authors) != 1 || authors[0].ID != f.alice.ID {
			t.Fatalf("Authors() = %+v, %v; want alice alone (bob wrote only a note)", authors, err)
		}

		if _, err := f.s.OpenContactAttachment(ctx, f.contact.ID, att.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenContactAttachment(note's) = %v, want ErrNotFound", err)
		}
		if a, err := f.s.OpenAttachment(ctx, c.ID, f.alice.ID, att.ID); err != nil || string(a.Data) != "internal" {
			t.Fatalf("OpenAttachment(note's) by an agent = %+v, %v", a, err)
		}

		sub := f.s.Hub().Subscribe(c.ID, 10)
		defer sub.Close()
		conv, err := f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		noErr(t, "MarkRead(contact)", f.s.MarkRead(ctx, c.ID, 0, conv.Seq))
		ev := inboxtest.Receive(t, sub.C, "messages_read")
		var read inbox.MessagesRead
		if ev.Type != inbox.EventMessagesRead || ev.Decode(&read) != nil || !slices.Equal(read.MessageIDs, []int64{reply.ID}) {
			t.Fatalf("event = %s %s, want messages_read of the reply alone", ev.Type, ev.Data)
		}
		for _, id := range []int64{n1.ID, n2.ID} {
			if m := f.message(t, c.ID, id); m.State != inbox.StateSent {
				t.Fatalf("note %d after the contact read = %s, want sent", id, m.State)
			}
		}
	})
}

// No mail ever carries a note: no reply, no digest of the unread chat
// messages of an offline contact (rule 7), no context of a digest.
func TestNoteNeverMailed(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "Can you check order 1234?")
		m1 := f.agentSays(t, c.ID, "Let me look.")
		f.note(t, c.ID, f.alice.ID, "order 1234 is lost; do not tell her yet")
		f.clock.Advance(2 * digestAfter)
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() = %d, want 1", n)
		}
		e := f.claimOne(t, f.outboxRows(t, c.ID, inbox.OutboundDigest)[0])
		if !slices.Equal(messageIDs(e.Messages), []int64{m1.ID}) || e.Context != "Can you check order 1234?" {
			t.Fatalf("digest = %+v, want the chat message alone", e)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))

		// Notes alone never come due.
		f.note(t, c.ID, f.alice.ID, "still lost")
		f.clock.Advance(2 * digestAfter)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() with only a note unread = %d, want 0", n)
		}
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() = %v, want nothing to send", ids(got))
		}
	})
}

// A note's client id is its author's key as any message's: a retry is
// answered with the note, and the key used again for a reply (or the
// reverse) is a conflict even with the same text, never the other kind
// of message.
func TestNoteClientID(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		msg := func(channel, clientID string) (inbox.Message, bool, error) {
			m, _, created, err := f.s.AddReply(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID,
				Channel: channel, ClientID: clientID, Text: "same words"})
			return m, created, err
		}
		n, created, err := msg(inbox.ChannelNote, "k-1")
		if err != nil || !created {
			t.Fatalf("note = %v, %v", created, err)
		}
		again, created, err := msg(inbox.ChannelNote, "k-1")
		if err != nil || created || again.ID != n.ID || again.Channel != inbox.ChannelNote {
			t.Fatalf("retry of the note = %+v, %v, %v; want note %d", again, created, err, n.ID)
		}
		if _, _, err := msg(inbox.ChannelChat, "k-1"); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("reply under a note's client id = %v, want ErrConflict", err)
		}
		if _, _, err := msg(inbox.ReplyAuto, "k-2"); err != nil {
			t.Fatalf("reply = %v", err)
		}
		if _, _, err := msg(inbox.ChannelNote, "k-2"); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("note under a reply's client id = %v, want ErrConflict", err)
		}

		// In one batch: notes, replies and contact messages sent at once,
		// in a conversation each and in a shared one, retries included.
		other := f.start(t)
		type answer struct {
			in      inbox.NewMessage
			m       inbox.Message
			created bool
			err     error
		}
		var ins []inbox.NewMessage
		for i := range 8 {
			conv := c.ID
			if i%2 == 1 {
				conv = other.ID
			}
			ins = append(ins,
				inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &f.bob.ID, Channel: inbox.ChannelNote, Text: "n", ClientID: "b-" + string(rune('a'+i))},
				inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &f.bob.ID, Channel: inbox.ChannelNote, Text: "n", ClientID: "b-" + string(rune('a'+i))},
				inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &f.bob.ID, Text: "r"},
				inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorContact, Text: "c"})
		}
		answers := make(chan answer, len(ins))
		for _, in := range ins {
			if err := f.s.AddMessageAsync(ctx, in, func(m inbox.Message, created bool, err error) {
				answers <- answer{in, m, created, err}
			}); err != nil {
				t.Fatalf("AddMessageAsync() = %v", err)
			}
		}
		notes := map[string]int64{}
		for range ins {
			a := inboxtest.Receive(t, answers, "an answer")
			switch {
			case a.err != nil:
				t.Fatalf("AddMessageAsync(%+v) = %v", a.in, a.err)
			case a.in.Channel == inbox.ChannelNote && (a.m.Channel != inbox.ChannelNote || a.m.State != inbox.StateSent):
				t.Fatalf("note stored as %+v", a.m)
			case a.in.Channel == inbox.ChannelNote:
				if id, ok := notes[a.in.ClientID]; ok && id != a.m.ID {
					t.Fatalf("note %s stored twice: %d and %d", a.in.ClientID, id, a.m.ID)
				}
				notes[a.in.ClientID] = a.m.ID
			case a.m.Channel == inbox.ChannelNote:
				t.Fatalf("%+v stored as a note", a.in)
			}
		}
		events(t, f.s, c.ID)
		events(t, f.s, other.ID)
	})
}
