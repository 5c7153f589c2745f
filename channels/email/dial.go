package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/microdeets/microchat/config"
)

// Shared by the IMAP and the SMTP side: opening a connection in a mailbox's
// TLS mode (config.TLSMode), the SASL clients of its login methods
// (config.AuthMethod), and the words in which a failure is told to the
// admin (Problem).

// DefaultDialTimeout bounds connecting to a mail server, the TLS handshake
// included.
const DefaultDialTimeout = 30 * time.Second

// Problem is a failure to reach or use a mail server, worded for the admin:
// Text says what is wrong and, when it can, what to change ("TLS mismatch:
// the server does not speak TLS on this port; try tls: starttls").
// Kind is one of the Problem* constants, also the "kind" label of
// microchat_email_errors_total.
type Problem struct {
	Kind string
	Text string
	Err  error
}

// The kinds of Problem.
const (
	// ProblemUnreachable: no TCP connection, or no answer in time.
	ProblemUnreachable = "unreachable"
	// ProblemTLS: TLS mismatch, refused STARTTLS, untrusted certificate.
	ProblemTLS = "tls"
	// ProblemLogin: the server refused the login.
	ProblemLogin = "login"
	// ProblemFolder: the IMAP folder does not exist or cannot be selected.
	ProblemFolder = "folder"
	// ProblemProtocol: the connection broke or the server answered
	// something unexpected after login (a dropped FETCH, a refused
	// command).
	ProblemProtocol = "protocol"
	// ProblemStore: the Sink failed (the database is down).
	ProblemStore = "store"
)

func (p *Problem) Error() string { return p.Text }

func (p *Problem) Unwrap() error { return p.Err }

// problemKind returns the Kind of err's Problem, else ProblemProtocol.
func problemKind(err error) string {
	if p, ok := errors.AsType[*Problem](err); ok {
		return p.Kind
	}
	return ProblemProtocol
}

// dialConn connects to host:port, within timeout, for a server in the TLS
// mode mode: with TLSImplicit the TLS handshake is done when it returns;
// with TLSStartTLS and TLSNone the connection is plain text, for the
// protocol's STARTTLS to upgrade or not. tlsBase is cloned (nil: the
// system's roots) and given host as ServerName. Errors are *Problem.
func dialConn(ctx context.Context, host string, port int, mode config.TLSMode, tlsBase *tls.Config, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	d := &net.Dialer{Timeout: timeout}
	if mode != config.TLSImplicit {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, describeDial(err, mode)
		}
		return conn, nil
	}
	td := &tls.Dialer{NetDialer: d, Config: tlsConfig(tlsBase, host)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := td.DialContext(ctx, "tcp", addr)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return nil, &Problem{Kind: ProblemUnreachable, Text: fmt.Sprintf("unreachable: no connection and TLS handshake within %v", timeout), Err: err}
	}
	if err != nil {
		return nil, describeDial(err, mode)
	}
	return conn, nil
}

// dialWatched is dialConn returning a watchedConn, closed when ctx is done
// until stop is called.
func dialWatched(ctx context.Context, host string, port int, mode config.TLSMode, tlsBase *tls.Config, timeout time.Duration) (wc *watchedConn, stop func() bool, err error) {
	conn, err := dialConn(ctx, host, port, mode, tlsBase, timeout)
	if err != nil {
		return nil, nil, err
	}
	return newWatchedConn(conn), context.AfterFunc(ctx, func() { conn.Close() }), nil
}

// tlsConfig returns a copy of base (nil: an empty config, the system's
// roots) naming host as the server.
func tlsConfig(base *tls.Config, host string) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// describeDial turns an error of connecting or of the TLS handshake into a
// Problem in the admin's words.
func describeDial(err error, mode config.TLSMode) error {
	if p, ok := errors.AsType[*Problem](err); ok {
		return p
	}
	if text := describeTLS(err, mode); text != "" {
		return &Problem{Kind: ProblemTLS, Text: text, Err: err}
	}
	return &Problem{Kind: ProblemUnreachable, Text: "unreachable: " + err.Error(), Err: err}
}

// describeTLS words a TLS failure, or returns "" when err is none.
func describeTLS(err error, mode config.TLSMode) string {
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		// The first bytes the server sent were no TLS record: a plain
		// text greeting ("* OK", "220 ").
		hint := "try tls: starttls (or none for a server on this host)"
		if mode == config.TLSStartTLS {
			hint = "try tls: none, or a port that speaks TLS"
		}
		return "TLS mismatch: the server does not speak TLS on this port; " + hint
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return "TLS certificate not accepted: " + err.Error()
	}
	var alert tls.AlertError
	if errors.As(err, &alert) || strings.HasPrefix(err.Error(), "tls: ") {
		return "TLS handshake failed: " + err.Error()
	}
	return ""
}

// noAnswer is the Problem of a server that stopped answering: for a
// connection in plain text (starttls or none) that got no greeting, the
// likely cause is a port that expects TLS from the first byte.
func noAnswer(d time.Duration, mode config.TLSMode, greeted bool, err error) *Problem {
	if !greeted && mode != config.TLSImplicit {
		return &Problem{Kind: ProblemTLS, Text: fmt.Sprintf("TLS mismatch?: no greeting from the server within %v; if this port expects TLS from the first byte (993, 465), use tls: implicit", d), Err: err}
	}
	return &Problem{Kind: ProblemUnreachable, Text: fmt.Sprintf("no answer from the server within %v", d), Err: err}
}

// watchedConn is a connection that remembers when it last received
// something, so that a watchdog can tell a server that stopped answering
// from one that is slowly sending a big message.
type watchedConn struct {
	net.Conn
	lastRead atomic.Int64 // UnixNano
	read     atomic.Int64 // bytes received
	first    atomic.Int32 // the first byte received, or -1
}

func newWatchedConn(c net.Conn) *watchedConn {
	w := &watchedConn{Conn: c}
	w.lastRead.Store(time.Now().UnixNano())
	w.first.Store(-1)
	return w
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.lastRead.Store(time.Now().UnixNano())
		if w.read.Add(int64(n)) == int64(n) {
			w.first.Store(int32(p[0]))
		}
	}
	return n, err
}

// greeted reports whether the server has sent anything.
func (w *watchedConn) greeted() bool { return w.read.Load() > 0 }

// spokeTLS reports whether the server's first byte was that of a TLS
// record (content types 20 to 23, RFC 8446 section 5.1) rather than of
// a plain text greeting: a connection in plain text to a port that
// expects TLS from the first byte gets a TLS alert back.
func (w *watchedConn) spokeTLS() bool {
	b := w.first.Load()
	return b >= 20 && b <= 23
}

// describeEarly words a failure of the first exchanges on a connection
// in mode (greeting, STARTTLS, login) that is no Problem yet: a plain
// text connection to a port that speaks TLS gets a TLS alert, silence or
// a closed connection instead of a greeting.
func (w *watchedConn) describeEarly(err error, mode config.TLSMode, timeout time.Duration) error {
	if _, ok := errors.AsType[*Problem](err); ok {
		return err
	}
	if mode != config.TLSImplicit {
		if w.spokeTLS() {
			return &Problem{Kind: ProblemTLS, Text: "TLS mismatch: the server speaks TLS from the first byte on this port; use tls: implicit", Err: err}
		}
		if !w.greeted() {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return noAnswer(timeout, mode, false, err)
			}
			return &Problem{Kind: ProblemTLS, Text: "TLS mismatch?: the server closed the connection without a greeting; if this port expects TLS from the first byte (993, 465), use tls: implicit", Err: err}
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return noAnswer(timeout, mode, true, err)
	}
	return &Problem{Kind: ProblemProtocol, Text: err.Error(), Err: err}
}

// within runs f and closes the connection if nothing is received from the
// server for d while f runs, so that f returns; the result is then
// onTimeout's. The IMAP client waits for the first byte of a response
// without a deadline, and the SMTP client up to 5 minutes: this bounds both
// by the server's silence rather than by the length of the command, so a
// big FETCH that keeps arriving is not cut.
func (w *watchedConn) within(d time.Duration, onTimeout func(error) error, f func() error) error {
	var (
		mu      sync.Mutex
		timer   *time.Timer
		stopped bool
		fired   bool
	)
	start := time.Now().UnixNano()
	var check func()
	check = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		last := max(w.lastRead.Load(), start)
		if silent := time.Duration(time.Now().UnixNano() - last); silent < d {
			timer = time.AfterFunc(d-silent, check)
			return
		}
		fired = true
		w.Conn.Close()
	}
	mu.Lock()
	timer = time.AfterFunc(d, check)
	mu.Unlock()
	err := f()
	mu.Lock()
	stopped = true
	timer.Stop()
	mu.Unlock()
	if fired {
		return onTimeout(err)
	}
	return err
}

// saslClient returns the SASL client of a login method: PLAIN (RFC 4616)
// for a password, XOAUTH2 or OAUTHBEARER (RFC 7628) for a bearer token.
func saslClient(auth config.AuthMethod, username, secret, host string, port int) sasl.Client {
	switch auth {
	case config.AuthXOAuth2:
		return &xoauth2Client{username: username, token: secret}
	case config.AuthOAuthBearer:
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: username, Token: secret, Host: host, Port: port})
	}
	return sasl.NewPlainClient("", username, secret)
}

// saslMechanism is the SASL mechanism name of a login method.
func saslMechanism(auth config.AuthMethod) string {
	switch auth {
	case config.AuthXOAuth2:
		return "XOAUTH2"
	case config.AuthOAuthBearer:
		return sasl.OAuthBearer
	}
	return sasl.Plain
}

// xoauth2Client is Google's and Microsoft's XOAUTH2 SASL mechanism
// (https://developers.google.com/gmail/imap/xoauth2-protocol), which
// go-sasl does not have: the initial response carries the user and the
// bearer token; a refusal comes as a challenge holding a JSON error, to
// be answered with an empty response, after which the server says NO.
type xoauth2Client struct {
	username, token string
	// refusal is the JSON error the server sent, for the error message.
	refusal string
}

func (a *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.username + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	a.refusal = string(challenge)
	return []byte{}, nil
}

// dialSMTP connects to a mailbox's SMTP server in its TLS mode (STARTTLS
// required with starttls) and says EHLO as localName ("" is "localhost"),
// each step within timeout. It does not log in: see loginSMTP. Errors are
// *Problem.
func dialSMTP(ctx context.Context, s config.SMTP, localName string, tlsBase *tls.Config, timeout time.Duration) (*smtp.Client, error) {
	timeout = cmp.Or(timeout, DefaultDialTimeout)
	wc, stop, err := dialWatched(ctx, s.Host, s.Port, s.TLS, tlsBase, timeout)
	if err != nil {
		return nil, err
	}
	defer stop()
	conn := wc.Conn
	var c *smtp.Client
	err = wc.within(timeout, func(err error) error { return noAnswer(timeout, s.TLS, wc.greeted(), err) }, func() error {
		if s.TLS == config.TLSStartTLS {
			// Greeting, EHLO as localhost, STARTTLS; the handshake
			// itself happens at the EHLO that follows.
			var err error
			c, err = smtp.NewClientStartTLS(wc, tlsConfig(tlsBase, s.Host))
			if err != nil {
				c = nil
				if strings.Contains(err.Error(), "doesn't support STARTTLS") {
					return &Problem{Kind: ProblemTLS, Text: "STARTTLS not offered: the server does not offer STARTTLS on this port; try tls: implicit (port 465), or none for a server on this host", Err: err}
				}
				return describeSMTP(err)
			}
		} else {
			c = smtp.NewClient(wc)
		}
		c.CommandTimeout = timeout
		if localName != "" {
			// With starttls, the TLS handshake happens here.
			if err := c.Hello(localName); err != nil {
				if text := describeTLS(err, s.TLS); text != "" {
					return &Problem{Kind: ProblemTLS, Text: text, Err: err}
				}
				return err
			}
		}
		return describeSMTP(c.Noop())
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		conn.Close()
		return nil, wc.describeEarly(err, s.TLS, timeout)
	}
	return c, nil
}

// describeSMTP words an error of the SMTP greeting or EHLO.
func describeSMTP(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
		return &Problem{Kind: ProblemProtocol, Text: fmt.Sprintf("refused: %d %s", se.Code, se.Message), Err: err}
	}
	if text := describeTLS(err, config.TLSNone); text != "" {
		return &Problem{Kind: ProblemTLS, Text: text, Err: err}
	}
	return &Problem{Kind: ProblemProtocol, Text: err.Error(), Err: err}
}

// smtpDefaults fills in an SMTP account what config.Load fills in (TLS
// implicit, the port of the TLS mode, auth password), for an account
// made in code: an empty TLS mode must not mean plain text.
func smtpDefaults(s config.SMTP) config.SMTP {
	s.TLS = cmp.Or(s.TLS, config.TLSImplicit)
	if s.Port == 0 {
		s.Port = map[config.TLSMode]int{config.TLSImplicit: 465, config.TLSStartTLS: 587, config.TLSNone: 25}[s.TLS]
	}
	s.Auth = cmp.Or(s.Auth, config.AuthPassword)
	return s
}

// loginSMTP logs in to an SMTP server as s says: nothing when s has no
// Username (a relay on the same host); else the login method's SASL
// mechanism, PLAIN falling back to LOGIN when the server offers only
// that. It returns the mechanism used. Errors are *Problem.
func loginSMTP(c *smtp.Client, s config.SMTP) (string, error) {
	if s.Username == "" {
		return "", nil
	}
	secret, err := s.Secret()
	if err != nil {
		return "", &Problem{Kind: ProblemLogin, Text: "password_file: " + err.Error(), Err: err}
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return "", &Problem{Kind: ProblemLogin, Text: "login impossible: the server offers no AUTH on this connection (is tls right? many servers offer AUTH only after TLS)"}
	}
	mech := saslMechanism(s.Auth)
	client := saslClient(s.Auth, s.Username, secret, s.Host, s.Port)
	if s.Auth == config.AuthPassword && !c.SupportsAuth(sasl.Plain) && c.SupportsAuth(sasl.Login) {
		mech, client = sasl.Login, sasl.NewLoginClient(s.Username, secret)
	}
	if err := c.Auth(client); err != nil {
		text := "login refused: " + err.Error()
		if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
			text = fmt.Sprintf("login refused: %d %s", se.Code, se.Message)
		}
		if x, ok := client.(*xoauth2Client); ok && x.refusal != "" {
			text += " (" + x.refusal + ")"
		}
		return mech, &Problem{Kind: ProblemLogin, Text: text, Err: err}
	}
	return mech, nil
}

// hostname is the name this machine gives in SMTP EHLO: its host name,
// or "localhost" when it has none that fits on the command line.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n") {
		return "localhost"
	}
	return h
}
