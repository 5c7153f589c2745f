package inbox_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// newMailFixture is a fixture whose mailbox "support" has plus
// addressing (a mailbox of any other name is unknown, without it), with
// the email channel that a configured mailbox brings.
func newMailFixture(t *testing.T, url string) *fixture {
	t.Helper()
	return newFixtureOpts(t, url, &inbox.Options{Mailboxes: []inbox.MailboxInfo{{Name: "support", Address: "support@example.com", PlusAddressing: true}},
		Channels: []inbox.Channel{emailChannel()}})
}

var mailSeq atomic.Int64

// mail is a plain mail from one address to support@example.com, with a
// Message-ID and raw source of its own.
func mail(from, subject, text string) inbox.IncomingEmail {
	n := mailSeq.Add(1)
	id := fmt.Sprintf("m%d.%d@mua.test", n, time.Now().UnixNano())
	raw := []byte(fmt.Sprintf("From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n%s\r\n", from, subject, id, text))
	sum := sha256.Sum256(raw)
	return inbox.IncomingEmail{Mailbox: "support", MessageID: id, RawHash: hex.EncodeToString(sum[:]),
		From: inbox.Address{Addr: from}, To: []inbox.Address{{Addr: "support@example.com"}},
		Recipients: []string{"support@example.com"}, Subject: subject, Text: text, FullText: text, Raw: raw}
}

func (f *fixture) ingest(t *testing.T, in inbox.IncomingEmail) inbox.IngestResult {
	t.Helper()
	res, err := f.s.IngestEmail(ctx, in)
	if err != nil {
		t.Fatalf("IngestEmail(%s from %s) = %v", in.MessageID, in.From.Addr, err)
	}
	return res
}

// sentMail records a Message-ID of ours, as the outbox does when it sends
// a mail of the conversation (carrying the message, if not 0).
func (f *fixture) sentMail(t *testing.T, key string, conversationID, messageID int64) {
	t.Helper()
	var msg any
	if messageID != 0 {
		msg = messageID
	}
	if err := f.s.Gorm().Exec(`INSERT INTO email_ids ("key", conversation_id, message_id, direction, created_at) VALUES (?, ?, ?, 'out', ?)`,
		key, conversationID, msg, time.Now().UTC()).Error; err != nil {
		t.Fatalf("recording our Message-ID: %v", err)
	}
}

func (f *fixture) token(t *testing.T, conversationID int64) string {
	t.Helper()
	tok, err := f.s.ConversationToken(ctx, conversationID)
	if err != nil {
		t.Fatalf("ConversationToken() = %v", err)
	}
	return tok
}

// Rule 9 in its order, and the sender's agreement: each case is one mail
// against a conversation started by ann@customer.test with a colleague in
// Cc, and a second conversation of hers.
func TestThreading(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newMailFixture(t, url)
		first := mail("ann@customer.test", "Order 42", "Where is my order?")
		first.Cc = []inbox.Address{{Name: "Dave", Addr: "dave@customer.test"}}
		a := f.ingest(t, first)
		if !a.Created || a.Threaded != "" {
			t.Fatalf("first mail = %+v, want a new conversation", a)
		}
		second := mail("ann@customer.test", "Invoice", "And the invoice?")
		b := f.ingest(t, second)
		if !b.Created || b.ConversationID == a.ConversationID {
			t.Fatalf("second unrelated mail = %+v, want a conversation of its own", b)
		}
		f.sentMail(t, "m.1.abcdefghij@example.com", a.ConversationID, 0)
		tok := f.token(t, a.ConversationID)
		// The signature of conversation a under another id, and an altered signature.
		_, sig, _ := strings.Cut(tok, "-")
		otherID := fmt.Sprintf("c%d-%s", b.ConversationID, sig)
		altered := tok[:len(tok)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(tok, "a")]

		cases := []struct {
			name     string
			edit     func(m *inbox.IncomingEmail)
			from     string
			want     int64 // 0: a new conversation
			threaded string
		}{
			{"In-Reply-To a received mail", func(m *inbox.IncomingEmail) { m.InReplyTo = []string{first.MessageID} },
				"ann@customer.test", a.ConversationID, "references"},
			{"In-Reply-To our sent mail", func(m *inbox.IncomingEmail) { m.InReplyTo = []string{"m.1.abcdefghij@example.com"} },
				"ann@customer.test", a.ConversationID, "references"},
			{"References only, an unknown one last", func(m *inbox.IncomingEmail) {
				m.References = []string{first.MessageID, "lost@elsewhere.test"}
			}, "ann@customer.test", a.ConversationID, "references"},
			{"References newest first", func(m *inbox.IncomingEmail) {
				m.References = []string{first.MessageID, "m.1.abcdefghij@example.com", second.MessageID}
			}, "ann@customer.test", b.ConversationID, "references"},
			{"In-Reply-To before References", func(m *inbox.IncomingEmail) {
				m.InReplyTo = []string{first.MessageID}
				m.References = []string{second.MessageID}
			}, "ann@customer.test", a.ConversationID, "references"},
			{"plus token", func(m *inbox.IncomingEmail) {
				m.Recipients = []string{"support+" + tok + "@example.com"}
			}, "ann@customer.test", a.ConversationID, "address"},
			{"plus token, upper case", func(m *inbox.IncomingEmail) {
				m.Recipients = []string{"Support+" + strings.ToUpper(tok) + "@Example.com"}
			}, "ann@customer.test", a.ConversationID, "address"},
			{"plus token to a mailbox without plus addressing", func(m *inbox.IncomingEmail) {
				m.Mailbox = "sales"
				m.Recipients = []string{"sales+" + tok + "@example.com"}
			}, "ann@customer.test", 0, ""},
			{"subject token", func(m *inbox.IncomingEmail) { m.Subject = "Re: Order 42 [#" + tok + "]" },
				"ann@customer.test", a.ConversationID, "subject"},
			{"References before the subject token", func(m *inbox.IncomingEmail) {
				m.InReplyTo = []string{second.MessageID}
				m.Subject = "Re: [#" + tok + "]"
			}, "ann@customer.test", b.ConversationID, "references"},
			{"altered token", func(m *inbox.IncomingEmail) {
				m.Subject = "Re: [#" + altered + "]"
				m.Recipients = []string{"support+" + altered + "@example.com"}
			}, "ann@customer.test", 0, ""},
			{"signature moved to another conversation", func(m *inbox.IncomingEmail) { m.Subject = "Re: [#" + otherID + "]" },
				"ann@customer.test", 0, ""},
			{"sender in other case", func(m *inbox.IncomingEmail) { m.InReplyTo = []string{first.MessageID} },
				"ANN@Customer.TEST", a.ConversationID, "references"},
			{"Cc'd colleague", func(m *inbox.IncomingEmail) { m.InReplyTo = []string{first.MessageID} },
				"dave@customer.test", a.ConversationID, "references"},
			{"stranger quoting the Message-ID", func(m *inbox.IncomingEmail) {
				m.InReplyTo = []string{first.MessageID, "m.1.abcdefghij@example.com"}
			}, "mallory@evil.test", 0, ""},
			{"stranger with a valid token", func(m *inbox.IncomingEmail) {
				m.Subject = "Re: [#" + tok + "]"
				m.Recipients = []string{"support+" + tok + "@example.com"}
			}, "mallory@evil.test", 0, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				m := mail(tc.from, "Re: Order 42", "reply: "+tc.name)
				tc.edit(&m)
				res := f.ingest(t, m)
				if tc.want == 0 {
					if !res.Created || res.ConversationID == a.ConversationID || res.ConversationID == b.ConversationID {
						t.Fatalf("IngestEmail() = %+v, want a new conversation", res)
					}
					conv, _ := f.s.Conversation(ctx, res.ConversationID)
					contact, _ := f.s.Contact(ctx, conv.ContactID)
					if !strings.EqualFold(contact.Email, tc.from) {
						t.Fatalf("new conversation's contact = %q, want the sender %q", contact.Email, tc.from)
					}
					return
				}
				if res.Created || res.ConversationID != tc.want || res.Threaded != tc.threaded {
					t.Fatalf("IngestEmail() = %+v, want conversation %d by %q", res, tc.want, tc.threaded)
				}
				page, err := f.s.Messages(ctx, tc.want, inbox.MessageQuery{})
				if err != nil {
					t.Fatalf("Messages() = %v", err)
				}
				last := page.Messages[len(page.Messages)-1]
				if last.ID != res.MessageID || last.Author != inbox.AuthorContact || last.Channel != inbox.ChannelEmail ||
					last.Email == nil || !strings.EqualFold(last.Email.From.Addr, tc.from) {
					t.Fatalf("last message = %+v (email %+v), want the mail from %s", last, last.Email, tc.from)
				}
			})
		}
	})
}
