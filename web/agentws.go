package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/ratelimit"
	"github.com/microdeets/microchat/sockets"
)

// The agents' WebSocket at /api/v1/ws streams the events of every
// conversation (docs/protocol.md). Each connection has two goroutines:
// gws's read loop, which only parses frames and hands commands over a
// channel, and run, which owns the connection's state (its Follower and
// the agent) and is the only one to write data frames. Nothing else
// writes to the socket: events come from the hub's subscription, never
// from the handler that saved them.
//
// What waits for the database longer than a read runs in goroutines of
// its own that hand their answer to run over a channel, so that run never
// waits for a commit: each message frame (an agent's reply, stored as
// POST .../messages stores it, at most agentMaxReplies at once per
// connection), and the session check at every ping.

// Frames from the server.
type agentFrame struct {
	Type           string       `json:"type"` // hello, event, resync, error, pong, typing, contact_presence, agent_presence, ack
	Agent          *inbox.Agent `json:"agent,omitempty"`
	Event          *inbox.Event `json:"event,omitempty"`
	ConversationID int64        `json:"conversation_id,omitempty"`
	// ack and error of a message frame: the frame's client id (before
	// message, whose own client_id is the same, for clients that look for
	// the first one).
	ClientID string `json:"client_id,omitempty"`
	// error: Status is, for a message frame, the HTTP API's status code for
	// the same error, and Field the request field at fault.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Field  string `json:"field,omitempty"`
	// RetryAfter is the seconds to wait after a status 429 (the agent's
	// reply rate, limits.agent_messages_per_second).
	RetryAfter int `json:"retry_after,omitempty"`
	// typing (the contact of ConversationID) and contact_presence.
	ContactID int64 `json:"contact_id,omitempty"`
	Typing    *bool `json:"typing,omitempty"`
	Online    *bool `json:"online,omitempty"`
	// agent_presence: a colleague's presence changed (online, idle,
	// offline), or their name; Name is their current one.
	AgentID  int64  `json:"agent_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Presence string `json:"presence,omitempty"`
	// ack: what POST .../messages answers (replyAnswer), and whether the
	// message is new; false when its client id was already stored.
	Message *inbox.Message `json:"message,omitempty"`
	Channel string         `json:"channel,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Created *bool          `json:"created,omitempty"`
}

// Frames from the client.
type agentCommand struct {
	Type string `json:"type"` // resume, ping, typing, presence, message
	// Cursors maps conversation ids to the last sequence number the client
	// has of each; resume sends what came after.
	Cursors map[string]int64 `json:"cursors,omitempty"`
	// typing: the agent is typing in ConversationID, or stopped. message:
	// the conversation replied to.
	ConversationID int64 `json:"conversation_id,omitempty"`
	Typing         bool  `json:"typing,omitempty"`
	// presence: "online" or "idle", as the dashboard sees the agent.
	Presence string `json:"presence,omitempty"`
	// message: an agent's reply, the fields of POST .../messages's body
	// (replyRequest). ClientID is required here: the answer carries it.
	ClientID      string  `json:"client_id,omitempty"`
	Text          string  `json:"text,omitempty"`
	Channel       string  `json:"channel,omitempty"`
	AttachmentIDs []int64 `json:"attachment_ids,omitempty"`
	// bad is a message frame's field of the wrong JSON type, answered as
	// the POST answers it.
	bad error
}

const (
	agentWriteTimeout = 10 * time.Second
	// agentReadTimeout: a connection that sends nothing (not even a pong)
	// for this long is dropped.
	agentReadTimeout = 75 * time.Second
	agentMaxFrame    = 64 << 10
	// agentBacklog is how many events other than presence may wait for a
	// slow agent before it is told to resync (presence: agentQueue).
	agentBacklog = 1024
	// agentMaxReplies is how many message frames of one connection may be
	// stored at once; the read loop waits for one to end before taking
	// another, so a client sending faster is slowed by TCP.
	agentMaxReplies = 512
	// closeSessionEnded closes a socket whose session was logged out,
	// expired or whose agent was removed.
	closeSessionEnded = sockets.CloseUnauthorized
)

// testHookAgentSocket, if set by a test, runs after the session was read
// and before the socket is registered.
var testHookAgentSocket func()

// agentPingEvery is how often the server pings and reads the session
// again; a variable for tests.
var agentPingEvery = 30 * time.Second

var agentUpgrader = gws.NewUpgrader(agentEvents{}, &gws.ServerOption{
	ReadMaxPayloadSize: agentMaxFrame,
	ReadBufferSize:     4 << 10,
	CheckUtf8Enabled:   true,
	HandshakeTimeout:   10 * time.Second,
})

// agentConn is one agent's connection.
type agentConn struct {
	s    *Server
	conn *gws.Conn
	// out is conn's connection: run holds its writes while more frames
	// wait and sends them together.
	out       *corkConn
	framesOut *atomic.Uint64
	// agent is run's, refreshed at every session check; the other
	// goroutines use agentID, which does not change.
	agent   inbox.Agent
	agentID int64
	// token is the session cookie's value, read again every
	// agentPingEvery: a logout on another node ends the socket then.
	token string
	// sock is the socket's entry in the agents' registry: its session's
	// expiry; ending it (logout, expiry, removal) signals revoke, and run
	// closes the socket with 4401.
	sock   *sockets.Socket
	revoke chan struct{}
	// typingIn are the conversations the agent said it types in (run's):
	// a typing false goes to each when the socket ends.
	typingIn map[int64]bool
	log      *slog.Logger
	commands chan agentCommand
	// replying holds a token for each message frame being stored (taken
	// in the read loop); answers takes their acks and errors to run.
	replying chan struct{}
	answers  chan agentFrame
	// tails holds, per conversation, a channel closed when the last
	// message frame started for it is answered: the next frame of that
	// conversation waits for it before storing, so that one connection's
	// replies to one conversation are stored in the order they were
	// received, while those to other conversations are stored
	// concurrently. Guarded by tailsMu; an entry goes when its frame ends
	// with no other behind it.
	tailsMu sync.Mutex
	tails   map[int64]chan struct{}
	// holding: the client asked (?resume=1) that events wait for its
	// first resume frame; run's until then.
	holding bool
	// work counts the goroutines of message frames and session checks;
	// run waits for them before it reports the connection done.
	work sync.WaitGroup
	// stop is closed when run ends: nothing waits for a slot or for run
	// to take an answer after that.
	stop     chan struct{}
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
	if testHookAgentSocket != nil {
		testHookAgentSocket()
	}
	agent := agentOf(c)
	token, _ := c.Get(ctxToken).(string)
	ac := &agentConn{s: s, agent: agent, agentID: agent.ID, token: token,
		commands: make(chan agentCommand, 16),
		replying: make(chan struct{}, agentMaxReplies), answers: make(chan agentFrame, agentMaxReplies),
		stop: make(chan struct{}), closed: make(chan struct{}), revoke: make(chan struct{}, 1)}
	ac.holding = c.QueryParam("resume") != ""
	done, ok := s.trackSocket(func() {
		if ac.conn != nil {
			ac.conn.WriteClose(1001, []byte("server shutting down"))
		}
	})
	if !ok {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "shutting down")
	}
	ac.done = done
	netConn, _, err := c.Response().Hijack()
	if err != nil {
		done()
		return err
	}
	ac.out = &corkConn{Conn: netConn, timeout: agentWriteTimeout}
	ac.framesOut = &s.metrics.agentFramesOut
	conn, err := agentUpgrader.UpgradeFromConn(ac.out, bufio.NewReaderSize(ac.out, 4<<10), c.Request())
	if err != nil {
		done()
		return nil // gws has answered the client
	}
	ac.conn = conn
	// The session's and the agent's sockets are capped; the extra one is
	// closed after the upgrade so that the client sees the code. The cap
	// has no per-IP or node-wide part: only a logged-in agent gets here,
	// so the per-agent cap bounds them all.
	sess := sessionOf(c)
	sk, _ := s.agentSockets.Admit(c.RealIP())
	if sess == nil || sk.Bind(sess.ID, agent.ID, sess.ExpiresAt, ac.revoked) != nil {
		sk.Remove()
		conn.WriteClose(sockets.CloseTooMany, []byte("too many connections of this session or agent"))
		done()
		return nil
	}
	if seen, _ := c.Get(ctxNotices).(uint64); sk.Missed(seen) {
		// A logout or removal may have come between the session's read
		// and Bind: read it again.
		ctx, cancel := context.WithTimeout(s.ctx, apiTimeout)
		_, _, err := s.store.SessionAgent(ctx, token)
		cancel()
		if err != nil {
			sk.Remove()
			if errors.Is(err, inbox.ErrUnauthenticated) {
				conn.WriteClose(closeSessionEnded, []byte("session ended"))
			} else {
				conn.WriteClose(1013, []byte("try again later"))
			}
			done()
			return nil
		}
	}
	ac.sock = sk
	ac.log = s.log.With("conn", "agent-ws-"+strconv.FormatInt(time.Now().UnixNano(), 36), "agent", agent.ID)
	conn.Session().Store("c", ac)
	s.metrics.agentConns.Add(1)
	conn.SetReadDeadline(time.Now().Add(agentReadTimeout))
	queue := newAgentQueue()
	sub := s.store.Hub().SubscribeFunc(0, queue.push)
	s.presence.AgentConnected(agent.ID)
	go ac.run(sub, queue)
	go conn.ReadLoop()
	return nil
}

// run is the connection's owner: it writes the hello, the events and the
// answers to commands and message frames, pings, and ends the connection
// when a session check finds the session gone. The events come from sub
// through queue.
func (ac *agentConn) run(sub *inbox.Subscription, queue *agentQueue) {
	defer func() {
		close(ac.stop)
		sub.Close()
		ac.conn.WriteClose(1000, nil) // no-op if already closed
		<-ac.closed
		// The read loop has ended, so no message frame starts any more.
		ac.work.Wait()
		ac.sock.Remove()
		for id := range ac.typingIn {
			// The typing indicator ends with the socket that set it.
			ac.s.store.PublishTyping(id, inbox.Typing{Author: inbox.AuthorAgent, AgentID: ac.agent.ID, Name: ac.agent.Name, Typing: false})
		}
		ac.s.presence.AgentDisconnected(ac.agent.ID)
		ac.s.metrics.agentConns.Add(-1)
		ac.done()
	}()
	ctx := ac.s.ctx
	follow := ac.s.store.NewFollower()
	ping := time.NewTicker(agentPingEvery)
	defer ping.Stop()
	sessions := make(chan sessionCheck, 1)
	checking := false
	if !ac.write(agentFrame{Type: "hello", Agent: &ac.agent}) || ac.out.flush() != nil {
		return
	}
	for {
		// Events wait in the queue while held (a client that does not
		// resume soon lags and is told to resync).
		events := queue.wake
		if ac.holding {
			events = nil
		}
		select {
		case <-events:
			batch, lagged := queue.take(agentBatch)
			if lagged {
				// The client reloads; start afresh, and tell it now.
				follow = ac.s.store.NewFollower()
				if !ac.write(agentFrame{Type: "resync"}) || ac.out.flush() != nil {
					return
				}
				continue
			}
			for _, ev := range batch {
				evs, err := follow.Next(ctx, ev)
				if !ac.deliver(ev.ConversationID, evs, err) {
					return
				}
			}
		case cmd := <-ac.commands:
			if !ac.sock.Valid() {
				// Expired (or revoked) before the sweeper saw it: nothing
				// more is done with this session.
				ac.endSession()
				return
			}
			if !ac.command(ctx, follow, cmd) {
				return
			}
		case <-ac.revoke:
			ac.endSession()
			return
		case f := <-ac.answers:
			if !ac.write(f) {
				return
			}
			if f.Status == http.StatusUnauthorized {
				ac.out.flush()
				ac.endSession()
				return
			}
		case <-ping.C:
			if ac.conn.WritePing(nil) != nil {
				return
			}
			if !checking {
				checking = true
				ac.checkSession(sessions)
			}
		case r := <-sessions:
			checking = false
			switch {
			case r.err == nil:
				ac.agent = r.agent
			case errors.Is(r.err, inbox.ErrUnauthenticated):
				ac.endSession()
				return
			case ctx.Err() == nil:
				// The next ping tries again.
				ac.log.Warn("checking the session", "err", r.err)
			}
		case <-ac.closed:
			return
		case <-ctx.Done():
			return
		}
		// The frames written since the last flush go out together once
		// nothing more waits.
		if (ac.holding || queue.empty()) && len(ac.answers) == 0 && ac.out.flush() != nil {
			return
		}
	}
}

// revoked is the registry's end function: the session was logged out,
// expired or its agent removed. It does not block; run closes the socket.
func (ac *agentConn) revoked() {
	select {
	case ac.revoke <- struct{}{}:
	default:
	}
}

// endSession closes the socket with 4401 (run's).
func (ac *agentConn) endSession() {
	ac.log.Info("session ended: closing the socket")
	ac.sock.End()
	ac.conn.WriteClose(closeSessionEnded, []byte("session ended"))
}

// sessionCheck is what a session check found: the agent, or why not.
type sessionCheck struct {
	agent inbox.Agent
	err   error
}

// checkSession reads the connection's session again in a goroutine of its
// own and reports to out. It is a read, but SessionAgent may also record
// the session's use, a write that waits for the database's writer.
func (ac *agentConn) checkSession(out chan<- sessionCheck) {
	ac.work.Go(func() {
		ctx, cancel := context.WithTimeout(ac.s.ctx, apiTimeout)
		defer cancel()
		_, agent, err := ac.s.store.SessionAgent(ctx, ac.token)
		out <- sessionCheck{agent: agent, err: err}
	})
}

func (ac *agentConn) command(ctx context.Context, follow *inbox.Follower, cmd agentCommand) bool {
	switch cmd.Type {
	case "ping":
		return ac.write(agentFrame{Type: "pong"})
	case "resume":
		ac.holding = false
		for key, seq := range cmd.Cursors {
			id, err := strconv.ParseInt(key, 10, 64)
			if err != nil || id <= 0 || seq < 0 {
				// Never a resync: one without a conversation means "reload
				// everything" (docs/protocol.md).
				if !ac.write(agentFrame{Type: "error", Error: "resume: bad cursor " + strconv.Quote(key)}) {
					return false
				}
				continue
			}
			evs, err := follow.Resume(ctx, id, seq)
			if !ac.deliver(id, evs, err) {
				return false
			}
		}
		return true
	case "typing":
		if cmd.ConversationID <= 0 {
			return ac.write(agentFrame{Type: "error", Error: "typing: conversation_id is required"})
		}
		if cmd.Typing {
			if ac.typingIn == nil {
				ac.typingIn = map[int64]bool{}
			}
			ac.typingIn[cmd.ConversationID] = true
		} else {
			delete(ac.typingIn, cmd.ConversationID)
		}
		ac.s.store.PublishTyping(cmd.ConversationID, inbox.Typing{Author: inbox.AuthorAgent, AgentID: ac.agent.ID, Name: ac.agent.Name, Typing: cmd.Typing})
		return true
	case "presence":
		if cmd.Presence != inbox.PresenceOnline && cmd.Presence != inbox.PresenceIdle {
			return ac.write(agentFrame{Type: "error", Error: `presence: must be "online" or "idle"`})
		}
		ac.s.presence.AgentIdle(ac.agent.ID, cmd.Presence == inbox.PresenceIdle)
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
		if !ac.writeRaw(evs[i].AppendFrame(make([]byte, 0, 160+len(evs[i].Data)))) {
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
// coming and going, an agent's presence or name changing. Agents' typing,
// and their presence in each conversation, are for visitors; the
// dashboard gets an agent's presence once, from its event without a
// conversation.
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
	case inbox.EventPresence:
		var p inbox.AgentPresence
		if ev.ConversationID != 0 || ev.Decode(&p) != nil || p.AgentID == ac.agentID {
			return true // the agent's own: their dashboard decides it
		}
		return ac.write(agentFrame{Type: "agent_presence", AgentID: p.AgentID, Name: p.Name, Presence: p.Presence})
	}
	return true
}

func (ac *agentConn) write(f agentFrame) bool {
	b, err := json.Marshal(f)
	if err != nil {
		ac.log.Error("encoding frame", "err", err)
		return false
	}
	return ac.writeRaw(b)
}

// writeRaw writes one encoded frame.
func (ac *agentConn) writeRaw(b []byte) bool {
	ac.out.hold()
	if err := ac.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		return false
	}
	ac.framesOut.Add(1)
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

// OnMessage parses a client frame and hands it to run, or for a message
// frame starts storing it. A binary frame is refused with 1003; a client
// that sends commands or message frames faster than they are answered is
// no longer read until they are (queue, startReply); bad JSON gets an
// error frame.
func (agentEvents) OnMessage(socket *gws.Conn, m *gws.Message) {
	defer m.Close()
	ac := agentConnOf(socket)
	if ac == nil {
		return
	}
	socket.SetReadDeadline(time.Now().Add(agentReadTimeout))
	ac.s.metrics.agentFramesIn.Add(1)
	if m.Opcode != gws.OpcodeText {
		socket.WriteClose(1003, []byte("text frames only"))
		return
	}
	cmd := parseAgentCommand(m.Bytes())
	if cmd.Type == "message" {
		ac.startReply(cmd)
		return
	}
	ac.queue(cmd)
}

// parseAgentCommand decodes a client frame. A frame that is not a JSON
// object of known field types is "bad-json", but for a message frame with
// a field of the wrong type: its error names the field, as the POST's.
// Unknown fields are ignored.
func parseAgentCommand(b []byte) agentCommand {
	var cmd agentCommand
	err := json.Unmarshal(b, &cmd)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil && cmd.Type != "bad-json":
		return cmd
	case cmd.Type == "message" && errors.As(err, &typ) && typ.Field != "":
		cmd.bad = fieldTypeError(typ)
		return cmd
	}
	return agentCommand{Type: "bad-json"}
}

// queue hands a command to run, waiting while run has not taken the ones
// before it: a client that sends commands faster than run answers them is
// no longer read (TCP slows it down), never closed. Once run has ended
// the command is dropped with the connection.
func (ac *agentConn) queue(cmd agentCommand) {
	select {
	case ac.commands <- cmd:
	case <-ac.stop:
	}
}

// testHookReply, when set (by tests only), is called by a message frame's
// goroutine with the frame's client id and "wait" before it waits for the
// previous frame of its conversation, "store" before it stores its reply
// and "stored" after.
var testHookReply func(clientID, phase string)

// startReply stores a message frame's reply in a goroutine of its own,
// which hands the answer to run. It runs in the read loop and first takes
// one of the connection's agentMaxReplies slots, waiting for one to free:
// a client that sends faster than its replies are stored stops being read
// (TCP slows it down) instead of piling up goroutines. The goroutine
// stores its reply only once the previous frame of the same conversation
// is answered (see tails).
func (ac *agentConn) startReply(cmd agentCommand) {
	select {
	case ac.replying <- struct{}{}:
	case <-ac.stop:
		return
	}
	id, done := cmd.ConversationID, make(chan struct{})
	ac.tailsMu.Lock()
	prev := ac.tails[id]
	if ac.tails == nil {
		ac.tails = map[int64]chan struct{}{}
	}
	ac.tails[id] = done
	ac.tailsMu.Unlock()
	ac.work.Go(func() {
		if prev != nil {
			if testHookReply != nil {
				testHookReply(cmd.ClientID, "wait")
			}
			<-prev // answered within apiTimeout, even after run ended
		}
		if testHookReply != nil {
			testHookReply(cmd.ClientID, "store")
		}
		f := ac.reply(cmd)
		if testHookReply != nil {
			testHookReply(cmd.ClientID, "stored")
		}
		close(done)
		ac.tailsMu.Lock()
		if ac.tails[id] == done {
			delete(ac.tails, id)
		}
		ac.tailsMu.Unlock()
		select {
		case ac.answers <- f:
		case <-ac.stop:
		}
		// Freed once run has the answer: a run slow to write it holds the
		// slot, and so slows the reading too.
		<-ac.replying
	})
}

// reply stores the reply of a message frame as POST .../messages does and
// returns its ack, or the error frame of what the POST would answer.
func (ac *agentConn) reply(cmd agentCommand) agentFrame {
	if !ac.sock.Valid() {
		// The session ended: nothing is stored, and run closes the socket
		// after this answer.
		return agentFrame{Type: "error", ClientID: cmd.ClientID, Status: http.StatusUnauthorized, Error: "session ended"}
	}
	ans, created, err := ac.saveReply(cmd)
	var rl *rateLimited
	if errors.As(err, &rl) {
		return agentFrame{Type: "error", ClientID: cmd.ClientID, Status: http.StatusTooManyRequests, Error: rl.msg, RetryAfter: ratelimit.RetryAfter(rl.wait)}
	}
	if err != nil {
		code, body := ac.errorAnswer(err)
		return agentFrame{Type: "error", ClientID: cmd.ClientID, Status: code, Error: body.Error, Field: body.Field}
	}
	return agentFrame{Type: "ack", ClientID: cmd.ClientID, Message: &ans.Message, Channel: ans.Channel, Reason: ans.Reason, Created: &created}
}

func (ac *agentConn) saveReply(cmd agentCommand) (replyAnswer, bool, error) {
	if cmd.bad != nil {
		return replyAnswer{}, false, cmd.bad
	}
	if err := required("client_id", cmd.ClientID); err != nil {
		return replyAnswer{}, false, err
	}
	if cmd.ConversationID <= 0 {
		return replyAnswer{}, false, &inbox.InvalidError{Field: "conversation_id", Reason: "is required"}
	}
	// The HTTP API's deadline, from the server's context: a socket that
	// closes meanwhile does not cancel a reply the agent sent.
	ctx, cancel := context.WithTimeout(ac.s.ctx, apiTimeout)
	defer cancel()
	return ac.s.reply(ctx, ac.agentID, cmd.ConversationID, replyRequest{
		Text: cmd.Text, Channel: cmd.Channel, ClientID: cmd.ClientID, AttachmentIDs: cmd.AttachmentIDs,
	})
}

// errorAnswer is the status and body the HTTP API answers for err, logged
// as the HTTP API logs it.
func (ac *agentConn) errorAnswer(err error) (int, apiError) {
	if ac.s.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return http.StatusServiceUnavailable, apiError{Error: "server shutting down"} // not written: run has ended
	}
	code, body, ok := inboxAnswer(err)
	switch {
	case !ok:
		ac.log.Error("internal error", "frame", "message", "err", err)
		return http.StatusInternalServerError, apiError{Error: "internal error"}
	case code == http.StatusServiceUnavailable:
		ac.log.Warn("database unavailable", "frame", "message", "err", err)
	}
	return code, body
}
