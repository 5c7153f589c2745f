package inbox_test

import (
	"errors"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The report of a bounced email reply in a chat conversation is the
// agents' (it quotes our mail's headers, Cc included): the widget's
// contact cannot open it, though it is attached to a message they see.
func TestContactCannotOpenBounceReport(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		conv := f.start(t)
		// The reply's channel is the store's to decide; the mail of ours
		// that carried it is recorded as the outbox records it.
		reply, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent,
			AgentID: &f.alice.ID, Text: "Here is your answer"})
		if err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		f.sentMail(t, "m.9.reply@example.com", conv.ID, reply.ID)
		bounce := mail("MAILER-DAEMON@mx.example.com", "Undelivered Mail Returned to Sender", "This is the mail system.")
		bounce.Bounce = &inbox.Bounce{OriginalMessageID: "m.9.reply@example.com", Recipient: "carol@example.com", Status: "5.1.1"}
		if res := f.ingest(t, bounce); res.MessageID != reply.ID {
			t.Fatalf("IngestEmail(bounce) = %+v, want it on the reply %d", res, reply.ID)
		}
		page, err := f.s.Messages(ctx, conv.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 1 || len(page.Messages[0].Attachments) != 1 {
			t.Fatalf("Messages() = %+v, %v; want the reply with its report", page, err)
		}
		report := page.Messages[0].Attachments[0]
		if report.Uploader != inbox.AuthorSystem {
			t.Fatalf("report = %+v, want uploaded by the system", report)
		}
		if _, err := f.s.OpenAttachment(ctx, conv.ID, f.bob.ID, report.ID); err != nil {
			t.Fatalf("OpenAttachment(report) = %v, want it for agents", err)
		}
		if _, err := f.s.OpenContactAttachment(ctx, f.contact.ID, report.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenContactAttachment(report) = %v, want ErrNotFound", err)
		}
	})
}
