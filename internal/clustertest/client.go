package clustertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/inbox"
)

// Agent is an agent logged in to the cluster: its session cookie and CSRF
// token work on every node (the session is in the database), so each
// call names the node it goes to.
type Agent struct {
	t     testing.TB
	hc    *http.Client
	CSRF  string
	Agent inbox.Agent
}

// Login logs in on node with email and password and fails the test
// unless the answer is 200.
func Login(t testing.TB, node *Node, email, password string) *Agent {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &Agent{t: t, hc: &http.Client{Jar: jar, Timeout: Patience}}
	var ans struct {
		CSRFToken string      `json:"csrf_token"`
		Agent     inbox.Agent `json:"agent"`
	}
	if st, body := Call(t, a.hc, node, http.MethodPost, "/api/v1/auth/login", nil,
		map[string]any{"email": email, "password": password}, &ans); st != http.StatusOK {
		t.Fatalf("login of %s on %s = %d %s", email, node.ID, st, body)
	}
	a.CSRF, a.Agent = ans.CSRFToken, ans.Agent
	return a
}

// Admin logs the cluster's admin in on node.
func Admin(t testing.TB, node *Node) *Agent {
	t.Helper()
	return Login(t, node, AdminEmail, AdminPassword)
}

// Do sends method path with body (JSON; nil for none) to node as the
// agent, decodes a 2xx answer into out (when not nil), and returns the
// status and the body.
func (a *Agent) Do(node *Node, method, path string, body, out any) (int, string) {
	a.t.Helper()
	h := http.Header{}
	if method != http.MethodGet {
		h.Set("X-CSRF-Token", a.CSRF)
	}
	return Call(a.t, a.hc, node, method, path, h, body, out)
}

// Get is Do with GET, failing the test unless the answer is 2xx.
func (a *Agent) Get(node *Node, path string, out any) {
	a.t.Helper()
	if st, b := a.Do(node, http.MethodGet, path, nil, out); st/100 != 2 {
		a.t.Fatalf("GET %s on %s = %d %s", path, node.ID, st, b)
	}
}

// Post is Do with POST, failing the test unless the answer is 2xx.
func (a *Agent) Post(node *Node, path string, body, out any) {
	a.t.Helper()
	if st, b := a.Do(node, http.MethodPost, path, body, out); st/100 != 2 {
		a.t.Fatalf("POST %s on %s = %d %s", path, node.ID, st, b)
	}
}

// Call sends one request to node with the client hc and the headers h,
// body as JSON, decodes a 2xx answer into out (when not nil), and returns
// the status code and the body. A request that gets no answer fails the
// test.
func Call(t testing.TB, hc *http.Client, node *Node, method, path string, h http.Header, body, out any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, node.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, node.ID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s on %s: decoding %s: %v", method, path, node.ID, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

// Dial opens the agent's WebSocket on node (query: "" or "resume=1") and
// waits for its hello.
func (a *Agent) Dial(node *Node, query string) *Socket {
	a.t.Helper()
	u, _ := url.Parse(node.URL)
	h := http.Header{"Origin": {node.URL}}
	for _, c := range a.hc.Jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	addr := "ws://" + node.Addr + "/api/v1/ws"
	if query != "" {
		addr += "?" + query
	}
	s := dial(a.t, node, addr, h)
	s.WaitFor("the agent socket's hello", func(f Frame) bool { return f.Type == "hello" })
	return s
}

// Visitor is a widget's visitor: their token, contact and conversation.
type Visitor struct {
	t            testing.TB
	Token        string
	Contact      inbox.Contact
	Conversation inbox.Conversation
}

// StartVisitor starts a conversation from the widget on node, as Start
// Chat does.
func StartVisitor(t testing.TB, node *Node, name, email string) *Visitor {
	t.Helper()
	v := &Visitor{t: t}
	body := map[string]any{"name": name}
	if email != "" {
		body["email"] = email
	}
	var ans struct {
		Token        string             `json:"token"`
		Contact      inbox.Contact      `json:"contact"`
		Conversation inbox.Conversation `json:"conversation"`
	}
	if st, b := Call(t, http.DefaultClient, node, http.MethodPost, "/api/v1/widget/conversations", nil, body, &ans); st != http.StatusCreated {
		t.Fatalf("starting a conversation on %s = %d %s", node.ID, st, b)
	}
	v.Token, v.Contact, v.Conversation = ans.Token, ans.Contact, ans.Conversation
	return v
}

// Dial opens the widget's socket on node, authenticates with lastSeq,
// and waits for its hello.
func (v *Visitor) Dial(node *Node, lastSeq int64) *Socket {
	v.t.Helper()
	s := dial(v.t, node, "ws://"+node.Addr+"/api/v1/widget/ws", nil)
	s.Send(map[string]any{"type": "auth", "token": v.Token, "last_seq": lastSeq, "conversation_id": v.Conversation.ID})
	s.WaitFor("the widget socket's hello", func(f Frame) bool { return f.Type == "hello" })
	return s
}

// Frame is a frame either socket sends, the fields of every type in one.
type Frame struct {
	Type           string         `json:"type"`
	Event          *inbox.Event   `json:"event"`
	ConversationID int64          `json:"conversation_id"`
	ContactID      int64          `json:"contact_id"`
	AgentID        int64          `json:"agent_id"`
	Name           string         `json:"name"`
	Typing         *bool          `json:"typing"`
	Online         *bool          `json:"online"`
	Presence       string         `json:"presence"`
	ClientID       string         `json:"client_id"`
	Message        *inbox.Message `json:"message"`
	Channel        string         `json:"channel"`
	Status         int            `json:"status"`
	Code           string         `json:"code"`
	Error          string         `json:"error"`
	// Raw is the frame as received, At when.
	Raw []byte    `json:"-"`
	At  time.Time `json:"-"`
}

// Socket is a client WebSocket, agent's or visitor's: it answers pings,
// queues every frame for WaitFor and keeps them all for Frames.
type Socket struct {
	t    testing.TB
	Node *Node
	conn *gws.Conn

	queue chan Frame
	done  chan struct{} // closed when the connection has closed

	mu       sync.Mutex
	frames   []Frame
	closeErr error
	closedAt time.Time
}

func dial(t testing.TB, node *Node, addr string, h http.Header) *Socket {
	t.Helper()
	s := &Socket{t: t, Node: node, queue: make(chan Frame, 1<<16), done: make(chan struct{})}
	conn, _, err := gws.NewClient(s, &gws.ClientOption{Addr: addr, RequestHeader: h, HandshakeTimeout: Patience})
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	s.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	return s
}

// OnOpen is gws's callback.
func (s *Socket) OnOpen(*gws.Conn) {}

// OnPing answers the server's pings.
func (s *Socket) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

// OnPong is gws's callback.
func (s *Socket) OnPong(*gws.Conn, []byte) {}

// OnClose records why the connection ended.
func (s *Socket) OnClose(_ *gws.Conn, err error) {
	s.mu.Lock()
	s.closeErr, s.closedAt = err, time.Now()
	s.mu.Unlock()
	close(s.done)
}

// OnMessage queues and keeps a frame.
func (s *Socket) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	f := Frame{Raw: bytes.Clone(m.Bytes()), At: time.Now()}
	if err := json.Unmarshal(f.Raw, &f); err != nil {
		s.t.Errorf("a frame from %s is not JSON: %q", s.Node.ID, f.Raw)
		return
	}
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	select {
	case s.queue <- f:
	default:
		s.t.Errorf("socket on %s: more than %d frames not waited for", s.Node.ID, cap(s.queue))
	}
}

// Send writes v as a JSON text frame.
func (s *Socket) Send(v any) {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		s.t.Fatalf("writing to the socket on %s: %v", s.Node.ID, err)
	}
}

// WaitFor returns the next queued frame that match accepts, dropping the
// queued frames before it, and fails the test if none comes within
// Patience or the connection closes first.
func (s *Socket) WaitFor(what string, match func(Frame) bool) Frame {
	s.t.Helper()
	return s.WaitForWithin(Patience, what, match)
}

// WaitForWithin is WaitFor with the deadline d.
func (s *Socket) WaitForWithin(d time.Duration, what string, match func(Frame) bool) Frame {
	s.t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		select {
		case f := <-s.queue:
			if match(f) {
				return f
			}
		case <-s.done:
			// What was queued before the close still counts.
			for len(s.queue) > 0 {
				if f := <-s.queue; match(f) {
					return f
				}
			}
			s.t.Fatalf("waiting on %s for %s: the socket closed (%v)", s.Node.ID, what, s.CloseError())
		case <-timeout.C:
			s.t.Fatalf("waiting on %s for %s: nothing within %v", s.Node.ID, what, d)
		}
	}
}

// WaitSeen waits until a frame that match accepts has been received,
// before the call or during it, whether or not WaitFor dropped it, and
// fails the test if none has within Patience. It leaves the queue alone.
func (s *Socket) WaitSeen(what string, match func(Frame) bool) Frame {
	s.t.Helper()
	deadline := time.Now().Add(Patience)
	for seen := 0; ; {
		frames := s.Frames()
		for _, f := range frames[seen:] {
			if match(f) {
				return f
			}
		}
		seen = len(frames)
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting on %s for %s: not received within %v", s.Node.ID, what, Patience)
		}
		select {
		case <-s.done:
			if len(s.Frames()) == seen {
				s.t.Fatalf("waiting on %s for %s: the socket closed (%v)", s.Node.ID, what, s.CloseError())
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Frames returns every frame received so far, in order.
func (s *Socket) Frames() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.frames...)
}

// Events returns the stored events (seq > 0) of conversation received so
// far, in order.
func (s *Socket) Events(conversation int64) []inbox.Event {
	var evs []inbox.Event
	for _, f := range s.Frames() {
		if f.Type == "event" && f.Event != nil && f.Event.ConversationID == conversation && f.Event.Seq > 0 {
			evs = append(evs, *f.Event)
		}
	}
	return evs
}

// Done is closed when the connection has closed.
func (s *Socket) Done() <-chan struct{} { return s.done }

// CloseError is why the connection closed: a *gws.CloseError with the
// server's code, another error for a connection cut, nil while open.
func (s *Socket) CloseError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// CloseCode is the close code the server sent, 0 if none (yet).
func (s *Socket) CloseCode() uint16 {
	var ce *gws.CloseError
	if errors.As(s.CloseError(), &ce) {
		return ce.Code
	}
	return 0
}

// ClosedAt is when the connection closed, zero while open.
func (s *Socket) ClosedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closedAt
}

// WaitClosed waits up to d for the connection to close (at once if it
// has) and fails the test if it does not.
func (s *Socket) WaitClosed(d time.Duration, what string) {
	s.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-s.done:
		return
	default:
	}
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Fatalf("%s: the socket on %s still open after %v", what, s.Node.ID, d)
	}
}

// Close closes the connection normally (1000) and waits for it to end.
func (s *Socket) Close() {
	s.t.Helper()
	s.conn.WriteClose(1000, nil)
	select {
	case <-s.done:
	case <-time.After(Patience):
		s.conn.NetConn().Close()
		<-s.done
	}
}

// Cut drops the connection without a close frame, as a lost network does.
func (s *Socket) Cut() {
	s.conn.NetConn().Close()
	<-s.done
}

// String names the socket in messages.
func (s *Socket) String() string {
	return "socket on " + s.Node.ID + " (" + strings.TrimPrefix(s.Node.URL, "http://") + ")"
}
