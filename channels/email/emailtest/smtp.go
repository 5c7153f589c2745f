package emailtest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/microdeets/microchat/config"
)

// SMTPOptions configure an SMTPServer; the zero value is a plain-text
// server without AUTH that accepts every mail.
type SMTPOptions struct {
	// TLS is how clients connect: TLSNone (also ""), TLSImplicit, or
	// TLSStartTLS (STARTTLS offered, and required before AUTH and MAIL).
	TLS config.TLSMode
	// Username and Password, when set, make AUTH required before MAIL. The
	// password is also the bearer token of XOAUTH2 and OAUTHBEARER.
	Username, Password string
	// Mechanisms are the SASL mechanisms offered; nil offers PLAIN, LOGIN,
	// XOAUTH2 and OAUTHBEARER.
	Mechanisms []string
	// ServerTLS is the server's certificate (from TLSPair, to share it
	// with another server); nil means a fresh one.
	ServerTLS *tls.Config
}

// Stage is the SMTP command a scripted reply answers.
type Stage string

// The stages of a mail transaction that can be scripted.
const (
	StageMail Stage = "MAIL"
	StageRcpt Stage = "RCPT"
	StageData Stage = "DATA" // the answer after the final dot
)

// Reply is an SMTP answer (RFC 5321 section 4.2, RFC 3463 for the enhanced
// code). Code 0 or 2xx accepts.
type Reply struct {
	Code     int
	Enhanced [3]int
	Message  string
}

// String is the reply as a client sees it, "550 5.1.1 user unknown".
func (r Reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Message)
}

// Mail is one mail the server accepted: its envelope and raw bytes.
type Mail struct {
	From string
	To   []string
	Raw  []byte
	// User and Mechanism are how the client authenticated, "" without
	// AUTH; TLS says whether the connection was encrypted.
	User, Mechanism string
	TLS             bool
}

// SMTPServer is a go-smtp server on a loopback port that records every
// mail it accepts, answers as scripted (e.g. the first DATA 421, the next
// 250; or every RCPT 550 5.1.1), and can be stopped and started again on
// the same port to play a server that is down for a while.
type SMTPServer struct {
	// log is go-smtp's error log, the test's until it ends.
	log *testLogger
	// Host and Port are where it listens; Addr is host:port.
	Host string
	Port int
	Addr string
	// ClientTLS trusts the server's certificate: the TLS configuration a
	// client under test needs with TLS implicit or starttls.
	ClientTLS *tls.Config

	t    testing.TB
	opts SMTPOptions

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	mails    []Mail
	script   map[Stage][]Reply
	always   map[Stage]Reply
	refuse   map[string]Reply
	attempts map[Stage]int
	changed  chan struct{} // closed and replaced at every accepted mail
	hold     chan struct{} // DATA waits for it to close, when not nil
	held     int
	heldFrom map[*smtpSession]string // the held sessions' remote addresses
}

// StartSMTP starts an SMTPServer on 127.0.0.1, stopped when the test ends.
func StartSMTP(t testing.TB, opts *SMTPOptions) *SMTPServer {
	t.Helper()
	s := &SMTPServer{
		t:        t,
		script:   map[Stage][]Reply{},
		always:   map[Stage]Reply{},
		refuse:   map[string]Reply{},
		attempts: map[Stage]int{},
		changed:  make(chan struct{}),
		heldFrom: map[*smtpSession]string{},
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Mechanisms == nil {
		s.opts.Mechanisms = []string{sasl.Plain, sasl.Login, xoauth2, sasl.OAuthBearer}
	}
	if s.opts.ServerTLS == nil {
		s.opts.ServerTLS, _ = TLSPair(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emailtest: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	s.Host = "127.0.0.1"
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.ClientTLS = &tls.Config{RootCAs: rootsOf(s.opts.ServerTLS), ServerName: s.Host}
	s.log = &testLogger{t: t}
	s.serve(ln)
	t.Cleanup(s.Stop)
	t.Cleanup(s.log.end)
	return s
}

// Stop closes the listener and every connection: clients are refused
// until Start.
func (s *SMTPServer) Stop() {
	s.Release()
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		ln.Close() // Serve may not have registered it yet
		srv.Close()
	}
}

// Start listens again on the same port after Stop.
func (s *SMTPServer) Start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("emailtest: listen again on %s: %v", s.Addr, err)
	}
	s.serve(ln)
}

func (s *SMTPServer) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &smtpSession{s: s, tls: tlsOn, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = s.opts.TLS != config.TLSStartTLS
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = s.log
	switch s.opts.TLS {
	case config.TLSImplicit:
		ln = tls.NewListener(ln, s.opts.ServerTLS)
	case config.TLSStartTLS:
		srv.TLSConfig = s.opts.ServerTLS
	}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Script queues replies for the next commands of stage, one per command,
// after which the stage accepts again (or answers as Always says).
func (s *SMTPServer) Script(stage Stage, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[stage] = append(s.script[stage], replies...)
}

// Always makes every command of stage answer r once its script is used
// up; a zero Reply accepts again.
func (s *SMTPServer) Always(stage Stage, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.always[stage] = r
}

// Refuse answers RCPT TO:<addr> with r.
func (s *SMTPServer) Refuse(addr string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[strings.ToLower(addr)] = r
}

// Hold makes every DATA wait after the final dot, before its answer,
// until Release: sends in progress can be counted (Held).
func (s *SMTPServer) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets the DATA commands held by Hold answer, and the next ones
// answer at once.
func (s *SMTPServer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held is how many DATA commands are waiting for Release.
func (s *SMTPServer) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// HeldFrom returns the remote addresses ("ip:port") of the clients whose
// DATA is held: which process is sending (a cluster test finds the node).
func (s *SMTPServer) HeldFrom() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []string
	for _, a := range s.heldFrom {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	return addrs
}

// Attempts is how many commands of stage the server has answered.
func (s *SMTPServer) Attempts(stage Stage) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[stage]
}

// Mails returns the mails accepted so far, in order.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

// WaitMails waits until the server has accepted at least n mails and
// returns them all, or fails the test after d.
func (s *SMTPServer) WaitMails(n int, d time.Duration) []Mail {
	s.t.Helper()
	timeout := time.After(d)
	for {
		s.mu.Lock()
		mails, changed := slices.Clone(s.mails), s.changed
		s.mu.Unlock()
		if len(mails) >= n {
			return mails
		}
		select {
		case <-changed:
		case <-timeout:
			s.t.Fatalf("emailtest: %d mails received, want %d within %v", len(mails), n, d)
		}
	}
}

// answer counts a command of stage and returns its scripted reply, nil to
// accept.
func (s *SMTPServer) answer(stage Stage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[stage]++
	r := s.always[stage]
	if q := s.script[stage]; len(q) > 0 {
		r, s.script[stage] = q[0], q[1:]
	}
	return smtpError(r)
}

func smtpError(r Reply) error {
	if r.Code == 0 || r.Code/100 == 2 {
		return nil
	}
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
}

// smtpSession is one client's mail transaction.
type smtpSession struct {
	s          *SMTPServer
	conn       *smtp.Conn
	tls        bool
	user, mech string
	from       string
	to         []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string { return ss.s.opts.Mechanisms }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ss.s.opts.Mechanisms, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	ok := func(user, secret string) bool {
		if ss.s.opts.Username == "" || user != ss.s.opts.Username || secret != ss.s.opts.Password {
			return false
		}
		ss.user, ss.mech = user, mech
		return true
	}
	check := func(user, secret string) error {
		if !ok(user, secret) {
			return smtp.ErrAuthFailed
		}
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &smtpLoginServer{check: check}, nil
	}
	if srv := tokenServer(mech, ok, smtp.ErrAuthFailed); srv != nil {
		return srv, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.TLS == config.TLSStartTLS && !ss.encrypted() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if ss.s.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := ss.s.answer(StageMail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) encrypted() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.answer(StageRcpt); err != nil {
		return err
	}
	ss.s.mu.Lock()
	r, refused := ss.s.refuse[strings.ToLower(to)]
	ss.s.mu.Unlock()
	if refused {
		return smtpError(r)
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	hold := ss.s.hold
	if hold != nil {
		ss.s.held++
		ss.s.heldFrom[ss] = ss.conn.Conn().RemoteAddr().String()
	}
	ss.s.mu.Unlock()
	if hold != nil {
		<-hold
		ss.s.mu.Lock()
		ss.s.held--
		delete(ss.s.heldFrom, ss)
		ss.s.mu.Unlock()
	}
	if err := ss.s.answer(StageData); err != nil {
		return err
	}
	m := Mail{From: ss.from, To: slices.Clone(ss.to), Raw: bytes.Clone(raw), User: ss.user, Mechanism: ss.mech, TLS: ss.encrypted()}
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	close(ss.s.changed)
	ss.s.changed = make(chan struct{})
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error { return nil }

// smtpLoginServer is the server side of the obsolete LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl implements only as a client.
type smtpLoginServer struct {
	check      func(user, pass string) error
	user       string
	gotUser    bool
	challenged bool
}

func (l *smtpLoginServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case !l.gotUser && resp == nil && !l.challenged:
		l.challenged = true
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(resp), true
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// testLogger sends go-smtp's internal errors to the test's log until
// the test ends: Stop does not wait for the server's connection
// goroutines, and one that logs after the test completed is a race (and
// a panic) in package testing.
type testLogger struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.t.Logf("smtp server: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.t.Log(append([]any{"smtp server:"}, v...)...)
	}
}

// end stops the logging: a cleanup of the test.
func (l *testLogger) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
}
