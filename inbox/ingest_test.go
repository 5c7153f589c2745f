package inbox_test

import (
	"bytes"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

var (
	pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
	pdfBytes = []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")
)

// received returns the next n events of a subscription.
func received(t *testing.T, sub *inbox.Subscription, n int) []inbox.Event {
	t.Helper()
	evs := make([]inbox.Event, n)
	for i := range evs {
		evs[i] = inboxtest.Receive(t, sub.C, "an event")
	}
	return evs
}

// sameAsReplay checks that published events are what EventsSince replays
// from the database: a socket that resumes sees what a live one saw.
func sameAsReplay(t *testing.T, s *inbox.Store, published []inbox.Event) {
	t.Helper()
	for _, ev := range published {
		got, err := s.EventsSince(ctx, ev.ConversationID, ev.Seq-1, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("EventsSince(%d, %d) = %v, %v", ev.ConversationID, ev.Seq-1, types(got), err)
		}
		r := got[0]
		if r.ID != ev.ID || r.Seq != ev.Seq || r.Type != ev.Type || !r.At.Equal(ev.At) || string(r.Data) != string(ev.Data) {
			t.Fatalf("published %d %d %s %v %s\nreplayed  %d %d %s %v %s", ev.ID, ev.Seq, ev.Type, ev.At, ev.Data, r.ID, r.Seq, r.Type, r.At, r.Data)
		}
	}
}

// A new mail: a new conversation of a new email-only contact, the message
// with its sanitized HTML, attachments and inline image, the envelope,
// and events equal to their replay.
func TestIngestEmailMessage(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		sub := f.s.Hub().Subscribe(0, 100)
		defer sub.Close()
		in := mail("ann@customer.test", "Broken  \x1b[31mprinter", "It is broken.")
		in.From.Name = "Ann Example"
		in.Cc = []inbox.Address{{Name: "Dave", Addr: "Dave@Customer.test"}}
		in.FullText = "It is broken.\n\n> earlier quoted text\n-- \nAnn"
		in.HTML = `<p onclick="x()">It is <b>broken</b> <img src="cid:logo@mua"></p><script>alert(1)</script><img src="cid:unknown@mua">`
		in.FullHTML = in.HTML + `<blockquote>earlier</blockquote>`
		in.Notices = []string{"an attachment of 60 MB was left out"}
		in.Attachments = []inbox.IncomingAttachment{
			{Name: "logo.png", ContentType: "image/png", ContentID: "logo@mua", Inline: true, Data: pngBytes},
			{Name: "report.pdf", ContentType: "text/html", Data: pdfBytes},
		}
		res := f.ingest(t, in)
		if !res.Created || res.Duplicate || res.Threaded != "" || res.MessageID == 0 {
			t.Fatalf("IngestEmail() = %+v", res)
		}
		sameAsReplay(t, f.s, received(t, sub, 2))

		conv, err := f.s.Conversation(ctx, res.ConversationID)
		if err != nil || conv.Channel != inbox.ChannelEmail || !conv.HasEmail || conv.Status != inbox.StatusOpen || conv.Subject != "Broken  [31mprinter" {
			t.Fatalf("Conversation() = %+v, %v", conv, err)
		}
		if ids := f.column(t, inbox.ColumnUnassigned, f.alice.ID); !has(ids, conv.ID) {
			t.Fatalf("Unassigned = %v, want the new conversation", ids)
		}
		contact, err := f.s.Contact(ctx, conv.ContactID)
		if err != nil || contact.Email != "ann@customer.test" || contact.Name != "Ann Example" || !contact.EmailVerified {
			t.Fatalf("contact = %+v, %v; want Ann, verified", contact, err)
		}
		page, err := f.s.Messages(ctx, conv.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 1 {
			t.Fatalf("Messages() = %+v, %v", page, err)
		}
		m := page.Messages[0]
		if m.ID != res.MessageID || m.Author != inbox.AuthorContact || m.AgentID != nil || m.Channel != inbox.ChannelEmail ||
			m.Text != "It is broken." || m.State != inbox.StateSent {
			t.Fatalf("message = %+v", m)
		}
		if len(m.Attachments) != 2 {
			t.Fatalf("attachments = %+v, want 2", m.Attachments)
		}
		logo, report := m.Attachments[0], m.Attachments[1]
		if logo.ContentType != "image/png" || report.ContentType != "application/pdf" || report.Name != "report.pdf" ||
			logo.Uploader != inbox.AuthorContact || *logo.MessageID != m.ID || report.Size != int64(len(pdfBytes)) {
			t.Fatalf("attachments = %+v, %+v", logo, report)
		}
		wantSrc := `src="/api/v1/conversations/` + strconv.FormatInt(conv.ID, 10) + `/attachments/` + strconv.FormatInt(logo.ID, 10) + `"`
		if !strings.Contains(m.HTML, wantSrc) || strings.Contains(m.HTML, "cid:") || strings.Contains(m.HTML, "script") ||
			strings.Contains(m.HTML, "onclick") || !strings.Contains(m.HTML, "<b>broken</b>") {
			t.Fatalf("HTML = %s, want sanitized with %s", m.HTML, wantSrc)
		}
		e := m.Email
		if e == nil || e.Subject != conv.Subject || e.From != (inbox.Address{Name: "Ann Example", Addr: "ann@customer.test"}) ||
			len(e.Cc) != 1 || e.Cc[0].Addr != "dave@customer.test" || !e.Trimmed || e.Auto || len(e.Notices) != 1 {
			t.Fatalf("Email = %+v", e)
		}
		a, err := f.s.OpenAttachment(ctx, conv.ID, f.alice.ID, logo.ID)
		if err != nil || !bytes.Equal(a.Data, pngBytes) {
			t.Fatalf("OpenAttachment(logo) = %v", err)
		}
		d, err := f.s.EmailDetails(ctx, conv.ID, m.ID)
		if err != nil || d.HeaderID != in.MessageID || d.FullText != in.FullText || !strings.Contains(d.FullHTML, "earlier") ||
			strings.Contains(d.FullHTML, "script") || !strings.Contains(d.FullHTML, wantSrc) || d.RawSize != int64(len(in.Raw)) || d.Mailbox != "support" {
			t.Fatalf("EmailDetails() = %+v, %v", d, err)
		}
		raw, err := f.s.EmailRaw(ctx, conv.ID, m.ID)
		if err != nil || !bytes.Equal(raw, in.Raw) {
			t.Fatalf("EmailRaw() = %q, %v", raw, err)
		}
		if _, err := f.s.EmailDetails(ctx, conv.ID+1000, m.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("EmailDetails(another conversation) = %v, want ErrNotFound", err)
		}
		item, err := f.s.ConversationItem(ctx, conv.ID, f.alice.ID)
		if err != nil || item.LastMessage == nil || item.LastMessage.Email == nil || item.LastMessage.Email.Subject != conv.Subject {
			t.Fatalf("ConversationItem().LastMessage = %+v, %v", item.LastMessage, err)
		}

		// Mail From an agent's address is still the contact's message.
		res2 := f.ingest(t, mail(f.alice.Email, "From an agent's address", "hello"))
		msgs, _ := f.s.Messages(ctx, res2.ConversationID, inbox.MessageQuery{})
		if got := msgs.Messages[0]; got.Author != inbox.AuthorContact || got.AgentID != nil {
			t.Fatalf("mail from an agent's address = %+v, want a contact message", got)
		}
		// Without a sender there is nothing to store: InvalidError, for quarantine.
		bad := mail("", "no sender", "x")
		var invalid *inbox.InvalidError
		if _, err := f.s.IngestEmail(ctx, bad); !errors.As(err, &invalid) {
			t.Fatalf("IngestEmail(no From) = %v, want an InvalidError", err)
		}
	})
}

// The same mail is stored once: by Message-ID, by the raw hash when it has
// none, and still after its conversation or contact is deleted; the
// envelope and raw source go with the conversation.
func TestIngestDuplicates(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		first := mail("ann@customer.test", "Hello", "hi")
		res := f.ingest(t, first)
		again := first
		again.Subject, again.Text = "changed", "changed"
		if dup := f.ingest(t, again); !dup.Duplicate || dup.ConversationID != 0 || dup.MessageID != 0 {
			t.Fatalf("same Message-ID again = %+v, want Duplicate", dup)
		}
		noID := mail("ann@customer.test", "No Message-ID", "hi")
		noID.MessageID = ""
		noIDRes := f.ingest(t, noID)
		if noIDRes.Duplicate || noIDRes.ConversationID == 0 {
			t.Fatalf("mail without Message-ID = %+v", noIDRes)
		}
		if dup := f.ingest(t, noID); !dup.Duplicate {
			t.Fatalf("same raw source without Message-ID again = %+v, want Duplicate", dup)
		}
		other := noID
		other.Raw = append([]byte("X-Other: 1\r\n"), noID.Raw...)
		other.RawHash = ""
		if r := f.ingest(t, other); r.Duplicate {
			t.Fatalf("another raw source without Message-ID = %+v, want stored", r)
		}
		// Our own sent mail coming back is not imported.
		f.sentMail(t, "m.9.ours@example.com", res.ConversationID, 0)
		echo := mail("support@example.com", "Re: Hello", "our reply")
		echo.MessageID = "m.9.ours@example.com"
		if r := f.ingest(t, echo); !r.Duplicate {
			t.Fatalf("our own mail fetched = %+v, want Duplicate", r)
		}
		page, _ := f.s.Messages(ctx, res.ConversationID, inbox.MessageQuery{})
		if len(page.Messages) != 1 {
			t.Fatalf("conversation has %d messages, want 1", len(page.Messages))
		}

		// Deleted stays deleted; nothing of the mail is left but its key.
		noErr(t, "DeleteConversation()", f.s.DeleteConversation(ctx, res.ConversationID))
		if dup := f.ingest(t, first); !dup.Duplicate {
			t.Fatalf("mail of a deleted conversation again = %+v, want Duplicate", dup)
		}
		reply := mail("ann@customer.test", "Re: Hello", "a reply to the deleted thread")
		reply.InReplyTo = []string{first.MessageID}
		if r := f.ingest(t, reply); !r.Created {
			t.Fatalf("reply to a deleted conversation's mail = %+v, want a new conversation", r)
		}
		var envelopes, keys, linked int64
		db := f.s.Gorm()
		db.Raw(`SELECT COUNT(*) FROM email_messages WHERE message_id = ?`, res.MessageID).Scan(&envelopes)
		db.Raw(`SELECT COUNT(*) FROM email_ids WHERE "key" = ?`, first.MessageID).Scan(&keys)
		db.Raw(`SELECT COUNT(*) FROM email_ids WHERE "key" = ? AND (conversation_id IS NOT NULL OR message_id IS NOT NULL)`, first.MessageID).Scan(&linked)
		if envelopes != 0 || keys != 1 || linked != 0 {
			t.Fatalf("after delete: %d envelopes, %d keys, %d linked; want 0, 1, 0", envelopes, keys, linked)
		}

		// Erasing the contact keeps the keys likewise.
		conv, _ := f.s.Conversation(ctx, noIDRes.ConversationID)
		noErr(t, "EraseContact()", f.s.EraseContact(ctx, conv.ContactID))
		if dup := f.ingest(t, noID); !dup.Duplicate {
			t.Fatalf("mail of an erased contact again = %+v, want Duplicate", dup)
		}
		var raws int64
		db.Raw(`SELECT COUNT(*) FROM email_messages`).Scan(&raws)
		if raws != 0 {
			t.Fatalf("%d envelopes with raw sources left after erasing the only contact", raws)
		}
	})
}

// Identity (issue 12, item 5): an email typed into the widget is
// unverified; mail from it goes elsewhere until a reply to our mail
// proves it; the widget only ever shows its chat conversations.
func TestEmailIdentity(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		vic := startVisitorEmail(t, f.s, "Vic", "Vic@Visitor.test")
		if vic.Contact.EmailVerified {
			t.Fatalf("StartVisitor() contact = %+v, want the typed email unverified", vic.Contact)
		}
		// Mail from that address without proof: another contact's email conversation.
		res := f.ingest(t, mail("vic@visitor.test", "Hello", "plain mail"))
		conv, _ := f.s.Conversation(ctx, res.ConversationID)
		if !res.Created || conv.ContactID == vic.Contact.ID || conv.Channel != inbox.ChannelEmail {
			t.Fatalf("unproved mail = %+v in %+v, want a new email conversation of another contact", res, conv)
		}
		// Even quoting the chat conversation's token, an automatic mail proves nothing.
		auto := mail("vic@visitor.test", "Out of office [#"+f.token(t, vic.Conversation.ID)+"]", "away")
		auto.Auto, auto.AutoReason = true, "Auto-Submitted: auto-replied"
		if r := f.ingest(t, auto); r.ConversationID == vic.Conversation.ID {
			t.Fatalf("automatic mail with the token = %+v, want it kept out of the chat", r)
		}
		if c, _ := f.s.Contact(ctx, vic.Contact.ID); c.EmailVerified {
			t.Fatalf("contact verified by an automatic mail")
		}
		// The same address's mail reaches the oldest verified contact, not the visitor.
		if r := f.ingest(t, mail("vic@visitor.test", "Again", "more")); r.ConversationID == vic.Conversation.ID {
			t.Fatalf("second unproved mail = %+v", r)
		} else if c, _ := f.s.Conversation(ctx, r.ConversationID); c.ContactID != conv.ContactID {
			t.Fatalf("second unproved mail went to contact %d, want %d", c.ContactID, conv.ContactID)
		}

		// A reply with the chat's token proves the address and continues the chat.
		wen := startVisitorEmail(t, f.s, "Wen", "wen@visitor.test")
		proof := mail("wen@visitor.test", "Re: your chat [#"+f.token(t, wen.Conversation.ID)+"]", "yes, that was me")
		if r := f.ingest(t, proof); r.ConversationID != wen.Conversation.ID || r.Threaded != "subject" {
			t.Fatalf("reply with the token = %+v, want the chat conversation %d", r, wen.Conversation.ID)
		}
		if c, _ := f.s.Contact(ctx, wen.Contact.ID); !c.EmailVerified {
			t.Fatalf("contact after a reply with the token = %+v, want verified", c)
		}
		// Later mail without proof: a new email conversation of the same contact...
		later := mail("wen@visitor.test", "New question", "with a file")
		later.Attachments = []inbox.IncomingAttachment{{Name: "a.pdf", Data: pdfBytes}}
		lr := f.ingest(t, later)
		emailConv, _ := f.s.Conversation(ctx, lr.ConversationID)
		if !lr.Created || emailConv.ContactID != wen.Contact.ID || emailConv.Channel != inbox.ChannelEmail {
			t.Fatalf("later mail = %+v in %+v, want a new email conversation of the visitor's contact", lr, emailConv)
		}
		// ...which the widget never shows: not as its conversation, not its files.
		cur, err := f.s.CurrentConversation(ctx, wen.Contact.ID)
		if err != nil || cur.ID != wen.Conversation.ID {
			t.Fatalf("CurrentConversation() = %d, %v; want the chat %d", cur.ID, err, wen.Conversation.ID)
		}
		again, created, err := f.s.StartVisitorConversation(ctx, wen.Contact.ID, nil)
		if err != nil || created || again.ID != wen.Conversation.ID {
			t.Fatalf("StartVisitorConversation() = %d, %v, %v; want the chat %d", again.ID, created, err, wen.Conversation.ID)
		}
		msgs, _ := f.s.Messages(ctx, emailConv.ID, inbox.MessageQuery{})
		attID := msgs.Messages[0].Attachments[0].ID
		if _, err := f.s.OpenContactAttachment(ctx, wen.Contact.ID, attID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenContactAttachment(email conversation's file) = %v, want ErrNotFound", err)
		}
		if _, err := f.s.OpenAttachment(ctx, emailConv.ID, f.alice.ID, attID); err != nil {
			t.Fatalf("OpenAttachment() by an agent = %v", err)
		}
		// The visitor's presence is shown in the chat, where their widget is.
		sub := f.s.Hub().Subscribe(0, 10)
		defer sub.Close()
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, wen.Contact.ID, true))
		if ev := inboxtest.Receive(t, sub.C, "the presence event"); ev.Type != inbox.EventContactPresence || ev.ConversationID != wen.Conversation.ID {
			t.Fatalf("presence event %s in conversation %d, want the chat %d", ev.Type, ev.ConversationID, wen.Conversation.ID)
		}

		// A reply to our own mail (its Message-ID) proves it too.
		uma := startVisitorEmail(t, f.s, "Uma", "uma@visitor.test")
		f.sentMail(t, "m.7.digest@example.com", uma.Conversation.ID, 0)
		reply := mail("uma@visitor.test", "Re: your chat", "thanks")
		reply.References = []string{"m.7.digest@example.com"}
		if r := f.ingest(t, reply); r.ConversationID != uma.Conversation.ID {
			t.Fatalf("reply to our digest = %+v, want the chat conversation %d", r, uma.Conversation.ID)
		}
		if c, _ := f.s.Contact(ctx, uma.Contact.ID); !c.EmailVerified {
			t.Fatalf("contact after a reply to our mail = %+v, want verified", c)
		}
	})
}

// A mail that proves a visitor's address (it marks their contact
// verified) and the visitor coming back online (which locks the contact,
// then delivers a queued chat reply in the same conversation) lock the
// same two rows, in the same order: contact, then conversation. The
// presence write runs while the ingest holds the first of them
// (SetBetweenLocks) and goes as far as it can; both then end without
// error. In the other order, on PostgreSQL, each waits for the other and
// one fails with a deadlock (SQLSTATE 40P01).
func TestProofWhileComingOnline(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		xia := startVisitorEmail(t, f.s, "Xia", "xia@visitor.test")
		queued, d, _, err := f.reply(xia.Conversation.ID, inbox.ChannelChat, "Are you still there?")
		if err != nil || d.State != inbox.StateQueued {
			t.Fatalf("AddReply(chat) to an offline visitor = %+v, %+v, %v; want queued", queued, d, err)
		}
		f.sentMail(t, "m.8.digest@example.com", xia.Conversation.ID, 0)
		waiting := waiter(t, f.s, url, "contacts", "conversations")
		online := make(chan error, 1)
		calls := 0
		f.s.SetBetweenLocks(func() {
			if calls++; calls == 1 {
				untilWaiting(t, waiting, "the presence write", func() {
					online <- f.s.SetContactOnline(ctx, xia.Contact.ID, true)
				})
			}
		})
		reply := mail("xia@visitor.test", "Re: your chat", "yes, here")
		reply.InReplyTo = []string{"m.8.digest@example.com"}
		res, err := f.s.IngestEmail(ctx, reply)
		f.s.SetBetweenLocks(nil)
		noErr(t, "SetContactOnline()", inboxtest.Receive(t, online, "the visitor online"))
		if err != nil || res.ConversationID != xia.Conversation.ID {
			t.Fatalf("IngestEmail(proof) = %+v, %v; want the chat conversation %d", res, err, xia.Conversation.ID)
		}
		if calls != 1 {
			t.Fatalf("the ingest passed between its locks %d times, want once", calls)
		}
		if c, err := f.s.Contact(ctx, xia.Contact.ID); err != nil || !c.EmailVerified || !c.Online {
			t.Fatalf("contact = %+v, %v; want verified and online", c, err)
		}
		if m := f.message(t, xia.Conversation.ID, queued.ID); m.State != inbox.StateSent {
			t.Fatalf("queued reply = %s, want sent now that the visitor is back", m.State)
		}
	})
}

func startVisitorEmail(t *testing.T, s *inbox.Store, name, email string) inbox.VisitorStart {
	t.Helper()
	v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: name, Email: email}, 24*time.Hour)
	if err != nil {
		t.Fatalf("StartVisitor() = %v", err)
	}
	return v
}

// An automatic mail joins its closed conversation without reopening it;
// the customer's own reply reopens it into Unassigned (rule 4).
func TestAutoMailDoesNotReopen(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		sub := f.s.Hub().Subscribe(0, 100)
		defer sub.Close()
		first := mail("ann@customer.test", "Hello", "hi")
		res := f.ingest(t, first)
		noErr(t, "Join()", f.s.Join(ctx, res.ConversationID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, res.ConversationID, f.alice.ID))
		received(t, sub, 5) // created, message, joined, left, closed

		auto := mail("ann@customer.test", "Automatic reply: Hello", "I am away")
		auto.InReplyTo, auto.Auto, auto.AutoReason = []string{first.MessageID}, true, "Auto-Submitted: auto-replied"
		if r := f.ingest(t, auto); r.ConversationID != res.ConversationID {
			t.Fatalf("auto reply = %+v, want conversation %d", r, res.ConversationID)
		}
		evs := received(t, sub, 1)
		sameAsReplay(t, f.s, evs)
		var added inbox.MessageAdded
		if err := evs[0].Decode(&added); err != nil || added.Reopened || added.Message.Email == nil || !added.Message.Email.Auto {
			t.Fatalf("auto reply's event = %s, %v; want not reopened, auto", evs[0].Data, err)
		}
		if c, _ := f.s.Conversation(ctx, res.ConversationID); c.Status != inbox.StatusClosed {
			t.Fatalf("status after an auto reply = %s, want closed", c.Status)
		}
		if ids := f.column(t, inbox.ColumnUnassigned, f.alice.ID); has(ids, res.ConversationID) {
			t.Fatalf("Unassigned = %v after an auto reply", ids)
		}

		human := mail("ann@customer.test", "Re: Hello", "one more thing")
		human.InReplyTo = []string{first.MessageID}
		f.ingest(t, human)
		evs = received(t, sub, 1)
		sameAsReplay(t, f.s, evs)
		if err := evs[0].Decode(&added); err != nil || !added.Reopened {
			t.Fatalf("customer's reply event = %s, %v; want reopened", evs[0].Data, err)
		}
		if ids := f.column(t, inbox.ColumnUnassigned, f.alice.ID); !has(ids, res.ConversationID) {
			t.Fatalf("Unassigned = %v, want the reopened conversation", ids)
		}
	})
}

// A bounce marks the reply it reports failed, with the server's answer,
// and carries the report as an attachment of that reply; it starts and
// reopens nothing.
func TestBounce(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		res := f.ingest(t, mail("ann@customer.test", "Hello", "hi"))
		reply, _ := f.emailReply(t, res.ConversationID, "Here is your answer")
		noErr(t, "Join()", f.s.Join(ctx, res.ConversationID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, res.ConversationID, f.alice.ID))
		f.sentMail(t, "m.3.reply@example.com", res.ConversationID, reply.ID)
		before, _ := f.s.Conversation(ctx, res.ConversationID)

		sub := f.s.Hub().Subscribe(res.ConversationID, 10)
		defer sub.Close()
		bounce := mail("MAILER-DAEMON@mx.customer.test", "Undelivered Mail Returned to Sender", "This is the mail system.")
		bounce.Bounce = &inbox.Bounce{OriginalMessageID: "m.3.reply@example.com", Recipient: "ann@customer.test",
			Status: "5.1.1", Diagnostic: "550 5.1.1 <ann@customer.test>: Recipient address rejected"}
		br := f.ingest(t, bounce)
		if br.Created || br.Duplicate || br.ConversationID != res.ConversationID || br.MessageID != reply.ID || br.Threaded != "bounce" {
			t.Fatalf("IngestEmail(bounce) = %+v, want the reply %d", br, reply.ID)
		}
		evs := received(t, sub, 1)
		sameAsReplay(t, f.s, evs)
		var st inbox.MessageState
		if err := evs[0].Decode(&st); err != nil || evs[0].Type != inbox.EventMessageState || st.State != inbox.StateFailed ||
			len(st.MessageIDs) != 1 || st.MessageIDs[0] != reply.ID || !strings.Contains(st.Error, "5.1.1") || !strings.Contains(st.Error, "rejected") {
			t.Fatalf("bounce event = %s %s, %v", evs[0].Type, evs[0].Data, err)
		}
		page, _ := f.s.Messages(ctx, res.ConversationID, inbox.MessageQuery{})
		if len(page.Messages) != 2 {
			t.Fatalf("messages after a bounce = %d, want 2 (no message for the bounce)", len(page.Messages))
		}
		got := page.Messages[1]
		if got.ID != reply.ID || got.State != inbox.StateFailed || len(got.Attachments) != 1 || got.Attachments[0].ContentType != "message/rfc822" {
			t.Fatalf("bounced reply = %+v", got)
		}
		a, err := f.s.OpenAttachment(ctx, res.ConversationID, f.bob.ID, got.Attachments[0].ID)
		if err != nil || !bytes.Equal(a.Data, bounce.Raw) {
			t.Fatalf("OpenAttachment(report) = %v", err)
		}
		var stored string
		f.s.Gorm().Raw(`SELECT error FROM messages WHERE id = ?`, reply.ID).Scan(&stored)
		if stored != st.Error {
			t.Fatalf("messages.error = %q, want %q", stored, st.Error)
		}
		after, _ := f.s.Conversation(ctx, res.ConversationID)
		if after.Status != inbox.StatusClosed || !after.LastActivityAt.Equal(before.LastActivityAt) {
			t.Fatalf("conversation after a bounce = %+v, want closed and untouched", after)
		}
		if dup := f.ingest(t, bounce); !dup.Duplicate {
			t.Fatalf("the same bounce again = %+v, want Duplicate", dup)
		}

		// A report on a digest (our mail of several messages) is shown in
		// its conversation as an automatic message.
		f.sentMail(t, "m.5.digest@example.com", res.ConversationID, 0)
		digest := mail("MAILER-DAEMON@mx.customer.test", "Undelivered Mail Returned to Sender", "digest bounced")
		digest.Bounce = &inbox.Bounce{OriginalMessageID: "m.5.digest@example.com", Status: "4.2.2", Diagnostic: "mailbox full"}
		dr := f.ingest(t, digest)
		if dr.ConversationID != res.ConversationID || dr.Created || dr.Threaded != "bounce" || dr.MessageID == 0 {
			t.Fatalf("bounce of a digest = %+v, want a message in conversation %d", dr, res.ConversationID)
		}
		if c, _ := f.s.Conversation(ctx, res.ConversationID); c.Status != inbox.StatusClosed {
			t.Fatalf("status after a digest's bounce = %s, want closed", c.Status)
		}

		// A report on a mail of a deleted conversation brings nothing back.
		f.sentMail(t, "m.4.reply@example.com", res.ConversationID, reply.ID)
		noErr(t, "DeleteConversation()", f.s.DeleteConversation(ctx, res.ConversationID))
		late := mail("MAILER-DAEMON@mx.customer.test", "Undelivered Mail Returned to Sender", "late")
		late.Bounce = &inbox.Bounce{OriginalMessageID: "m.4.reply@example.com", Status: "5.1.1"}
		if r := f.ingest(t, late); r.ConversationID != 0 || r.Created || r.Threaded != "bounce" {
			t.Fatalf("bounce of a deleted conversation's mail = %+v, want nothing stored", r)
		}
		var atts int64
		f.s.Gorm().Raw(`SELECT COUNT(*) FROM attachments`).Scan(&atts)
		if atts != 0 {
			t.Fatalf("%d attachments after the bounce of a deleted conversation's mail", atts)
		}
	})
}

// The checkpoint advances in the transaction that stores, or finds a
// duplicate of, or quarantines a mail: never one without the other.
func TestIMAPCheckpointsAndQuarantine(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		check := func(want inbox.IMAPCheckpoint) {
			t.Helper()
			got, err := f.s.IMAPCheckpoint(ctx, "support", "INBOX")
			if err != nil || got != want {
				t.Fatalf("IMAPCheckpoint() = %+v, %v; want %+v", got, err, want)
			}
		}
		check(inbox.IMAPCheckpoint{})
		at := func(m inbox.IncomingEmail, validity, uid uint32) inbox.IncomingEmail {
			m.Folder, m.UIDValidity, m.UID = "INBOX", validity, uid
			return m
		}
		m3 := at(mail("ann@customer.test", "three", "3"), 7, 3)
		f.ingest(t, m3)
		check(inbox.IMAPCheckpoint{UIDValidity: 7, LastUID: 3})
		f.ingest(t, at(m3, 7, 4)) // a duplicate still advances
		check(inbox.IMAPCheckpoint{UIDValidity: 7, LastUID: 4})
		f.ingest(t, at(mail("ann@customer.test", "two", "2"), 7, 2)) // out of order: not back
		check(inbox.IMAPCheckpoint{UIDValidity: 7, LastUID: 4})

		f.s.SetBeforeCommit(func() error { return errInjected })
		m5 := at(mail("ann@customer.test", "five", "5"), 7, 5)
		if _, err := f.s.IngestEmail(ctx, m5); err == nil {
			t.Fatalf("IngestEmail() with a failing commit = nil")
		}
		if _, err := f.s.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 7, UID: 6, Raw: []byte("x")}); err == nil {
			t.Fatalf("Quarantine() with a failing commit = nil")
		}
		f.s.SetBeforeCommit(nil)
		check(inbox.IMAPCheckpoint{UIDValidity: 7, LastUID: 4})
		if q, _ := f.s.ListQuarantine(ctx); len(q) != 0 {
			t.Fatalf("ListQuarantine() after a failed commit = %+v", q)
		}
		if r := f.ingest(t, m5); r.Duplicate || r.MessageID == 0 {
			t.Fatalf("the mail of a failed commit again = %+v, want stored now", r)
		}
		check(inbox.IMAPCheckpoint{UIDValidity: 7, LastUID: 5})
		f.ingest(t, at(mail("ann@customer.test", "new validity", "n"), 8, 1))
		check(inbox.IMAPCheckpoint{UIDValidity: 8, LastUID: 1})
		noErr(t, "SaveIMAPCheckpoint()", f.s.SaveIMAPCheckpoint(ctx, "support", "INBOX", inbox.IMAPCheckpoint{UIDValidity: 9, LastUID: 100}))
		check(inbox.IMAPCheckpoint{UIDValidity: 9, LastUID: 100})

		raw := []byte("From: broken\r\n\r\n\x00\xff")
		q1, err := f.s.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 9, UID: 101, Reason: "bad MIME", Raw: raw})
		if err != nil || q1.ID == 0 || q1.Size != int64(len(raw)) || q1.Raw != nil {
			t.Fatalf("Quarantine() = %+v, %v", q1, err)
		}
		check(inbox.IMAPCheckpoint{UIDValidity: 9, LastUID: 101})
		q2, err := f.s.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 9, UID: 101, Reason: "bad MIME", Raw: raw})
		if err != nil || q2.ID != q1.ID {
			t.Fatalf("Quarantine() again = %+v, %v; want the first record %d", q2, err, q1.ID)
		}
		other, err := f.s.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 9, UID: 102, Reason: "too deep", Raw: []byte("y")})
		if err != nil {
			t.Fatalf("Quarantine(102) = %v", err)
		}
		list, err := f.s.ListQuarantine(ctx)
		if err != nil || len(list) != 2 || list[0].ID != other.ID || list[1].ID != q1.ID || list[1].Raw != nil || list[1].Reason != "bad MIME" {
			t.Fatalf("ListQuarantine() = %+v, %v", list, err)
		}
		got, err := f.s.QuarantinedEmail(ctx, q1.ID)
		if err != nil || !bytes.Equal(got.Raw, raw) || got.UID != 101 || got.UIDValidity != 9 {
			t.Fatalf("QuarantinedEmail() = %+v, %v", got, err)
		}
		if _, err := f.s.QuarantinedEmail(ctx, q1.ID+100); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("QuarantinedEmail(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// Two fetchers at once (two nodes, or a restart racing the old process):
// the same mail fetched by both is stored once, and different mails from
// a new address make one contact.
func TestIngestConcurrent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		same := mail("new@customer.test", "Same", "fetched twice")
		const n = 8
		type outcome struct {
			res inbox.IngestResult
			err error
		}
		done := make(chan outcome, 2*n)
		for i := range 2 * n {
			go func() {
				m := same
				if i%2 == 1 {
					m = mail("new@customer.test", "Other", "another mail")
				}
				r, err := f.s.IngestEmail(ctx, m)
				done <- outcome{r, err}
			}()
		}
		stored, contacts := 0, map[int64]bool{}
		for range 2 * n {
			o := inboxtest.Receive(t, done, "an ingest")
			if o.err != nil {
				t.Fatalf("IngestEmail() = %v", o.err)
			}
			if o.res.Duplicate {
				continue
			}
			stored++
			c, _ := f.s.Conversation(ctx, o.res.ConversationID)
			contacts[c.ContactID] = true
		}
		if stored != n+1 || len(contacts) != 1 {
			t.Fatalf("stored %d mails for %d contacts, want %d for 1", stored, len(contacts), n+1)
		}
		if !strings.HasPrefix(url, "postgres") {
			return // SQLite writes one transaction at a time
		}
		// PostgreSQL: while the first mail from a new address is not
		// committed, a second one from it waits (for the address's
		// advisory lock), then finds the contact the first made.
		release := make(chan struct{})
		var calls atomic.Int32
		f.s.SetBeforeCommit(func() error {
			if calls.Add(1) == 1 {
				<-release
			}
			return nil
		})
		defer f.s.SetBeforeCommit(nil)
		ingestAsync := func(m inbox.IncomingEmail) chan outcome {
			c := make(chan outcome, 1)
			go func() {
				r, err := f.s.IngestEmail(ctx, m)
				c <- outcome{r, err}
			}()
			return c
		}
		first := ingestAsync(mail("fresh@customer.test", "first", "1"))
		inboxtest.Eventually(t, "the first mail's transaction to wait for its commit", func() bool { return calls.Load() == 1 })
		second := ingestAsync(mail("fresh@customer.test", "second", "2"))
		h := fnv.New64a()
		h.Write([]byte("contact email\x00fresh@customer.test"))
		key := h.Sum64()
		inboxtest.Eventually(t, "the second mail to wait for the address's lock", func() bool {
			select {
			case o := <-second:
				close(release)
				t.Fatalf("second mail from a new address stored while the first was not committed: %+v, %v", o.res, o.err)
			default:
			}
			var waiting int64
			f.s.Gorm().Raw(`SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND classid::bigint = ? AND objid::bigint = ?`, int64(key>>32), int64(key&0xffffffff)).Scan(&waiting)
			return waiting > 0
		})
		close(release)
		a, b := inboxtest.Receive(t, first, "the first mail"), inboxtest.Receive(t, second, "the second mail")
		if a.err != nil || b.err != nil {
			t.Fatalf("IngestEmail() = %v, %v", a.err, b.err)
		}
		ca, _ := f.s.Conversation(ctx, a.res.ConversationID)
		cb, _ := f.s.Conversation(ctx, b.res.ConversationID)
		if ca.ContactID != cb.ContactID {
			t.Fatalf("two mails from a new address made contacts %d and %d, want one", ca.ContactID, cb.ContactID)
		}
	})
}
