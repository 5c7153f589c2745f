package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// testChannel is a Channel that records what the store hands it. Its
// Reaches is reach, or, when nil, the real channels' rule: chat reaches
// an online contact, email one with an address.
type testChannel struct {
	name  string
	reach func(inbox.Contact) bool

	mu        sync.Mutex
	delivered []inbox.Message
}

var _ inbox.Channel = (*testChannel)(nil)

func (c *testChannel) Name() string { return c.name }

func (c *testChannel) Reaches(ct inbox.Contact) bool {
	switch {
	case c.reach != nil:
		return c.reach(ct)
	case c.name == inbox.ChannelEmail:
		return ct.Email != ""
	}
	return ct.Online
}

func (c *testChannel) Deliver(_ context.Context, m inbox.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = append(c.delivered, m)
	return nil
}

func (c *testChannel) deliveries() []inbox.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]inbox.Message(nil), c.delivered...)
}

func emailChannel() *testChannel { return &testChannel{name: inbox.ChannelEmail} }

// reply is an agent reply of alice's on the requested channel.
func (f *fixture) reply(convID int64, channel, text string) (inbox.Message, inbox.ReplyDecision, bool, error) {
	return f.s.AddReply(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Channel: channel, Text: text})
}

// Rule 5, as the composer's preview (ReplyChannel) says it and as the
// reply is stored (AddReply): one decision, with the channels given.
func TestReplyChannel(t *testing.T) {
	for _, tc := range []struct {
		name             string
		online, hasEmail bool
		mailbox          bool // an email channel exists
		requested        string
		channel, state   string
		reason           string
	}{
		{"online auto", true, true, true, "auto", "chat", "sent", "the contact is online"},
		{"online, empty is auto", true, false, false, "", "chat", "sent", "the contact is online"},
		{"offline with email", false, true, true, "", "email", "queued", "offline and has an email address"},
		{"offline without email", false, false, true, "auto", "chat", "queued", "no email address"},
		{"offline, no mailbox", false, true, false, "auto", "chat", "queued", "no mailbox is configured"},
		{"agent chooses chat while offline", false, true, true, "chat", "chat", "queued", "chat chosen by the agent"},
		{"agent chooses email while online", true, true, true, "email", "email", "queued", "email chosen by the agent"},
		{"email without address", true, false, true, "email", "", "", "no email address"},
		{"email without mailbox", true, true, false, "email", "", "", "no mailbox is configured"},
		{"unknown", true, true, true, "fax", "", "", "must be auto, chat, email or note"},
		{"a note goes nowhere", false, true, true, "note", "note", "sent", "private note"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) {
				opts := &inbox.Options{}
				if tc.mailbox {
					opts.Channels = []inbox.Channel{emailChannel()}
				}
				f := newFixtureOpts(t, url, opts)
				s := f.s
				nc := inbox.NewContact{Name: "Dan"}
				if tc.hasEmail {
					nc.Email = "dan@example.com"
				}
				contact, err := s.CreateContact(ctx, nc)
				noErr(t, "CreateContact()", err)
				noErr(t, "SetContactOnline()", s.SetContactOnline(ctx, contact.ID, tc.online))
				c, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
				noErr(t, "StartConversation()", err)
				d, err := s.ReplyChannel(ctx, c.ID, tc.requested)
				m, stored, created, serr := f.reply(c.ID, tc.requested, "hello")
				if tc.channel == "" {
					for name, err := range map[string]error{"ReplyChannel()": err, "AddReply()": serr} {
						var inv *inbox.InvalidError
						if !errors.As(err, &inv) || inv.Field != "channel" || !strings.Contains(inv.Error(), tc.reason) {
							t.Fatalf("%s = %v; want an invalid channel saying %q", name, err, tc.reason)
						}
					}
					return
				}
				want := inbox.ReplyDecision{Channel: tc.channel, State: tc.state}
				if err != nil || d.Channel != want.Channel || d.State != want.State || !strings.Contains(d.Reason, tc.reason) {
					t.Fatalf("ReplyChannel() = %+v, %v; want %s/%s saying %q", d, err, tc.channel, tc.state, tc.reason)
				}
				if serr != nil || !created || stored != d || m.Channel != tc.channel || m.State != tc.state {
					t.Fatalf("AddReply() = %+v, %+v, %v, %v; want the preview's decision %+v", m, stored, created, serr, d)
				}
			})
		})
	}
}

// The store decides with its channels' Reaches, not with its own idea of
// the contact: a chat channel that reaches nobody sends an online
// contact's reply by email; one that reaches everybody sends an offline
// contact's by chat. Each new agent message is handed to its channel's
// Deliver after the commit; a contact's message to none.
func TestReplyUsesChannels(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		chat := &testChannel{name: inbox.ChannelChat, reach: func(inbox.Contact) bool { return false }}
		email := emailChannel()
		f := newFixtureOpts(t, url, &inbox.Options{Channels: []inbox.Channel{chat, email}})
		c := f.start(t)
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, true))
		m, d, _, err := f.reply(c.ID, "", "by mail, whatever the widget says")
		if err != nil || d.Channel != inbox.ChannelEmail || m.Channel != inbox.ChannelEmail {
			t.Fatalf("AddReply() with chat reaching nobody = %+v, %+v, %v; want email", m, d, err)
		}
		f.say(t, c.ID, inbox.AuthorContact, "thanks")
		if got := email.deliveries(); len(got) != 1 || got[0].ID != m.ID || got[0].State != inbox.StateQueued {
			t.Fatalf("email channel was handed %+v, want the reply %d, queued", got, m.ID)
		}
		if got := chat.deliveries(); len(got) != 0 {
			t.Fatalf("chat channel was handed %+v, want nothing", got)
		}

		noErr(t, "SetChannels()", f.s.SetChannels(&testChannel{name: inbox.ChannelChat, reach: func(inbox.Contact) bool { return true }}))
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, false))
		if m, d, _, err := f.reply(c.ID, "auto", "by chat"); err != nil || d.Channel != inbox.ChannelChat || m.State != inbox.StateSent {
			t.Fatalf("AddReply() with chat reaching everybody = %+v, %+v, %v; want chat, sent", m, d, err)
		}
	})
}

func TestSetChannels(t *testing.T) {
	s := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
	for _, chs := range [][]inbox.Channel{
		{emailChannel(), emailChannel()},
		{&testChannel{name: "fax"}},
		{nil},
	} {
		if err := s.SetChannels(chs...); err == nil {
			t.Fatalf("SetChannels(%v) = nil, want an error", chs)
		}
	}
	if _, err := inbox.Open(ctx, inboxtest.SQLiteURL(t), &inbox.Options{Channels: []inbox.Channel{emailChannel(), emailChannel()}}); err == nil {
		t.Fatalf("Open() with two email channels = nil, want an error")
	}
}

// An agent message's channel and state are the store's to decide.
func TestReplyRequest(t *testing.T) {
	f := newFixture(t, inboxtest.SQLiteURL(t))
	c := f.start(t)
	for _, m := range []inbox.NewMessage{
		{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "x", State: inbox.StateSent},
		{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID, Text: "x", Channel: "fax"},
		{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "x", Channel: inbox.ReplyAuto},
	} {
		var inv *inbox.InvalidError
		if _, _, err := f.s.AddMessage(ctx, m); !errors.As(err, &inv) {
			t.Fatalf("AddMessage(%+v) = %v, want an InvalidError", m, err)
		}
	}
	if _, _, _, err := f.s.AddReply(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "x"}); err == nil {
		t.Fatalf("AddReply() of a contact message = nil, want an error")
	}
}

// A reply by email is stored queued with exactly one outbox row, in the
// same transaction: a retry adds none, and a rolled-back reply leaves
// neither the message nor the row, and is handed to no channel.
func TestEmailReplyOutbox(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		email := emailChannel()
		f := newFixtureOpts(t, url, &inbox.Options{Channels: []inbox.Channel{email}, Now: clock.Now})
		c := f.start(t)
		send := func(clientID string) (inbox.Message, inbox.ReplyDecision, bool, error) {
			return f.s.AddReply(ctx, inbox.NewMessage{ConversationID: c.ID, ClientID: clientID, Author: inbox.AuthorAgent,
				AgentID: &f.alice.ID, Text: "See you by mail"})
		}
		m, d, created, err := send("r1")
		if err != nil || !created || d.Channel != inbox.ChannelEmail || m.Channel != inbox.ChannelEmail || m.State != inbox.StateQueued {
			t.Fatalf("AddReply() = %+v, %+v, %v, %v; want a new email reply, queued", m, d, created, err)
		}
		type outboxRow struct {
			Kind, State    string
			ConversationID int64
			MessageID      int64
			Attempts       int
			NextAttemptAt  time.Time
		}
		rows := func() []outboxRow {
			t.Helper()
			var rows []outboxRow
			noErr(t, "reading email_outbox", f.s.Gorm().Raw(`SELECT kind, state, conversation_id, message_id, attempts, next_attempt_at
				FROM email_outbox ORDER BY id`).Scan(&rows).Error)
			return rows
		}
		want := outboxRow{Kind: inbox.OutboundReply, State: "pending", ConversationID: c.ID, MessageID: m.ID, NextAttemptAt: clock.Now()}
		if got := rows(); len(got) != 1 || got[0].Kind != want.Kind || got[0].State != want.State || got[0].ConversationID != want.ConversationID ||
			got[0].MessageID != want.MessageID || got[0].Attempts != 0 || !got[0].NextAttemptAt.Equal(want.NextAttemptAt) {
			t.Fatalf("email_outbox = %+v, want one row %+v", got, want)
		}
		if got := email.deliveries(); len(got) != 1 || got[0].ID != m.ID {
			t.Fatalf("email channel was handed %+v, want the reply once", got)
		}

		// A retry is the stored reply: no second row, nothing handed on.
		again, d, created, err := send("r1")
		if err != nil || created || again.ID != m.ID || d.Channel != inbox.ChannelEmail || d.Reason == "" {
			t.Fatalf("retried AddReply() = %+v, %+v, %v, %v; want the first reply on its channel", again, d, created, err)
		}
		if n := len(rows()); n != 1 {
			t.Fatalf("%d outbox rows after a retry, want 1", n)
		}

		// Rolled back: neither the message nor its row, and no Deliver.
		before, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		noErr(t, "Messages()", err)
		fail := errors.New("rolled back by the test")
		f.s.SetBeforeCommit(func() error { return fail })
		_, _, _, err = send("r2")
		f.s.SetBeforeCommit(nil)
		if !errors.Is(err, fail) && err == nil {
			t.Fatalf("AddReply() with a failing commit = nil, want an error")
		}
		after, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{})
		noErr(t, "Messages()", err)
		if len(after.Messages) != len(before.Messages) {
			t.Fatalf("%d messages after a rolled-back reply, want %d", len(after.Messages), len(before.Messages))
		}
		if n := len(rows()); n != 1 {
			t.Fatalf("%d outbox rows after a rolled-back reply, want 1", n)
		}
		if n := len(email.deliveries()); n != 1 {
			t.Fatalf("email channel handed %d messages after a rolled-back reply, want 1", n)
		}
	})
}

// A contact who comes online while replies to them are being stored never
// ends online with a chat reply still queued: the reply's channel is
// decided in the transaction that stores it, so the presence write either
// finds the queued reply committed (and delivers it) or is seen by the
// decision. The test flips the contact online between the decision and
// the commit of a batch of replies (SetAfterDecide), and lets the flip go
// as far as it can: it ends, or it waits for the batch's transaction (on
// SQLite for the writer connection, on PostgreSQL for the contact's row).
// Deciding before the transaction, as web did with ReplyChannel and then
// AddMessage, lets the flip commit first and leaves the reply queued.
func TestReplyWhileComingOnline(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		s := f.s
		contact, err := s.CreateContact(ctx, inbox.NewContact{Name: "Nina"}) // no email: chat or queued
		noErr(t, "CreateContact()", err)
		c, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		noErr(t, "StartConversation()", err)
		waiting := waiter(t, s, url, "contacts")
		const rounds, replies = 4, 16
		for round := range rounds {
			noErr(t, "SetContactOnline(false)", s.SetContactOnline(ctx, contact.ID, false))
			flipErr := make(chan error, 1)
			var once sync.Once
			s.SetAfterDecide(func() {
				once.Do(func() {
					untilWaiting(t, waiting, "the presence write", func() {
						flipErr <- s.SetContactOnline(ctx, contact.ID, true)
					})
				})
			})
			errs := make(chan error, replies)
			for i := range replies {
				go func() {
					_, _, _, err := f.reply(c.ID, inbox.ReplyAuto, fmt.Sprintf("round %d reply %d", round, i))
					errs <- err
				}()
			}
			for range replies {
				noErr(t, "AddReply()", inboxtest.Receive(t, errs, "a reply stored"))
			}
			noErr(t, "SetContactOnline(true)", inboxtest.Receive(t, flipErr, "the contact online"))
			s.SetAfterDecide(nil)

			ct, err := s.Contact(ctx, contact.ID)
			noErr(t, "Contact()", err)
			page, err := s.Messages(ctx, c.ID, inbox.MessageQuery{Limit: 200})
			noErr(t, "Messages()", err)
			for _, m := range page.Messages {
				if ct.Online && m.Channel == inbox.ChannelChat && m.State == inbox.StateQueued {
					t.Fatalf("round %d: %q is queued while the contact is online", round, m.Text)
				}
			}
		}
	})
}

// untilWaiting runs write in a goroutine and returns once it has ended
// or waits for another transaction (waiting grows): called inside a
// transaction, it lets a concurrent write go as far as it can. It fails
// the test if neither happens within inboxtest.Patience.
func untilWaiting(t *testing.T, waiting func() int64, what string, write func()) {
	before := waiting()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		write()
	}()
	for deadline := time.Now().Add(inboxtest.Patience); ; time.Sleep(time.Millisecond) {
		select {
		case <-ended:
			return
		default:
		}
		if waiting() > before {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s neither ended nor waited for the transaction", what)
			return
		}
	}
}

// waiter returns a count that grows when a write of s waits for another
// transaction: on SQLite, for the single writer connection; on
// PostgreSQL, for a row of one of the tables (a waiter holds the row's
// tuple lock while it waits for the holder's transaction).
func waiter(t *testing.T, s *inbox.Store, url string, tables ...string) func() int64 {
	t.Helper()
	if s.Dialect() == "sqlite" {
		return func() int64 { return s.DB().Stats().WaitCount }
	}
	db, err := sql.Open("pgx", url)
	noErr(t, "sql.Open()", err)
	t.Cleanup(func() { db.Close() })
	rels := make([]string, len(tables))
	for i, name := range tables {
		rels[i] = "'" + name + "'::regclass"
	}
	return func() int64 {
		var n int64
		err := db.QueryRow(`SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'tuple' AND l.relation IN (` + strings.Join(rels, ", ") + `) AND a.wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Errorf("reading pg_locks: %v", err)
		}
		return n
	}
}
