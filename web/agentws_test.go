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

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// wsEnv is a server with one agent, one contact and one conversation.
type wsEnv struct {
	env    *env
	srv    *Server
	ts     *httptest.Server
	store  *inbox.Store
	agent  inbox.Agent
	cookie string
	csrf   string // the session's
	conv   inbox.Conversation
}

func newWSEnv(t *testing.T, url string) *wsEnv {
	t.Helper()
	e := newEnv(t, url, nil)
	agent := e.agent("ws@example.com", inbox.RoleAgent)
	token, sess, err := e.store.CreateSession(context.Background(), agent.ID, time.Hour)
	if err != nil {
		t.Fatalf("CreateSession() = %v", err)
	}
	return &wsEnv{env: e, srv: e.srv, ts: e.ts, store: e.store, agent: agent,
		cookie: e.cfg.Session.CookieName + "=" + token, csrf: sess.CSRFToken, conv: e.conversation("Vic", "")}
}

// wsClient is a real WebSocket client that collects frames.
type wsClient struct {
	conn   *gws.Conn
	frames chan agentFrame
	closed chan error
	// pings counts the server's pings, up to its buffer.
	pings chan struct{}
}

type wsClientEvents struct{ c *wsClient }

func (wsClientEvents) OnOpen(*gws.Conn)                 {}
func (h wsClientEvents) OnClose(_ *gws.Conn, err error) { h.c.closed <- err }
func (h wsClientEvents) OnPing(c *gws.Conn, p []byte) {
	c.WritePong(p)
	select {
	case h.c.pings <- struct{}{}:
	default:
	}
}
func (wsClientEvents) OnPong(*gws.Conn, []byte) {}
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
	return e.dialPath(t, header, "/api/v1/ws")
}

// dialPath is dial to path, which may have a query.
func (e *wsEnv) dialPath(t *testing.T, header http.Header, path string) (*wsClient, *http.Response, error) {
	t.Helper()
	c := &wsClient{frames: make(chan agentFrame, 1000), closed: make(chan error, 1), pings: make(chan struct{}, 10)}
	if header == nil {
		header = http.Header{"Cookie": {e.cookie}}
	}
	conn, resp, err := gws.NewClient(wsClientEvents{c}, &gws.ClientOption{
		Addr:          "ws" + strings.TrimPrefix(e.ts.URL, "http") + path,
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
	case <-time.After(frameWait):
		t.Fatalf("no frame within %v", frameWait)
	}
	return agentFrame{}
}

// hello reads the first frame, which must be the hello with the agent.
func (c *wsClient) hello(t *testing.T) agentFrame {
	t.Helper()
	f := c.next(t)
	if f.Type != "hello" || f.Agent == nil || f.Agent.ID == 0 {
		t.Fatalf("first frame = %+v, want hello with the agent", f)
	}
	return f
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
	case <-time.After(frameWait):
		t.Fatalf("socket not closed within %v", frameWait)
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
			_, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: e.conv.ID, Author: inbox.AuthorContact, Text: text})
			noError(t, "AddMessage()", err)
		}
		noError(t, "MarkRead()", e.store.MarkRead(ctx, e.conv.ID, e.agent.ID, 0))

		c2, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("redial: %v", err)
		}
		c2.hello(t)
		c2.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): 3}})
		for _, want := range []int64{4, 5, 6} {
			if f := c2.next(t); f.Type != "event" || f.Event.Seq != want {
				t.Fatalf("resumed frame = %+v, want seq %d", f, want)
			}
		}
		// A live event after the resume comes once, in order.
		_, _, err = e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: e.conv.ID, Author: inbox.AuthorContact, Text: "thanks"})
		noError(t, "AddMessage()", err)
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
		// Nothing more: the next frame answers a ping sent after them.
		c2.send(t, agentCommand{Type: "ping"})
		if f := c2.next(t); f.Type != "pong" {
			t.Fatalf("unexpected frame %+v, want the pong", f)
		}
	})
}

func TestAgentSocketRefusals(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	if _, resp, err := e.dial(t, http.Header{}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without session = %v, %v; want 401", resp, err)
	}
	// What a page on another site can make a browser send: the cookie
	// and its Origin, or Sec-Fetch-Site alone (security.go).
	for _, h := range crossSiteHeaders {
		header := http.Header{"Cookie": {e.cookie}}
		for k, v := range h {
			header[k] = v
		}
		if _, resp, err := e.dial(t, header); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial from another site (%v) = %v, %v; want 403", h, resp, err)
		}
	}
	header := http.Header{"Cookie": {e.cookie}, "Origin": {e.ts.URL}, "Sec-Fetch-Site": {"same-origin"}}
	c, _, err := e.dial(t, header)
	if err != nil {
		t.Fatalf("dial from the same origin: %v", err)
	}
	c.hello(t)
}

func TestAgentSocketBadFrames(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	c, _, err := e.dial(t, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.hello(t)
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
	c.hello(t)
	c.conn.WriteMessage(gws.OpcodeText, []byte("{\"type\":\"\xff\"}"))
	if code := c.closeCode(t); code != 1007 {
		t.Fatalf("close code after invalid UTF-8 = %d, want 1007", code)
	}

	// An oversized frame.
	c, _, _ = e.dial(t, nil)
	c.hello(t)
	c.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"`+strings.Repeat("x", agentMaxFrame)+`"}`))
	if code := c.closeCode(t); code != 1009 {
		t.Fatalf("close code after an oversized frame = %d, want 1009", code)
	}

	// A flood of frames that each read the database is read as fast as
	// they are answered (push-back), not cut off: every one is answered,
	// and the server keeps serving others.
	flood, _, _ := e.dial(t, nil)
	flood.hello(t)
	other, _, _ := e.dial(t, nil)
	other.hello(t)
	go func() {
		for range 2000 {
			if flood.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"resume","cursors":{"`+itoa(e.conv.ID)+`":0}}`)) != nil {
				return
			}
		}
		flood.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"ping"}`))
	}()
	for done := false; !done; {
		select {
		case f := <-flood.frames:
			done = f.Type == "pong"
		case err := <-flood.closed:
			t.Fatalf("flood connection closed: %v", err)
		case <-time.After(frameWait):
			t.Fatalf("no pong after the flood within %v", frameWait)
		}
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
	c.hello(t)
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

// answer returns the ack or error frame of the message frame with
// clientID, and the message_added events that came before it.
func (c *wsClient) answer(t *testing.T, clientID string) (agentFrame, []*inbox.Event) {
	t.Helper()
	var evs []*inbox.Event
	for {
		f := c.next(t)
		switch {
		case (f.Type == "ack" || f.Type == "error") && f.ClientID == clientID:
			return f, evs
		case f.Type == "ack", f.Type == "error" && f.ClientID != "":
			t.Fatalf("answer %+v, want the one of %q", f, clientID)
		case f.Type == "error":
			t.Fatalf("error frame %+v", f)
		case f.Type == "event" && f.Event.Type == inbox.EventMessageAdded:
			evs = append(evs, f.Event)
		}
	}
}

// addedMessage is the message of a message_added event.
func addedMessage(t *testing.T, ev *inbox.Event) inbox.Message {
	t.Helper()
	var m inbox.MessageAdded
	if ev == nil || ev.Type != inbox.EventMessageAdded || ev.Decode(&m) != nil {
		t.Fatalf("event %+v, want message_added", ev)
	}
	return m.Message
}

// messageFrame is an agent's reply as a message frame.
func messageFrame(conversationID int64, clientID, text string) map[string]any {
	return map[string]any{"type": "message", "conversation_id": conversationID, "client_id": clientID, "text": text}
}

// A reply over the agent's socket is acked there and reaches the visitor,
// the other agents and the sender's own socket as an event; sent again
// with the same client id, it is acked again and stored once.
func TestAgentSocketReply(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newWSEnv(t, url)
		v := e.env.startVisitor("Vera")
		conv := v.start.Conversation.ID
		vs, _ := v.connect(0)
		vs.event(t, inbox.EventConversationCreated)
		// Stored online first, or the replies would be queued.
		v.storedOnline(t)
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		other := e.env.agentSock(e.env.agent("other@example.com", inbox.RoleAgent))

		c.send(t, messageFrame(conv, "r-1", "Hello from the socket"))
		ack, evs := c.answer(t, "r-1")
		if ack.Type != "ack" || ack.Message == nil || ack.Created == nil || !*ack.Created ||
			ack.Channel != inbox.ChannelChat || ack.Reason == "" {
			t.Fatalf("ack = %+v, want a new message on chat with a reason", ack)
		}
		m := *ack.Message
		if m.ID == 0 || m.ConversationID != conv || m.Author != inbox.AuthorAgent || m.AgentID == nil || *m.AgentID != e.agent.ID ||
			m.Text != "Hello from the socket" || m.ClientID == nil || *m.ClientID != "r-1" {
			t.Fatalf("acked message = %+v", m)
		}
		// The sender's own socket gets the event too, before or after the
		// ack.
		if len(evs) == 0 {
			evs = append(evs, agentNext(t, c, "event", nil).Event)
		}
		if got := addedMessage(t, evs[0]); got.ID != m.ID || got.Seq != m.Seq {
			t.Fatalf("sender's event = %+v, want message %d", got, m.ID)
		}
		f := agentNext(t, other, "event", nil)
		if got := addedMessage(t, f.Event); got.ID != m.ID {
			t.Fatalf("other agent's event = %+v, want message %d", got, m.ID)
		}
		if got := addedMessage(t, vs.event(t, inbox.EventMessageAdded)); got.ID != m.ID || got.Text != m.Text {
			t.Fatalf("visitor's event = %+v, want message %d", got, m.ID)
		}

		// The retry: the same message, not created, and no event.
		c.send(t, messageFrame(conv, "r-1", "Hello from the socket"))
		again, _ := c.answer(t, "r-1")
		if again.Type != "ack" || again.Message == nil || again.Message.ID != m.ID || again.Created == nil || *again.Created {
			t.Fatalf("ack of the retry = %+v, want message %d not created", again, m.ID)
		}
		c.send(t, messageFrame(conv, "r-2", "And another"))
		next, _ := c.answer(t, "r-2")
		if next.Type != "ack" || next.Message.Seq != m.Seq+1 {
			t.Fatalf("ack of the next reply = %+v, want seq %d", next, m.Seq+1)
		}
		// The other agent's next event is the next reply's: the retry had
		// none.
		f = agentNext(t, other, "event", nil)
		if got := addedMessage(t, f.Event); got.ID != next.Message.ID {
			t.Fatalf("other agent's next event = %+v, want message %d", got, next.Message.ID)
		}
		page, err := e.store.Messages(ctx, conv, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 2 {
			t.Fatalf("Messages() = %d messages, %v; want 2", len(page.Messages), err)
		}
	})
}

// A refused reply gets an error frame with its client id and the status,
// error and field the HTTP API answers for the same reply.
func TestAgentSocketReplyErrors(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newWSEnv(t, url)
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		hc := e.env.login("ws@example.com")
		long := strings.Repeat("x", 129)
		for _, tc := range []struct {
			name     string
			frame    string // raw, the socket's
			post     string // the same reply's POST body, if it has one
			postConv int64  // and its conversation, if not e.conv
			clientID string
			status   int
			field    string
		}{
			{name: "unknown conversation", frame: `{"type":"message","conversation_id":999999,"client_id":"e-1","text":"hi"}`,
				post: `{"client_id":"e-1","text":"hi"}`, postConv: 999999, clientID: "e-1", status: 404},
			{name: "empty text", frame: `{"type":"message","conversation_id":` + itoa(e.conv.ID) + `,"client_id":"e-2","text":"  "}`,
				post: `{"client_id":"e-2","text":"  "}`, clientID: "e-2", status: 400, field: "text"},
			{name: "text of the wrong type", frame: `{"type":"message","conversation_id":` + itoa(e.conv.ID) + `,"client_id":"e-3","text":5}`,
				post: `{"client_id":"e-3","text":5}`, clientID: "e-3", status: 400, field: "text"},
			{name: "email without a mailbox", frame: `{"type":"message","conversation_id":` + itoa(e.conv.ID) + `,"client_id":"e-4","text":"hi","channel":"email"}`,
				post: `{"client_id":"e-4","text":"hi","channel":"email"}`, clientID: "e-4", status: 400, field: "channel"},
			{name: "client id too long", frame: `{"type":"message","conversation_id":` + itoa(e.conv.ID) + `,"client_id":"` + long + `","text":"hi"}`,
				post: `{"client_id":"` + long + `","text":"hi"}`, clientID: long, status: 400, field: "client_id"},
			{name: "no client id", frame: `{"type":"message","conversation_id":` + itoa(e.conv.ID) + `,"text":"hi"}`,
				status: 400, field: "client_id"},
			{name: "no conversation", frame: `{"type":"message","client_id":"e-5","text":"hi"}`,
				clientID: "e-5", status: 400, field: "conversation_id"},
		} {
			c.conn.WriteMessage(gws.OpcodeText, []byte(tc.frame))
			f, _ := c.answer(t, tc.clientID)
			if f.Type != "error" || f.Status != tc.status || f.Field != tc.field || f.Error == "" {
				t.Fatalf("%s: answer %+v, want an error %d naming %q", tc.name, f, tc.status, tc.field)
			}
			if tc.post == "" {
				continue // the POST has no such case: its client id is optional, its conversation in the path
			}
			conv := e.conv.ID
			if tc.postConv != 0 {
				conv = tc.postConv
			}
			want := hc.do("POST", "/api/v1/conversations/"+itoa(conv)+"/messages", tc.post).want(tc.status).apiErr()
			if f.Error != want.Error || f.Field != want.Field {
				t.Fatalf("%s: error %q field %q; the POST answers %q field %q", tc.name, f.Error, f.Field, want.Error, want.Field)
			}
		}
		c.send(t, agentCommand{Type: "ping"})
		if f := c.next(t); f.Type != "pong" {
			t.Fatalf("answer to ping = %+v, the socket should still serve", f)
		}
	})
}

// More replies at once than a connection stores in parallel, and more
// than its command queue holds: the client is slowed, not dropped, and
// every reply is acked once.
func TestAgentSocketReplyBurst(t *testing.T) {
	e := newWSEnv(t, inboxtest.SQLiteURL(t))
	e.srv.replies = nil // no limit: the slots are tested here, not the rate
	c, _, err := e.dial(t, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.hello(t)
	// Spread over conversations: the replies to one are stored one after
	// the other, in order.
	convs := []int64{e.conv.ID}
	for i := range 15 {
		convs = append(convs, e.env.conversation("Burst "+strconv.Itoa(i), "").ID)
	}
	const n = 3 * agentMaxReplies
	for i := range n {
		c.send(t, messageFrame(convs[i%len(convs)], "b-"+strconv.Itoa(i), "burst "+strconv.Itoa(i)))
	}
	acked := map[string]int64{}
	ids := map[int64]bool{}
	for len(acked) < n {
		f := c.next(t)
		switch f.Type {
		case "event":
			continue
		case "ack":
		default:
			t.Fatalf("frame %+v, want acks", f)
		}
		if _, dup := acked[f.ClientID]; dup || ids[f.Message.ID] {
			t.Fatalf("ack %+v twice", f)
		}
		acked[f.ClientID] = f.Message.ID
		ids[f.Message.ID] = true
	}
	c.send(t, agentCommand{Type: "ping"})
	if f := agentNext(t, c, "pong", nil); f.Type != "pong" {
		t.Fatalf("answer to ping = %+v", f)
	}
}

// The session is read again at every ping: the socket of a session that
// lives stays open, and a logout closes it with 4401.
func TestAgentSocketSessionEnds(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		every := agentPingEvery
		agentPingEvery = 20 * time.Millisecond
		t.Cleanup(func() { agentPingEvery = every }) // after the server's cleanup
		e := newWSEnv(t, url)
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		for i := range 3 {
			select {
			case <-c.pings:
			case err := <-c.closed:
				t.Fatalf("socket closed after %d pings: %v", i, err)
			case <-time.After(frameWait):
				t.Fatalf("%d pings within %v, want 3", i, frameWait)
			}
		}
		c.send(t, agentCommand{Type: "ping"})
		if f := c.next(t); f.Type != "pong" {
			t.Fatalf("answer to ping = %+v", f)
		}

		cl := e.env.client()
		cl.header.Set("Cookie", e.cookie)
		cl.csrf = e.csrf
		cl.do("POST", "/api/v1/auth/logout", nil).want(http.StatusNoContent)
		if code := c.closeCode(t); code != closeSessionEnded {
			t.Fatalf("close code after the logout = %d, want %d", code, closeSessionEnded)
		}
	})
}

// FuzzParseAgentCommand feeds arbitrary frames to the socket's parser: it
// must never panic, and only a message frame carries a field error.
func FuzzParseAgentCommand(f *testing.F) {
	for _, seed := range []string{
		`{"type":"message","conversation_id":7,"client_id":"c1","text":"hi","channel":"auto","attachment_ids":[1,2]}`,
		`{"type":"message","text":5}`, `{"type":"message","attachment_ids":["x"]}`, `{"type":"message","conversation_id":"7"}`,
		`{"type":"resume","cursors":{"7":5}}`, `{"type":"bad-json"}`, `{"type":5}`, `[1]`, `{`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd := parseAgentCommand(b)
		var inv *inbox.InvalidError
		if cmd.bad != nil && (cmd.Type != "message" || !errors.As(cmd.bad, &inv) || inv.Field == "") {
			t.Fatalf("parseAgentCommand(%q) = %+v, want a field error on message frames only", b, cmd)
		}
	})
}
