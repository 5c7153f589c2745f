package email

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Our own address is no customer (issue 12 item 8): rule 5 never picks
// email for a contact whose address is one of our mailboxes, and mail
// From one of them becomes no conversation and is logged.
func TestOwnAddressLoop(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		cfg := config.Defaults()
		cfg.Mailboxes = []config.Mailbox{{Name: "support", Address: "support@example.com", PlusAddressing: true,
			IMAP: config.IMAP{Host: "127.0.0.1", Port: 1, TLS: config.TLSNone}, SMTP: config.SMTP{Host: "127.0.0.1", Port: 1, TLS: config.TLSNone}}}
		st := inboxtest.Open(t, url, &inbox.Options{Mailboxes: MailboxInfos(cfg.Mailboxes)})
		var logs bytes.Buffer // nothing runs: the sink logs on this goroutine
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ch, err := New(Options{Store: st, Config: cfg, Logger: log})
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		for addr, want := range map[string]bool{
			"carol@customer.test":      true,
			"supportdesk@example.com":  true,
			"":                         false,
			"Support@Example.com":      false,
			"support+c7-x@example.com": false,
		} {
			if got := ch.Reaches(inbox.Contact{Email: addr}); got != want {
				t.Errorf("Reaches(%q) = %v, want %v", addr, got, want)
			}
		}

		if err := st.SetChannels(ch); err != nil {
			t.Fatalf("SetChannels() = %v", err)
		}
		ctx := context.Background()
		decide := func(email, requested string) (inbox.ReplyDecision, error) {
			t.Helper()
			c, err := st.CreateContact(ctx, inbox.NewContact{Name: "X", Email: email})
			if err != nil {
				t.Fatalf("CreateContact(%s) = %v", email, err)
			}
			conv, err := st.StartConversation(ctx, c.ID, inbox.ChannelEmail, "")
			if err != nil {
				t.Fatalf("StartConversation() = %v", err)
			}
			return st.ReplyChannel(ctx, conv.ID, requested)
		}
		if d, err := decide("carol@customer.test", inbox.ReplyAuto); err != nil || d.Channel != inbox.ChannelEmail {
			t.Fatalf("reply to an offline customer = %+v, %v; want email", d, err)
		}
		if d, err := decide("Support+Old@example.com", inbox.ReplyAuto); err != nil || d.Channel != inbox.ChannelChat || d.State != inbox.StateQueued {
			t.Fatalf("reply to our own address = %+v, %v; want chat, queued", d, err)
		}
		var invalid *inbox.InvalidError
		if d, err := decide("support@example.com", inbox.ChannelEmail); !errors.As(err, &invalid) {
			t.Fatalf("email chosen to our own address = %+v, %v; want an InvalidError", d, err)
		}

		sink := &StoreSink{Store: st, Logger: log}
		raw := []byte("From: Example Support <Support@Example.com>\r\nTo: carol@customer.test\r\nSubject: Re: Printer\r\n" +
			"Message-ID: <loop-1@example.com>\r\n\r\nOur own reply, fetched back.\r\n")
		if err := sink.Import(ctx, []Fetched{{Mailbox: "support", Folder: "INBOX", UIDValidity: 3, UID: 9, Raw: raw, Size: int64(len(raw))}}); err != nil {
			t.Fatalf("Import() = %v", err)
		}
		if cp, err := st.IMAPCheckpoint(ctx, "support", "INBOX"); err != nil || cp != (inbox.IMAPCheckpoint{UIDValidity: 3, LastUID: 9}) {
			t.Fatalf("IMAPCheckpoint() = %+v, %v; want UID 9", cp, err)
		}
		line := ""
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, `msg="mail ignored"`) {
				line = l
			}
		}
		if !strings.Contains(line, "level=INFO") || !strings.Contains(strings.ToLower(line), "from=support@example.com") || !strings.Contains(line, "uid=9") {
			t.Fatalf("log:\n%s\nwant an info line for the ignored mail", logs.String())
		}
	})
}
