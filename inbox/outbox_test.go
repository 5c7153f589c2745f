package inbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// testMailboxes are the mailboxes of the outbox tests: the first, the
// default, with plus addressing.
var testMailboxes = []inbox.MailboxInfo{
	{Name: "support", Address: "support@example.com", PlusAddressing: true},
	{Name: "sales", Address: "sales@example.org"},
}

// emailFixture is a fixture with mailboxes, the email channel that goes
// with them (a testChannel: it reaches a contact with an address), and a
// clock the test moves.
type emailFixture struct {
	*fixture
	clock *inboxtest.Clock
}

// emailOptions are the store options of an email fixture.
func emailOptions(clock *inboxtest.Clock) *inbox.Options {
	return &inbox.Options{Now: clock.Now, Mailboxes: testMailboxes, Channels: []inbox.Channel{emailChannel()}}
}

func newEmailFixture(t *testing.T, url string) *emailFixture {
	t.Helper()
	clock := inboxtest.NewClock()
	return &emailFixture{newFixtureOpts(t, url, emailOptions(clock)), clock}
}

// mailIn stores a contact message with its envelope as the ingest does
// (helper "store"): read from mailbox, with Message-ID headerID, the
// References refs, and automatic or not.
func (f *emailFixture) mailIn(t *testing.T, convID int64, text, mailbox, headerID, refs string, auto bool) inbox.Message {
	t.Helper()
	m, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorContact, Channel: inbox.ChannelEmail, Text: text})
	if err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	if err := f.s.Gorm().Exec(`INSERT INTO email_messages (message_id, mailbox, header_id, refs, auto, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.ID, mailbox, headerID, refs, auto, f.s.Now()).Error; err != nil {
		t.Fatalf("insert email_messages: %v", err)
	}
	return m
}

// emailReply stores Alice's reply by email (AddReply, the agent's choice),
// queued, and returns it with the id of the one outbox row stored with it.
func (f *fixture) emailReply(t *testing.T, convID int64, text string, attachments ...int64) (inbox.Message, int64) {
	t.Helper()
	m, d, _, err := f.s.AddReply(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID,
		Channel: inbox.ChannelEmail, Text: text, AttachmentIDs: attachments})
	if err != nil || d.Channel != inbox.ChannelEmail || m.State != inbox.StateQueued {
		t.Fatalf("AddReply() = %+v, %+v, %v; want a reply by email, queued", m, d, err)
	}
	var rows []int64
	if err := f.s.Gorm().Raw(`SELECT id FROM email_outbox WHERE message_id = ? AND kind = ?`, m.ID, inbox.OutboundReply).
		Scan(&rows).Error; err != nil || len(rows) != 1 {
		t.Fatalf("outbox rows of reply %d = %v, %v; want one", m.ID, rows, err)
	}
	return m, rows[0]
}

// claim claims up to limit mails with a lease of a minute.
func (f *emailFixture) claim(t *testing.T, limit int) []inbox.OutboundEmail {
	t.Helper()
	got, err := f.s.ClaimOutbox(ctx, limit, time.Minute)
	if err != nil {
		t.Fatalf("ClaimOutbox() = %v", err)
	}
	return got
}

// claimOne claims and wants exactly the row id.
func (f *emailFixture) claimOne(t *testing.T, id int64) inbox.OutboundEmail {
	t.Helper()
	got := f.claim(t, 10)
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("ClaimOutbox() = %v, want row %d alone", ids(got), id)
	}
	return got[0]
}

func ids(es []inbox.OutboundEmail) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// outboxState is an outbox row as stored.
type outboxState struct {
	Kind          string
	State         string
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	LeaseUntil    *time.Time
	SentAt        *time.Time
	HeaderID      string
}

func (f *emailFixture) row(t *testing.T, id int64) outboxState {
	t.Helper()
	var rows []outboxState
	if err := f.s.Gorm().Raw(`SELECT kind, state, attempts, last_error, next_attempt_at, lease_until, sent_at, header_id
		FROM email_outbox WHERE id = ?`, id).Scan(&rows).Error; err != nil || len(rows) != 1 {
		t.Fatalf("outbox row %d: %v, %v", id, rows, err)
	}
	return rows[0]
}

// outboxRows returns the ids of the conversation's outbox rows of kind.
func (f *emailFixture) outboxRows(t *testing.T, convID int64, kind string) []int64 {
	t.Helper()
	var out []int64
	if err := f.s.Gorm().Raw(`SELECT id FROM email_outbox WHERE conversation_id = ? AND kind = ? ORDER BY id`, convID, kind).
		Scan(&out).Error; err != nil {
		t.Fatalf("outbox rows: %v", err)
	}
	return out
}

// message reads one message of a conversation.
func (f *fixture) message(t *testing.T, convID, id int64) inbox.Message {
	t.Helper()
	page, err := f.s.Messages(ctx, convID, inbox.MessageQuery{Limit: 200})
	if err != nil {
		t.Fatalf("Messages() = %v", err)
	}
	for _, m := range page.Messages {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %d not found", id)
	return inbox.Message{}
}

// A claimed reply carries everything the sender composes it from: the
// mailbox its conversation's mail came through, a signed Message-ID of
// ours recorded for threading, In-Reply-To and References to the
// conversation's newest mail, the contact, the subject, the agent, the
// text and the attachments' bytes.
func TestClaimOutboxBuildsReply(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelEmail, "Order 1234 — late")
		noErr(t, "StartConversation()", err)
		f.mailIn(t, c.ID, "Where is my order?", "sales", "in1@customer.example", "root@customer.example <mid@customer.example>", false)
		att, err := f.s.AddAttachment(ctx, c.ID, agentUpload(f.alice), "invoice.pdf", "application/pdf", []byte("%PDF-1.4 invoice"))
		noErr(t, "AddAttachment()", err)
		m, rowID := f.emailReply(t, c.ID, "It ships today.", att.ID)

		e := f.claimOne(t, rowID)
		token, _ := f.s.ConversationToken(ctx, c.ID)
		prefix := fmt.Sprintf("m%d.", rowID)
		if !strings.HasPrefix(e.MessageID, prefix) || !strings.HasSuffix(e.MessageID, "@example.org") || len(e.MessageID) != len(prefix)+16+len("@example.org") {
			t.Errorf("MessageID = %q, want m%d.<16 signature characters>@example.org (the sales mailbox's domain)", e.MessageID, rowID)
		}
		want := inbox.OutboundEmail{ID: rowID, Kind: inbox.OutboundReply, ConversationID: c.ID, Mailbox: "sales", MessageID: e.MessageID,
			InReplyTo: "in1@customer.example", References: []string{"root@customer.example", "mid@customer.example", "in1@customer.example"},
			To: inbox.Address{Name: "Carol", Addr: "carol@example.com"}, Subject: "Order 1234 — late", AgentName: "Alice", Token: token}
		got := e
		got.Messages = nil
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("ClaimOutbox() =\n%+v\nwant\n%+v", got, want)
		}
		if len(e.Messages) != 1 || e.Messages[0].ID != m.ID || e.Messages[0].Text != "It ships today." || e.Messages[0].AgentName != "Alice" ||
			len(e.Messages[0].Attachments) != 1 || string(e.Messages[0].Attachments[0].Data) != "%PDF-1.4 invoice" {
			t.Errorf("Messages = %+v, want the reply with its attachment's bytes", e.Messages)
		}
		var rec []struct {
			ConversationID, MessageID int64
			Direction                 string
		}
		if err := f.s.Gorm().Raw(`SELECT conversation_id, message_id, direction FROM email_ids WHERE "key" = ?`, e.MessageID).
			Scan(&rec).Error; err != nil || len(rec) != 1 || rec[0].ConversationID != c.ID || rec[0].MessageID != m.ID || rec[0].Direction != "out" {
			t.Errorf("email_ids of %s = %+v, %v; want it recorded (out) for threading", e.MessageID, rec, err)
		}

		// A chat conversation without mail goes from the first mailbox,
		// whose plus addressing puts the token in Reply-To.
		chat := f.start(t)
		_, chatRow := f.emailReply(t, chat.ID, "We answered by email.")
		e = f.claimOne(t, chatRow)
		token, _ = f.s.ConversationToken(ctx, chat.ID)
		if e.Mailbox != "support" || e.ReplyTo != "support+"+token+"@example.com" || e.InReplyTo != "" || e.References != nil ||
			!strings.HasSuffix(e.MessageID, "@example.com") {
			t.Errorf("chat reply = mailbox %q, Reply-To %q, In-Reply-To %q, References %q, Message-ID %q",
				e.Mailbox, e.ReplyTo, e.InReplyTo, e.References, e.MessageID)
		}

		// A long chain keeps its first and its latest Message-IDs.
		long := f.start(t)
		var refs []string
		for i := range 30 {
			refs = append(refs, fmt.Sprintf("<r%d@x>", i))
		}
		f.mailIn(t, long.ID, "again", "support", "last@x", strings.Join(refs, " "), false)
		_, longRow := f.emailReply(t, long.ID, "Noted.")
		e = f.claimOne(t, longRow)
		if len(e.References) != 20 || e.References[0] != "r0@x" || e.References[1] != "r12@x" || e.References[19] != "last@x" || e.InReplyTo != "last@x" {
			t.Errorf("References = %q, want r0@x, r12@x ... r29@x, last@x", e.References)
		}
	})
}

// Two claimers (two nodes on one database) never get the same row, and
// between them get every row once.
func TestClaimOutboxExclusive(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		opts := emailOptions(clock)
		f := &emailFixture{newFixtureOpts(t, url, opts), clock}
		other := inboxtest.Open(t, url, opts)
		c := f.start(t)
		const rows = 40
		for i := range rows {
			f.emailReply(t, c.ID, fmt.Sprintf("reply %d", i))
		}
		var (
			mu   sync.Mutex
			seen = map[int64]int{}
			wg   sync.WaitGroup
			errs = make(chan error, 4)
		)
		for i := range 4 {
			s := f.s
			if i%2 == 1 {
				s = other
			}
			wg.Go(func() {
				for {
					got, err := s.ClaimOutbox(ctx, 3, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, e := range got {
						seen[e.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("ClaimOutbox() = %v", err)
		}
		if len(seen) != rows {
			t.Errorf("claimed %d rows, want %d", len(seen), rows)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("row %d claimed %d times", id, n)
			}
		}
	})
}

// On PostgreSQL a claimer skips the rows another one holds locked
// (SKIP LOCKED) instead of waiting for it or taking them too.
func TestClaimOutboxSkipsLockedRows(t *testing.T) {
	f := newEmailFixture(t, inboxtest.PostgresURL(t))
	c := f.start(t)
	_, first := f.emailReply(t, c.ID, "one")
	_, second := f.emailReply(t, c.ID, "two")
	tx := f.s.Gorm().Begin()
	var locked []int64
	if err := tx.Raw(`SELECT id FROM email_outbox WHERE id = ? FOR UPDATE`, first).Scan(&locked).Error; err != nil || len(locked) != 1 {
		t.Fatalf("locking row %d: %v, %v", first, locked, err)
	}
	bounded, cancel := context.WithTimeout(ctx, inboxtest.Patience)
	defer cancel()
	got, err := f.s.ClaimOutbox(bounded, 10, time.Minute)
	tx.Rollback()
	if err != nil || !slices.Equal(ids(got), []int64{second}) {
		t.Fatalf("ClaimOutbox() with row %d locked = %v, %v; want row %d at once", first, ids(got), err, second)
	}
	f.claimOne(t, first)
}

// A lease that ends (its holder died) offers the row again, with the same
// Message-ID and one more attempt; before it ends nobody else gets it.
func TestOutboxLeaseExpiry(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		_, rowID := f.emailReply(t, c.ID, "hello")
		first := f.claimOne(t, rowID)
		if first.Attempts != 0 {
			t.Errorf("first Attempts = %d, want 0", first.Attempts)
		}
		f.clock.Advance(time.Minute)
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() within the lease = %v, want nothing", ids(got))
		}
		f.clock.Advance(time.Second)
		again := f.claimOne(t, rowID)
		if again.MessageID != first.MessageID || again.Attempts != 1 {
			t.Errorf("re-claimed Message-ID %q attempts %d, want %q and 1", again.MessageID, again.Attempts, first.MessageID)
		}
		if st := f.row(t, rowID); st.State != "sending" || st.Attempts != 2 || st.LeaseUntil == nil ||
			!st.LeaseUntil.Equal(f.clock.Now().Add(time.Minute)) {
			t.Errorf("row = %+v, want sending, 2 attempts, leased a minute from now", st)
		}
	})
}

// A retry puts the row back until the given time with the server's
// answer; it is not offered before.
func TestOutboxRetry(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		m, rowID := f.emailReply(t, c.ID, "hello")
		f.claimOne(t, rowID)
		at := f.clock.Now().Add(5 * time.Minute)
		noErr(t, "OutboxRetry()", f.s.OutboxRetry(ctx, rowID, at, "421 4.7.0 try again later"))
		st := f.row(t, rowID)
		if st.State != "pending" || !st.NextAttemptAt.Equal(at) || st.LastError != "421 4.7.0 try again later" || st.LeaseUntil != nil {
			t.Fatalf("row after OutboxRetry() = %+v", st)
		}
		if got := f.message(t, c.ID, m.ID); got.State != inbox.StateQueued {
			t.Errorf("message state = %q, want queued while it waits", got.State)
		}
		f.clock.Advance(5*time.Minute - time.Second)
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() before the retry time = %v", ids(got))
		}
		f.clock.Advance(time.Second)
		if e := f.claimOne(t, rowID); e.Attempts != 1 {
			t.Errorf("Attempts = %d, want 1", e.Attempts)
		}
		if err := f.s.OutboxRetry(ctx, 999999, at, "x"); !errors.Is(err, inbox.ErrNotFound) {
			t.Errorf("OutboxRetry(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// A reply the server refuses for good turns failed with the server's
// answer on the message and in a message_state event, live and replayed.
func TestOutboxFailedReply(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		m, rowID := f.emailReply(t, c.ID, "hello")
		f.claimOne(t, rowID)
		sub := f.s.Hub().Subscribe(c.ID, 16)
		defer sub.Close()
		const answer = "550 5.1.1 <carol@example.com>: Recipient address rejected"
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, rowID, answer+"\r\n"))

		ev := inboxtest.Receive(t, sub.C, "message_state event")
		var st inbox.MessageState
		if err := ev.Decode(&st); err != nil || ev.Type != inbox.EventMessageState ||
			!slices.Equal(st.MessageIDs, []int64{m.ID}) || st.State != inbox.StateFailed || st.Error != answer {
			t.Fatalf("event = %s %s, want message_state failed with the answer", ev.Type, ev.Data)
		}
		evs := events(t, f.s, c.ID)
		if last := evs[len(evs)-1]; string(last.Data) != string(ev.Data) {
			t.Errorf("replayed %s, published %s", last.Data, ev.Data)
		}
		if got := f.message(t, c.ID, m.ID); got.State != inbox.StateFailed || got.Error != answer {
			t.Errorf("message = %q %q, want failed with the answer", got.State, got.Error)
		}
		if row := f.row(t, rowID); row.State != "failed" || row.LastError != answer {
			t.Errorf("row = %+v", row)
		}
		// Recording it again, or a late retry, changes nothing.
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, rowID, "again"))
		noErr(t, "OutboxRetry()", f.s.OutboxRetry(ctx, rowID, f.clock.Now(), "late"))
		if n := len(events(t, f.s, c.ID)); n != len(evs) {
			t.Errorf("events grew from %d to %d", len(evs), n)
		}
		if row := f.row(t, rowID); row.State != "failed" || row.LastError != answer {
			t.Errorf("row after repeats = %+v", row)
		}
		if got := f.claim(t, 10); len(got) != 0 {
			t.Errorf("a failed row was claimed: %v", ids(got))
		}
	})
}

// A sent reply turns sent, keeps its envelope and raw source like
// incoming mail, and the next reply threads on it.
func TestOutboxSentReply(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelEmail, "Order 1234 — late")
		noErr(t, "StartConversation()", err)
		f.mailIn(t, c.ID, "Where is it?", "sales", "in1@customer.example", "", false)
		m, rowID := f.emailReply(t, c.ID, "It ships today.")
		e := f.claimOne(t, rowID)
		sub := f.s.Hub().Subscribe(c.ID, 16)
		defer sub.Close()
		raw := "From: \"Alice via Sales\" <sales@example.org>\r\n" +
			"To: Carol <carol@example.com>\r\n" +
			"Cc: boss@customer.example\r\n" +
			"Subject: =?utf-8?q?Re:_Order_1234_=E2=80=94_late?=\r\n" +
			"Message-ID: <" + e.MessageID + ">\r\n" +
			"In-Reply-To: <in1@customer.example>\r\n" +
			"References: <in1@customer.example>\r\n" +
			"Auto-Submitted: no\r\n\r\nIt ships today.\r\n"
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, rowID, []byte(raw)))

		ev := inboxtest.Receive(t, sub.C, "message_state event")
		var st inbox.MessageState
		if err := ev.Decode(&st); err != nil || st.State != inbox.StateSent || !slices.Equal(st.MessageIDs, []int64{m.ID}) || st.Error != "" {
			t.Fatalf("event = %s %s, want message_state sent", ev.Type, ev.Data)
		}
		if got := f.message(t, c.ID, m.ID); got.State != inbox.StateSent {
			t.Errorf("message state = %q, want sent", got.State)
		}
		if row := f.row(t, rowID); row.State != "sent" || row.SentAt == nil || !row.SentAt.Equal(f.clock.Now()) || row.LeaseUntil != nil {
			t.Errorf("row = %+v, want sent now", row)
		}
		var env []struct {
			Mailbox, HeaderID, InReplyTo, Refs, Subject, FromAddr, ToAddrs, CcAddrs, FullText string
			Raw                                                                               []byte
		}
		if err := f.s.Gorm().Raw(`SELECT mailbox, header_id, in_reply_to, refs, subject, from_addr, to_addrs, cc_addrs, full_text, raw
			FROM email_messages WHERE message_id = ?`, m.ID).Scan(&env).Error; err != nil || len(env) != 1 {
			t.Fatalf("email_messages of the reply: %v, %v", env, err)
		}
		var from inbox.Address
		var to, cc []inbox.Address
		json.Unmarshal([]byte(env[0].FromAddr), &from)
		json.Unmarshal([]byte(env[0].ToAddrs), &to)
		json.Unmarshal([]byte(env[0].CcAddrs), &cc)
		if g := env[0]; g.Mailbox != "sales" || g.HeaderID != e.MessageID || g.InReplyTo != "in1@customer.example" ||
			g.Refs != "in1@customer.example" || g.Subject != "Re: Order 1234 — late" || string(g.Raw) != raw || g.FullText != "It ships today." ||
			from != (inbox.Address{Name: "Alice via Sales", Addr: "sales@example.org"}) ||
			!slices.Equal(to, []inbox.Address{{Name: "Carol", Addr: "carol@example.com"}}) ||
			!slices.Equal(cc, []inbox.Address{{Addr: "boss@customer.example"}}) {
			t.Errorf("envelope = %+v\nfrom %+v to %+v cc %+v", g, from, to, cc)
		}
		conv, _ := f.s.Conversation(ctx, c.ID)
		if !conv.HasEmail {
			t.Errorf("the conversation has no envelope indicator")
		}

		// Recorded twice (two nodes after a lease ended): nothing more.
		sentAt := f.clock.Now()
		f.clock.Advance(time.Minute)
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, rowID, []byte(raw)))
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, rowID, "550 late"))
		if got := f.message(t, c.ID, m.ID); got.State != inbox.StateSent || got.Error != "" {
			t.Errorf("message after repeats = %+v", got)
		}
		if row := f.row(t, rowID); row.State != "sent" || !row.SentAt.Equal(sentAt) || row.LastError != "" {
			t.Errorf("row after repeats = %+v, want sent at %v", row, sentAt)
		}
		if evs := events(t, f.s, c.ID); evs[len(evs)-1].Seq != ev.Seq {
			t.Errorf("more events after the repeats: %v", types(evs))
		}

		_, next := f.emailReply(t, c.ID, "Tracking number: 42.")
		e2 := f.claimOne(t, next)
		if e2.InReplyTo != e.MessageID || !slices.Equal(e2.References, []string{"in1@customer.example", e.MessageID}) {
			t.Errorf("next reply In-Reply-To %q References %q, want it threaded on %q", e2.InReplyTo, e2.References, e.MessageID)
		}
	})
}

// What was deleted is not sent: a row whose conversation is gone fails.
func TestClaimOutboxDeletedConversation(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		_, rowID := f.emailReply(t, c.ID, "hello")
		noErr(t, "DeleteConversation()", f.s.DeleteConversation(ctx, c.ID))
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() = %v, want nothing", ids(got))
		}
		if st := f.row(t, rowID); st.State != "failed" || st.LastError != "the conversation was deleted" {
			t.Errorf("row = %+v, want failed", st)
		}
	})
}

// A row enqueued before 0008_outbox (no Message-ID, no mailbox yet) is
// claimed after the upgrade and gets both then.
func TestUpgradeToOutbox0008(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo("0006_outbox"); err != nil {
			t.Fatalf("MigrateTo(0006) = %v", err)
		}
		clock := inboxtest.NewClock()
		now := clock.Now()
		for _, q := range []string{
			`INSERT INTO contacts (id, name, email, phone, online, created_at) VALUES (1, 'Eve', 'eve@example.com', '', false, ?)`,
			`INSERT INTO agents (id, email, name, role, password_hash, created_at) VALUES (1, 'a@example.com', 'Ann', 'agent', 'x', ?)`,
			`INSERT INTO conversations (id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at)
				VALUES (1, 1, 'email', 'open', 'Hi', 1, 'tok', true, ?, ?)`,
			`INSERT INTO messages (id, conversation_id, seq, author, agent_id, channel, text, html, state, created_at)
				VALUES (1, 1, 1, 'agent', 1, 'email', 'hello', '', 'queued', ?)`,
			`INSERT INTO email_outbox (id, kind, conversation_id, message_id, state, attempts, next_attempt_at, last_error, created_at)
				VALUES (1, 'reply', 1, 1, 'pending', 0, ?, '', ?)`,
		} {
			args := []any{now}
			if strings.Count(q, "?") == 2 {
				args = append(args, now)
			}
			if err := old.Gorm().Exec(q, args...).Error; err != nil {
				t.Fatalf("fill 0006 schema: %v", err)
			}
		}
		old.CloseBare()

		f := &emailFixture{&fixture{s: inboxtest.Open(t, url, &inbox.Options{Now: clock.Now, Mailboxes: testMailboxes})}, clock}
		e := f.claimOne(t, 1)
		if e.Mailbox != "support" || !strings.HasPrefix(e.MessageID, "m1.") || e.AgentName != "Ann" || e.Messages[0].Text != "hello" {
			t.Fatalf("claimed after 0008 = %+v", e)
		}
		if st := f.row(t, 1); st.HeaderID != e.MessageID {
			t.Fatalf("header_id = %q, want %q kept", st.HeaderID, e.MessageID)
		}
	})
}

// Our mail threads on the conversation's newest mail that is not
// automatic, the contact's or ours, never on an out-of-office answer;
// References are that parent's References, or its In-Reply-To when it
// has none, followed by its Message-ID (RFC 5322 section 3.6.4). Replies,
// digests and surveys alike.
func TestThreadingSkipsAutomaticMail(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		in := func(id, inReplyTo string, auto bool) inbox.IngestResult {
			t.Helper()
			m := mail("carol@customer.example", "Order 77", "text of "+id)
			m.MessageID = id
			if inReplyTo != "" {
				m.InReplyTo = []string{inReplyTo}
			}
			if auto {
				m.Auto, m.AutoReason = true, "Auto-Submitted: auto-replied"
			}
			return f.ingest(t, m)
		}
		c := in("carol-1@customer.example", "", false).ConversationID
		if r := in("carol-2@customer.example", "carol-1@customer.example", false); r.ConversationID != c {
			t.Fatalf("carol-2 went to conversation %d, want %d", r.ConversationID, c)
		}
		if r := in("carol-ooo@customer.example", "carol-1@customer.example", true); r.ConversationID != c {
			t.Fatalf("the out-of-office went to conversation %d, want %d", r.ConversationID, c)
		}
		_, row := f.emailReply(t, c, "We are on it.")
		e := f.claimOne(t, row)
		wantRefs := []string{"carol-1@customer.example", "carol-2@customer.example"}
		if e.InReplyTo != "carol-2@customer.example" || !slices.Equal(e.References, wantRefs) {
			t.Fatalf("reply In-Reply-To %q References %q, want carol-2 and %q", e.InReplyTo, e.References, wantRefs)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))

		// A chat conversation with mail in it, whose latest contact
		// message is a chat message (so that automatic mail may go).
		chat := f.start(t)
		f.mailIn(t, chat.ID, "first", "support", "c1@customer.example", "", false)
		f.mailIn(t, chat.ID, "second", "support", "c2@customer.example", "<c0@customer.example> <c1@customer.example>", false)
		f.mailIn(t, chat.ID, "I am away.", "support", "ooo@customer.example", "<c1@customer.example>", true)
		f.say(t, chat.ID, inbox.AuthorContact, "Back on the site.")
		f.agentSays(t, chat.ID, "Here is the answer.")
		f.clock.Advance(digestAfter)
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() = %d, want 1", n)
		}
		wantRefs = []string{"c0@customer.example", "c1@customer.example", "c2@customer.example"}
		d := f.claimOne(t, f.outboxRows(t, chat.ID, inbox.OutboundDigest)[0])
		if d.InReplyTo != "c2@customer.example" || !slices.Equal(d.References, wantRefs) {
			t.Fatalf("digest In-Reply-To %q References %q, want c2 and %q", d.InReplyTo, d.References, wantRefs)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, d.ID, nil))
		noErr(t, "Join()", f.s.Join(ctx, chat.ID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, chat.ID, f.alice.ID))
		sv := f.claimOne(t, f.outboxRows(t, chat.ID, inbox.OutboundSurvey)[0])
		if sv.InReplyTo != "c2@customer.example" || !slices.Equal(sv.References, wantRefs) {
			t.Fatalf("survey In-Reply-To %q References %q, want c2 and %q", sv.InReplyTo, sv.References, wantRefs)
		}
	})
}

// The contact's Reply-To is kept (EmailDetails) and answered: replies,
// digests and surveys go to the Reply-To of their newest mail that is not
// automatic, else to their address, which stays who they are (From). A
// Reply-To naming one of our own mailboxes is not followed.
func TestReplyTo(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		work := inbox.Address{Name: "Rita at Work", Addr: "rita.work@r2.example"}
		var firstID string // what the contact's later mail answers
		in := func(text string, replyTo *inbox.Address, auto bool) inbox.IngestResult {
			t.Helper()
			m := mail("rita@r1.example", "Invoice", text)
			m.ReplyTo, m.Auto = replyTo, auto
			if firstID != "" {
				m.InReplyTo = []string{firstID}
			} else {
				firstID = m.MessageID
			}
			return f.ingest(t, m)
		}
		first := in("Please resend the invoice.", &inbox.Address{Name: "Rita at Work", Addr: "Rita.Work@R2.example"}, false)
		c := first.ConversationID
		d, err := f.s.EmailDetails(ctx, c, first.MessageID)
		if err != nil || d.ReplyTo == nil || *d.ReplyTo != work || d.From.Addr != "rita@r1.example" {
			t.Fatalf("EmailDetails() = Reply-To %+v From %+v, %v; want %+v and rita@r1.example", d.ReplyTo, d.From, err, work)
		}
		conv, _ := f.s.Conversation(ctx, c)
		contact, _ := f.s.Contact(ctx, conv.ContactID)
		if contact.Email != "rita@r1.example" {
			t.Fatalf("contact email = %q, want the From address", contact.Email)
		}
		to := func(kind string) inbox.Address {
			t.Helper()
			e := f.claimOne(t, lastOf(f.outboxRows(t, c, kind)))
			noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))
			return e.To
		}
		f.emailReply(t, c, "Here it is.")
		if got := to(inbox.OutboundReply); got != work {
			t.Fatalf("reply To = %+v, want the Reply-To %+v", got, work)
		}
		f.agentSays(t, c, "Did it arrive?")
		f.clock.Advance(digestAfter)
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() = %d, want 1", n)
		}
		if got := to(inbox.OutboundDigest); got != work {
			t.Fatalf("digest To = %+v, want the Reply-To %+v", got, work)
		}
		noErr(t, "Join()", f.s.Join(ctx, c, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c, f.alice.ID))
		if got := to(inbox.OutboundSurvey); got != work {
			t.Fatalf("survey To = %+v, want the Reply-To %+v", got, work)
		}

		// An automatic mail's Reply-To changes nothing; the newest real
		// mail without one sends answers to the contact's address; one
		// with our own address as Reply-To too.
		for _, step := range []struct {
			replyTo *inbox.Address
			auto    bool
			want    inbox.Address
		}{
			{&inbox.Address{Addr: "assistant@r3.example"}, true, work},
			{nil, false, inbox.Address{Addr: "rita@r1.example"}},
			{&inbox.Address{Addr: "support+x@example.com"}, false, inbox.Address{Addr: "rita@r1.example"}},
		} {
			f.clock.Advance(time.Second)
			r := in("more", step.replyTo, step.auto)
			if r.ConversationID != c {
				t.Fatalf("the contact's mail went to conversation %d, want %d", r.ConversationID, c)
			}
			f.emailReply(t, c, "Noted.")
			if got := to(inbox.OutboundReply); got.Addr != step.want.Addr {
				t.Errorf("after a mail with Reply-To %+v (auto %v): reply To = %+v, want %s", step.replyTo, step.auto, got, step.want.Addr)
			}
		}
	})
}

// A node that dies while sending leaves its claims to the node that reaps
// it: the mail is claimed again at once, not when its lease ends
// (migration 0016, ReapNodes). Without that, a reply whose sender was
// killed mid-send waits the whole lease (5 minutes in production).
func TestReapEndsDeadNodesClaims(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		ao := emailOptions(clock)
		ao.NodeID = "node-a"
		a := &emailFixture{newFixtureOpts(t, url, ao), clock}
		b := inboxtest.Open(t, url, &inbox.Options{NodeID: "node-b", Now: clock.Now, Mailboxes: testMailboxes})
		for _, s := range []*inbox.Store{a.s, b} {
			noErr(t, s.NodeID()+" Heartbeat()", s.Heartbeat(ctx))
		}
		c, err := a.s.CreateContact(ctx, inbox.NewContact{Name: "Dee", Email: "dee@example.net"})
		noErr(t, "CreateContact()", err)
		conv, err := a.s.StartConversation(ctx, c.ID, inbox.ChannelEmail, "Order")
		noErr(t, "StartConversation()", err)
		_, rowID := a.emailReply(t, conv.ID, "on its way")
		if got := a.claim(t, 10); len(got) != 1 || got[0].ID != rowID {
			t.Fatalf("a.ClaimOutbox() = %v, want row %d", ids(got), rowID)
		}
		if got, err := b.ClaimOutbox(ctx, 10, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("b.ClaimOutbox() while a holds the claim = %v, %v; want nothing", ids(got), err)
		}
		// a dies: no more heartbeats. b beats on and reaps it.
		clock.Advance(inbox.NodeDeadAfter + time.Second)
		noErr(t, "b.Heartbeat()", b.Heartbeat(ctx))
		st, err := b.ReapNodes(ctx, 0)
		if err != nil || len(st.Reaped) != 1 || st.Reaped[0] != "node-a" {
			t.Fatalf("b.ReapNodes() = %+v, %v; want node-a reaped", st, err)
		}
		got, err := b.ClaimOutbox(ctx, 10, time.Minute)
		if err != nil || len(got) != 1 || got[0].ID != rowID {
			t.Fatalf("b.ClaimOutbox() after reaping a = %v, %v; want row %d at once, well inside a's lease", ids(got), err, rowID)
		}
		if row := a.row(t, rowID); row.Attempts != 2 {
			t.Fatalf("attempts = %d, want 2 (a's and b's)", row.Attempts)
		}
	})
}
