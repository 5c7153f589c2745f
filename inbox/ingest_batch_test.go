package inbox_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// IngestEmails stores a batch of fetched mail in one transaction: a reply
// threads into the conversation a mail before it in the same batch
// started, a Message-ID twice is a Duplicate the second time, the
// checkpoint ends at the last UID, and every event is published (and
// replays the same). An invalid mail or a failed commit stores nothing.
func TestIngestEmailsBatch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		at := func(m inbox.IncomingEmail, uid uint32) inbox.IncomingEmail {
			m.Folder, m.UIDValidity, m.UID = "INBOX", 7, uid
			return m
		}
		checkpoint := func(want uint32) {
			t.Helper()
			cp, err := f.s.IMAPCheckpoint(ctx, "support", "INBOX")
			if err != nil || cp.LastUID != want {
				t.Fatalf("IMAPCheckpoint() = %+v, %v; want last UID %d", cp, err, want)
			}
		}
		sub := f.s.Hub().Subscribe(0, 100)
		defer sub.Close()

		first := at(mail("ann@customer.test", "Order", "where is it?"), 10)
		reply := at(mail("ann@customer.test", "Re: Order", "any news?"), 11)
		reply.InReplyTo = []string{first.MessageID}
		again := at(first, 12)
		bob := at(mail("bob@customer.test", "Refund", "please"), 13)

		// A batch that cannot commit leaves nothing behind.
		f.s.SetBeforeCommit(func() error { return errInjected })
		if _, err := f.s.IngestEmails(ctx, []inbox.IncomingEmail{first, reply}); err == nil {
			t.Fatal("IngestEmails() with a failing commit = nil")
		}
		f.s.SetBeforeCommit(nil)
		// Nor does a batch with an invalid mail.
		noSender := at(mail("ann@customer.test", "?", "?"), 14)
		noSender.From.Addr = "nobody"
		_, err := f.s.IngestEmails(ctx, []inbox.IncomingEmail{first, noSender})
		if ie := (*inbox.InvalidError)(nil); !errors.As(err, &ie) || ie.Field != "from" {
			t.Fatalf("IngestEmails() with a mail without a sender = %v, want its InvalidError", err)
		}
		checkpoint(0)

		res, err := f.s.IngestEmails(ctx, []inbox.IncomingEmail{first, reply, again, bob})
		if err != nil || len(res) != 4 {
			t.Fatalf("IngestEmails() = %+v, %v", res, err)
		}
		if !res[0].Created || res[1].Created || res[1].Threaded != "references" || res[1].ConversationID != res[0].ConversationID ||
			!res[2].Duplicate || !res[3].Created || res[3].ConversationID == res[0].ConversationID {
			t.Fatalf("IngestEmails() = %+v; want a new conversation, the reply in it, a duplicate, another conversation", res)
		}
		checkpoint(13)
		// Created and message_added of the first, message_added of the
		// reply, created and message_added of bob's.
		evs := received(t, sub, 5)
		sameAsReplay(t, f.s, evs)
		var types []string
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		if strings.Join(types, " ") != "conversation_created message_added message_added conversation_created message_added" {
			t.Fatalf("events = %v", types)
		}
		page, err := f.s.Messages(ctx, res[0].ConversationID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 2 || page.Messages[1].Text != "any news?" {
			t.Fatalf("Messages() = %+v, %v; want the mail and its reply", page.Messages, err)
		}
	})
}

// On PostgreSQL a batch cannot take its conversations' locks in id order
// (as the appender does), so it gives up waiting for a lock after a short
// while and stores its mails one per transaction: the mails before the
// locked conversation's are committed while the lock is held, and nothing
// can deadlock.
func TestIngestEmailsLockTimeout(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		if !strings.HasPrefix(url, "postgres") {
			return // SQLite has one writer: nothing to wait for
		}
		f := newMailFixture(t, url)
		first := f.ingest(t, mail("ann@customer.test", "Order", "where is it?"))
		var firstID string
		f.s.Gorm().Raw(`SELECT header_id FROM email_messages WHERE message_id = ?`, first.MessageID).Scan(&firstID)

		locker, err := f.s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Rollback()
		if _, err := locker.Exec(`SELECT id FROM conversations WHERE id = $1 FOR UPDATE`, first.ConversationID); err != nil {
			t.Fatal(err)
		}
		carl := mail("carl@customer.test", "Hello", "a new question")
		reply := mail("ann@customer.test", "Re: Order", "any news?")
		reply.InReplyTo = []string{firstID}
		type outcome struct {
			res []inbox.IngestResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := f.s.IngestEmails(ctx, []inbox.IncomingEmail{carl, reply})
			done <- outcome{res, err}
		}()
		inboxtest.Eventually(t, "carl's mail committed while ann's conversation is locked", func() bool {
			var n int64
			f.s.Gorm().Raw(`SELECT COUNT(*) FROM email_messages WHERE header_id = ?`, carl.MessageID).Scan(&n)
			return n == 1
		})
		select {
		case o := <-done:
			t.Fatalf("IngestEmails() returned while a conversation it writes is locked: %+v, %v", o.res, o.err)
		default:
		}
		if err := locker.Commit(); err != nil {
			t.Fatal(err)
		}
		o := inboxtest.Receive(t, done, "the batch")
		if o.err != nil || len(o.res) != 2 || !o.res[0].Created || o.res[1].ConversationID != first.ConversationID {
			t.Fatalf("IngestEmails() = %+v, %v; want carl's new conversation and ann's reply in hers", o.res, o.err)
		}
	})
}
