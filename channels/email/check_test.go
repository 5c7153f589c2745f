package email

import (
	"context"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// startAlertServer starts a server that answers any connection with a
// TLS alert (protocol_version), as OpenSSL does to plain text sent to a
// TLS port, and returns its port.
func startAlertServer(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{21, 3, 3, 0, 2, 2, 70})
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// unusedPort returns a loopback port nothing listens on.
func unusedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestCheck runs the mailbox check against real servers set up right
// and wrong, and reads its lines.
func TestCheck(t *testing.T) {
	serverTLS, clientTLS := emailtest.TLSPair(t)
	plain := emailtest.StartIMAP(t, &emailtest.IMAPOptions{Token: "tok-1"})
	noIdle := emailtest.StartIMAP(t, &emailtest.IMAPOptions{NoIdle: true})
	implicit := emailtest.StartIMAP(t, &emailtest.IMAPOptions{TLS: config.TLSImplicit, ServerTLS: serverTLS})
	starttls := emailtest.StartIMAP(t, &emailtest.IMAPOptions{TLS: config.TLSStartTLS, ServerTLS: serverTLS})
	smtpServer := func(mode config.TLSMode) *emailtest.SMTPServer {
		return emailtest.StartSMTP(t, &emailtest.SMTPOptions{TLS: mode, ServerTLS: serverTLS, Username: "support@example.com", Password: "smtp-secret"})
	}
	smtpPlain, smtpImplicit, smtpStartTLS := smtpServer(config.TLSNone), smtpServer(config.TLSImplicit), smtpServer(config.TLSStartTLS)
	alert := startAlertServer(t)

	mailbox := func(imapSrv *emailtest.IMAPServer, smtpSrv *emailtest.SMTPServer, smtpMode config.TLSMode) config.Mailbox {
		mb := imapSrv.Mailbox("support")
		mb.SMTP = config.SMTP{Host: smtpSrv.Host, Port: smtpSrv.Port, TLS: smtpMode, Username: "support@example.com", Password: "smtp-secret", Auth: config.AuthPassword}
		return mb
	}
	tests := []struct {
		name  string
		mb    func() config.Mailbox
		tls   *tls.Config
		want  []string // the lines, as regular expressions
		fails bool
	}{
		{"good", func() config.Mailbox { return mailbox(plain, smtpPlain, config.TLSNone) }, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): ok: logged in as support@example\.com \(PLAIN\)$`,
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): ok: folder INBOX: 0 mails, UIDVALIDITY 1$`,
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): ok: IDLE offered: new mail is fetched as soon as it arrives$`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(no TLS\): ok: EHLO accepted, logged in as support@example\.com \(PLAIN\)$`,
		}, false},
		{"tls", func() config.Mailbox { return mailbox(implicit, smtpImplicit, config.TLSImplicit) }, clientTLS, []string{
			`\(implicit TLS\): ok: logged in as`,
			`\(implicit TLS\): ok: folder INBOX`,
			`\(implicit TLS\): ok: IDLE offered`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(implicit TLS\): ok: EHLO accepted, logged in as support@example\.com \(PLAIN\)$`,
		}, false},
		{"starttls", func() config.Mailbox { return mailbox(starttls, smtpStartTLS, config.TLSStartTLS) }, clientTLS, []string{
			`\(STARTTLS\): ok: logged in as`,
			`\(STARTTLS\): ok: folder INBOX`,
			`\(STARTTLS\): ok: IDLE offered`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(STARTTLS\): ok: EHLO accepted, logged in as support@example\.com \(PLAIN\)$`,
		}, false},
		{"no idle", func() config.Mailbox {
			mb := mailbox(noIdle, smtpPlain, config.TLSNone)
			mb.PollInterval = config.Duration(30 * time.Second)
			return mb
		}, nil, []string{
			`ok: logged in as`,
			`ok: folder INBOX`,
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): warning: no IDLE: the server does not offer IDLE \(RFC 2177\); new mail will be found by polling every 30s \(poll_interval\)$`,
			`SMTP .*: ok: `,
		}, false},
		{"wrong passwords", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Password, mb.SMTP.Password = "wrong", "wrong"
			return mb
		}, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: login refused \(PLAIN\): `,
			`^support: SMTP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: login refused: 535 Authentication failed$`,
		}, true},
		{"refused token", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Auth, mb.IMAP.Password = config.AuthXOAuth2, "expired"
			return mb
		}, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: login refused \(XOAUTH2\): \[AUTHENTICATIONFAILED\] Invalid credentials \(\{"status":"401",.*\}\)$`,
			`SMTP .*: ok: `,
		}, true},
		{"good token", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Auth, mb.IMAP.Password = config.AuthOAuthBearer, "tok-1"
			return mb
		}, nil, []string{`ok: logged in as support@example\.com \(OAUTHBEARER\)$`, `ok: folder`, `ok: IDLE`, `SMTP .*: ok: `}, false},
		{"folder missing", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Folder = "Support"
			return mb
		}, nil, []string{
			`ok: logged in as`,
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: folder missing: "Support" cannot be opened \(No such mailbox\); set imap.folder to one of the account's folders$`,
			`SMTP .*: ok: `,
		}, true},
		{"implicit TLS on a plain port", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.TLS, mb.SMTP.TLS = config.TLSImplicit, config.TLSImplicit
			return mb
		}, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(implicit TLS\): FAILED: TLS mismatch: the server does not speak TLS on this port; try tls: starttls \(or none for a server on this host\)$`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(implicit TLS\): FAILED: TLS mismatch: the server does not speak TLS on this port; try tls: starttls \(or none for a server on this host\)$`,
		}, true},
		{"plain text on a TLS port", func() config.Mailbox {
			mb := mailbox(implicit, smtpPlain, config.TLSNone)
			mb.IMAP.TLS = config.TLSStartTLS
			return mb
		}, clientTLS, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(STARTTLS\): FAILED: TLS mismatch\?: the server closed the connection without a greeting; if this port expects TLS from the first byte \(993, 465\), use tls: implicit$`,
			`SMTP .*: ok: `,
		}, true},
		{"plain text answered with a TLS alert", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Port, mb.SMTP.Port = alert, alert
			return mb
		}, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: TLS mismatch: the server speaks TLS from the first byte on this port; use tls: implicit$`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: TLS mismatch: the server speaks TLS from the first byte on this port; use tls: implicit$`,
		}, true},
		{"STARTTLS not offered", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.TLS, mb.SMTP.TLS = config.TLSStartTLS, config.TLSStartTLS
			return mb
		}, nil, []string{
			`\(STARTTLS\): FAILED: STARTTLS refused: the server does not offer STARTTLS on this port \(.*\); try tls: implicit \(port 993\), or none for a server on this host$`,
			`\(STARTTLS\): FAILED: STARTTLS not offered: the server does not offer STARTTLS on this port; try tls: implicit \(port 465\), or none for a server on this host$`,
		}, true},
		{"untrusted certificate", func() config.Mailbox { return mailbox(implicit, smtpImplicit, config.TLSImplicit) }, nil, []string{
			`IMAP .*: FAILED: TLS certificate not accepted: .*certificate signed by unknown authority`,
			`SMTP .*: FAILED: TLS certificate not accepted: .*certificate signed by unknown authority`,
		}, true},
		{"untrusted certificate after STARTTLS", func() config.Mailbox { return mailbox(starttls, smtpStartTLS, config.TLSStartTLS) }, nil, []string{
			`IMAP .*: FAILED: TLS certificate not accepted: .*certificate signed by unknown authority`,
			`SMTP .*: FAILED: TLS certificate not accepted: .*certificate signed by unknown authority`,
		}, true},
		{"unreachable", func() config.Mailbox {
			mb := mailbox(plain, smtpPlain, config.TLSNone)
			mb.IMAP.Port, mb.SMTP.Port = unusedPort(t), unusedPort(t)
			return mb
		}, nil, []string{
			`^support: IMAP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: unreachable: dial tcp 127\.0\.0\.1:\d+: connect: connection refused$`,
			`^support: SMTP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: unreachable: dial tcp 127\.0\.0\.1:\d+: connect: connection refused$`,
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := Check(context.Background(), tt.mb(), &CheckOptions{TLSConfig: tt.tls, Timeout: inboxtest.Patience})
			var lines []string
			failed := false
			for _, r := range results {
				lines = append(lines, r.String())
				failed = failed || r.Failed()
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("Check() =\n%s\nwant %d lines", strings.Join(lines, "\n"), len(tt.want))
			}
			for i, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d = %q\nwant match %s", i+1, lines[i], re)
				}
			}
			if failed != tt.fails {
				t.Errorf("failed = %v, want %v", failed, tt.fails)
			}
		})
	}

	// A server that never says anything: only a timeout ends the wait.
	// SMTP alone, so that nothing else depends on the short timeout.
	t.Run("silent TLS port", func(t *testing.T) {
		mb := mailbox(implicit, smtpImplicit, config.TLSNone)
		r := checkSMTP(context.Background(), mb, CheckOptions{Timeout: 300 * time.Millisecond})
		want := `^support: SMTP 127\.0\.0\.1:\d+ \(no TLS\): FAILED: TLS mismatch\?: no greeting from the server within 300ms; if this port expects TLS from the first byte \(993, 465\), use tls: implicit$`
		if !regexp.MustCompile(want).MatchString(r.String()) || !r.Failed() || r.Kind != ProblemTLS {
			t.Errorf("checkSMTP() = %q (%s)\nwant match %s", r, r.Kind, want)
		}
	})
}

// tls: none is for a server on this host: towards any other host the
// check warns, for IMAP and for SMTP, before it connects, and ClearText
// (what serve logs) says the same.
func TestCheckClearText(t *testing.T) {
	mailbox := func(host string, mode config.TLSMode) config.Mailbox {
		return config.Mailbox{Name: "support", Address: "support@example.com",
			IMAP: config.IMAP{Host: host, Port: 143, TLS: mode, Username: "support", Password: "secret"},
			SMTP: config.SMTP{Host: host, TLS: mode}}
	}
	for _, tc := range []struct {
		host string
		mode config.TLSMode
		warn bool
	}{
		{"127.0.0.1", config.TLSNone, false},
		{"127.1.2.3", config.TLSNone, false},
		{"::1", config.TLSNone, false},
		{"::ffff:127.0.0.1", config.TLSNone, false},
		{"localhost", config.TLSNone, false},
		{"LocalHost.", config.TLSNone, false},
		{"imap.localhost", config.TLSNone, false},
		{"mail.example.org", config.TLSNone, true},
		{"localhost.example.org", config.TLSNone, true},
		{"192.168.1.10", config.TLSNone, true},
		{"0.0.0.0", config.TLSNone, true},
		{"2001:db8::1", config.TLSNone, true},
		{"mail.example.org", config.TLSStartTLS, false},
		{"mail.example.org", config.TLSImplicit, false},
		{"mail.example.org", "", false},
	} {
		got := ClearText(mailbox(tc.host, tc.mode))
		if !tc.warn {
			if len(got) != 0 {
				t.Errorf("ClearText(%s, tls %q) = %v, want nothing", tc.host, tc.mode, got)
			}
			continue
		}
		if len(got) != 2 || got[0].Status != CheckWarning || got[1].Status != CheckWarning ||
			!strings.HasPrefix(got[0].Server, "IMAP ") || !strings.HasPrefix(got[1].Server, "SMTP ") {
			t.Errorf("ClearText(%s, tls none) = %v, want an IMAP and an SMTP warning", tc.host, got)
		}
	}

	// The check prints them before it tries (here: a cancelled context,
	// so nothing is dialled), and they are no failure of their own.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	want := []string{
		`^support: IMAP mail\.example\.org:143 \(no TLS\): warning: tls: none to mail\.example\.org, which is not this host: the login and the mail cross the network unencrypted; use tls: implicit or starttls \(none is only for a server on this host: localhost, 127\.0\.0\.1, ::1\)$`,
		`^support: IMAP mail\.example\.org:143 \(no TLS\): FAILED: `,
		`^support: SMTP mail\.example\.org:25 \(no TLS\): warning: tls: none to mail\.example\.org, which is not this host: `,
		`^support: SMTP mail\.example\.org:25 \(no TLS\): FAILED: `,
	}
	results := Check(ctx, mailbox("mail.example.org", config.TLSNone), &CheckOptions{Timeout: inboxtest.Patience})
	var lines []string
	for _, r := range results {
		lines = append(lines, r.String())
	}
	if len(lines) != len(want) {
		t.Fatalf("Check() =\n%s\nwant %d lines", strings.Join(lines, "\n"), len(want))
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d = %q\nwant match %s", i+1, lines[i], re)
		}
	}
}
