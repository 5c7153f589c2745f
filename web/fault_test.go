package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// cutProxy is a TCP proxy that can cut every connection and refuse new
// ones, then let them through again: a database that goes away and comes
// back. It can also stall: keep connections open but forward nothing,
// like a network that drops packets.
type cutProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	down    bool
	stalled bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen() = %v", err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.restore()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			in.Close() // refused: the client sees the connection end at once
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.isStalled() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// stall stops forwarding bytes, on open and new connections, until
// restore.
func (p *cutProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

func (p *cutProxy) isStalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down, p.stalled = false, false
}

// TestDatabaseOutage cuts the server off PostgreSQL: it must say so
// quickly (503, not 500, not a hang), write nothing, and recover by itself
// once the database is back.
func TestDatabaseOutage(t *testing.T) {
	postgresOnly(t, func(t *testing.T, url string) {
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatalf("url.Parse() = %v", err)
		}
		proxy := newCutProxy(t, u.Host)
		u.Host = proxy.ln.Addr().String()
		e := newEnvStore(t, inboxtest.Open(t, u.String(), nil), nil)
		agent := e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		c := e.login("a@example.com")
		messages := "/api/v1/conversations/" + itoa64(conv.ID) + "/messages"
		c.do("POST", messages, map[string]string{"text": "before"}).want(http.StatusCreated)

		timed := func(method, path string, body any) *result {
			t.Helper()
			start := time.Now()
			r := c.do(method, path, body)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s %s took %v during the outage", method, path, d)
			}
			return r
		}

		proxy.cut()
		r := timed("GET", "/readyz", nil).want(http.StatusServiceUnavailable)
		if !strings.Contains(string(r.body), `"status":"unavailable"`) {
			t.Fatalf("readyz = %s", r.body)
		}
		r = timed("GET", "/api/v1/conversations", nil).want(http.StatusServiceUnavailable)
		if got := r.apiErr().Error; got != "database unavailable" {
			t.Fatalf("read during the outage: error = %q", got)
		}
		timed("GET", messages, nil).want(http.StatusServiceUnavailable)
		timed("POST", messages, map[string]string{"text": "during", "client_id": "d-1"}).want(http.StatusServiceUnavailable)
		timed("POST", "/api/v1/conversations/"+itoa64(conv.ID)+"/join", nil).want(http.StatusServiceUnavailable)
		c.do("GET", "/healthz", nil).want(http.StatusOK)

		// The handlers map only inbox.ErrUnavailable to 503: every store
		// call they make must return it on a dead database, the writes
		// included (above, the session check fails before them).
		ctx := context.Background()
		agentID := agent.ID
		for name, call := range map[string]func() error{
			"AddMessage": func() error {
				_, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &agentID, Text: "during"})
				return err
			},
			"Join":               func() error { return e.store.Join(ctx, conv.ID, agentID) },
			"Leave":              func() error { return e.store.Leave(ctx, conv.ID, agentID) },
			"MarkRead":           func() error { return e.store.MarkRead(ctx, conv.ID, agentID, 0) },
			"DeleteConversation": func() error { return e.store.DeleteConversation(ctx, conv.ID) },
			"CreateSession": func() error {
				_, _, err := e.store.CreateSession(ctx, agentID, time.Hour)
				return err
			},
			"Authenticate": func() error {
				_, err := e.store.Authenticate(ctx, "a@example.com", testPassword)
				return err
			},
			"ListConversations": func() error {
				_, err := e.store.ListConversations(ctx, inbox.ListQuery{AgentID: agentID})
				return err
			},
			"ReplyChannel": func() error {
				_, err := e.store.ReplyChannel(ctx, conv.ID, "auto")
				return err
			},
			"CreateAgent": func() error {
				_, err := e.store.CreateAgent(ctx, inbox.NewAgent{Email: "new@example.com", Name: "New", Password: testPassword})
				return err
			},
		} {
			start := time.Now()
			err := call()
			if !errors.Is(err, inbox.ErrUnavailable) {
				t.Errorf("%s during the outage = %T %v, want inbox.ErrUnavailable", name, err, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s during the outage took %v", name, d)
			}
		}

		proxy.restore()
		// The bus (PostgreSQL) listens again after its backoff and
		// catches up before the node is ready.
		inboxtest.Eventually(t, "ready after the outage", func() bool { return c.do("GET", "/readyz", nil).code == http.StatusOK })
		var page inbox.MessagePage
		c.do("GET", messages, nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 1 || page.Messages[0].Text != "before" {
			t.Fatalf("messages after the outage = %+v, want only the one before", page.Messages)
		}
		item, err := e.store.ConversationItem(context.Background(), conv.ID, 0)
		if err != nil || len(item.Participants) != 0 {
			t.Fatalf("participants after the outage = %+v, %v; want none", item.Participants, err)
		}
		c.do("POST", messages, map[string]string{"text": "after", "client_id": "d-1"}).want(http.StatusCreated)
		c.do("POST", "/api/v1/conversations/"+itoa64(conv.ID)+"/join", nil).want(http.StatusOK)
	})
}

// TestDatabaseStall is the outage where packets are dropped rather than
// refused: requests on pooled connections must not wait for ever.
func TestDatabaseStall(t *testing.T) {
	postgresOnly(t, func(t *testing.T, url string) {
		defer func(d time.Duration) { apiTimeout = d }(apiTimeout)
		apiTimeout = time.Second
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatalf("url.Parse() = %v", err)
		}
		proxy := newCutProxy(t, u.Host)
		u.Host = proxy.ln.Addr().String()
		e := newEnvStore(t, inboxtest.Open(t, u.String(), nil), nil)
		e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		c := e.login("a@example.com")
		messages := "/api/v1/conversations/" + itoa64(conv.ID) + "/messages"
		v := e.startVisitor("Vera")
		vs, _ := v.connect(0)

		proxy.stall()
		// A visitor's message waits for its commit with the socket paused:
		// the socket must answer within the job timeout (apiTimeout here)
		// and serve the visitor's next frame.
		start := time.Now()
		vs.send(t, map[string]any{"type": "message", "client_id": "v-1", "text": "during the stall"})
		for {
			// Events that could not be read are reported too; the
			// message's own answer carries its client id.
			f := vs.find(t, "error")
			if f.ClientID == "" {
				continue
			}
			if f.Code != "unavailable" || f.ClientID != "v-1" {
				t.Fatalf("answer to a message while the database stalled = %s, want an unavailable error for v-1", f)
			}
			break
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the visitor's message was answered after %v while the database stalled", d)
		}
		vs.send(t, map[string]any{"type": "ping"})
		vs.find(t, "pong")
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/conversations", nil},
			{"GET", messages, nil},
			{"POST", messages, map[string]string{"text": "during", "client_id": "s-1"}},
			{"GET", "/readyz", nil},
		} {
			start := time.Now()
			c.do(req.method, req.path, req.body).want(http.StatusServiceUnavailable)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s %s took %v while the database stalled", req.method, req.path, d)
			}
		}

		proxy.restore()
		// The bus (PostgreSQL) listens again after its backoff and
		// catches up before the node is ready.
		inboxtest.Eventually(t, "ready after the outage", func() bool { return c.do("GET", "/readyz", nil).code == http.StatusOK })
		var page inbox.MessagePage
		c.do("GET", messages, nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 0 {
			t.Fatalf("messages after the stall = %+v, want none", page.Messages)
		}
		c.do("POST", messages, map[string]string{"text": "after", "client_id": "s-1"}).want(http.StatusCreated)
	})
}

// postgresOnly runs fn on a fresh PostgreSQL schema alone: the outage is
// a cut TCP proxy, and SQLite has no connection to cut.
func postgresOnly(t *testing.T, fn func(t *testing.T, url string)) {
	fn(t, inboxtest.PostgresURL(t))
}
