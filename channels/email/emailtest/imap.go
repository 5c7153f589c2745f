package emailtest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/microdeets/microchat/config"
)

// IMAPOptions configure StartIMAP; nil means the defaults.
type IMAPOptions struct {
	// TLS is how the server is reached: none (the default: plain text,
	// login allowed without TLS), implicit (TLS from the first byte) or
	// starttls (plain text offering STARTTLS, login only after it).
	TLS config.TLSMode
	// NoIdle hides IDLE from the server's CAPABILITY answers, as a server
	// without RFC 2177 would (imapmemserver always offers it). Works with
	// TLS none and implicit, not after a STARTTLS.
	NoIdle bool
	// Folders are created besides INBOX.
	Folders []string
	// ServerTLS is the server's certificate (from TLSPair, to share it
	// with another server); nil means a fresh one.
	ServerTLS *tls.Config
	// Token, when set, is accepted as the user's OAuth 2.0 bearer token
	// with AUTHENTICATE XOAUTH2 and OAUTHBEARER (RFC 7628); PLAIN keeps
	// taking the password.
	Token string
}

// IMAPServer is go-imap's imapmemserver on a loopback port, with one user
// and an INBOX, whose connections a test can watch and cut.
type IMAPServer struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      config.TLSMode
	// ClientTLS trusts the server's certificate: the TLS configuration a
	// client under test needs with TLS implicit or starttls.
	ClientTLS *tls.Config

	user *imapmemserver.User
	srv  *imapserver.Server
	o    IMAPOptions

	mu       sync.Mutex
	conns    map[*tapConn]bool
	accepted int
	cuts     []int64        // bytes after which the next connections are cut
	commands map[string]int // by name, "UID FETCH", "IDLE"
}

// StartIMAP starts an IMAP server for the test; it stops when the test
// ends. The user is "support@example.com" with password "secret".
func StartIMAP(t testing.TB, o *IMAPOptions) *IMAPServer {
	t.Helper()
	s := &IMAPServer{
		Host:     "127.0.0.1",
		Username: "support@example.com",
		Password: "secret",
		TLS:      config.TLSNone,
		conns:    map[*tapConn]bool{},
		commands: map[string]int{},
	}
	if o != nil {
		s.o = *o
		if o.TLS != "" {
			s.TLS = o.TLS
		}
	}
	mem := imapmemserver.New()
	s.user = imapmemserver.NewUser(s.Username, s.Password)
	for _, name := range append([]string{"INBOX"}, s.o.Folders...) {
		if err := s.user.Create(name, nil); err != nil {
			t.Fatalf("emailtest: creating %s: %v", name, err)
		}
	}
	mem.AddUser(s.user)

	serverTLS := s.o.ServerTLS
	if serverTLS == nil {
		serverTLS, _ = TLSPair(t)
	}
	s.ClientTLS = &tls.Config{RootCAs: rootsOf(serverTLS)}
	opts := &imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := mem.NewSession()
			if s.o.Token != "" {
				sess = &tokenSession{Session: sess, s: s}
			}
			return sess, nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}},
		Logger: log.New(io.Discard, "", 0),
	}
	switch s.TLS {
	case config.TLSStartTLS:
		opts.TLSConfig = serverTLS
	default:
		// With implicit TLS the server sees the tapConn, not the
		// *tls.Conn under it, so it must be told that login is fine.
		opts.InsecureAuth = true
	}
	s.srv = imapserver.New(opts)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emailtest: %v", err)
	}
	if s.TLS == config.TLSImplicit {
		ln = tls.NewListener(ln, serverTLS)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go s.srv.Serve(&tapListener{Listener: ln, s: s})
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Addr is the server's host:port.
func (s *IMAPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Mailbox returns a mailbox named name whose IMAP account is this server's
// INBOX, as config.Load would fill it in; its SMTP account is empty.
func (s *IMAPServer) Mailbox(name string) config.Mailbox {
	return config.Mailbox{
		Name:    name,
		Address: s.Username,
		IMAP: config.IMAP{
			Host: s.Host, Port: s.Port, TLS: s.TLS, Username: s.Username, Password: s.Password,
			Auth: config.AuthPassword, Folder: "INBOX",
		},
		ImportSince:  config.LookbackOf(config.DefaultImportSince),
		PollInterval: config.Duration(time.Minute),
	}
}

// Append adds raw to folder ("" is INBOX) with INTERNALDATE date (zero:
// now) and returns its UID. It calls the server's own APPEND, not over
// the network, so that filling a folder with 50,000 mails is quick;
// clients in IDLE on the folder are told (EXISTS) as with a real APPEND.
func (s *IMAPServer) Append(t testing.TB, folder string, raw []byte, date time.Time) uint32 {
	t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	data, err := s.user.Append(folder, bytes.NewReader(raw), &imap.AppendOptions{Time: date})
	if err != nil {
		t.Fatalf("emailtest: APPEND to %s: %v", folder, err)
	}
	return uint32(data.UID)
}

// UIDValidity returns the UIDVALIDITY of folder ("" is INBOX).
func (s *IMAPServer) UIDValidity(t testing.TB, folder string) uint32 {
	t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	data, err := s.user.Status(folder, &imap.StatusOptions{UIDValidity: true})
	if err != nil {
		t.Fatalf("emailtest: STATUS %s: %v", folder, err)
	}
	return data.UIDValidity
}

// RecreateFolder deletes folder ("" is INBOX) and creates it again, empty
// and with a new UIDVALIDITY, which is how a test changes UIDVALIDITY:
// imapmemserver has no other way, and a real server does the same when
// its index is rebuilt (RFC 9051 section 2.3.1.1). Append the mail again
// afterwards. A connection that had the folder selected keeps the old one
// until it selects again: DropConnections makes clients reconnect. It
// returns the new UIDVALIDITY.
func (s *IMAPServer) RecreateFolder(t testing.TB, folder string) uint32 {
	t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	if err := s.user.Delete(folder); err != nil {
		t.Fatalf("emailtest: DELETE %s: %v", folder, err)
	}
	if err := s.user.Create(folder, nil); err != nil {
		t.Fatalf("emailtest: CREATE %s: %v", folder, err)
	}
	return s.UIDValidity(t, folder)
}

// Message is a mail as the server holds it.
type Message struct {
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Size         int64
}

// Messages lists folder ("" is INBOX) over a connection of its own
// (EXAMINE, which changes nothing).
func (s *IMAPServer) Messages(t testing.TB, folder string) []Message {
	t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	c := s.Dial(t)
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("emailtest: EXAMINE %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	bufs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true}).Collect()
	if err != nil {
		t.Fatalf("emailtest: FETCH: %v", err)
	}
	var msgs []Message
	for _, b := range bufs {
		m := Message{UID: uint32(b.UID), InternalDate: b.InternalDate, Size: b.RFC822Size}
		for _, f := range b.Flags {
			m.Flags = append(m.Flags, string(f))
		}
		slices.Sort(m.Flags)
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b Message) int { return int(int64(a.UID) - int64(b.UID)) })
	return msgs
}

// Dial returns a client logged in to the server, closed when the test
// ends. Its commands are counted like any other client's.
func (s *IMAPServer) Dial(t testing.TB) *imapclient.Client {
	t.Helper()
	opts := &imapclient.Options{TLSConfig: s.ClientTLS}
	var c *imapclient.Client
	var err error
	switch s.TLS {
	case config.TLSImplicit:
		c, err = imapclient.DialTLS(s.Addr(), opts)
	case config.TLSStartTLS:
		c, err = imapclient.DialStartTLS(s.Addr(), opts)
	default:
		c, err = imapclient.DialInsecure(s.Addr(), opts)
	}
	if err != nil {
		t.Fatalf("emailtest: dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.Username, s.Password).Wait(); err != nil {
		t.Fatalf("emailtest: LOGIN: %v", err)
	}
	return c
}

// CutNext arms a network failure: the next connection accepted is closed
// after the server has written after bytes to it (a reply cut in the
// middle, typically a FETCH), and so on for each call, in order.
func (s *IMAPServer) CutNext(after int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts = append(s.cuts, after)
}

// DropConnections closes every open connection, as a server restart would.
func (s *IMAPServer) DropConnections() {
	s.mu.Lock()
	conns := slices.Collect(func(yield func(*tapConn) bool) {
		for c := range s.conns {
			if !yield(c) {
				return
			}
		}
	})
	s.mu.Unlock()
	for _, c := range conns {
		c.Conn.Close()
	}
}

// ClientAddrs returns the remote addresses ("ip:port") of the open
// connections, sorted: which processes are connected (a cluster test
// finds the node holding one).
func (s *IMAPServer) ClientAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []string
	for c := range s.conns {
		addrs = append(addrs, c.RemoteAddr().String())
	}
	slices.Sort(addrs)
	return addrs
}

// Accepted returns how many connections the server has accepted.
func (s *IMAPServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Commands returns how many commands named name ("IDLE", "NOOP", "UID
// FETCH", "UID SEARCH", "SELECT") clients have sent. Counted with TLS none
// and implicit, not after a STARTTLS.
func (s *IMAPServer) Commands(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands[strings.ToUpper(name)]
}

// tapListener wraps the accepted connections in tapConns.
type tapListener struct {
	net.Listener
	s *IMAPServer
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := l.s
	tc := &tapConn{Conn: c, s: s, budget: -1, hideIdle: s.o.NoIdle}
	s.mu.Lock()
	s.accepted++
	s.conns[tc] = true
	if len(s.cuts) > 0 {
		tc.budget, s.cuts = s.cuts[0], s.cuts[1:]
	}
	s.mu.Unlock()
	return tc, nil
}

// tapConn is the server's side of one connection: it counts the client's
// commands, can hide IDLE from the capabilities the server sends, and can
// cut the connection after a number of bytes written.
type tapConn struct {
	net.Conn
	s        *IMAPServer
	hideIdle bool

	mu      sync.Mutex
	budget  int64 // bytes the server may still write; -1 unlimited
	in      bytes.Buffer
	pending []byte // server output held until its line is complete
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.count(p[:n])
	}
	return n, err
}

// count records the command names of the complete lines the client sent.
func (c *tapConn) count(p []byte) {
	c.mu.Lock()
	c.in.Write(p)
	var names []string
	for {
		line, err := c.in.ReadString('\n')
		if err != nil {
			// Incomplete: keep it for the next read.
			rest := []byte(line)
			c.in.Reset()
			c.in.Write(rest)
			break
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.ToUpper(f[1])
		if name == "UID" && len(f) > 2 {
			name += " " + strings.ToUpper(f[2])
		}
		names = append(names, name)
	}
	c.mu.Unlock()
	if len(names) > 0 {
		c.s.mu.Lock()
		for _, n := range names {
			c.s.commands[n]++
		}
		c.s.mu.Unlock()
	}
}

var errCut = errors.New("emailtest: connection cut")

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := p
	if c.hideIdle {
		// Hold the last incomplete line: every response the server
		// flushes ends with CRLF.
		buf := append(c.pending, p...)
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 {
			c.pending = buf
			return len(p), nil
		}
		out, c.pending = hideIdle(buf[:i+1]), slices.Clone(buf[i+1:])
	}
	if c.budget >= 0 && int64(len(out)) > c.budget {
		n, _ := c.Conn.Write(out[:c.budget])
		c.budget -= int64(n)
		c.Conn.Close()
		return 0, errCut
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	if c.budget >= 0 {
		c.budget -= int64(len(out))
	}
	return len(p), nil
}

// hideIdle removes IDLE from the CAPABILITY lists in complete lines.
func hideIdle(b []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i+1], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte("CAPABILITY")) {
			line = bytes.ReplaceAll(line, []byte(" IDLE "), []byte(" "))
			line = bytes.ReplaceAll(line, []byte(" IDLE]"), []byte("]"))
			line = bytes.ReplaceAll(line, []byte(" IDLE\r"), []byte("\r"))
		}
		out.Write(line)
	}
	return out.Bytes()
}

func (c *tapConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// tokenSession adds the SASL mechanisms of OAuth 2.0 bearer tokens to an
// imapmemserver session.
type tokenSession struct {
	imapserver.Session
	s *IMAPServer
}

func (ts *tokenSession) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, xoauth2, sasl.OAuthBearer}
}

func (ts *tokenSession) Authenticate(mech string) (sasl.Server, error) {
	if mech == sasl.Plain {
		return sasl.NewPlainServer(func(identity, username, password string) error {
			return ts.Session.Login(username, password)
		}), nil
	}
	s := ts.s
	check := func(user, token string) bool {
		return token == s.o.Token && user == s.Username && ts.Session.Login(user, s.Password) == nil
	}
	if srv := tokenServer(mech, check, errTokenRefused); srv != nil {
		return srv, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// errTokenRefused is the NO that ends a refused XOAUTH2 login.
var errTokenRefused = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials"}
