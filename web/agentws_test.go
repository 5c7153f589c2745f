package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// wsEnv is a server with one agent, one contact and one conversation.
type wsEnv struct {
	srv    *Server
	ts     *httptest.Server
	store  *inbox.Store
	agent  inbox.Agent
	cookie string
	conv   inbox.Conversation
}

func newWSEnv(t *testing.T, url string) *wsEnv {
	t.Helper()
	e := newEnv(t, url, nil)
	agent := e.agent("ws@example.com", inbox.RoleAgent)
	token, _, err := e.store.CreateSession(context.Background(), agent.ID, time.Hour)
	if err != nil {
		t.Fatalf("CreateSession() = %v", err)
	}
	return &wsEnv{srv: e.srv, ts: e.ts, store: e.store, agent: agent,
		cookie: e.cfg.Session.CookieName + "=" + token, conv: e.conversation("Vic", "")}
}

// wsClient is a real WebSocket client that collects frames.
type wsClient struct {
	conn   *gws.Conn
	frames chan agentFrame
	closed chan error
}

type wsClientEvents struct{ c *wsClient }

func (wsClientEvents) OnOpen(*gws.Conn)                 {}
func (h wsClientEvents) OnClose(_ *gws.Conn, err error) { h.c.closed <- err }
func (wsClientEvents) OnPing(c *gws.Conn, p []byte)     { c.WritePong(p) }
func (wsClientEvents) OnPong(*gws.Conn, []byte)         {}
func (h wsClientEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	var f agentFrame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		f = agentFrame{Type: "undecodable", Error: m.Data.String()}
	}
	m.Close()
	h.c.frames <- f
}

func (e *wsEnv) dial(t *testing.T, header http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	c := &wsClient{frames: make(chan agentFrame, 1000), closed: make(chan error, 1)}
	if header == nil {
		header = http.Header{"Cookie": {e.cookie}}
	}
	conn, resp, err := gws.NewClient(wsClientEvents{c}, &gws.ClientOption{
		Addr:          "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws",
		RequestHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { conn.WriteClose(1000, nil) })
	return c, resp, nil
}

func (c *wsClient) next(t *testing.T) agentFrame {
	t.Helper()
	select {
	case f := <-c.frames:
		return f
	case err := <-c.closed:
		t.Fatalf("socket closed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame within 5 s")
	}
	return agentFrame{}
}

func (c *wsClient) send(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		t.Fatalf("WriteMessage() = %v", err)
	}
}

// closeCode waits for the server to close the socket and returns the code.
func (c *wsClient) closeCode(t *testing.T) uint16 {
	t.Helper()
	select {
	case err := <-c.closed:
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("closed with %v, want a close frame", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("socket not closed within 5 s")
	}
	return 0
}

func TestAgentSocketStreamsAndResumes(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newWSEnv(t, url)
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if f := c.next(t); f.Type != "hello" || f.Agent == nil || f.Agent.ID != e.agent.ID {
			t.Fatalf("first frame = %+v, want hello with the agent", f)
		}
		if _, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: e.conv.ID, Author: inbox.AuthorContact, Text: "hi"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		if err := e.store.Join(ctx, e.conv.ID, e.agent.ID); err != nil {
			t.Fatalf("Join() = %v", err)
		}
		for _, want := range []struct {
			seq int64
			typ string
		}{{2, inbox.EventMessageAdded}, {3, inbox.EventJoined}} {
			f := c.next(t)
			if f.Type != "event" || f.Event.Seq != want.seq || f.Event.Type != want.typ || f.Event.ConversationID != e.conv.ID {
				t.Fatalf("frame = %+v, want event %d %s", f, want.seq, want.typ)
			}
		}
		c.conn.WriteClose(1000, nil)

		// While disconnected: three more changes.
		for _, text := range []string{"are you there?", "hello?"} {
			e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: e.conv.ID, Author: inbox.AuthorContact, Text: text})
		}
		e.store.MarkRead(ctx, e.conv.ID, e.agent.ID, 0)

		c2, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("redial: %v", err)
		}
		c2.next(t) // hello
		c2.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): 3}})
		for _, want := range []int64{4, 5, 6} {
			if f := c2.next(t); f.Type != "event" || f.Event.Seq != want {
				t.Fatalf("resumed frame = %+v, want seq %d", f, want)
			}
		}
		// A live event after the resume comes once, in order.
		e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: e.conv.ID, Author: inbox.AuthorContact, Text: "thanks"})
		if f := c2.next(t); f.Type != "event" || f.Event.Seq != 7 {
			t.Fatalf("live frame = %+v, want seq 7", f)
		}
		// A cursor whose events are gone, and one of an unknown
		// conversation: resync.
		e.store.PruneEvents(ctx, time.Now().Add(time.Hour))
		c2.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): 1}})
		if f := c2.next(t); f.Type != "resync" || f.ConversationID != e.conv.ID {
			t.Fatalf("frame = %+v, want resync", f)
		}
		c2.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{"999999": 0}})
		if f := c2.next(t); f.Type != "resync" || f.ConversationID != 999999 {
			t.Fatalf("frame = %+v, want resync of the unknown conversation", f)
		}
		select {
		case f := <-c2.frames:
			t.Fatalf("unexpected frame %+v", f)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

func TestAgentSocketRefusals(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	if _, resp, err := e.dial(t, http.Header{}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without session = %v, %v; want 401", resp, err)
	}
	header := http.Header{"Cookie": {e.cookie}, "Origin": {"https://evil.example"}}
	if _, resp, err := e.dial(t, header); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial from another origin = %v, %v; want 403", resp, err)
	}
	header = http.Header{"Cookie": {e.cookie}, "Origin": {e.ts.URL}}
	c, _, err := e.dial(t, header)
	if err != nil {
		t.Fatalf("dial from the same origin: %v", err)
	}
	c.next(t)
}

func TestAgentSocketBadFrames(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	c, _, err := e.dial(t, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.next(t) // hello
	for _, raw := range []string{"{not json", `{"type":"launch"}`, `{"type":"resume","cursors":{"abc":1}}`, `[1,2]`} {
		c.conn.WriteMessage(gws.OpcodeText, []byte(raw))
		if f := c.next(t); f.Type != "error" || f.Error == "" {
			t.Fatalf("answer to %s = %+v, want an error frame", raw, f)
		}
	}
	c.send(t, agentCommand{Type: "ping"})
	if f := c.next(t); f.Type != "pong" {
		t.Fatalf("answer to ping = %+v, the socket should still serve", f)
	}
	c.conn.WriteMessage(gws.OpcodeBinary, []byte{1, 2, 3})
	if code := c.closeCode(t); code != 1003 {
		t.Fatalf("close code after a binary frame = %d, want 1003", code)
	}

	// Invalid UTF-8 in a text frame is refused by the protocol layer.
	c, _, _ = e.dial(t, nil)
	c.next(t)
	c.conn.WriteMessage(gws.OpcodeText, []byte("{\"type\":\"\xff\"}"))
	if code := c.closeCode(t); code != 1007 {
		t.Fatalf("close code after invalid UTF-8 = %d, want 1007", code)
	}

	// An oversized frame.
	c, _, _ = e.dial(t, nil)
	c.next(t)
	c.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"`+strings.Repeat("x", agentMaxFrame)+`"}`))
	if code := c.closeCode(t); code != 1009 {
		t.Fatalf("close code after an oversized frame = %d, want 1009", code)
	}

	// A flood of frames is cut off, and the server keeps serving others.
	flood, _, _ := e.dial(t, nil)
	flood.next(t)
	other, _, _ := e.dial(t, nil)
	other.next(t)
	go func() {
		for range 20000 {
			if flood.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"resume","cursors":{"1":0}}`)) != nil {
				return
			}
		}
	}()
	// The server sends 1008 and closes at once; with the flood's frames
	// still unread, the client's kernel may see a reset before it reads
	// the close frame. Either way the connection must end.
	select {
	case err := <-flood.closed:
		var ce *gws.CloseError
		if errors.As(err, &ce) && ce.Code != 1008 {
			t.Fatalf("close code after a flood = %d, want 1008", ce.Code)
		}
		if !errors.As(err, &ce) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("flood connection ended with %v, want 1008 or a reset", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("flood connection not closed within 5 s")
	}
	other.send(t, agentCommand{Type: "ping"})
	if f := other.next(t); f.Type != "pong" {
		t.Fatalf("other socket after the flood = %+v", f)
	}
}

func TestShutdownClosesSocketsGoingAway(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	c, _, err := e.dial(t, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
	if code := c.closeCode(t); code != 1001 {
		t.Fatalf("close code = %d, want 1001 going away", code)
	}
	if _, resp, err := e.dial(t, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown = %v, %v; want 503", resp, err)
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
