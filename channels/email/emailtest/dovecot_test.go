package emailtest_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// dovecotMail is a small RFC 5322 message with CRLF line ends, told
// apart by n.
func dovecotMail(n int) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: Ann Customer <ann@example.net>
To: support@example.com
Subject: Order %d
Message-ID: <order-%d@example.net>
Date: Mon, 02 Jun 2025 10:00:00 +0000

Where is order %d?
`, n, n, n), "\n", "\r\n"))
}

// TestDovecotLogin logs in the three ways a mailbox's tls setting allows
// (none, starttls, implicit), trusting only the test's certificate, and
// is refused a wrong password.
func TestDovecotLogin(t *testing.T) {
	d := emailtest.StartDovecot(t)
	t.Logf("Dovecot started in %v", d.StartTime)

	login := func(t *testing.T, c *imapclient.Client, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if err := c.Login(d.User, d.Password).Wait(); err != nil {
			t.Fatalf("LOGIN: %v", err)
		}
		if !c.Caps().Has(imap.CapIdle) {
			t.Errorf("capabilities %v lack IDLE", c.Caps())
		}
		if err := c.Logout().Wait(); err != nil {
			t.Fatalf("LOGOUT: %v", err)
		}
	}
	tlsOptions := &imapclient.Options{TLSConfig: d.TLSConfig()}
	t.Run("none", func(t *testing.T) {
		c, err := imapclient.DialInsecure(d.Addr(), nil)
		login(t, c, err)
	})
	t.Run("starttls", func(t *testing.T) {
		c, err := imapclient.DialStartTLS(d.Addr(), tlsOptions)
		login(t, c, err)
	})
	t.Run("implicit", func(t *testing.T) {
		c, err := imapclient.DialTLS(d.TLSAddr(), tlsOptions)
		login(t, c, err)
	})
	t.Run("authenticate plain", func(t *testing.T) {
		c, err := imapclient.DialTLS(d.TLSAddr(), tlsOptions)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if err := c.Authenticate(sasl.NewPlainClient("", d.User, d.Password)); err != nil {
			t.Fatalf("AUTHENTICATE PLAIN: %v", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		// The system's roots do not hold the test's certificate.
		untrusted := &imapclient.Options{TLSConfig: &tls.Config{ServerName: d.Host}}
		c, err := imapclient.DialTLS(d.TLSAddr(), untrusted)
		if err == nil {
			c.Close()
			t.Fatal("DialTLS trusted a certificate outside CertPool")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("DialTLS = %v, want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c, err := imapclient.DialInsecure(d.Addr(), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		err = c.Login(d.User, d.Password+"x").Wait()
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo ||
			imapErr.Code != imap.ResponseCodeAuthenticationFailed {
			t.Fatalf("LOGIN with a wrong password = %v, want NO [AUTHENTICATIONFAILED]", err)
		}
	})
}

// TestDovecotMailbox delivers mail and reads it back as the ingest will:
// SELECT for UIDVALIDITY and UIDNEXT, FETCH BODY.PEEK[] for the bytes,
// IDLE for new mail, and a changed UIDVALIDITY.
func TestDovecotMailbox(t *testing.T) {
	d := emailtest.StartDovecot(t)
	t.Logf("Dovecot started in %v", d.StartTime)

	mails := [][]byte{dovecotMail(1), dovecotMail(2), dovecotMail(3)}
	uids := d.Deliver(mails...)
	if want := []imap.UID{1, 2, 3}; fmt.Sprint(uids) != fmt.Sprint(want) {
		t.Fatalf("Deliver() = UIDs %v, want %v", uids, want)
	}

	// The ingest's client: it hears of new mail while idle.
	exists := make(chan uint32, 10)
	c, err := imapclient.DialTLS(d.TLSAddr(), &imapclient.Options{
		TLSConfig: d.TLSConfig(),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(m *imapclient.UnilateralDataMailbox) {
				if m.NumMessages != nil {
					exists <- *m.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer c.Close()
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	if sel.NumMessages != 3 || sel.UIDNext != 4 || sel.UIDValidity == 0 {
		t.Fatalf("SELECT INBOX = %d EXISTS, UIDNEXT %d, UIDVALIDITY %d; want 3, 4, not 0",
			sel.NumMessages, sel.UIDNext, sel.UIDValidity)
	}

	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{body},
	}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH BODY.PEEK[]: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("UID FETCH returned %d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		if m.UID != uids[i] {
			t.Errorf("message %d: UID %d, want %d", i, m.UID, uids[i])
		}
		if got := m.FindBodySection(body); !bytes.Equal(got, mails[i]) {
			t.Errorf("UID %d: BODY[] =\n%q\nwant\n%q", m.UID, got, mails[i])
		}
		for _, f := range m.Flags {
			if f == imap.FlagSeen {
				t.Errorf("UID %d: flags %v after Deliver and a PEEK, want no \\Seen", m.UID, m.Flags)
			}
		}
	}

	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	if got := d.Deliver(dovecotMail(4)); got[0] != 4 {
		t.Errorf("Deliver() = UID %d, want 4", got[0])
	}
	if n := inboxtest.Receive(t, exists, "an EXISTS while idle"); n != 4 {
		t.Errorf("EXISTS %d while idle, want 4", n)
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("ending IDLE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}

	t.Run("UIDVALIDITY changes", func(t *testing.T) {
		next := d.ChangeUIDValidity("INBOX")
		if next == sel.UIDValidity {
			t.Fatalf("ChangeUIDValidity() = %d, the old UIDVALIDITY", next)
		}
		c := d.Dial()
		status, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDValidity: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS: %v", err)
		}
		if status.UIDValidity != next || *status.NumMessages != 4 {
			t.Errorf("STATUS INBOX = UIDVALIDITY %d, %d messages; want %d, 4",
				status.UIDValidity, *status.NumMessages, next)
		}
	})

	t.Run("folder", func(t *testing.T) {
		d.Create("Support")
		received := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
		uids := d.Append("Support", received, dovecotMail(5))
		c := d.Dial()
		if _, err := c.Select("Support", nil).Wait(); err != nil {
			t.Fatalf("SELECT Support: %v", err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{InternalDate: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("UID FETCH INTERNALDATE = %d messages, %v", len(msgs), err)
		}
		if !msgs[0].InternalDate.Equal(received) {
			t.Errorf("INTERNALDATE %v, want %v", msgs[0].InternalDate, received)
		}
	})
}

// TestDovecotParallel runs two instances at once: each has its own
// ports, directory and mail.
func TestDovecotParallel(t *testing.T) {
	var started sync.WaitGroup
	started.Add(2)
	both := make(chan struct{}, 2) // one for each when both have started
	go func() {
		started.Wait()
		both <- struct{}{}
		both <- struct{}{}
	}()

	addrs := make(chan string, 2)
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			var once sync.Once
			release := func() { once.Do(started.Done) }
			defer release() // if StartDovecot fails, the other need not wait
			d := emailtest.StartDovecot(t)
			t.Logf("Dovecot started in %v", d.StartTime)
			addrs <- d.Addr() + " " + d.TLSAddr() + " " + d.Dir
			release()
			// Both run now (this needs go test -parallel 2 or more, the
			// default on two cores).
			inboxtest.Receive(t, both, "the other instance to start")

			d.Deliver(dovecotMail(10 + i))
			c := d.Dial()
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatalf("SELECT: %v", err)
			}
			if sel.NumMessages != 1 {
				t.Fatalf("INBOX has %d messages, want 1 (its own)", sel.NumMessages)
			}
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("FETCH ENVELOPE = %d, %v", len(msgs), err)
			}
			if got, want := msgs[0].Envelope.MessageID, fmt.Sprintf("order-%d@example.net", 10+i); got != want {
				t.Errorf("Message-ID %q, want %q", got, want)
			}
		})
	}
	t.Cleanup(func() {
		close(addrs)
		seen := map[string]bool{}
		for a := range addrs {
			for _, part := range strings.Fields(a) {
				if seen[part] {
					t.Errorf("two instances share %s", part)
				}
				seen[part] = true
			}
		}
	})
}
