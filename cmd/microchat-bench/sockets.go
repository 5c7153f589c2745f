package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// helloTimeout bounds how long a socket waits for its hello after the
// handshake; the widget's auth frame must come within 10 s too.
const helloTimeout = 10 * time.Second

// dialWS opens a WebSocket to path on the node at dialHost (host being
// its name for the Host header) from src, with handler receiving its
// frames. The caller starts the read loop.
func dialWS(ctx context.Context, dialHost, host string, src netip.Addr, path string, header http.Header, handler gws.Event, readBuf int) (*gws.Conn, string, error) {
	if header == nil {
		header = http.Header{}
	}
	header.Set("User-Agent", userAgent)
	conn, err := dialerFrom(src).DialContext(ctx, "tcp", dialHost)
	if err != nil {
		return nil, "dial: " + errKind(err), err
	}
	socket, resp, err := gws.NewClientFromConn(handler, &gws.ClientOption{
		Addr:               "ws://" + host + path,
		RequestHeader:      header,
		ReadBufferSize:     readBuf,
		ReadMaxPayloadSize: 1 << 20,
		HandshakeTimeout:   10 * time.Second,
	}, conn)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Sprintf("handshake: HTTP %d", resp.StatusCode), err
		}
		return nil, "handshake: " + errKind(err), err
	}
	return socket, "", nil
}

// closeKind names why the server closed a socket.
func closeKind(err error) string {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d %s", ce.Code, strings.TrimSpace(string(ce.Reason)))
	}
	return errKind(err)
}

// visitor is one visitor's widget socket. It implements gws.Event; its
// callbacks run in the socket's read loop. With -storm it reconnects after
// a drop and resumes from the last seq it received, as the widget does.
type visitor struct {
	b     *bench
	idx   int
	start visitorStart
	// owner is the index of the agent who joined the conversation, or -1
	// when it is not active.
	owner int
	// conn is the current socket (replaced by a reconnect).
	conn atomic.Pointer[gws.Conn]
	// src is the source address its sockets are dialled from.
	src netip.Addr
	// ready gets nil at hello, or why there will be none.
	ready   chan error
	helloed atomic.Bool
	open    atomic.Bool
	// lastSeq is the highest seq of the events received (what a reconnect
	// resumes from); authSeq the last_seq of the current socket's auth;
	// attemptAt when the current socket's dial started (clock).
	lastSeq, authSeq, attemptAt atomic.Int64
	// resuming is set from a drop (under -storm) until the visitor is
	// back or gave up.
	resuming atomic.Bool
	// unacked holds (under -storm) the message frames sent and not yet
	// acknowledged, by client id: the widget's outbox, sent again after a
	// reconnect's hello (the server stores a client id once).
	mu      sync.Mutex
	unacked map[string][]byte
}

// keep holds frame, the message with client id id, until its ack.
func (v *visitor) keep(id string, frame []byte) {
	v.mu.Lock()
	if v.unacked == nil {
		v.unacked = map[string][]byte{}
	}
	v.unacked[id] = frame
	v.mu.Unlock()
}

// acked drops the message with client id id from the unacknowledged.
func (v *visitor) acked(id []byte) {
	v.mu.Lock()
	delete(v.unacked, string(id))
	v.mu.Unlock()
}

// resend sends the unacknowledged messages again on c, as the widget
// flushes its outbox after a reconnect.
func (v *visitor) resend(c *gws.Conn) {
	v.mu.Lock()
	frames := make([][]byte, 0, len(v.unacked))
	for _, f := range v.unacked {
		frames = append(frames, f)
	}
	v.mu.Unlock()
	for _, f := range frames {
		if err := c.WriteMessage(gws.OpcodeText, f); err != nil {
			v.b.errs.add("visitor resend: " + errKind(err))
			return
		}
		v.b.storm.resent.Add(1)
	}
}

// socket is the visitor's current socket.
func (v *visitor) socket() *gws.Conn { return v.conn.Load() }

// connect opens the visitor's socket from src, authenticates with the
// last seq it holds and waits for hello. It returns the error kind on
// failure.
func (v *visitor) connect(ctx context.Context, src netip.Addr) (string, error) {
	return v.connectWithin(ctx, src, helloTimeout)
}

// connectWithin is connect waiting up to wait for the hello. A reconnect
// waits longer than a first connect: a node that just started may take
// long to answer thousands of auths, and a widget waits for its hello as
// long as its socket is open.
func (v *visitor) connectWithin(ctx context.Context, src netip.Addr, wait time.Duration) (string, error) {
	v.ready = make(chan error, 1)
	v.src = src
	v.helloed.Store(false)
	v.attemptAt.Store(clock())
	var h http.Header
	if v.b.o.Origin != "" {
		h = http.Header{"Origin": {v.b.o.Origin}}
	}
	socket, kind, err := dialWS(ctx, v.b.dialHost, v.b.host, src, "/api/v1/widget/ws", h, v, 1024)
	if err != nil {
		return "visitor " + kind, err
	}
	if v.open.CompareAndSwap(true, false) {
		v.b.openVisitors.Add(-1) // the abandoned attempt's, whose close is ignored once this one is current
	}
	v.conn.Store(socket)
	v.open.Store(true)
	v.b.openVisitors.Add(1)
	go socket.ReadLoop()
	last := v.lastSeq.Load()
	v.authSeq.Store(last)
	// As the widget does, it names the conversation it resumes.
	auth := `{"type":"auth","token":"` + v.start.Token + `","last_seq":` + strconv.FormatInt(last, 10) +
		`,"conversation_id":` + strconv.FormatInt(v.start.Conversation.ID, 10) + `}`
	if err := socket.WriteString(auth); err != nil {
		return "visitor auth: " + errKind(err), err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-v.ready:
		if err != nil {
			return "visitor hello: " + err.Error(), err
		}
		return "", nil
	case <-t.C:
		return "visitor hello: timeout", errors.New("no hello within " + wait.String())
	case <-ctx.Done():
		return "visitor hello: cancelled", ctx.Err()
	}
}

// abandon closes the socket of a failed connect, if it got one.
func (v *visitor) abandon() {
	if c := v.socket(); c != nil {
		c.NetConn().Close()
	}
}

func (v *visitor) OnOpen(*gws.Conn) {}

func (v *visitor) OnClose(c *gws.Conn, err error) {
	if c != v.socket() {
		return // an abandoned attempt's socket, closed after the next one opened
	}
	if v.open.CompareAndSwap(true, false) {
		v.b.openVisitors.Add(-1)
	}
	if !v.helloed.Load() {
		select {
		case v.ready <- errors.New(closeKind(err)):
		default:
		}
		return
	}
	if v.b.closing.Load() {
		return
	}
	if st := v.b.storm; st != nil && st.restarting.Load() {
		st.drop(v, closeKind(err))
		return
	}
	v.b.errs.add("visitor socket closed by the server: " + closeKind(err))
}

func (v *visitor) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

func (v *visitor) OnPong(*gws.Conn, []byte) {}

func (v *visitor) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if c != v.socket() {
		return // an abandoned attempt's socket
	}
	f := m.Bytes()
	switch frameType(f) {
	case "hello":
		if v.helloed.CompareAndSwap(false, true) {
			if st := v.b.storm; st != nil && v.resuming.Load() {
				st.resumed(v)
				v.resend(c)
			}
			v.ready <- nil
		}
	case "event":
		_, sent, ok := findMarker(f, 'a')
		if ok {
			v.b.received(&v.b.a2v, &v.b.recvA2V, sent)
		}
		if st := v.b.storm; st != nil {
			if seq, found := jsonInt(f, "seq"); found && seq > 0 {
				if ok && bytes.Contains(f, messageAdded) {
					st.received(v, seq)
				}
				if seq > v.lastSeq.Load() {
					v.lastSeq.Store(seq)
				}
			}
		}
	case "ack":
		if _, sent, ok := findMarker(f, 'v'); ok {
			v.b.received(&v.b.ack, nil, sent)
			v.b.ackedAll.Add(1)
		}
		if v.b.storm != nil {
			v.acked(jsonString(f, "client_id"))
		}
	case "error":
		kind := "visitor error frame: " + string(jsonString(f, "code"))
		if !v.helloed.Load() {
			select {
			case v.ready <- errors.New("error frame " + string(jsonString(f, "code"))):
			default:
			}
		}
		v.b.errs.add(kind)
	case "resync":
		v.b.errs.add("visitor resync")
		if st := v.b.storm; st != nil {
			st.resyncs.Add(1)
		}
	}
}

// messageAdded marks an event frame of a stored message.
var messageAdded = []byte(`"type":"message_added"`)

// agentErrorKind names an error frame of an agent's socket in the error
// counts: a refused reply by its status, as an HTTP error is.
func agentErrorKind(f []byte) string {
	var e struct {
		ClientID string `json:"client_id"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
	}
	json.Unmarshal(f, &e) // errors are few: decode them whole
	if len(e.Error) > 60 {
		e.Error = e.Error[:60] + "..."
	}
	if e.ClientID != "" || e.Status != 0 {
		return fmt.Sprintf("agent reply: error frame %d %s", e.Status, e.Error)
	}
	return "agent error frame: " + e.Error
}

// agent is one agent's socket; it implements gws.Event.
type agent struct {
	b       *bench
	idx     int
	login   agentLogin
	conn    *gws.Conn
	ready   chan error
	helloed atomic.Bool
	open    atomic.Bool
}

func (a *agent) connect(ctx context.Context, src netip.Addr) (string, error) {
	a.ready = make(chan error, 1)
	h := http.Header{"Cookie": {a.login.Cookie}}
	socket, kind, err := dialWS(ctx, a.b.agentDialHost, a.b.agentHost, src, "/api/v1/ws", h, a, 4096)
	if err != nil {
		return "agent " + kind, err
	}
	a.conn = socket
	a.open.Store(true)
	go socket.ReadLoop()
	t := time.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case err := <-a.ready:
		if err != nil {
			return "agent hello: " + err.Error(), err
		}
		return "", nil
	case <-t.C:
		return "agent hello: timeout", errors.New("no hello within " + helloTimeout.String())
	case <-ctx.Done():
		return "agent hello: cancelled", ctx.Err()
	}
}

func (a *agent) OnOpen(*gws.Conn) {}

func (a *agent) OnClose(_ *gws.Conn, err error) {
	a.open.Store(false)
	if !a.helloed.Load() {
		select {
		case a.ready <- errors.New(closeKind(err)):
		default:
		}
		return
	}
	if !a.b.closing.Load() {
		a.b.errs.add("agent socket closed by the server: " + closeKind(err))
	}
}

func (a *agent) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

func (a *agent) OnPong(*gws.Conn, []byte) {}

func (a *agent) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	f := m.Bytes()
	switch frameType(f) {
	case "hello":
		if a.helloed.CompareAndSwap(false, true) {
			a.ready <- nil
		}
	case "event":
		// Every agent socket gets every event; the conversation's owner
		// measures.
		if owner, sent, ok := findMarker(f, 'v'); ok && owner == a.idx {
			a.b.received(&a.b.v2a, &a.b.recvV2A, sent)
		}
	case "ack":
		// A reply's, on the socket that sent it: its text is the reply's.
		if _, sent, ok := findMarker(f, 'a'); ok {
			a.b.received(&a.b.reply, &a.b.replyAcks, sent)
			a.b.ackedAll.Add(1)
			if st := a.b.storm; st != nil {
				conv, ok1 := jsonInt(f, "conversation_id")
				seq, ok2 := jsonInt(f, "seq")
				if ok1 && ok2 {
					st.stored(conv, seq)
				}
			}
		}
	case "error":
		a.b.errs.add(agentErrorKind(f))
	case "resync":
		a.b.errs.add("agent resync")
	}
}
