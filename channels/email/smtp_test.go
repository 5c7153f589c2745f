package email

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// mailboxOn is testMailbox sending through srv in mode, logging in with
// user and pass.
func mailboxOn(srv *emailtest.SMTPServer, mode config.TLSMode, user, pass string) config.Mailbox {
	mb := testMailbox
	mb.SMTP = config.SMTP{Host: srv.Host, Port: srv.Port, TLS: mode, Username: user, Password: pass}
	return mb
}

func smtpOptions(srv *emailtest.SMTPServer) *SMTPOptions {
	return &SMTPOptions{TLSConfig: srv.ClientTLS, LocalName: "test.example"}
}

var testRaw = []byte("From: support@example.com\r\nTo: zoe@example.org\r\nSubject: hi\r\n\r\nHello\r\n.dot line\r\n")

func TestSendTLSModes(t *testing.T) {
	for _, mode := range []config.TLSMode{config.TLSNone, config.TLSImplicit, config.TLSStartTLS} {
		t.Run(string(mode), func(t *testing.T) {
			srv := emailtest.StartSMTP(t, &emailtest.SMTPOptions{TLS: mode, Username: "agent", Password: "secret"})
			mb := mailboxOn(srv, mode, "agent", "secret")
			refused, err := Send(context.Background(), mb, "zoe@example.org", []string{"col@example.org"}, testRaw, smtpOptions(srv))
			if err != nil || refused != nil {
				t.Fatalf("Send() = %v, %v", refused, err)
			}
			mails := srv.Mails()
			if len(mails) != 1 {
				t.Fatalf("%d mails received, want 1", len(mails))
			}
			m := mails[0]
			if m.From != "support@example.com" || !slices.Equal(m.To, []string{"zoe@example.org", "col@example.org"}) {
				t.Errorf("envelope MAIL FROM %q RCPT TO %q", m.From, m.To)
			}
			if string(m.Raw) != string(testRaw) {
				t.Errorf("received %q, want %q", m.Raw, testRaw)
			}
			if m.User != "agent" || m.Mechanism != "PLAIN" {
				t.Errorf("logged in as %q with %q, want agent with PLAIN", m.User, m.Mechanism)
			}
			if m.TLS != (mode != config.TLSNone) {
				t.Errorf("TLS = %v in mode %s", m.TLS, mode)
			}
		})
	}
}

// TestSendTLSMismatch: a mailbox configured for TLS (as an empty mode
// means, config.SMTP.TLS) does not fall back to plain text, and a
// certificate that is not trusted is refused.
func TestSendTLSMismatch(t *testing.T) {
	plain := emailtest.StartSMTP(t, nil)
	for _, mode := range []config.TLSMode{config.TLSImplicit, config.TLSStartTLS, ""} {
		_, err := Send(context.Background(), mailboxOn(plain, mode, "", ""), "zoe@example.org", nil, testRaw, &SMTPOptions{CommandTimeout: 5 * time.Second})
		var se *SendError
		if !errors.As(err, &se) || se.Permanent {
			t.Errorf("%s against a plain-text server: Send() = %v, want a temporary SendError", mode, err)
		}
	}
	if n := len(plain.Mails()); n != 0 {
		t.Errorf("%d mails went out in plain text", n)
	}
	secure := emailtest.StartSMTP(t, &emailtest.SMTPOptions{TLS: config.TLSImplicit})
	_, err := Send(context.Background(), mailboxOn(secure, config.TLSImplicit, "", ""), "zoe@example.org", nil, testRaw, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: Send() = %v", err)
	}
}

// TestSendAuthMechanisms: Send logs in as config.SMTP's auth says, as the
// mailbox check does (an empty auth is password); a refused login is a
// temporary failure, worded with the server's refusal.
func TestSendAuthMechanisms(t *testing.T) {
	for _, c := range []struct {
		auth          config.AuthMethod
		offered, want string
		refusal       string // in the error of a wrong secret
	}{
		{config.AuthPassword, "PLAIN LOGIN", "PLAIN", "AUTH: login refused: 535 Authentication failed"},
		{config.AuthPassword, "LOGIN", "LOGIN", "AUTH: login refused: 535 Authentication failed"},
		{"", "LOGIN", "LOGIN", "AUTH: login refused: 535 Authentication failed"},
		{config.AuthXOAuth2, "PLAIN XOAUTH2", "XOAUTH2", `AUTH: login refused: 535 Authentication failed ({"status":"401"`},
		{config.AuthOAuthBearer, "PLAIN OAUTHBEARER", "OAUTHBEARER", "invalid_token"},
	} {
		name := fmt.Sprintf("auth %q, server offers %s", c.auth, c.offered)
		srv := emailtest.StartSMTP(t, &emailtest.SMTPOptions{Username: "agent", Password: "token-or-pass", Mechanisms: strings.Fields(c.offered)})
		mb := mailboxOn(srv, config.TLSNone, "agent", "token-or-pass")
		mb.SMTP.Auth = c.auth
		if _, err := Send(context.Background(), mb, "zoe@example.org", nil, testRaw, smtpOptions(srv)); err != nil {
			t.Errorf("%s: Send() = %v", name, err)
			continue
		}
		if m := srv.Mails(); len(m) != 1 || m[0].Mechanism != c.want {
			t.Errorf("%s: mails %v, want one by %s", name, m, c.want)
		}

		mb.SMTP.Password = "wrong"
		_, err := Send(context.Background(), mb, "zoe@example.org", nil, testRaw, smtpOptions(srv))
		var se *SendError
		if !errors.As(err, &se) || se.Stage != StageAuth || se.Permanent || !strings.Contains(err.Error(), c.refusal) {
			t.Errorf("%s, a wrong secret: Send() = %v, want a temporary AUTH error (the admin fixes it, the mail waits) saying %q", name, err, c.refusal)
		}
	}
}

// TestSendPasswordFile: the secret is read from password_file at each
// send, not taken from the password config.Load read from it at start,
// so that a token another program refreshes in the file is used.
func TestSendPasswordFile(t *testing.T) {
	srv := emailtest.StartSMTP(t, &emailtest.SMTPOptions{Username: "agent", Password: "token-2", Mechanisms: []string{"XOAUTH2"}})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := mailboxOn(srv, config.TLSNone, "agent", "token-1")
	mb.SMTP.Auth, mb.SMTP.PasswordFile = config.AuthXOAuth2, file
	if _, err := Send(context.Background(), mb, "zoe@example.org", nil, testRaw, smtpOptions(srv)); err != nil {
		t.Fatalf("Send() with the token refreshed in the file = %v", err)
	}
	if m := srv.Mails(); len(m) != 1 || m[0].Mechanism != "XOAUTH2" {
		t.Errorf("mails %v, want one by XOAUTH2", m)
	}

	os.Remove(file)
	_, err := Send(context.Background(), mb, "zoe@example.org", nil, testRaw, smtpOptions(srv))
	var se *SendError
	if !errors.As(err, &se) || se.Stage != StageAuth || se.Permanent || !strings.Contains(err.Error(), "password_file: ") {
		t.Errorf("password_file gone: Send() = %v, want a temporary AUTH error about password_file", err)
	}
}

func TestSendOutcomes(t *testing.T) {
	for _, c := range []struct {
		name      string
		script    func(*emailtest.SMTPServer)
		permanent bool
		reply     string
		stage     string
	}{
		{"user unknown", func(s *emailtest.SMTPServer) {
			s.Refuse("zoe@example.org", emailtest.Reply{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "user unknown"})
		}, true, "550 5.1.1 user unknown", StageRcpt},
		{"mailbox full", func(s *emailtest.SMTPServer) {
			s.Script(emailtest.StageRcpt, emailtest.Reply{Code: 452, Enhanced: [3]int{4, 2, 2}, Message: "mailbox full"})
		}, false, "452 4.2.2 mailbox full", StageRcpt},
		{"sender refused", func(s *emailtest.SMTPServer) {
			s.Script(emailtest.StageMail, emailtest.Reply{Code: 553, Enhanced: [3]int{5, 7, 1}, Message: "not your address"})
		}, true, "553 5.7.1 not your address", StageMail},
		{"try later", func(s *emailtest.SMTPServer) {
			s.Script(emailtest.StageData, emailtest.Reply{Code: 421, Enhanced: [3]int{4, 3, 0}, Message: "try later"})
		}, false, "421 4.3.0 try later", StageData},
		{"too big", func(s *emailtest.SMTPServer) {
			s.Script(emailtest.StageData, emailtest.Reply{Code: 552, Enhanced: [3]int{5, 3, 4}, Message: "message too big"})
		}, true, "552 5.3.4 message too big", StageData},
	} {
		srv := emailtest.StartSMTP(t, nil)
		c.script(srv)
		_, err := Send(context.Background(), mailboxOn(srv, config.TLSNone, "", ""), "zoe@example.org", nil, testRaw, smtpOptions(srv))
		var se *SendError
		if !errors.As(err, &se) || se.Permanent != c.permanent || se.Reply != c.reply || se.Stage != c.stage {
			t.Errorf("%s: Send() = %#v, want stage %s, permanent %v, reply %q", c.name, err, c.stage, c.permanent, c.reply)
		}
		if n := len(srv.Mails()); n != 0 {
			t.Errorf("%s: %d mails accepted", c.name, n)
		}
	}
}

// TestSendRefusedCc: a Cc the server refuses for good is left out, and
// the mail still reaches the others.
func TestSendRefusedCc(t *testing.T) {
	srv := emailtest.StartSMTP(t, nil)
	srv.Refuse("gone@example.org", emailtest.Reply{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "user unknown"})
	refused, err := Send(context.Background(), mailboxOn(srv, config.TLSNone, "", ""), "zoe@example.org", []string{"gone@example.org", "col@example.org"}, testRaw, smtpOptions(srv))
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	if want := []string{"gone@example.org: 550 5.1.1 user unknown"}; !slices.Equal(refused, want) {
		t.Errorf("refused = %q, want %q", refused, want)
	}
	if m := srv.Mails(); len(m) != 1 || !slices.Equal(m[0].To, []string{"zoe@example.org", "col@example.org"}) {
		t.Errorf("mails %v, want one to zoe and col", m)
	}
}

func TestSendUnreachable(t *testing.T) {
	srv := emailtest.StartSMTP(t, nil)
	srv.Stop()
	_, err := Send(context.Background(), mailboxOn(srv, config.TLSNone, "", ""), "zoe@example.org", nil, testRaw, smtpOptions(srv))
	var se *SendError
	if !errors.As(err, &se) || se.Permanent || se.Stage != StageConnect {
		t.Errorf("server down: Send() = %v, want a temporary connect error", err)
	}
	srv.Start()
	if _, err := Send(context.Background(), mailboxOn(srv, config.TLSNone, "", ""), "zoe@example.org", nil, testRaw, smtpOptions(srv)); err != nil {
		t.Errorf("server back: Send() = %v", err)
	}
}

// TestSendTimeout: a server that accepts the connection and never
// answers is given up after the command timeout, as a temporary failure.
func TestSendTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		for range len(accepted) {
			(<-accepted).Close()
		}
	})
	mb := testMailbox
	mb.SMTP = config.SMTP{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, TLS: config.TLSNone}
	done := make(chan error, 1)
	go func() {
		_, err := Send(context.Background(), mb, "zoe@example.org", nil, testRaw, &SMTPOptions{DialTimeout: 50 * time.Millisecond, CommandTimeout: 50 * time.Millisecond})
		done <- err
	}()
	err = inboxtest.Receive(t, done, "Send to a silent server to time out")
	var se *SendError
	if !errors.As(err, &se) || se.Permanent {
		t.Errorf("silent server: Send() = %v, want a temporary error", err)
	}

	(<-accepted).Close()

	// The context ends a send waiting for an answer as well (shutdown,
	// lease), long before the timeouts.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := Send(ctx, mb, "zoe@example.org", nil, testRaw, &SMTPOptions{DialTimeout: time.Hour, CommandTimeout: time.Hour})
		done <- err
	}()
	inboxtest.Receive(t, accepted, "the connection")
	cancel()
	err = inboxtest.Receive(t, done, "Send to end with its context")
	if !errors.As(err, &se) || se.Permanent || se.Error() != "connect: cut short: context canceled" {
		t.Errorf("cancelled: Send() = %v, want a temporary error cut short by its context", err)
	}
}
