package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/microdeets/microchat/config"
)

// CheckOptions tune Check; nil means the defaults.
type CheckOptions struct {
	// TLSConfig is the base of the TLS configuration (RootCAs); nil means
	// the system's roots.
	TLSConfig *tls.Config
	// Timeout bounds connecting to each server and each of its answers
	// (default 15 s).
	Timeout time.Duration
}

// The Status of a CheckResult.
const (
	CheckOK      = "ok"
	CheckWarning = "warning" // works, less well: no IDLE, or tls: none to another host
	CheckFailed  = "FAILED"
)

// CheckResult is one line of `microchat mailbox check`: one thing about
// one server of one mailbox that works or does not.
type CheckResult struct {
	// Mailbox is the mailbox's config name.
	Mailbox string
	// Server names the server and how it is reached: "IMAP
	// imap.example.com:993 (implicit TLS)".
	Server string
	// Status is CheckOK, CheckWarning or CheckFailed.
	Status string
	// Text says what works, or what does not and what to change.
	Text string
	// Kind is the Problem kind of a failure (ProblemLogin, ...).
	Kind string
}

// Failed reports whether the result is a failure, one that makes the
// command exit non-zero.
func (r CheckResult) Failed() bool { return r.Status == CheckFailed }

// String is the line printed: "support: IMAP imap.example.com:993
// (implicit TLS): FAILED: login refused (PLAIN): [AUTHENTICATIONFAILED]
// Invalid credentials".
func (r CheckResult) String() string {
	return r.Mailbox + ": " + r.Server + ": " + r.Status + ": " + r.Text
}

// Check logs in to mailbox mb over IMAP and SMTP and says what works:
// for IMAP the connection in its TLS mode and the login, the folder, and
// IDLE (its absence is a warning: polling is used); for SMTP the
// connection, EHLO and the login. A server reached with tls: none on
// another host gets a warning line first (ClearText). No mail is sent and nothing on the
// server changes (the folder is opened with EXAMINE). Failures are
// worded for the admin: refused login, TLS mismatch, folder missing,
// unreachable.
func Check(ctx context.Context, mb config.Mailbox, o *CheckOptions) []CheckResult {
	var opts CheckOptions
	if o != nil {
		opts = *o
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	imapWarning, smtpWarning := clearText(mb)
	results := append(imapWarning, checkIMAP(ctx, mb, opts)...)
	results = append(results, smtpWarning...)
	return append(results, checkSMTP(ctx, mb, opts))
}

// ClearText returns a warning for each server of mb reached with tls:
// none on a host that is not this one: the login and the mail would cross
// the network unencrypted, and none is meant only for a server on the
// same host (docs/email.md). This host is "localhost", a name under
// .localhost (RFC 6761 section 6.3) or a loopback address; the name is
// not resolved, so any other name is another host. `mailbox check` prints
// these lines and serve logs them at start.
func ClearText(mb config.Mailbox) []CheckResult {
	imapWarning, smtpWarning := clearText(mb)
	return append(imapWarning, smtpWarning...)
}

// clearText is ClearText's warning for IMAP and for SMTP, each nil or one
// line.
func clearText(mb config.Mailbox) (imapWarning, smtpWarning []CheckResult) {
	warn := func(server, host string, mode config.TLSMode) []CheckResult {
		if mode != config.TLSNone || thisHost(host) {
			return nil
		}
		return []CheckResult{{Mailbox: mb.Name, Server: server, Status: CheckWarning,
			Text: fmt.Sprintf("tls: none to %s, which is not this host: the login and the mail cross the network unencrypted; use tls: implicit or starttls (none is only for a server on this host: localhost, 127.0.0.1, ::1)", host)}}
	}
	return warn(imapServer(mb), mb.IMAP.Host, mb.IMAP.TLS), warn(smtpServer(mb), mb.SMTP.Host, mb.SMTP.TLS)
}

// thisHost reports whether host names this machine without resolving
// it: localhost, a name under .localhost, or a loopback address.
func thisHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && ip.IsLoopback()
}

// imapServer and smtpServer name a mailbox's server and how it is reached,
// for the Server of a result: "IMAP imap.example.com:993 (implicit TLS)".
func imapServer(mb config.Mailbox) string {
	return fmt.Sprintf("IMAP %s (%s)", mb.IMAPAddr(), tlsLabel(mb.IMAP.TLS))
}

func smtpServer(mb config.Mailbox) string {
	mb.SMTP = smtpDefaults(mb.SMTP)
	return fmt.Sprintf("SMTP %s (%s)", mb.SMTPAddr(), tlsLabel(mb.SMTP.TLS))
}

// tlsLabel says how a server is reached, for the Server of a result.
func tlsLabel(mode config.TLSMode) string {
	switch mode {
	case config.TLSStartTLS:
		return "STARTTLS"
	case config.TLSNone:
		return "no TLS"
	}
	return "implicit TLS"
}

func checkIMAP(ctx context.Context, mb config.Mailbox, o CheckOptions) []CheckResult {
	im := mb.IMAP
	folder := cmp.Or(im.Folder, "INBOX")
	if im.Auth == "" {
		im.Auth = config.AuthPassword
	}
	server := imapServer(mb)
	res := func(status, text, kind string) CheckResult {
		return CheckResult{Mailbox: mb.Name, Server: server, Status: status, Text: text, Kind: kind}
	}
	ic, err := dialIMAP(ctx, im, o.TLSConfig, o.Timeout, nil)
	if err != nil {
		return []CheckResult{failure(res, err)}
	}
	defer ic.Logout()
	results := []CheckResult{res(CheckOK, fmt.Sprintf("logged in as %s (%s)", im.Username, ic.mech), "")}

	var sel *imap.SelectData
	err = ic.do(func() error {
		var err error
		sel, err = ic.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err != nil {
		if ie, ok := errors.AsType[*imap.Error](err); ok {
			err = &Problem{Kind: ProblemFolder, Text: fmt.Sprintf("folder missing: %q cannot be opened (%s); set imap.folder to one of the account's folders", folder, ie.Text), Err: err}
		}
		return append(results, failure(res, err))
	}
	results = append(results, res(CheckOK, fmt.Sprintf("folder %s: %d mails, UIDVALIDITY %d", folder, sel.NumMessages, sel.UIDValidity), ""))

	if ic.c.Caps().Has(imap.CapIdle) {
		results = append(results, res(CheckOK, "IDLE offered: new mail is fetched as soon as it arrives", ""))
	} else {
		poll := mb.PollInterval
		if poll <= 0 {
			poll = config.Duration(time.Minute)
		}
		results = append(results, res(CheckWarning, fmt.Sprintf("no IDLE: the server does not offer IDLE (RFC 2177); new mail will be found by polling every %s (poll_interval)", poll), ""))
	}
	return results
}

func checkSMTP(ctx context.Context, mb config.Mailbox, o CheckOptions) CheckResult {
	mb.SMTP = smtpDefaults(mb.SMTP)
	s := mb.SMTP
	server := smtpServer(mb)
	res := func(status, text, kind string) CheckResult {
		return CheckResult{Mailbox: mb.Name, Server: server, Status: status, Text: text, Kind: kind}
	}
	c, err := dialSMTP(ctx, s, hostname(), o.TLSConfig, o.Timeout)
	if err != nil {
		return failure(res, err)
	}
	defer c.Close()
	mech, err := loginSMTP(c, s)
	if err != nil {
		return failure(res, err)
	}
	_ = c.Quit()
	if s.Username == "" {
		return res(CheckOK, "EHLO accepted; no login configured (smtp.username is empty: the server must relay for this host)", "")
	}
	return res(CheckOK, fmt.Sprintf("EHLO accepted, logged in as %s (%s)", s.Username, mech), "")
}

// failure is the result of a failed step.
func failure(res func(status, text, kind string) CheckResult, err error) CheckResult {
	kind, text := problemKind(err), err.Error()
	return res(CheckFailed, strings.TrimSpace(text), kind)
}
