package inbox_test

import (
	"errors"
	"slices"
	"strings"
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
