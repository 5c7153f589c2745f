package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/inbox"
)

// The agents' WebSocket at /api/v1/ws streams the events of every
// conversation (docs/protocol.md). Each connection has two goroutines:
// gws's read loop, which only parses frames and hands commands over a
// channel, and run, which owns the connection's state (its Follower) and
// is the only one to write. Nothing else writes to the socket: events come
// from the hub's subscription, never from the handler that saved them.

// Frames from the server.
type agentFrame struct {
	Type           string       `json:"type"` // hello, event, resync, error, pong, typing, contact_presence
	Agent          *inbox.Agent `json:"agent,omitempty"`
	Event          *inbox.Event `json:"event,omitempty"`
	ConversationID int64        `json:"conversation_id,omitempty"`
	Error          string       `json:"error,omitempty"`
	// typing (the contact of ConversationID) and contact_presence.
	ContactID int64 `json:"contact_id,omitempty"`
	Typing    *bool `json:"typing,omitempty"`
	Online    *bool `json:"online,omitempty"`
}

// Frames from the client.
type agentCommand struct {
	Type string `json:"type"` // resume, ping, typing, presence
	// Cursors maps conversation ids to the last sequence number the client
	// has of each; resume sends what came after.
	Cursors map[string]int64 `json:"cursors,omitempty"`
	// typing: the agent is typing in ConversationID, or stopped.
	ConversationID int64 `json:"conversation_id,omitempty"`
	Typing         bool  `json:"typing,omitempty"`
	// presence: "online" or "idle", as the dashboard sees the agent.
	Presence string `json:"presence,omitempty"`
}

const (
	agentWriteTimeout = 10 * time.Second
	// agentPingEvery is how often the server pings; a connection that
	// sends nothing (not even a pong) for agentReadTimeout is dropped.
	agentPingEvery   = 30 * time.Second
	agentReadTimeout = 75 * time.Second
	agentMaxFrame    = 64 << 10
	// agentBacklog is how many events may wait for a slow agent before
	// it is told to resync.
	agentBacklog = 1024
)

var agentUpgrader = gws.NewUpgrader(agentEvents{}, &gws.ServerOption{
	ReadMaxPayloadSize: agentMaxFrame,
	ReadBufferSize:     4 << 10,
	CheckUtf8Enabled:   true,
	HandshakeTimeout:   10 * time.Second,
})

// agentConn is one agent's connection.
type agentConn struct {
	s        *Server
	conn     *gws.Conn
	agent    inbox.Agent
	log      *slog.Logger
	commands chan agentCommand
	closed   chan struct{}
	done     func()
	isClosed atomic.Bool
}

// agentSocket upgrades an agent's request to the WebSocket. Cookies go
// with cross-site WebSocket requests, so the Origin must be this server.
func (s *Server) agentSocket(c echo.Context) error {
	if !s.sameOrigin(c.Request()) {
		return echo.NewHTTPError(http.StatusForbidden, "cross-origin WebSocket refused")
	}
	agent := agentOf(c)
	ac := &agentConn{s: s, agent: agent, commands: make(chan agentCommand, 16), closed: make(chan struct{})}
	done, ok := s.trackSocket(func() {
		if ac.conn != nil {
			ac.conn.WriteClose(1001, []byte("server shutting down"))
		}
	})
	if !ok {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "shutting down")
	}
	ac.done = done
	conn, err := agentUpgrader.Upgrade(c.Response(), c.Request())
	if err != nil {
		done()
		return nil // gws has answered the client
	}
	ac.conn = conn
	ac.log = s.log.With("conn", "agent-ws-"+strconv.FormatInt(time.Now().UnixNano(), 36), "agent", agent.ID)
	conn.Session().Store("c", ac)
	s.metrics.wsConns.WithLabelValues("agent").Inc()
	conn.SetReadDeadline(time.Now().Add(agentReadTimeout))
	sub := s.store.Hub().Subscribe(0, agentBacklog)
	s.chat.Presence().AgentConnected(agent.ID, agent.Presence)
	go ac.run(sub)
	go conn.ReadLoop()
	return nil
}

// sameOrigin reports whether the request's Origin header, if any, names
// this server: the Host it was sent to or the configured base URL.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if b, err := url.Parse(s.cfg.BaseURL); err == nil && s.cfg.BaseURL != "" {
		return strings.EqualFold(u.Host, b.Host) && u.Scheme == b.Scheme
	}
	return false
}

// run is the connection's owner: it writes the hello, the events and the
// answers to commands, and pings.
func (ac *agentConn) run(sub *inbox.Subscription) {
	defer func() {
		sub.Close()
		ac.conn.WriteClose(1000, nil) // no-op if already closed
		<-ac.closed
		ac.s.chat.Presence().AgentDisconnected(ac.agent.ID)
		ac.s.metrics.wsConns.WithLabelValues("agent").Dec()
		ac.done()
	}()
	ctx := ac.s.ctx
	follow := ac.s.store.NewFollower()
	ping := time.NewTicker(agentPingEvery)
	defer ping.Stop()
	if !ac.write(agentFrame{Type: "hello", Agent: &ac.agent}) {
		return
	}
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				// Lagged: the client reloads; start afresh.
				sub = ac.s.store.Hub().Subscribe(0, agentBacklog)
				follow = ac.s.store.NewFollower()
				if !ac.write(agentFrame{Type: "resync"}) {
					return
				}
				continue
			}
			evs, err := follow.Next(ctx, ev)
			if !ac.deliver(ev.ConversationID, evs, err) {
				return
			}
		case cmd := <-ac.commands:
			if !ac.command(ctx, follow, cmd) {
				return
			}
		case <-ping.C:
			ac.conn.SetWriteDeadline(time.Now().Add(agentWriteTimeout))
			if ac.conn.WritePing(nil) != nil {
				return
			}
		case <-ac.closed:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (ac *agentConn) command(ctx context.Context, follow *inbox.Follower, cmd agentCommand) bool {
	switch cmd.Type {
	case "ping":
		return ac.write(agentFrame{Type: "pong"})
	case "resume":
		for key, seq := range cmd.Cursors {
			id, err := strconv.ParseInt(key, 10, 64)
			if err != nil || seq < 0 {
				if !ac.write(agentFrame{Type: "error", Error: "resume: bad cursor " + strconv.Quote(key)}) {
					return false
				}
				continue
			}
			follow.Seen(id, seq)
			evs, err := follow.Since(ctx, id, seq)
			if !ac.deliver(id, evs, err) {
				return false
			}
		}
		return true
	case "typing":
		if cmd.ConversationID <= 0 {
			return ac.write(agentFrame{Type: "error", Error: "typing: conversation_id is required"})
		}
		ac.s.store.PublishTyping(cmd.ConversationID, inbox.Typing{Author: inbox.AuthorAgent, AgentID: ac.agent.ID, Name: ac.agent.Name, Typing: cmd.Typing})
		return true
	case "presence":
		if cmd.Presence != inbox.PresenceOnline && cmd.Presence != inbox.PresenceIdle {
			return ac.write(agentFrame{Type: "error", Error: `presence: must be "online" or "idle"`})
		}
		ac.s.chat.Presence().AgentIdle(ac.agent.ID, cmd.Presence == inbox.PresenceIdle)
		return true
	case "bad-json":
		return ac.write(agentFrame{Type: "error", Error: "frame is not a JSON object of a known shape"})
	}
	return ac.write(agentFrame{Type: "error", Error: "unknown frame type " + strconv.Quote(cmd.Type)})
}

// deliver writes events of one conversation, or what replaces them when
// they could not be read: a resync (too old or deleted) or nothing (the
// database is down: the next event or resume tries again).
func (ac *agentConn) deliver(conversationID int64, evs []inbox.Event, err error) bool {
	for i := range evs {
		if evs[i].Transient() {
			if !ac.transient(evs[i]) {
				return false
			}
			continue
		}
		if !ac.write(agentFrame{Type: "event", Event: &evs[i]}) {
			return false
		}
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, inbox.ErrResync), errors.Is(err, inbox.ErrNotFound):
		return ac.write(agentFrame{Type: "resync", ConversationID: conversationID})
	}
	ac.log.Warn("reading events", "conversation", conversationID, "err", err)
	return ac.write(agentFrame{Type: "error", Error: "events of conversation " + strconv.FormatInt(conversationID, 10) + " are unavailable; resume later"})
}

// transient writes a transient event as its frame: a contact typing or
// coming and going. Agents' own typing and presence are for visitors.
func (ac *agentConn) transient(ev inbox.Event) bool {
	switch ev.Type {
	case inbox.EventTyping:
		var t inbox.Typing
		if ev.Decode(&t) != nil || t.Author != inbox.AuthorContact {
			return true
		}
		return ac.write(agentFrame{Type: "typing", ConversationID: ev.ConversationID, ContactID: t.ContactID, Typing: &t.Typing})
	case inbox.EventContactPresence:
		var p inbox.ContactPresence
		if ev.Decode(&p) != nil {
			return true
		}
		return ac.write(agentFrame{Type: "contact_presence", ContactID: p.ContactID, Online: &p.Online})
	}
	return true
}

func (ac *agentConn) write(f agentFrame) bool {
	b, err := json.Marshal(f)
	if err != nil {
		ac.log.Error("encoding frame", "err", err)
		return false
	}
	ac.conn.SetWriteDeadline(time.Now().Add(agentWriteTimeout))
	if err := ac.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		return false
	}
	ac.s.metrics.wsMessages.WithLabelValues("agent", "out").Inc()
	return true
}

// agentEvents receives gws's callbacks, in the connection's read loop.
type agentEvents struct{}

func agentConnOf(socket *gws.Conn) *agentConn {
	v, _ := socket.Session().Load("c")
	ac, _ := v.(*agentConn)
	return ac
}

func (agentEvents) OnOpen(*gws.Conn) {}

func (agentEvents) OnClose(socket *gws.Conn, err error) {
	if ac := agentConnOf(socket); ac != nil && ac.isClosed.CompareAndSwap(false, true) {
		close(ac.closed)
	}
}

func (agentEvents) OnPing(socket *gws.Conn, payload []byte) {
	socket.SetReadDeadline(time.Now().Add(agentReadTimeout))
	socket.WritePong(payload)
}

func (agentEvents) OnPong(socket *gws.Conn, _ []byte) {
	socket.SetReadDeadline(time.Now().Add(agentReadTimeout))
}

// OnMessage parses a client frame and hands it to run. A binary frame is
// refused with 1003; a client that sends faster than run answers is
// dropped with 1008; bad JSON gets an error frame.
func (agentEvents) OnMessage(socket *gws.Conn, m *gws.Message) {
	defer m.Close()
	ac := agentConnOf(socket)
	if ac == nil {
		return
	}
	socket.SetReadDeadline(time.Now().Add(agentReadTimeout))
	ac.s.metrics.wsMessages.WithLabelValues("agent", "in").Inc()
	if m.Opcode != gws.OpcodeText {
		socket.WriteClose(1003, []byte("text frames only"))
		return
	}
	var cmd agentCommand
	if err := json.Unmarshal(m.Bytes(), &cmd); err != nil || cmd.Type == "bad-json" {
		cmd = agentCommand{Type: "bad-json"}
	}
	ac.queue(socket, cmd)
}

func (ac *agentConn) queue(socket *gws.Conn, cmd agentCommand) {
	select {
	case ac.commands <- cmd:
	default:
		socket.WriteClose(1008, []byte("too many frames"))
	}
}
