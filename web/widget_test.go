package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// visitor is a widget: its token, and an HTTP client that sends it.
type visitor struct {
	*client
	token string
	start startAnswer
}

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// startVisitor presses Start Chat.
func (e *env) startVisitor(name string) *visitor {
	e.t.Helper()
	c := e.client()
	c.header.Set("User-Agent", chromeUA)
	r := c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": name,
		"pages": []map[string]string{{"url": "https://shop.example/", "title": "Shop"}}})
	r.want(http.StatusCreated)
	v := &visitor{client: c}
	r.decode(&v.start)
	v.token = v.start.Token
	c.header.Set("Authorization", "Bearer "+v.token)
	return v
}

// storedOnline waits until the visitor is stored online, after their
// socket connected: an agent reply before that is queued (rule 5) and
// delivered when the presence writer catches up, an event of its own
// among the test's.
func (v *visitor) storedOnline(t *testing.T) {
	t.Helper()
	waitFor(t, "the visitor stored online", func() bool {
		ct, err := v.e.store.Contact(context.Background(), v.start.Contact.ID)
		return err == nil && ct.Online
	})
}

// vframe is any frame of the visitors' socket.
type vframe struct {
	Type         string         `json:"type"`
	Contact      *inbox.Contact `json:"contact"`
	Conversation *struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Seq    int64  `json:"seq"`
	} `json:"conversation"`
	Agents     []webchat.Agent `json:"agents"`
	Event      *inbox.Event    `json:"event"`
	ClientID   string          `json:"client_id"`
	Message    *inbox.Message  `json:"message"`
	AgentID    int64           `json:"agent_id"`
	Name       string          `json:"name"`
	Typing     bool            `json:"typing"`
	Presence   string          `json:"presence"`
	Code       string          `json:"code"`
	Error      string          `json:"error"`
	RetryAfter int             `json:"retry_after"`
	raw        string
}

func (f vframe) String() string { return f.raw }

// vsock is a widget's WebSocket.
type vsock struct {
	conn   *gws.Conn
	frames chan vframe
	closed chan error
}

type vsockEvents struct{ s *vsock }

func (vsockEvents) OnOpen(*gws.Conn)                 {}
func (h vsockEvents) OnClose(_ *gws.Conn, err error) { h.s.closed <- err }
func (vsockEvents) OnPing(c *gws.Conn, p []byte)     { c.WritePong(p) }
func (vsockEvents) OnPong(*gws.Conn, []byte)         {}
func (h vsockEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	f := vframe{raw: m.Data.String()}
	json.Unmarshal(m.Bytes(), &f)
	m.Close()
	h.s.frames <- f
}

func (e *env) dialWidget(header http.Header) (*vsock, *http.Response, error) {
	s := &vsock{frames: make(chan vframe, 1000), closed: make(chan error, 1)}
	conn, resp, err := gws.NewClient(vsockEvents{s}, &gws.ClientOption{
		Addr:          "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/widget/ws",
		RequestHeader: header,
	})
	if err != nil {
		return nil, resp, err
	}
	s.conn = conn
	go conn.ReadLoop()
	e.t.Cleanup(func() { conn.WriteClose(1000, nil) })
	return s, resp, nil
}

// connect opens the visitor's socket, authenticates from lastSeq of its
// conversation, as the widget does, and returns the hello.
func (v *visitor) connect(lastSeq int64) (*vsock, vframe) {
	v.e.t.Helper()
	return v.connectAuth(map[string]any{"type": "auth", "token": v.token, "last_seq": lastSeq, "conversation_id": v.start.Conversation.ID})
}

// connectUnnamed is connect without the conversation's id, as a widget
// that has not seen it sends.
func (v *visitor) connectUnnamed(lastSeq int64) (*vsock, vframe) {
	v.e.t.Helper()
	return v.connectAuth(map[string]any{"type": "auth", "token": v.token, "last_seq": lastSeq})
}

func (v *visitor) connectAuth(auth map[string]any) (*vsock, vframe) {
	v.e.t.Helper()
	s, _, err := v.e.dialWidget(http.Header{"User-Agent": {chromeUA}})
	if err != nil {
		v.e.t.Fatalf("dial widget socket: %v", err)
	}
	s.send(v.e.t, auth)
	hello := s.next(v.e.t)
	if hello.Type != "hello" || hello.Contact == nil || hello.Contact.ID != v.start.Contact.ID {
		v.e.t.Fatalf("first frame = %s, want hello", hello)
	}
	return s, hello
}

func (s *vsock) send(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := s.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		t.Fatalf("WriteMessage() = %v", err)
	}
}

// trySend sends a frame to a socket the server may have closed already.
func (s *vsock) trySend(v any) {
	b, _ := json.Marshal(v)
	_ = s.conn.WriteMessage(gws.OpcodeText, b)
}

func (s *vsock) next(t *testing.T) vframe {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case err := <-s.closed:
		t.Fatalf("socket closed: %v", err)
	case <-time.After(frameWait):
		t.Fatalf("no frame within %v", frameWait)
	}
	return vframe{}
}

// nextOf returns the next frame of the given type, skipping presence
// frames, which come whenever agents come and go.
func (s *vsock) nextOf(t *testing.T, typ string) vframe {
	t.Helper()
	for {
		f := s.next(t)
		if f.Type == "presence" && typ != "presence" {
			continue
		}
		if f.Type != typ {
			t.Fatalf("frame = %s, want %s", f, typ)
		}
		return f
	}
}

// find returns the next frame of the given type, skipping all others.
func (s *vsock) find(t *testing.T, typ string) vframe {
	t.Helper()
	for {
		if f := s.next(t); f.Type == typ {
			return f
		}
	}
}

// event returns the next event frame, which must be of type typ.
func (s *vsock) event(t *testing.T, typ string) *inbox.Event {
	t.Helper()
	f := s.nextOf(t, "event")
	if f.Event == nil || f.Event.Type != typ {
		t.Fatalf("frame = %s, want event %s", f, typ)
	}
	return f.Event
}

// quiet fails if a frame other than presence comes before the pong to a
// ping sent now: the socket answers its frames and delivers its events
// in order, so whatever was due by now has come, however slow the
// machine.
func (s *vsock) quiet(t *testing.T) {
	t.Helper()
	s.send(t, map[string]any{"type": "ping"})
	for {
		switch f := s.next(t); f.Type {
		case "pong":
			return
		case "presence":
		default:
			t.Fatalf("unexpected frame %s", f)
		}
	}
}

func (s *vsock) closeCode(t *testing.T) uint16 {
	t.Helper()
	code, _ := s.closeReason(t)
	return code
}

// closeReason waits for the server's close frame and returns its code and
// reason, skipping frames before it.
func (s *vsock) closeReason(t *testing.T) (uint16, string) {
	t.Helper()
	deadline := time.After(frameWait)
	for {
		select {
		case <-s.frames:
		case err := <-s.closed:
			var ce *gws.CloseError
			if errors.As(err, &ce) {
				return ce.Code, string(ce.Reason)
			}
			t.Fatalf("closed with %v, want a close frame", err)
		case <-deadline:
			t.Fatalf("socket not closed within %v", frameWait)
		}
	}
}

// agentSock is an agent's dashboard socket in these tests.
func (e *env) agentSock(a inbox.Agent) *wsClient {
	e.t.Helper()
	token, _, err := e.store.CreateSession(context.Background(), a.ID, time.Hour)
	if err != nil {
		e.t.Fatalf("CreateSession() = %v", err)
	}
	return e.agentSockWith(token)
}

// agentNext returns the agent socket's next frame of the given type,
// skipping the others.
func agentNext(t *testing.T, c *wsClient, typ string, match func(agentFrame) bool) agentFrame {
	t.Helper()
	deadline := time.After(frameWait)
	for {
		select {
		case f := <-c.frames:
			if f.Type == typ && (match == nil || match(f)) {
				return f
			}
		case <-deadline:
			t.Fatalf("agent socket: no %s frame within %v", typ, frameWait)
		}
	}
}

// waitFor polls cond for up to inboxtest.Patience.
var waitFor = inboxtest.Eventually

// multipartBody is a form with one file.
func multipartBody(t *testing.T, name string, data []byte) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	w.Close()
	return &b, w.FormDataContentType()
}

// upload posts a file; path is the widget's or an agent's.
func (c *client) upload(path, name string, data []byte) *result {
	c.e.t.Helper()
	body, ct := multipartBody(c.e.t, name, data)
	req, _ := http.NewRequest("POST", c.e.ts.URL+path, body)
	req.Header.Set("Content-Type", ct)
	return c.send(req)
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")

func fmtIDs(ids []int64) string { return fmt.Sprint(ids) }

func noError(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v", what, err)
	}
}
