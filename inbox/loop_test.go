package inbox_test

import (
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Mail loops (issue 12 item 8): our own address is no customer.

func TestOwnMailbox(t *testing.T) {
	mailboxes := append(testMailboxes[:len(testMailboxes):len(testMailboxes)], inbox.MailboxInfo{Name: "help", Address: "Help@Example.NET"})
	for _, tc := range []struct {
		addr string
		want string // the mailbox's name, "" for none
	}{
		{"support@example.com", "support"},
		{"Support@EXAMPLE.com", "support"},
		{" support@example.com ", "support"},
		{"support+c42-abcdefghijklmnop@example.com", "support"},
		{"SUPPORT+x@Example.COM", "support"},
		{"sales@example.org", "sales"},
		{"sales+@example.org", "sales"},
		{"help@example.net", "help"}, // configured as Help@Example.NET
		{"help+x@EXAMPLE.net", "help"},
		{"supportdesk@example.com", ""},
		{"support@example.com.evil.test", ""},
		{"support@sub.example.com", ""},
		{"xsupport@example.com", ""},
		{"sales@example.com", ""},
		{"support", ""},
		{"@example.com", ""},
		{"", ""},
	} {
		mb, ok := inbox.OwnMailbox(mailboxes, tc.addr)
		if ok != (tc.want != "") || mb.Name != tc.want {
			t.Errorf("OwnMailbox(%q) = %q, %v; want %q", tc.addr, mb.Name, ok, tc.want)
		}
	}
}

// Mail From one of our own mailboxes (or a plus-addressed variant) that
// is no bounce becomes no conversation and no contact: it is recorded as
// seen, with the checkpoint, in one transaction, and ignored. A bounce
// From our address is handled as any bounce.
func TestIngestFromOwnMailbox(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		count := func(table string) (n int64) {
			t.Helper()
			if err := f.s.Gorm().Raw(`SELECT COUNT(*) FROM ` + table).Scan(&n).Error; err != nil {
				t.Fatalf("counting %s: %v", table, err)
			}
			return n
		}
		checkpoint := func(want uint32) {
			t.Helper()
			got, err := f.s.IMAPCheckpoint(ctx, "support", "INBOX")
			if err != nil || got.LastUID != want || want != 0 && got.UIDValidity != 7 {
				t.Fatalf("IMAPCheckpoint() = %+v, %v; want UID %d", got, err, want)
			}
		}
		contacts, convs := count("contacts"), count("conversations")

		uid := uint32(0)
		for _, from := range []string{"Support@Example.COM", "support+c1-abcdefghijklmnop@example.com"} {
			uid++
			m := mail(from, "Re: Printer", "our own mail, back")
			m.Folder, m.UIDValidity, m.UID = "INBOX", 7, uid

			// Not one without the other: a failed commit records
			// neither the key nor the checkpoint.
			f.s.SetBeforeCommit(func() error { return errInjected })
			if _, err := f.s.IngestEmail(ctx, m); err == nil {
				t.Fatalf("IngestEmail() with a failing commit = nil")
			}
			f.s.SetBeforeCommit(nil)
			checkpoint(uid - 1)

			res := f.ingest(t, m)
			if res.Ignored == "" || !strings.Contains(res.Ignored, "support@example.com") || res.Duplicate || res.Created ||
				res.ConversationID != 0 || res.MessageID != 0 {
				t.Fatalf("IngestEmail(from %s) = %+v, want Ignored, naming our mailbox", from, res)
			}
			checkpoint(uid)
			uid++
			m.UID = uid
			if again := f.ingest(t, m); !again.Duplicate || again.Ignored != "" {
				t.Fatalf("IngestEmail(from %s) again = %+v, want Duplicate", from, again)
			}
			checkpoint(uid)
		}
		if c, v := count("contacts"), count("conversations"); c != contacts || v != convs {
			t.Fatalf("after mail from our own address: %d contacts, %d conversations; want %d, %d", c, v, contacts, convs)
		}

		// A neighbour of our address is a customer.
		if r := f.ingest(t, mail("supportdesk@example.com", "Hello", "hi")); !r.Created || r.Ignored != "" {
			t.Fatalf("IngestEmail(from supportdesk@example.com) = %+v, want a new conversation", r)
		}

		// A bounce From our own address still marks the reply failed.
		res := f.ingest(t, mail("ann@customer.test", "Hello", "hi"))
		reply, _ := f.emailReply(t, res.ConversationID, "Here is your answer")
		f.sentMail(t, "m.7.reply@example.com", res.ConversationID, reply.ID)
		bounce := mail("support@example.com", "Undelivered Mail Returned to Sender", "This is the mail system.")
		bounce.Bounce = &inbox.Bounce{OriginalMessageID: "m.7.reply@example.com", Recipient: "ann@customer.test",
			Status: "5.1.1", Diagnostic: "550 5.1.1 unknown user"}
		if br := f.ingest(t, bounce); br.Ignored != "" || br.MessageID != reply.ID || br.Threaded != "bounce" {
			t.Fatalf("IngestEmail(bounce from our address) = %+v, want it on reply %d", br, reply.ID)
		}
		if got := f.message(t, res.ConversationID, reply.ID); got.State != inbox.StateFailed {
			t.Fatalf("bounced reply state = %q, want failed", got.State)
		}
	})
}

// No mail is sent To one of our own mailboxes: a reply to a contact
// whose address is ours fails at the claim, with a reason the agent
// sees on the message.
func TestClaimOutboxOwnAddress(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newEmailFixture(t, url)
		ours, err := f.s.CreateContact(ctx, inbox.NewContact{Name: "Loop", Email: "Support+Old@Example.com"})
		noErr(t, "CreateContact()", err)
		c, err := f.s.StartConversation(ctx, ours.ID, inbox.ChannelEmail, "Loop")
		noErr(t, "StartConversation()", err)
		m, rowID := f.emailReply(t, c.ID, "hello")
		if got := f.claim(t, 10); len(got) != 0 {
			t.Fatalf("ClaimOutbox() = %v, want nothing", ids(got))
		}
		row := f.row(t, rowID)
		if row.State != "failed" || !strings.Contains(row.LastError, "our own mailbox") {
			t.Fatalf("row = %+v, want failed as our own address", row)
		}
		if got := f.message(t, c.ID, m.ID); got.State != inbox.StateFailed || got.Error != row.LastError {
			t.Fatalf("message = %q %q, want failed with %q", got.State, got.Error, row.LastError)
		}
	})
}
