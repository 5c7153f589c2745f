package webchat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/ratelimit"
	"github.com/microdeets/microchat/sockets"
)

// TestHookBeforeSubscribe, when set (by tests only), is called by a
// visitor socket's auth between reading the visitor's conversation and
// subscribing to its events (when the widget did not name it, or named
// another): a test commits there to prove that nothing committed
// meanwhile is lost.
var TestHookBeforeSubscribe func(conversationID int64)

// TestHookAfterHintSubscribe, when set (by tests only), is called by a
// visitor socket's auth that named a conversation, after subscribing to it
// and before reading the token: a test commits there to prove that events
// of a conversation not the visitor's never reach the socket.
var TestHookAfterHintSubscribe func(conversationID int64)

// TestHookReadWait, when set (by tests only, before the channel starts),
// is called by a visitor socket's read loop each time it stops reading
// because maxQueuedFrames of its frames wait (waitRoom).
var TestHookReadWait func()

// visitorConn is one visitor's socket. It is kept small: an idle one is
// most of what this server holds. Its fields are owned by its jobs (see
// async), which run one at a time in order, except where said.
type visitorConn struct {
	ch   *Channel // set before the read loop starts, then read-only
	conn *gws.Conn
	id   uint64
	ip   string
	// userAgent is needed until the socket authenticates.
	userAgent string
	done      func()
	authTimer *time.Timer

	// state is read by the auth timer, the hub and the read loop.
	state  atomic.Uint32
	frames atomic.Int32 // client frames waiting in the queue; the read loop adds, frameDone takes
	events atomic.Int32 // events waiting in the queue

	// The socket's jobs (see async), guarded by qmu. paused holds them
	// while a message of the visitor's is being committed (see message).
	qmu       sync.Mutex
	queue     []func()
	scheduled bool
	paused    bool
	// room, when not nil, is closed by frameDone for the read loop waiting
	// in waitRoom.
	room chan struct{}

	contactID      int64
	conversationID int64 // 0 when the contact has none
	counted        bool  // in Presence
	typing         bool  // the visitor's last typing frame said true
	follower       *inbox.Follower
	// sock is the socket's entry in the channel's registry: its token and
	// the token's expiry. Set in Accept.
	sock *sockets.Socket
	sub  *inbox.Subscription
}

// Socket states.
const (
	stateNew    uint32 = iota // waiting for the auth frame
	stateAuth                 // auth frame received (read loop) and being checked
	stateReady                // authenticated
	stateClosed               // closed, or closing
)

func (vc *visitorConn) log() *slog.Logger {
	return vc.ch.log.With("conn", "visitor-ws-"+strconv.FormatUint(vc.id, 10))
}

// authTimedOut closes a socket that did not send its auth frame in time.
func (vc *visitorConn) authTimedOut() {
	if vc.state.CompareAndSwap(stateNew, stateClosed) {
		vc.conn.SetWriteDeadline(time.Now().Add(time.Second))
		vc.conn.WriteClose(1008, []byte("no auth frame within 10 s"))
	}
}

// goAway closes the socket for a server shutdown, from the socket's queue
// so as not to block the caller.
func (vc *visitorConn) goAway() {
	vc.async(func() {
		vc.conn.SetWriteDeadline(time.Now().Add(time.Second))
		vc.conn.WriteClose(1001, []byte("server shutting down"))
	})
}

// revoked closes the socket with 4401 because its token ended (expired,
// revoked, its contact erased): the registry calls it, and it must not
// block. Frames are refused from now on.
func (vc *visitorConn) revoked() {
	if vc.state.Swap(stateClosed) == stateClosed {
		return
	}
	go func() {
		vc.conn.SetWriteDeadline(time.Now().Add(time.Second))
		vc.conn.WriteClose(sockets.CloseUnauthorized, []byte("session ended"))
	}()
}

// frameDone counts a client frame out of the socket's queue, as its job
// starts, and wakes the read loop if it waits for room (waitRoom).
func (vc *visitorConn) frameDone() {
	if vc.frames.Add(-1) != maxQueuedFrames-1 {
		return // the read loop waits only while the queue is full
	}
	vc.qmu.Lock()
	if w := vc.room; w != nil {
		vc.room = nil
		close(w)
	}
	vc.qmu.Unlock()
}

// waitRoom blocks the socket's read loop while maxQueuedFrames of its
// frames wait to be handled, until one of them starts: a visitor who
// sends faster than the server stores is no longer read, and TCP slows
// the widget down (it keeps its messages until they are acknowledged).
// Only the read loop adds frames, so once it returns true there is room
// for one. False when the channel closes meanwhile.
func (vc *visitorConn) waitRoom() bool {
	for {
		vc.qmu.Lock()
		if vc.frames.Load() < maxQueuedFrames {
			vc.qmu.Unlock()
			return true
		}
		w := make(chan struct{})
		vc.room = w
		vc.qmu.Unlock()
		if TestHookReadWait != nil {
			TestHookReadWait()
		}
		select {
		case <-w:
		case <-vc.ch.ctx.Done():
			return false
		}
	}
}

// async queues a job on the socket's own queue. A socket with jobs waits
// in the channel's run queue for one of its workers, which runs its jobs
// in order until none is left. So a socket has no goroutine of its own
// even while it works, and the database and JSON work, with its deep
// stacks, stays on a few goroutines: the runtime's starting stack size
// (the average of the stacks it scans) stays small even while thousands
// of sockets authenticate at once. It never blocks.
func (vc *visitorConn) async(job func()) {
	vc.qmu.Lock()
	vc.queue = append(vc.queue, job)
	vc.schedule()
}

// schedule puts the socket in the run queue unless it is there already or
// paused, and unlocks qmu, which the caller holds.
func (vc *visitorConn) schedule() {
	if vc.scheduled || vc.paused {
		vc.qmu.Unlock()
		return
	}
	vc.scheduled = true
	vc.qmu.Unlock()
	vc.ch.runq.push(vc)
}

// pause holds the socket's jobs after the running one until resume: the
// socket waits for its message's commit without holding a worker, and
// its later frames and events keep their order behind the answer.
func (vc *visitorConn) pause() {
	vc.qmu.Lock()
	vc.paused = true
	vc.qmu.Unlock()
}

// resume runs job first and then the jobs held since pause. It never
// blocks.
func (vc *visitorConn) resume(job func()) {
	vc.qmu.Lock()
	vc.paused = false
	vc.queue = append(vc.queue, nil)
	copy(vc.queue[1:], vc.queue)
	vc.queue[0] = job
	vc.schedule()
}

// drain runs the socket's jobs until none is left or the socket pauses;
// one worker at a time.
func (vc *visitorConn) drain() {
	for {
		vc.qmu.Lock()
		if len(vc.queue) == 0 || vc.paused {
			vc.scheduled = false
			if len(vc.queue) == 0 {
				vc.queue = nil
			}
			vc.qmu.Unlock()
			return
		}
		job := vc.queue[0]
		vc.queue[0] = nil
		vc.queue = vc.queue[1:]
		vc.qmu.Unlock()
		vc.run(job)
	}
}

// deliver is the hub subscription's callback: it must not block, so it
// only queues the event. A socket that lets too many wait is closed; the
// widget reconnects and resumes from its last sequence number.
func (vc *visitorConn) deliver(ev inbox.Event) {
	if vc.events.Add(1) > maxQueuedEvents {
		vc.events.Add(-1)
		if vc.state.Swap(stateClosed) != stateClosed {
			vc.log().Info("dropping a visitor socket that does not read its events")
			vc.conn.NetConn().Close()
		}
		return
	}
	vc.async(func() {
		vc.events.Add(-1)
		vc.event(ev)
	})
}

// run runs a job, keeping a panic to the socket.
func (vc *visitorConn) run(job func()) {
	defer func() {
		if e := recover(); e != nil {
			vc.log().Error("panic in a visitor socket job", "panic", e)
			vc.conn.NetConn().Close()
		}
	}()
	job()
}

func (vc *visitorConn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(vc.ch.ctx, vc.ch.opts.JobTimeout)
}

// write sends one frame; false if the socket is gone.
func (vc *visitorConn) write(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		vc.log().Error("encoding a frame", "err", err)
		return false
	}
	return vc.writeRaw(b)
}

func (vc *visitorConn) writeRaw(b []byte) bool {
	vc.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := vc.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		return false
	}
	vc.ch.framesOut.Add(1)
	return true
}

func (vc *visitorConn) writeError(code, msg, clientID string, retryAfter int) bool {
	return vc.write(errorFrame{Type: "error", Code: code, Error: msg, ClientID: clientID, RetryAfter: retryAfter})
}

// writeErr answers a frame that failed in inbox.
func (vc *visitorConn) writeErr(err error, clientID string) bool {
	var inv *inbox.InvalidError
	switch {
	case errors.As(err, &inv):
		return vc.writeError(codeInvalid, inv.Error(), clientID, 0)
	case errors.Is(err, inbox.ErrConflict):
		return vc.writeError(codeConflict, err.Error(), clientID, 0)
	case errors.Is(err, inbox.ErrNotFound):
		return vc.writeError(codeInvalid, "the conversation is gone; reload", clientID, 0)
	}
	if !errors.Is(err, inbox.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		vc.log().Error("visitor frame", "err", err)
	}
	return vc.writeError(codeUnavailable, "the server cannot store this now; try again", clientID, 0)
}

// cleanup runs last on the queue after the socket closed: it ends the
// subscription and the presence the socket held.
func (vc *visitorConn) cleanup() {
	vc.state.Store(stateClosed)
	if vc.authTimer != nil {
		vc.authTimer.Stop()
	}
	vc.unsubscribe()
	if vc.typing {
		// The typing indicator ends with the socket that set it.
		vc.typing = false
		vc.ch.store.PublishTyping(vc.conversationID, inbox.Typing{Author: inbox.AuthorContact, ContactID: vc.contactID, Typing: false})
	}
	if vc.counted {
		vc.ch.presence.ContactDisconnected(vc.contactID)
		vc.counted = false
	}
	if vc.sock != nil {
		vc.sock.Remove()
	}
	vc.ch.conns.Add(-1)
	if vc.done != nil {
		vc.done()
	}
}

// auth checks the token and starts the socket: hello, the events after
// last_seq, then live events.
func (vc *visitorConn) auth(f *clientFrame) {
	ctx, cancel := vc.ctx()
	defer cancel()
	st := vc.ch.store
	seen := vc.ch.sockets.Notices()
	// A widget that resumes names its conversation: the socket subscribes
	// to it first, and one read then checks the token and reads where the
	// conversation stands. Events of a conversation that turns out not to
	// be the visitor's are dropped (event).
	hint := max(f.ConversationID, 0)
	if hint != 0 {
		vc.subscribe(hint)
		if TestHookAfterHintSubscribe != nil {
			TestHookAfterHintSubscribe(hint)
		}
	}
	got, err := st.VisitorAuthConversation(ctx, f.Token, vc.ch.cfg.Widget.SessionTTL.D(), hint)
	if errors.Is(err, inbox.ErrUnauthenticated) {
		vc.conn.WriteClose(sockets.CloseUnauthorized, []byte("bad or expired token"))
		return
	}
	if err != nil {
		vc.log().Warn("visitor auth", "err", err)
		vc.writeError(codeUnavailable, "the server cannot check the token now; reconnect later", "", 0)
		vc.conn.WriteClose(1013, []byte("try again later"))
		return
	}
	contact, convID := got.Contact, got.ConversationID
	if err := vc.sock.Bind(inbox.SessionID(f.Token), contact.ID, got.Expires, vc.revoked); err != nil {
		vc.state.Store(stateClosed)
		vc.conn.WriteClose(sockets.CloseTooMany, []byte("too many connections with this token"))
		return
	}
	if vc.sock.Missed(seen) {
		// A revocation or erase may have come between the token's read
		// and Bind: read it again.
		if _, err := st.VisitorSessionExpiry(ctx, inbox.SessionID(f.Token)); err != nil {
			vc.state.Store(stateClosed)
			if errors.Is(err, inbox.ErrUnauthenticated) {
				vc.conn.WriteClose(sockets.CloseUnauthorized, []byte("bad or expired token"))
			} else {
				vc.conn.WriteClose(1013, []byte("try again later"))
			}
			return
		}
	}
	if !vc.state.CompareAndSwap(stateAuth, stateReady) {
		return // closed meanwhile
	}
	vc.authTimer.Stop()
	vc.authTimer = nil
	vc.contactID = contact.ID
	if facts := FactsOf(vc.userAgent, vc.ip); !sameFacts(contact, facts) {
		if _, err := st.SetContactFacts(ctx, contact.ID, facts); err != nil {
			vc.log().Warn("storing visitor facts", "err", err)
		}
		contact.Browser, contact.BrowserVersion, contact.OS, contact.IP, contact.Country = facts.Browser, facts.BrowserVersion, facts.OS, facts.IP, facts.Country
	}
	vc.userAgent = ""
	vc.ch.presence.ContactConnected(contact.ID)
	vc.counted = true
	contact.Online = true

	hello := helloFrame{Type: "hello", Contact: contact, Agents: []Agent{}}
	conv, parts := got.Conversation, got.Agents
	if convID != hint {
		vc.unsubscribe()
	}
	if convID != 0 {
		vc.conversationID = convID
		vc.follower = st.NewFollower()
		if !got.Started {
			if TestHookBeforeSubscribe != nil {
				TestHookBeforeSubscribe(convID)
			}
			// Subscribed first, then the starting point (the
			// conversation's seq and agents) is read, then the catch-up:
			// an event committed before this read is in the catch-up, one
			// after it reaches the subscription (queued behind this job),
			// and the Follower drops what the catch-up already sent.
			vc.subscribe(convID)
			if conv, parts, err = st.ConversationStart(ctx, convID); err != nil {
				vc.writeErr(err, "")
				vc.conn.WriteClose(1013, []byte("try again later"))
				return
			}
		}
		hello.Agents = Agents(parts)
		hello.Conversation = &helloConversation{ID: conv.ID, Status: conv.Status, Seq: conv.Seq}
	}
	if !vc.write(hello) || hello.Conversation == nil {
		return
	}
	from := f.LastSeq
	switch {
	case f.ConversationID != 0 && f.ConversationID != conv.ID, from < 0, from > conv.Seq:
		// The widget's seq is of another conversation, or of nothing we
		// have: it reloads.
		vc.follower.Seen(conv.ID, conv.Seq)
		vc.writeRaw(resyncFrame)
		return
	}
	vc.follower.Seen(conv.ID, from)
	if from == conv.Seq {
		return // nothing missed: the common reconnect reads nothing more
	}
	evs, err := vc.follower.Since(ctx, conv.ID, from)
	vc.deliverEvents(ctx, evs, err)
}

// subscribe subscribes the socket to the events of conversation id.
func (vc *visitorConn) subscribe(id int64) {
	vc.sub = vc.ch.store.Hub().SubscribeFunc(id, vc.deliver)
}

// unsubscribe ends the socket's subscription, if any. Events it queued
// meanwhile are dropped by event unless of the visitor's conversation.
func (vc *visitorConn) unsubscribe() {
	if vc.sub != nil {
		vc.sub.Close()
		vc.sub = nil
	}
}

// event handles one event from the hub: of the visitor's conversation
// only, once the socket is authenticated (an event of the conversation a
// widget named before its token was read may be queued before it).
func (vc *visitorConn) event(ev inbox.Event) {
	if vc.state.Load() != stateReady || vc.follower == nil || ev.ConversationID != vc.conversationID {
		return
	}
	ctx, cancel := vc.ctx()
	defer cancel()
	evs, err := vc.follower.Next(ctx, ev)
	vc.deliverEvents(ctx, evs, err)
}

// deliverEvents writes events of the conversation in order, and what
// replaces those that could not be read: a resync when they are gone, an
// error frame when the database is down (the next event or reconnect
// tries again).
func (vc *visitorConn) deliverEvents(ctx context.Context, evs []inbox.Event, err error) {
	for i := range evs {
		if !vc.writeEvent(ctx, &evs[i]) {
			return
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, inbox.ErrResync), errors.Is(err, inbox.ErrNotFound):
		// The Follower goes on from the conversation's current seq.
		vc.writeRaw(resyncFrame)
	default:
		vc.log().Warn("reading events", "err", err)
		vc.writeError(codeUnavailable, "events are unavailable; reconnect later", "", 0)
	}
}

// writeEvent writes a stored event as an event frame, and a transient one
// as the frame the widget knows for it.
func (vc *visitorConn) writeEvent(ctx context.Context, ev *inbox.Event) bool {
	switch ev.Type {
	case inbox.EventTyping:
		var t inbox.Typing
		if ev.Decode(&t) != nil || t.Author != inbox.AuthorAgent {
			return true // the visitor's own typing
		}
		return vc.write(typingFrame{Type: "typing", AgentID: t.AgentID, Name: t.Name, Typing: t.Typing})
	case inbox.EventPresence:
		var p inbox.AgentPresence
		if ev.Decode(&p) != nil {
			return true
		}
		return vc.write(presenceFrame{Type: "presence", AgentID: p.AgentID, Name: p.Name, Presence: p.Presence})
	case inbox.EventContactPresence:
		return true // for agents
	}
	if !VisitorSees(ev) {
		return true // a private note: the visitor's events skip its seq
	}
	seen, ok := VisitorEvent(ev) // no email envelope, HTML or error (view.go)
	if !ok {
		vc.log().Error("an event that does not decode is not sent", "type", ev.Type, "seq", ev.Seq)
		return true
	}
	ev = vc.named(ctx, seen)
	if !vc.writeRaw(ev.AppendFrame(make([]byte, 0, 160+len(ev.Data)))) {
		return false
	}
	if ev.Type == inbox.EventJoined {
		// The widget shows the agent's presence from the start.
		var j inbox.Joined
		if ev.Decode(&j) == nil {
			if a, err := vc.ch.store.Agent(ctx, j.AgentID); err == nil {
				return vc.write(presenceFrame{Type: "presence", AgentID: a.ID, Name: a.Name, Presence: a.Presence})
			}
		}
	}
	return true
}

// agentKey is the JSON of an agent's message as encoding/json writes it;
// user text cannot contain it (its quotes would be escaped).
var agentKey = []byte(`"author":"` + inbox.AuthorAgent + `"`)

// named returns a message_added event of an agent's message with the
// agent's current display name as the message's agent_name, so that the
// widget can name a reply of an agent who wrote without joining
// (docs/widget-protocol.md, "Names"). The name comes from the channel's
// cache (names.go), read by primary key when it is not there and kept
// until the agent's next presence event without a conversation (a rename
// publishes one); ev itself when it is no agent's message or the name
// cannot be read (the widget then names the message as it can).
func (vc *visitorConn) named(ctx context.Context, ev *inbox.Event) *inbox.Event {
	if ev.Type != inbox.EventMessageAdded || !bytes.Contains(ev.Data, agentKey) {
		return ev
	}
	var p inbox.MessageAdded
	if ev.Decode(&p) != nil || p.Message.AgentID == nil {
		return ev
	}
	name, err := vc.ch.names.name(ctx, *p.Message.AgentID, vc.ch.store.Agent)
	if err != nil {
		return ev
	}
	data, err := json.Marshal(namedMessageAdded{Message: namedMessage{Message: p.Message, AgentName: name}, Reopened: p.Reopened})
	if err != nil {
		return ev
	}
	out := *ev
	out.Data = data
	return &out
}

// message stores the visitor's message and acknowledges it; a retried
// client id is stored once and acknowledged again.
func (vc *visitorConn) message(f *clientFrame) {
	switch {
	case f.ClientID == "" || len(f.ClientID) > 128:
		vc.writeError(codeInvalid, "client_id is required, at most 128 bytes", f.ClientID, 0)
		return
	case len(f.Text) > int(vc.ch.cfg.Limits.MaxMessageBytes):
		vc.writeError(codeTooLarge, "the message is longer than "+vc.ch.cfg.Limits.MaxMessageBytes.String(), f.ClientID, 0)
		return
	case vc.conversationID == 0:
		vc.writeError(codeInvalid, "there is no conversation; start one", f.ClientID, 0)
		return
	}
	if wait, ok := vc.ch.limits.AllowMessage(vc.contactID, vc.ip); !ok {
		vc.writeError(codeRateLimited, "too many messages; wait a moment", f.ClientID, ratelimit.RetryAfter(wait))
		return
	}
	// The socket pauses until the commit instead of holding a worker for
	// it; the ack then runs first on its queue. The commit's answer or
	// the job's deadline, whichever comes first, resumes it: a message not
	// committed in time may still be, and its retry finds it by client id.
	// The one context bounds both the queueing and the wait.
	ctx, cancel := vc.ctx()
	clientID := f.ClientID
	var answered atomic.Bool
	answer := func(job func()) {
		if answered.CompareAndSwap(false, true) {
			cancel()
			vc.resume(job)
		}
	}
	vc.pause()
	context.AfterFunc(ctx, func() {
		answer(func() { vc.writeErr(context.DeadlineExceeded, clientID) })
	})
	err := vc.ch.store.AddMessageAsync(ctx, inbox.NewMessage{ConversationID: vc.conversationID, ClientID: clientID,
		Author: inbox.AuthorContact, Channel: inbox.ChannelChat, Text: f.Text, AttachmentIDs: f.AttachmentIDs},
		func(msg inbox.Message, _ bool, err error) {
			answer(func() {
				if err != nil {
					vc.writeErr(err, clientID)
					return
				}
				vc.write(ackFrame{Type: "ack", ClientID: clientID, Message: msg})
			})
		})
	if err != nil {
		answer(func() { vc.writeErr(err, clientID) })
	}
}

// handle runs one client frame after auth.
func (vc *visitorConn) handle(f *clientFrame) {
	if vc.state.Load() != stateReady {
		return
	}
	if !vc.sock.Valid() {
		// The token's known expiry passed: it acts only if the token was
		// renewed meanwhile (as /state would answer); else it closes 4401.
		ctx, cancel := vc.ctx()
		ok, err := vc.sock.Check(ctx)
		cancel()
		if !ok {
			if err != nil {
				vc.writeErr(err, f.ClientID)
			}
			return
		}
	}
	switch f.Type {
	case "message":
		vc.message(f)
	case "typing":
		if vc.conversationID != 0 {
			vc.typing = f.Typing
			vc.ch.store.PublishTyping(vc.conversationID, inbox.Typing{Author: inbox.AuthorContact, ContactID: vc.contactID, Typing: f.Typing})
		}
	case "read":
		if vc.conversationID == 0 || f.UpTo < 0 {
			vc.writeError(codeInvalid, "read: nothing to read, or a negative up_to", "", 0)
			return
		}
		ctx, cancel := vc.ctx()
		defer cancel()
		if err := vc.ch.store.MarkRead(ctx, vc.conversationID, 0, f.UpTo); err != nil {
			vc.writeErr(err, "")
		}
	case "page_view":
		ctx, cancel := vc.ctx()
		defer cancel()
		err := vc.ch.store.AddPageView(ctx, vc.contactID, inbox.NewPageView{URL: f.URL, Title: f.Title, Referrer: f.Referrer})
		if err != nil {
			vc.writeErr(err, "")
		}
	case "ping":
		vc.writeRaw(pongFrame)
	case "auth":
		vc.writeError(codeInvalid, "already authenticated", "", 0)
	default:
		vc.writeError(codeUnknownType, "unknown frame type "+strconv.Quote(f.Type), "", 0)
	}
}

// socketEvents receives gws's callbacks, in each connection's read loop.
type socketEvents struct{}

func (socketEvents) OnOpen(*gws.Conn) {}

func (socketEvents) OnClose(socket *gws.Conn, _ error) {
	vc := socket.Session().(*visitorConn)
	vc.state.Store(stateClosed)
	vc.async(vc.cleanup)
}

// OnPing answers a WebSocket ping. Browsers do not send them (the widget
// pings with a frame), so this path need not be light.
func (socketEvents) OnPing(socket *gws.Conn, payload []byte) {
	socket.SetReadDeadline(time.Now().Add(readTimeout))
	socket.Async(func() { socket.WritePong(payload) })
}

func (socketEvents) OnPong(*gws.Conn, []byte) {}

// OnMessage hands a frame to the node's dispatcher, which queues it to be
// parsed and handled on the socket's queue. It does as little as it can:
// whatever it calls grows the read loop's stack, which an idle socket
// keeps (a read deadline or a job queued from here costs 2 KB a socket
// for as long as it lives). gws has refused frames over maxFrame (1009)
// and text that is not UTF-8 (1007); a binary frame is 1003. With
// maxQueuedFrames frames of the socket waiting it stops reading until one
// is handled (waitRoom): push-back, never a close.
func (socketEvents) OnMessage(socket *gws.Conn, m *gws.Message) {
	vc := socket.Session().(*visitorConn)
	if vc.state.Load() == stateClosed {
		m.Close()
		return
	}
	if m.Opcode != gws.OpcodeText {
		m.Close()
		socket.WriteClose(1003, []byte("text frames only"))
		return
	}
	if vc.frames.Load() >= maxQueuedFrames && !vc.waitRoom() {
		m.Close()
		return
	}
	vc.frames.Add(1)
	first := vc.state.CompareAndSwap(stateNew, stateAuth)
	vc.ch.dispatch[vc.id%uint64(len(vc.ch.dispatch))] <- incoming{vc: vc, m: m, first: first}
}

// incoming is a frame on its way from a read loop to its socket's queue.
type incoming struct {
	vc    *visitorConn
	m     *gws.Message
	first bool
}

// dispatcher moves frames from the read loops to their sockets' queues,
// renewing the read deadline. Each frame was counted in the socket's
// frames by its read loop, and is counted out as its job starts. A
// socket's frames all go through one dispatcher, so they stay in order. A
// nil socket stops it.
func (ch *Channel) dispatcher(in <-chan incoming) {
	for it := range in {
		vc := it.vc
		if vc == nil {
			return
		}
		ch.framesIn.Add(1)
		vc.conn.SetReadDeadline(time.Now().Add(readTimeout))
		m, first := it.m, it.first
		if !first && bytes.Equal(m.Bytes(), pingFrame) {
			// The heartbeat of every idle socket: no JSON, no job of its
			// own. Its garbage was most of an idle server's (2 KB a socket
			// between collections).
			m.Close()
			vc.async(vc.pong)
			continue
		}
		vc.async(func() {
			vc.frameDone()
			vc.frame(m, first)
		})
	}
}

// pong answers a heartbeat queued by the dispatcher.
func (vc *visitorConn) pong() {
	vc.frameDone()
	if vc.state.Load() == stateReady {
		vc.writeRaw(pongFrame)
	}
}

// frame parses and handles one client frame; the first must be auth.
func (vc *visitorConn) frame(m *gws.Message, first bool) {
	defer m.Close()
	f := new(clientFrame)
	err := json.Unmarshal(m.Bytes(), f)
	switch {
	case first && (err != nil || f.Type != "auth"):
		vc.state.Store(stateClosed)
		vc.conn.WriteClose(1008, []byte(notAuth(m.Bytes(), err)))
	case first:
		vc.auth(f)
	case err != nil:
		vc.writeError(codeInvalid, "frame is not a JSON object of a known shape", "", 0)
	default:
		vc.handle(f)
	}
}

// notAuth is the close reason for a first frame that is not an auth
// frame (err: how it failed to decode): the field of a wrong type when it
// is an auth frame otherwise.
func notAuth(frame []byte, err error) string {
	var te *json.UnmarshalTypeError
	var typ struct {
		Type string `json:"type"`
	}
	if errors.As(err, &te) && te.Field != "" && json.Unmarshal(frame, &typ) == nil && typ.Type == "auth" {
		return "bad auth frame: " + te.Field + " has the wrong JSON type"
	}
	return "the first frame must be auth"
}

// visitorConn is also the connection's gws.SessionStorage, so that gws
// allocates no map per connection; it stores nothing.
var _ gws.SessionStorage = (*visitorConn)(nil)

func (*visitorConn) Len() int                     { return 0 }
func (*visitorConn) Load(string) (any, bool)      { return nil, false }
func (*visitorConn) Delete(string)                {}
func (*visitorConn) Store(string, any)            {}
func (*visitorConn) Range(func(string, any) bool) {}
