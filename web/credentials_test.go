package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/sockets"
)

// Sockets act only while the credential they were opened with is valid
// (issue 11, item 1), are bounded per principal (item 2), and end the
// typing they started (item 15).

// clockEnv is an env whose store runs on a test clock and whose sockets'
// expiry sweeps happen when the test sends on tick.
type clockEnv struct {
	*env
	clock *inboxtest.Clock
	tick  chan time.Time
}

func newClockEnv(t *testing.T, url string, edit func(*config.Config)) *clockEnv {
	t.Helper()
	clock := inboxtest.NewClock()
	store := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
	tick := make(chan time.Time)
	e := newEnvOptions(t, store, edit, Options{SweepTick: tick})
	return &clockEnv{env: e, clock: clock, tick: tick}
}

// newEnvServer is newEnvStore with a server already made.
func newEnvServer(t *testing.T, store *inbox.Store, srv *Server, cfg config.Config) *env {
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	return &env{t: t, store: store, srv: srv, ts: ts, cfg: cfg}
}

// sweep runs one expiry sweep of both kinds of socket.
func (e *clockEnv) sweep() {
	select {
	case e.tick <- e.clock.Now():
	case <-time.After(frameWait):
		e.t.Fatalf("the sweeper did not take a tick within %v", frameWait)
	}
}

// agentSockWith opens an agent socket with a session cookie's value.
func (e *env) agentSockWith(token string) *wsClient {
	e.t.Helper()
	c, code := e.agentSockTry(token)
	if c == nil {
		e.t.Fatalf("agent socket refused with %d", code)
	}
	return c
}

// agentSockTry opens an agent socket and returns it after its hello, or
// nil and the code it was closed with.
func (e *env) agentSockTry(token string) (*wsClient, uint16) {
	e.t.Helper()
	c := &wsClient{frames: make(chan agentFrame, 1000), closed: make(chan error, 1), pings: make(chan struct{}, 10)}
	conn, _, err := gws.NewClient(wsClientEvents{c}, &gws.ClientOption{
		Addr:          "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws",
		RequestHeader: http.Header{"Cookie": {e.cfg.Session.CookieName + "=" + token}},
	})
	if err != nil {
		e.t.Fatalf("dial agent socket: %v", err)
	}
	c.conn = conn
	go conn.ReadLoop()
	e.t.Cleanup(func() { conn.WriteClose(1000, nil) })
	select {
	case f := <-c.frames:
		if f.Type != "hello" {
			e.t.Fatalf("agent's first frame = %+v", f)
		}
		return c, 0
	case err := <-c.closed:
		var ce *gws.CloseError
		if !errors.As(err, &ce) {
			e.t.Fatalf("agent socket closed with %v, want a close frame", err)
		}
		return nil, ce.Code
	case <-time.After(frameWait):
		e.t.Fatalf("agent socket: no hello within %v", frameWait)
	}
	return nil, 0
}

// session logs the agent in for ttl and returns the cookie's value.
func (e *env) session(a inbox.Agent, ttl time.Duration) string {
	e.t.Helper()
	token, _, err := e.store.CreateSession(context.Background(), a.ID, ttl)
	if err != nil {
		e.t.Fatalf("CreateSession() = %v", err)
	}
	return token
}

// messageCount is how many messages the conversation has.
func (e *env) messageCount(conversationID int64) int {
	e.t.Helper()
	p, err := e.store.Messages(context.Background(), conversationID, inbox.MessageQuery{Limit: 200})
	if err != nil {
		e.t.Fatalf("Messages() = %v", err)
	}
	return len(p.Messages)
}

// A logout closes the session's socket at once with 4401, not at the next
// session check (every 30 s).
func TestLogoutClosesAgentSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newWSEnv(t, url)
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.next(t) // hello
		// Another session of the same agent stays.
		other := e.env.agentSockWith(e.env.session(e.agent, time.Hour))
		cl := e.env.client()
		cl.header.Set("Cookie", e.cookie)
		cl.csrf = e.csrf
		cl.do("POST", "/api/v1/auth/logout", nil).want(http.StatusNoContent)
		if code := c.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("close code after the logout = %d, want 4401", code)
		}
		other.send(t, agentCommand{Type: "ping"})
		if f := agentNext(t, other, "pong", nil); f.Type != "pong" {
			t.Fatalf("the other session's socket: %+v", f)
		}
	})
}

// An agent session expires on its socket as over HTTP: a reply after the
// expiry is refused and closes the socket, and the sweeper closes an idle
// one; the clock is the test's.
func TestAgentSessionExpiryClosesSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newClockEnv(t, url, func(c *config.Config) { c.Session.TTL = config.Duration(40 * time.Second) })
		a := e.agent("exp@example.com", inbox.RoleAgent)
		conv := e.conversation("Vic", "")
		token := e.session(a, 40*time.Second)
		busy, idle := e.agentSockWith(token), e.agentSockWith(token)

		e.clock.Advance(10 * time.Second)
		busy.send(t, messageFrame(conv.ID, "r-1", "before the expiry"))
		if f := agentNext(t, busy, "ack", nil); f.ClientID != "r-1" {
			t.Fatalf("ack = %+v", f)
		}

		e.clock.Advance(36 * time.Second) // 46 s: expired
		cl := e.client()
		cl.header.Set("Cookie", e.cfg.Session.CookieName+"="+token)
		cl.do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)
		busy.send(t, messageFrame(conv.ID, "r-2", "after the expiry"))
		f := agentNext(t, busy, "error", nil)
		if f.ClientID != "r-2" || f.Status != http.StatusUnauthorized {
			t.Fatalf("answer to a reply after the expiry = %+v, want a 401 error", f)
		}
		if code := busy.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("close code = %d, want 4401", code)
		}
		if n := e.messageCount(conv.ID); n != 1 {
			t.Fatalf("%d messages stored, want 1 (none after the expiry)", n)
		}

		// The idle socket closes at the next sweep.
		e.sweep()
		if code := idle.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("idle socket's close code = %d, want 4401", code)
		}
	})
}

// A visitor token expires on the socket exactly when /state says 401; a
// use over HTTP that renews it renews it for the socket too.
func TestVisitorTokenExpiryClosesSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newClockEnv(t, url, func(c *config.Config) { c.Widget.SessionTTL = config.Duration(20 * time.Second) })
		v := e.startVisitor("Vera")
		busy, _ := v.connect(0)
		idle, _ := v.connect(0)
		conv := v.start.Conversation.ID
		busy.send(t, map[string]any{"type": "message", "client_id": "m-1", "text": "hello"})
		if f := busy.find(t, "ack"); f.ClientID != "m-1" {
			t.Fatalf("ack = %s", f)
		}

		e.clock.Advance(50 * time.Second)
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusUnauthorized)
		busy.send(t, map[string]any{"type": "message", "client_id": "m-2", "text": "after the expiry"})
		// The server may have closed the socket already: this frame's write
		// may fail, and it must not be acted on either way.
		busy.trySend(map[string]any{"type": "typing", "typing": true})
		if code := busy.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("close code = %d, want 4401", code)
		}
		if n := e.messageCount(conv); n != 1 {
			t.Fatalf("%d messages stored, want 1 (none after the expiry)", n)
		}
		e.sweep()
		if code := idle.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("idle socket's close code = %d, want 4401", code)
		}
	})
}

// A token renewed over HTTP after the socket read its expiry keeps the
// socket open past that expiry: HTTP and socket agree.
func TestVisitorTokenRenewedKeepsSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newClockEnv(t, url, func(c *config.Config) { c.Widget.SessionTTL = config.Duration(2 * time.Minute) })
		v := e.startVisitor("Vera")
		s, _ := v.connect(0)
		e.clock.Advance(61 * time.Second)
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK) // a use: now expires at 181 s
		e.clock.Advance(69 * time.Second)                            // 130 s: past what the socket read
		e.sweep()
		s.send(t, map[string]any{"type": "message", "client_id": "m-1", "text": "still here"})
		if f := s.find(t, "ack"); f.ClientID != "m-1" {
			t.Fatalf("ack = %s", f)
		}
		e.clock.Advance(60 * time.Second) // 190 s: expired
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusUnauthorized)
		e.sweep()
		if code := s.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("close code = %d, want 4401", code)
		}
	})
}

// Erasing a contact closes their sockets with 4401 at once.
func TestEraseClosesVisitorSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		v := e.startVisitor("Vera")
		s, _ := v.connect(0)
		other, _ := e.startVisitor("Otto").connect(0)
		admin := e.login("admin@example.com")
		admin.do("DELETE", "/api/v1/contacts/"+itoa(v.start.Contact.ID), nil).want(http.StatusNoContent)
		if code := s.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("close code = %d, want 4401", code)
		}
		other.send(t, map[string]any{"type": "ping"})
		if f := other.find(t, "pong"); f.Type != "pong" {
			t.Fatalf("another visitor's socket: %s", f)
		}
	})
}

// Removing an agent ends their sessions and sockets, keeps their name on
// their messages (and them, disabled, in the agents list), and takes them
// out of their conversations; the last admin cannot be removed.
func TestRemoveAgent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		adminA := e.agent("admin@example.com", inbox.RoleAdmin)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		conv := e.conversation("Vic", "")
		bc := e.login(bob.Email)
		bc.do("POST", "/api/v1/conversations/"+itoa(conv.ID)+"/join", nil).want(http.StatusOK)
		bc.do("POST", "/api/v1/conversations/"+itoa(conv.ID)+"/messages", map[string]any{"text": "hi from bob"}).want(http.StatusCreated)
		sock := e.agentSockWith(e.session(bob, time.Hour))

		bc.do("DELETE", "/api/v1/agents/"+itoa(adminA.ID), nil).want(http.StatusForbidden)
		admin := e.login(adminA.Email)
		admin.do("DELETE", "/api/v1/agents/"+itoa(adminA.ID), nil).want(http.StatusConflict) // the last admin
		admin.do("DELETE", "/api/v1/agents/"+itoa(bob.ID), nil).want(http.StatusNoContent)
		if code := sock.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("removed agent's socket closed with %d, want 4401", code)
		}
		bc.do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)
		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": bob.Email, "password": testPassword}).want(http.StatusUnauthorized)
		admin.do("DELETE", "/api/v1/agents/"+itoa(bob.ID), nil).want(http.StatusNotFound)

		var list agentList
		admin.do("GET", "/api/v1/agents", nil).want(http.StatusOK).decode(&list)
		if len(list.Agents) != 2 || list.Agents[0].ID != adminA.ID || list.Agents[1].ID != bob.ID || !list.Agents[1].Disabled() {
			t.Fatalf("agents after the removal = %+v, want the admin and bob, disabled", list.Agents)
		}
		parts, err := e.store.Participants(context.Background(), conv.ID)
		noError(t, "Participants", err)
		for _, p := range parts {
			if p.AgentID == bob.ID {
				t.Fatalf("the removed agent is still in the conversation: %+v", p)
			}
		}
		c, err := e.store.Conversation(context.Background(), conv.ID)
		noError(t, "Conversation", err)
		if c.Status != inbox.StatusClosed {
			t.Fatalf("conversation left by its last agent = %s, want closed", c.Status)
		}
		a, err := e.store.Agent(context.Background(), bob.ID)
		if err != nil || a.Name != bob.Name || a.DeactivatedAt == nil {
			t.Fatalf("Agent(bob) after the removal = %+v, %v; want the name kept", a, err)
		}
	})
}

// dialVisitor opens a widget socket with the given headers and
// authenticates; it returns the socket and the close code (0 while it is
// open after its hello).
func (e *env) dialVisitor(token string, header http.Header) (*vsock, uint16) {
	e.t.Helper()
	s, _, err := e.dialWidget(header)
	if err != nil {
		e.t.Fatalf("dial widget socket: %v", err)
	}
	// A socket over a cap may be closed already: its close code tells.
	b, _ := json.Marshal(map[string]any{"type": "auth", "token": token})
	s.conn.WriteMessage(gws.OpcodeText, b)
	select {
	case f := <-s.frames:
		if f.Type == "hello" {
			return s, 0
		}
		e.t.Fatalf("first frame = %s", f)
	case <-time.After(frameWait):
		e.t.Fatalf("widget socket: no hello within %v", frameWait)
	case err := <-s.closed:
		s.closed <- err
		return s, s.closeCode(e.t)
	}
	return nil, 0
}

// The 11th socket of one visitor token or one agent session is refused
// with 4429; the others are served.
func TestSocketsPerCredential(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		v := e.startVisitor("Vera")
		for i := range 10 {
			if _, code := e.dialVisitor(v.token, nil); code != 0 {
				t.Fatalf("visitor socket %d closed with %d", i+1, code)
			}
		}
		if _, code := e.dialVisitor(v.token, nil); code != sockets.CloseTooMany {
			t.Fatalf("11th socket of a token: close code %d, want 4429", code)
		}
		// Another token is not counted with it.
		if _, code := e.dialVisitor(e.startVisitor("Otto").token, nil); code != 0 {
			t.Fatalf("another visitor's socket closed with %d", code)
		}

		a := e.agent("a@example.com", inbox.RoleAgent)
		token := e.session(a, time.Hour)
		for range 10 {
			e.agentSockWith(token)
		}
		if c, code := e.agentSockTry(token); c != nil || code != sockets.CloseTooMany {
			t.Fatalf("11th socket of a session: close code %d, want 4429", code)
		}
		// A new session of the same agent is served, up to the agent's cap
		// over all sessions (limits.sockets_per_agent, 30): an agent who
		// logs in again and again cannot open sockets without bound.
		for s := range 2 {
			token := e.session(a, time.Hour)
			for range 10 {
				if c, code := e.agentSockTry(token); c == nil {
					t.Fatalf("socket of the agent's session %d closed with %d", s+2, code)
				}
			}
		}
		if c, code := e.agentSockTry(e.session(a, time.Hour)); c != nil || code != sockets.CloseTooMany {
			t.Fatalf("31st socket of an agent: close code %d, want 4429", code)
		}
		// Another agent is not counted with them.
		e.agentSockWith(e.session(e.agent("b@example.com", inbox.RoleAgent), time.Hour))
	})
}

// Visitor sockets per client IP are capped (limits.sockets_per_ip), by the
// address trusted_proxies resolve.
func TestSocketsPerIP(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) {
			c.Limits.SocketsPerIP = 3
			c.TrustedProxies = []string{"127.0.0.1", "::1"}
		})
		from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
		for i := range 3 {
			if _, code := e.dialVisitor(e.startVisitor("V"+strconv.Itoa(i)).token, from("203.0.113.7")); code != 0 {
				t.Fatalf("socket %d closed with %d", i+1, code)
			}
		}
		if _, code := e.dialVisitor(e.startVisitor("Late").token, from("203.0.113.7")); code != sockets.CloseTooMany {
			t.Fatalf("4th socket from one IP: close code %d, want 4429", code)
		}
		if _, code := e.dialVisitor(e.startVisitor("Elsewhere").token, from("203.0.113.8")); code != 0 {
			t.Fatalf("a socket from another IP closed with %d", code)
		}
	})
}

// At the node's visitor cap the next visitor socket is refused with 4429,
// while health checks and agents' sockets are still served.
func TestVisitorSocketsNodeCap(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.Limits.VisitorSockets = 3 })
		for i := range 3 {
			if _, code := e.dialVisitor(e.startVisitor("V"+strconv.Itoa(i)).token, nil); code != 0 {
				t.Fatalf("socket %d closed with %d", i+1, code)
			}
		}
		if _, code := e.dialVisitor(e.startVisitor("Late").token, nil); code != sockets.CloseTooMany {
			t.Fatalf("a visitor socket over the node's cap: close code %d, want 4429", code)
		}
		e.client().do("GET", "/healthz", nil).want(http.StatusOK)
		e.agentSock(e.agent("a@example.com", inbox.RoleAgent))
	})
}

// An agent's replies are rate-limited, over the socket and the API: a loop
// gets 429s with retry_after, and what is stored is bounded.
func TestAgentReplyRate(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newClockEnv(t, url, func(c *config.Config) {
			c.Limits.AgentMessagesPerSecond, c.Limits.AgentMessageBurst = 1, 5
		})
		a := e.agent("loop@example.com", inbox.RoleAgent)
		conv := e.conversation("Vic", "")
		c := e.agentSockWith(e.session(a, time.Hour))
		const n = 40
		for i := range n {
			c.send(t, messageFrame(conv.ID, "l-"+strconv.Itoa(i), "loop"))
		}
		acks, limited := 0, 0
		for acks+limited < n {
			f := c.next(t)
			switch f.Type {
			case "ack":
				acks++
			case "error":
				if f.Status != http.StatusTooManyRequests || f.RetryAfter < 1 {
					t.Fatalf("error frame %+v, want 429 with retry_after", f)
				}
				limited++
			}
		}
		if acks != 5 || e.messageCount(conv.ID) != 5 {
			t.Fatalf("%d acks, %d stored; want the burst of 5", acks, e.messageCount(conv.ID))
		}
		cl := e.client()
		cl.header.Set("Cookie", e.cfg.Session.CookieName+"="+e.session(a, time.Hour))
		sess := cl.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK)
		var sa sessionAnswer
		sess.decode(&sa)
		cl.csrf = sa.CSRFToken
		r := cl.do("POST", "/api/v1/conversations/"+itoa(conv.ID)+"/messages", map[string]any{"text": "over HTTP"}).want(http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After")
		}
		e.clock.Advance(time.Second)
		cl.do("POST", "/api/v1/conversations/"+itoa(conv.ID)+"/messages", map[string]any{"text": "a second later"}).want(http.StatusCreated)
	})
}

// A typing indicator ends when the socket that set it ends: the agents
// see typing false when the visitor's socket closes, the visitor when the
// agent's does.
func TestTypingEndsWithSocket(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		a := e.agent("a@example.com", inbox.RoleAgent)
		dash := e.agentSock(a)
		v := e.startVisitor("Vera")
		conv := v.start.Conversation.ID
		s, _ := v.connect(0)
		s.send(t, map[string]any{"type": "typing", "typing": true})
		isVera := func(f agentFrame) bool { return f.ContactID == v.start.Contact.ID }
		if f := agentNext(t, dash, "typing", isVera); f.Typing == nil || !*f.Typing {
			t.Fatalf("typing = %+v, want true", f)
		}
		s.conn.WriteClose(1000, nil)
		if f := agentNext(t, dash, "typing", isVera); f.Typing == nil || *f.Typing {
			t.Fatalf("typing after the visitor's socket closed = %+v, want false", f)
		}

		s2, _ := v.connect(0)
		agentTyping := e.agentSockWith(e.session(a, time.Hour))
		agentTyping.send(t, agentCommand{Type: "typing", ConversationID: conv, Typing: true})
		if f := s2.find(t, "typing"); !f.Typing || f.AgentID != a.ID {
			t.Fatalf("visitor's typing frame = %s, want true", f)
		}
		agentTyping.conn.WriteClose(1000, nil)
		if f := s2.find(t, "typing"); f.Typing || f.AgentID != a.ID {
			t.Fatalf("typing after the agent's socket closed = %s, want false", f)
		}
	})
}

// A logout between the session's read and the socket's registration
// closes the socket too: it is not missed for want of a socket to find.
func TestLogoutWhileAgentSocketOpens(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		a := e.agent("a@example.com", inbox.RoleAgent)
		token := e.session(a, time.Hour)
		testHookAgentSocket = func() {
			if err := e.store.DeleteSession(context.Background(), token); err != nil {
				t.Errorf("DeleteSession() = %v", err)
			}
		}
		t.Cleanup(func() { testHookAgentSocket = nil })
		if c, code := e.agentSockTry(token); c != nil || code != sockets.CloseUnauthorized {
			t.Fatalf("socket of a session logged out while it opened: close code %d, want 4401", code)
		}
	})
}
