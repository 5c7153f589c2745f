package inbox_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// digestAfter is email_after_unread in the continuity tests.
const digestAfter = 5 * time.Minute

func (f *emailFixture) enqueueDigests(t *testing.T) int {
	t.Helper()
	n, err := f.s.EnqueueDigests(ctx, digestAfter)
	if err != nil {
		t.Fatalf("EnqueueDigests() = %v", err)
	}
	return n
}

// agentSays stores Alice's chat message (the agent's choice of channel):
// sent while the contact is online, queued while they are offline.
func (f *emailFixture) agentSays(t *testing.T, convID int64, text string) inbox.Message {
	t.Helper()
	m, _, _, err := f.s.AddReply(ctx, inbox.NewMessage{ConversationID: convID, Author: inbox.AuthorAgent, AgentID: &f.alice.ID,
		Channel: inbox.ChannelChat, Text: text})
	if err != nil || m.Channel != inbox.ChannelChat {
		t.Fatalf("AddReply(%q) = %+v, %v; want a chat message", text, m, err)
	}
	return m
}

func messageIDs(ms []inbox.OutboundMessage) []int64 {
	out := []int64{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// Rule 7: the agent chat messages an offline contact has not read go out
// by email once they are digestAfter old, once, in one mail per
// conversation with the contact's last message as context: those written
// while the contact was online (sent) and then left, and those written
// while they were offline (queued: the agent chose chat). A queued message
// a digest carried stays queued for the chat, is delivered when the
// contact comes back, and no later digest carries it again. Messages the
// contact read do not go, nor replies that went by email.
func TestEnqueueDigests(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, true))
		f.say(t, c.ID, inbox.AuthorContact, "Can you check order 1234?")
		m1 := f.agentSays(t, c.ID, "Let me look.")
		f.clock.Advance(time.Minute)
		m2 := f.agentSays(t, c.ID, "It ships today.")
		f.clock.Advance(10 * time.Minute)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() for an online contact = %d, want 0", n)
		}

		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, false))
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() = %d, want 1", n)
		}
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() again = %d, want 0: the messages went in the first digest", n)
		}
		e := f.claimOne(t, f.outboxRows(t, c.ID, inbox.OutboundDigest)[0])
		if e.Kind != inbox.OutboundDigest || !slices.Equal(messageIDs(e.Messages), []int64{m1.ID, m2.ID}) ||
			e.Context != "Can you check order 1234?" || e.AgentName != "Alice" || e.To.Addr != "carol@example.com" {
			t.Fatalf("digest = %+v", e)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))

		// A later chat message, written while the contact is offline, is
		// queued; it waits digestAfter, and goes alone. An automatic
		// reply meanwhile goes by email itself, in no digest.
		m3 := f.agentSays(t, c.ID, "Tracking number: 42.")
		if m3.State != inbox.StateQueued {
			t.Fatalf("chat message to an offline contact = %s, want queued", m3.State)
		}
		byMail, d, _, err := f.fixture.reply(c.ID, inbox.ReplyAuto, "Or by mail.")
		if err != nil || d.Channel != inbox.ChannelEmail {
			t.Fatalf("AddReply(auto) to an offline contact = %+v, %+v, %v; want email", byMail, d, err)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, f.claimOne(t, f.outboxRows(t, c.ID, inbox.OutboundReply)[0]).ID, nil))
		f.clock.Advance(digestAfter - time.Second)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() a second early = %d, want 0", n)
		}
		f.clock.Advance(time.Second)
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() on time = %d, want 1", n)
		}
		rows := f.outboxRows(t, c.ID, inbox.OutboundDigest)
		e = f.claimOne(t, rows[len(rows)-1])
		if !slices.Equal(messageIDs(e.Messages), []int64{m3.ID}) {
			t.Fatalf("second digest carries %v, want only %d", messageIDs(e.Messages), m3.ID)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))
		if got := f.message(t, c.ID, m3.ID); got.State != inbox.StateQueued {
			t.Fatalf("a queued message sent in a digest = %s, want still queued for the chat", got.State)
		}

		// Back on the site, the contact gets it by chat; gone again,
		// nothing goes twice.
		sub := f.s.Hub().Subscribe(c.ID, 16)
		defer sub.Close()
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, true))
		var st inbox.MessageState
		if ev := inboxtest.Receive(t, sub.C, "message_state event"); ev.Type != inbox.EventMessageState || ev.Decode(&st) != nil ||
			!slices.Equal(st.MessageIDs, []int64{m3.ID}) || st.State != inbox.StateSent {
			t.Fatalf("event = %s %s, want message_state of %d, sent", ev.Type, ev.Data, m3.ID)
		}
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, false))
		f.clock.Advance(time.Hour)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() after the contact came and went = %d, want 0: the digest carried it", n)
		}

		// Read messages stay out.
		m4 := f.agentSays(t, c.ID, "Anything else?")
		noErr(t, "MarkRead()", f.s.MarkRead(ctx, c.ID, 0, m4.Seq))
		f.clock.Advance(time.Hour)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() after the contact read = %d, want 0", n)
		}
	})
}

// No digest for a contact without an email address, nor without a
// mailbox, nor for a conversation whose latest contact message is
// automatic mail (issue 12 item 8).
func TestNoDigest(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		anon, err := f.s.CreateContact(ctx, inbox.NewContact{Name: "Anonymous"})
		noErr(t, "CreateContact()", err)
		noEmail, err := f.s.StartConversation(ctx, anon.ID, inbox.ChannelChat, "")
		noErr(t, "StartConversation()", err)
		f.agentSays(t, noEmail.ID, "Hello?")

		c := f.start(t)
		f.agentSays(t, c.ID, "Let me look.")
		f.mailIn(t, c.ID, "I am out of the office.", "support", "ooo@customer.example", "", true)
		m2 := f.agentSays(t, c.ID, "Still there?")
		f.clock.Advance(time.Hour)
		if n := f.enqueueDigests(t); n != 0 {
			t.Fatalf("EnqueueDigests() = %d, want 0", n)
		}
		// The contact's own answer lifts it: every unread message goes.
		f.mailIn(t, c.ID, "Back now.", "support", "back@customer.example", "", false)
		m3 := f.agentSays(t, c.ID, "Welcome back.")
		f.clock.Advance(time.Hour)
		if n := f.enqueueDigests(t); n != 1 {
			t.Fatalf("EnqueueDigests() after a real answer = %d, want 1", n)
		}
		e := f.claimOne(t, f.outboxRows(t, c.ID, inbox.OutboundDigest)[0])
		if got := messageIDs(e.Messages); len(got) != 3 || got[1] != m2.ID || got[2] != m3.ID || e.Context != "" {
			t.Errorf("digest carries %v context %q", got, e.Context)
		}

		bare := newFixtureOpts(t, inboxtest.SQLiteURL(t), &inbox.Options{Now: f.clock.Now})
		bc := bare.start(t)
		bare.say(t, bc.ID, inbox.AuthorAgent, "Hello?")
		f.clock.Advance(time.Hour)
		if n, err := bare.s.EnqueueDigests(ctx, digestAfter); n != 0 || err != nil {
			t.Fatalf("EnqueueDigests() without a mailbox = %d, %v", n, err)
		}
		noErr(t, "Join()", bare.s.Join(ctx, bc.ID, bare.alice.ID))
		noErr(t, "Leave()", bare.s.Leave(ctx, bc.ID, bare.alice.ID))
		if got, err := bare.s.ClaimOutbox(ctx, 10, time.Minute); len(got) != 0 || err != nil {
			t.Fatalf("ClaimOutbox() without a mailbox = %v, %v", ids(got), err)
		}
	})
}

// Rule 3: the last participant leaving sends the survey by email to a
// contact the widget cannot offer it to (offline, or an email
// conversation), with an address, unless their latest message is
// automatic mail; the survey carries five rating links.
func TestSurveyByEmail(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		closeBy := func(c inbox.Conversation) {
			t.Helper()
			noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
			noErr(t, "Join()", f.s.Join(ctx, c.ID, f.bob.ID))
			noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
			if n := len(f.outboxRows(t, c.ID, inbox.OutboundSurvey)); n != 0 {
				t.Fatalf("a survey before the last participant left")
			}
			noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.bob.ID))
		}

		offline := f.start(t)
		closeBy(offline)
		rows := f.outboxRows(t, offline.ID, inbox.OutboundSurvey)
		if len(rows) != 1 {
			t.Fatalf("surveys of an offline contact = %v, want one", rows)
		}
		e := f.claimOne(t, rows[0])
		if e.Kind != inbox.OutboundSurvey || len(e.RatingTokens) != 5 || len(e.Messages) != 0 || e.AgentName != "" ||
			e.To.Addr != "carol@example.com" {
			t.Fatalf("survey = %+v", e)
		}

		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, true))
		online := f.start(t)
		closeBy(online)
		if rows := f.outboxRows(t, online.ID, inbox.OutboundSurvey); len(rows) != 0 {
			t.Fatalf("surveys of an online contact's chat = %v, want none (the widget offers it)", rows)
		}
		mail, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelEmail, "Invoice")
		noErr(t, "StartConversation()", err)
		closeBy(mail)
		if rows := f.outboxRows(t, mail.ID, inbox.OutboundSurvey); len(rows) != 1 {
			t.Fatalf("surveys of an email conversation = %v, want one (the widget does not show it)", rows)
		}

		auto, err := f.s.StartConversation(ctx, f.contact.ID, inbox.ChannelEmail, "Re: Invoice")
		noErr(t, "StartConversation()", err)
		f.mailIn(t, auto.ID, "Out of office", "support", "ooo2@customer.example", "", true)
		closeBy(auto)
		if rows := f.outboxRows(t, auto.ID, inbox.OutboundSurvey); len(rows) != 0 {
			t.Fatalf("surveys after automatic mail = %v, want none", rows)
		}

		anon, err := f.s.CreateContact(ctx, inbox.NewContact{Name: "Anonymous"})
		noErr(t, "CreateContact()", err)
		noEmail, err := f.s.StartConversation(ctx, anon.ID, inbox.ChannelChat, "")
		noErr(t, "StartConversation()", err)
		closeBy(noEmail)
		if rows := f.outboxRows(t, noEmail.ID, inbox.OutboundSurvey); len(rows) != 0 {
			t.Fatalf("surveys of a contact without email = %v", rows)
		}
	})
}

// A rating link rates once: the first one of a survey used records the
// rating, any later use of that survey's links is a conflict that changes
// nothing, and a link altered in any part is not found.
func TestRatingLinks(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		c := f.start(t)
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
		tokens := f.claim(t, 10)[0].RatingTokens

		for i, tok := range tokens {
			if l, err := f.s.CheckRatingLink(ctx, tok); err != nil || l.ConversationID != c.ID || l.Score != i+1 {
				t.Fatalf("CheckRatingLink(%s) = %+v, %v; want score %d", tok, l, err, i+1)
			}
		}
		for _, bad := range forgeries(tokens[3]) {
			if _, err := f.s.RateByToken(ctx, bad, ""); !errors.Is(err, inbox.ErrNotFound) {
				t.Errorf("RateByToken(%q) = %v, want ErrNotFound", bad, err)
			}
			if _, err := f.s.CheckRatingLink(ctx, bad); !errors.Is(err, inbox.ErrNotFound) {
				t.Errorf("CheckRatingLink(%q) = %v, want ErrNotFound", bad, err)
			}
		}

		r, err := f.s.RateByToken(ctx, tokens[3], "  Quick and kind.  ")
		if err != nil || r.Score != 4 || r.Comment != "Quick and kind." || r.ConversationID != c.ID {
			t.Fatalf("RateByToken() = %+v, %v", r, err)
		}
		evs := events(t, f.s, c.ID)
		for _, tok := range []string{tokens[3], tokens[0]} {
			if _, err := f.s.RateByToken(ctx, tok, "again"); !errors.Is(err, inbox.ErrConflict) {
				t.Errorf("RateByToken() used twice = %v, want ErrConflict", err)
			}
			if _, err := f.s.CheckRatingLink(ctx, tok); !errors.Is(err, inbox.ErrConflict) {
				t.Errorf("CheckRatingLink() used = %v, want ErrConflict", err)
			}
		}
		if n := len(events(t, f.s, c.ID)); n != len(evs) {
			t.Errorf("a used link added events")
		}
		var scores []int
		f.s.Gorm().Raw(`SELECT score FROM ratings WHERE conversation_id = ?`, c.ID).Scan(&scores)
		if !slices.Equal(scores, []int{4}) {
			t.Errorf("ratings = %v, want the first one only", scores)
		}

		// Closed again later, a new survey's links work.
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.bob.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.bob.ID))
		fresh := f.claim(t, 10)[0].RatingTokens
		if r, err := f.s.RateByToken(ctx, strings.ToUpper(fresh[1]), ""); err != nil || r.Score != 2 {
			t.Fatalf("RateByToken() of the second survey = %+v, %v", r, err)
		}
	})
}

// forgeries are variations of a valid token "r<c>-<s>-<score>-<sig>"
// that a guess or a typo makes.
func forgeries(tok string) []string {
	parts := strings.Split(tok, "-")
	sig := []byte(parts[3])
	sig[0] ^= 1
	out := []string{
		"", "r", tok + "a", tok[:len(tok)-1], "x" + tok[1:],
		strings.Join([]string{parts[0], parts[1], "5", parts[3]}, "-"),                      // another score
		strings.Join([]string{parts[0], parts[1] + "0", parts[2], parts[3]}, "-"),           // another survey
		strings.Join([]string{parts[0] + "0", parts[1], parts[2], parts[3]}, "-"),           // another conversation
		strings.Join([]string{parts[0], parts[1], parts[2], string(sig)}, "-"),              // another signature
		strings.Join([]string{parts[0], parts[1], "0" + parts[2], parts[3]}, "-"),           // the same number, spelled otherwise
		strings.Join([]string{parts[0], parts[1], parts[2], parts[3], "1"}, "-"),            // more parts
		"r0-" + parts[1] + "-" + parts[2] + "-" + parts[3],                                  // zero
		strings.Join([]string{parts[0], parts[1], "6", parts[3]}, "-"),                      // out of range
		strings.Join([]string{parts[0], parts[1], parts[2], strings.Repeat("a", 16)}, "-"),  // a made-up signature
		strings.Join([]string{parts[0], parts[1], parts[2], strings.Repeat("a", 160)}, "-"), // too long
	}
	return out
}

// EnqueueDigests' scan reads the partial index messages_continuity: it
// runs every second.
func TestDigestScanUsesIndex(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		now := f.clock.Now()
		tx := f.s.Gorm().Begin()
		defer tx.Rollback()
		q := "EXPLAIN QUERY PLAN "
		if f.s.Dialect() == "postgres" {
			// The tables are tiny: make the planner show whether the
			// index can serve the query at all.
			noErr(t, "SET", tx.Exec("SET LOCAL enable_seqscan = off").Error)
			q = "EXPLAIN "
		}
		rows, err := tx.Raw(q+inbox.DigestScan, now.Add(-time.Hour), now).Rows()
		if err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			plan = append(plan, strings.TrimSpace(strings.Trim(strings.Replace(strings.Join(strings.Fields(stringOf(vals[len(vals)-1])), " "), "\n", " ", -1), " ")))
		}
		if !strings.Contains(strings.Join(plan, "\n"), "messages_continuity") {
			t.Fatalf("the digest scan does not use messages_continuity:\n%s", strings.Join(plan, "\n"))
		}
	})
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Rule 7, one mail per conversation: a visitor who leaves three unread
// agent chat messages written 2 s apart gets one digest carrying all
// three when the oldest is due, not one digest per message. A message
// written after that digest was enqueued waits its own delay; while a
// digest is still pending (the SMTP server is away) or sending, none
// other is enqueued, and the next one carries every message unread by
// then.
func TestDigestCarriesAllUnread(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		const after = 10 * time.Second
		f := newEmailFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "Where is my parcel?")
		t0 := f.clock.Now()
		var unread []int64
		for i, text := range []string{"Let me look.", "Found it.", "It ships today."} {
			if i > 0 {
				f.clock.Advance(2 * time.Second)
			}
			unread = append(unread, f.agentSays(t, c.ID, text).ID)
		}
		// tick is the continuity ticker: a second passes, EnqueueDigests runs.
		enqueue := func() int {
			t.Helper()
			n, err := f.s.EnqueueDigests(ctx, after)
			if err != nil {
				t.Fatalf("EnqueueDigests() = %v", err)
			}
			return n
		}
		tick := func(until time.Time) (enqueued []time.Time) {
			t.Helper()
			for f.clock.Now().Before(until) {
				f.clock.Advance(time.Second)
				for range enqueue() {
					enqueued = append(enqueued, f.clock.Now())
				}
				// The worker claims and sends at once, so that nothing
				// but the carried messages keeps a second digest away.
				for _, e := range f.claim(t, 10) {
					noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))
				}
			}
			return enqueued
		}
		if got := tick(t0.Add(after - time.Second)); len(got) != 0 {
			t.Fatalf("digests before the oldest message is due: %v", got)
		}
		f.clock.Advance(time.Second)
		if n := enqueue(); n != 1 {
			t.Fatalf("EnqueueDigests() when the oldest is due = %d, want 1", n)
		}
		rows := f.outboxRows(t, c.ID, inbox.OutboundDigest)
		// Written after the digest was enqueued, before it was claimed.
		late := f.agentSays(t, c.ID, "One more thing.")
		e := f.claimOne(t, rows[0])
		if !slices.Equal(messageIDs(e.Messages), unread) {
			t.Fatalf("the digest carries %v, want all three unread messages %v", messageIDs(e.Messages), unread)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))
		if got := tick(t0.Add(after + 4*time.Second)); len(got) != 0 {
			t.Fatalf("more digests when the younger messages came due: %v", got)
		}
		if got := tick(late.CreatedAt.Add(after - time.Second)); len(got) != 0 {
			t.Fatalf("a digest for the late message before its own delay: %v", got)
		}
		if got := tick(late.CreatedAt.Add(after)); len(got) != 1 {
			t.Fatalf("digests when the late message is due = %v, want one", got)
		}

		// The SMTP server is away: the next digest waits for a retry.
		m5 := f.agentSays(t, c.ID, "Are you there?")
		f.clock.Advance(after)
		if n := enqueue(); n != 1 {
			t.Fatalf("EnqueueDigests() = %d, want 1", n)
		}
		rows = f.outboxRows(t, c.ID, inbox.OutboundDigest)
		pending := rows[len(rows)-1]
		f.claimOne(t, pending)
		noErr(t, "OutboxRetry()", f.s.OutboxRetry(ctx, pending, f.clock.Now().Add(time.Hour), "421 4.3.0 try later"))
		m6 := f.agentSays(t, c.ID, "Hello?")
		f.clock.Advance(after)
		if n := enqueue(); n != 0 {
			t.Fatalf("EnqueueDigests() while a digest is pending = %d, want 0", n)
		}
		f.clock.Advance(time.Hour)
		e = f.claimOne(t, pending)
		if !slices.Equal(messageIDs(e.Messages), []int64{m5.ID}) {
			t.Fatalf("the retried digest carries %v, want %d as when it was enqueued", messageIDs(e.Messages), m5.ID)
		}
		m7 := f.agentSays(t, c.ID, "Last one.")
		if n := enqueue(); n != 0 {
			t.Fatalf("EnqueueDigests() while a digest is sending = %d, want 0", n)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, nil))
		if n := enqueue(); n != 1 {
			t.Fatalf("EnqueueDigests() once the pending digest went = %d, want 1", n)
		}
		rows = f.outboxRows(t, c.ID, inbox.OutboundDigest)
		if e := f.claimOne(t, rows[len(rows)-1]); !slices.Equal(messageIDs(e.Messages), []int64{m6.ID, m7.ID}) {
			t.Fatalf("the next digest carries %v, want %d and %d", messageIDs(e.Messages), m6.ID, m7.ID)
		}
	})
}

// No automatic mail (digest, survey) to an address whose last mail from
// us in the conversation failed, by a bounce or a 5xx refusal, until the
// contact mails again; a failure that says nothing of the address (the
// mail could not be composed) holds nothing back. A digest enqueued
// before the failure is not sent either.
func TestNoAutomaticMailToFailedAddress(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		first := mail("rita@r1.example", "Invoice", "Please resend the invoice.")
		c := f.ingest(t, first).ConversationID
		closeIt := func() {
			t.Helper()
			noErr(t, "Join()", f.s.Join(ctx, c, f.alice.ID))
			noErr(t, "Leave()", f.s.Leave(ctx, c, f.alice.ID))
		}
		sendReply := func(text string) inbox.OutboundEmail {
			t.Helper()
			f.clock.Advance(time.Second)
			_, row := f.emailReply(t, c, text)
			return f.claimOne(t, row)
		}
		answer := func(text string) {
			t.Helper()
			f.clock.Advance(time.Second)
			in := mail("rita@r1.example", "Re: Invoice", text)
			in.InReplyTo = []string{first.MessageID}
			if r := f.ingest(t, in); r.ConversationID != c {
				t.Fatalf("the contact's mail went to conversation %d, want %d", r.ConversationID, c)
			}
		}
		surveys := func() int { return len(f.outboxRows(t, c, inbox.OutboundSurvey)) }
		// unread has the agent write in chat, lets that come due, and
		// wants want digests enqueued.
		unread := func(text string, want int, when string) {
			t.Helper()
			f.agentSays(t, c, text)
			f.clock.Advance(digestAfter)
			if n := f.enqueueDigests(t); n != want {
				t.Fatalf("EnqueueDigests() %s = %d, want %d", when, n, want)
			}
		}
		sendDigest := func() {
			t.Helper()
			noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, f.claimOne(t, lastOf(f.outboxRows(t, c, inbox.OutboundDigest))).ID, nil))
		}

		// A reply bounces (RFC 3464): no survey.
		e := sendReply("Here it is.")
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, e.ID, []byte("Message-ID: <"+e.MessageID+">\r\n\r\nHere it is.\r\n")))
		bounce := mail("mailer-daemon@r1.example", "Undelivered Mail Returned to Sender", "The mail system.")
		bounce.Bounce = &inbox.Bounce{OriginalMessageID: e.MessageID, Recipient: "rita@r1.example", Status: "5.2.2",
			Diagnostic: "552 5.2.2 mailbox full"}
		f.clock.Advance(time.Second)
		f.ingest(t, bounce)
		closeIt()
		if n := surveys(); n != 0 {
			t.Fatalf("surveys after the reply bounced = %d, want 0", n)
		}
		// The contact writes again: the address works.
		answer("Got nothing, please try again.")
		closeIt()
		if n := surveys(); n != 1 {
			t.Fatalf("surveys once the contact wrote again = %d, want 1", n)
		}
		noErr(t, "OutboxSent()", f.s.OutboxSent(ctx, f.claimOne(t, f.outboxRows(t, c, inbox.OutboundSurvey)[0]).ID, nil))

		// A reply refused with 5xx: no digest.
		e = sendReply("Sent again.")
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, e.ID, "550 5.1.1 <rita@r1.example>: Recipient address rejected"))
		unread("Did it arrive?", 0, "after a 5xx refusal")
		closeIt()
		if n := surveys(); n != 1 {
			t.Fatalf("surveys after a 5xx refusal = %d, want still 1", n)
		}
		answer("It works now.")
		unread("Glad to hear.", 1, "once the contact wrote again")
		sendDigest()

		// A mail that could not be composed says nothing of the address.
		e = sendReply("With a broken attachment.")
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, e.ID, "cannot compose the mail: an invalid address"))
		unread("Anything else?", 1, "after a failure to compose")
		sendDigest()

		// A digest enqueued while a reply was still sending is not sent
		// once the reply is refused.
		e = sendReply("Last try.")
		unread("Hello?", 1, "while a reply is sending")
		noErr(t, "OutboxFailed()", f.s.OutboxFailed(ctx, e.ID, "550 5.1.1 user unknown"))
		digest := lastOf(f.outboxRows(t, c, inbox.OutboundDigest))
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() = %v, want the digest to a refused address held back", ids(got))
		}
		if st := f.row(t, digest); st.State != "failed" || !strings.Contains(st.LastError, "refused or bounced") {
			t.Fatalf("digest row = %+v, want failed, saying why", st)
		}
	})
}

func lastOf(ids []int64) int64 { return ids[len(ids)-1] }

// TestEnqueueDigestsTwoNodes: two nodes queueing the digests of one
// database at the same moment (the timers lock is held by one node at a
// time, but two may overlap while a lost holder stops) queue each
// conversation's digest once: enqueueDigest locks the conversation and
// looks again.
func TestEnqueueDigestsTwoNodes(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		other := inboxtest.Open(t, url, emailOptions(f.clock))
		const convs = 12
		var ids []int64
		for i := range convs {
			c, err := f.s.CreateContact(ctx, inbox.NewContact{Name: "C", Email: fmt.Sprintf("c%d@example.com", i)})
			noErr(t, "CreateContact()", err)
			conv, err := f.s.StartConversation(ctx, c.ID, inbox.ChannelChat, "")
			noErr(t, "StartConversation()", err)
			f.agentSays(t, conv.ID, "Are you there?")
			ids = append(ids, conv.ID)
		}
		f.clock.Advance(digestAfter + time.Second)
		var wg sync.WaitGroup
		var queued atomic.Int64
		for i := range 6 {
			s := f.s
			if i%2 == 1 {
				s = other
			}
			wg.Go(func() {
				n, err := s.EnqueueDigests(ctx, digestAfter)
				if err != nil {
					t.Errorf("EnqueueDigests() = %v", err)
				}
				queued.Add(int64(n))
			})
		}
		wg.Wait()
		if queued.Load() != convs {
			t.Errorf("EnqueueDigests() queued %d in all, want %d", queued.Load(), convs)
		}
		for _, id := range ids {
			if rows := f.outboxRows(t, id, inbox.OutboundDigest); len(rows) != 1 {
				t.Fatalf("conversation %d has %d digests, want 1", id, len(rows))
			}
		}
	})
}
