package inbox

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
)

// Event types. Each change to a conversation is one event with the
// conversation's next sequence number; its Data is the JSON of the payload
// type named beside it.
const (
	EventConversationCreated = "conversation_created" // ConversationCreated
	EventMessageAdded        = "message_added"        // MessageAdded
	EventJoined              = "joined"               // Joined
	EventLeft                = "left"                 // Left
	EventClosed              = "closed"               // Closed
	EventMessagesRead        = "messages_read"        // MessagesRead
	EventMessageState        = "message_state"        // MessageState
	EventRated               = "rated"                // Rated
	// EventConversationDeleted is published but not stored: the
	// conversation and its events are gone. Its Seq is the next number.
	EventConversationDeleted = "conversation_deleted" // ConversationDeleted

	// Transient events are published but never stored, and their Seq is
	// 0: they say what is true now (someone types, someone is online) and
	// a client that missed them loses nothing it could replay.
	EventTyping          = "typing"           // Typing
	EventPresence        = "presence"         // AgentPresence, in each conversation the agent is in, and in none (ConversationID 0) for the agents' sockets
	EventContactPresence = "contact_presence" // ContactPresence, in the contact's newest conversation
)

// Event is one change to a conversation, as stored, replayed and published.
type Event struct {
	// ID orders events globally on one database, but on PostgreSQL ids are
	// not committed in order: resume by (conversation, Seq), never by ID.
	ID             int64           `json:"id"`
	ConversationID int64           `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	Type           string          `json:"type"`
	Data           json.RawMessage `json:"data,omitempty"`
	At             time.Time       `json:"at"`
}

// Transient reports whether the event is one that is never stored (Seq 0).
func (e Event) Transient() bool { return e.Seq == 0 }

// Decode unmarshals the event's payload into v, one of the payload types.
func (e Event) Decode(v any) error { return json.Unmarshal(e.Data, v) }

// ConversationCreated is the payload of the first event of a conversation.
type ConversationCreated struct {
	Conversation Conversation `json:"conversation"`
	Contact      Contact      `json:"contact"`
}

// MessageAdded is the payload of EventMessageAdded. Reopened is true when a
// contact message took a closed conversation back to Unassigned (rule 4).
type MessageAdded struct {
	Message  Message `json:"message"`
	Reopened bool    `json:"reopened,omitempty"`
}

// Joined is the payload of EventJoined.
type Joined struct {
	AgentID     int64  `json:"agent_id"`
	AgentName   string `json:"agent_name"`
	Responsible bool   `json:"responsible"`
	Reopened    bool   `json:"reopened,omitempty"`
}

// Left is the payload of EventLeft.
type Left struct {
	AgentID   int64  `json:"agent_id"`
	AgentName string `json:"agent_name"`
}

// Closed is the payload of EventClosed: the last participant left (rule 3)
// and the contact is offered the satisfaction survey.
type Closed struct {
	SurveyOffered bool `json:"survey_offered"`
}

// MessagesRead says that the contact (Reader "contact") or an agent read
// the other side's messages up to and including sequence number UpTo.
type MessagesRead struct {
	Reader     string  `json:"reader"`
	AgentID    int64   `json:"agent_id,omitempty"`
	UpTo       int64   `json:"up_to"`
	MessageIDs []int64 `json:"message_ids"`
}

// MessageState is the payload of EventMessageState: messages that changed
// delivery state (sent, delivered, failed) or channel. Error is the
// server's answer when State is StateFailed (Message.Error), so that an
// agent's screen shows why at once.
type MessageState struct {
	MessageIDs []int64 `json:"message_ids"`
	State      string  `json:"state"`
	Error      string  `json:"error,omitempty"`
}

// Rated is the payload of EventRated.
type Rated struct {
	Score    int     `json:"score"`
	Comment  string  `json:"comment,omitempty"`
	AgentIDs []int64 `json:"agent_ids"`
}

// ConversationDeleted is the payload of EventConversationDeleted.
type ConversationDeleted struct {
	ContactID int64 `json:"contact_id"`
}

// Typing is the payload of the transient EventTyping: the contact
// (Author "contact") or an agent started or stopped typing.
type Typing struct {
	Author    string `json:"author"`
	AgentID   int64  `json:"agent_id,omitempty"`
	Name      string `json:"name,omitempty"` // the agent's
	ContactID int64  `json:"contact_id,omitempty"`
	Typing    bool   `json:"typing"`
}

// AgentPresence is the payload of the transient EventPresence.
type AgentPresence struct {
	AgentID  int64  `json:"agent_id"`
	Name     string `json:"name"`
	Presence string `json:"presence"`
}

// ContactPresence is the payload of the transient EventContactPresence.
type ContactPresence struct {
	ContactID int64 `json:"contact_id"`
	Online    bool  `json:"online"`
}

// Publisher hands committed events to every subscriber, in this process
// (Hub) and, on PostgreSQL, on the other nodes (PGBus); and likewise the
// notices of ended credentials.
type Publisher interface {
	Publish(events []Event)
	Revoke(r Revoked)
}

// Revoked is the notice that credentials ended: an agent logged out or
// was removed, a visitor token was revoked, a contact erased. It is
// published after the commit that ended them and is not stored: that
// commit (the session row deleted, the contact erased, the agent
// deactivated) is the record every node reads; the notice only lets the
// sockets opened with those credentials close at once (code 4401) instead
// of at their next check. One field is set.
type Revoked struct {
	// SessionID is one agent session, as Session.ID (SessionID of the
	// cookie's value).
	SessionID string `json:"session_id,omitempty"`
	// AgentID is every session of the agent.
	AgentID int64 `json:"agent_id,omitempty"`
	// VisitorSessionID is one visitor token, as VisitorSession.ID.
	VisitorSessionID string `json:"visitor_session_id,omitempty"`
	// ContactID is every visitor token of the contact.
	ContactID int64 `json:"contact_id,omitempty"`
	// Webhooks is no credentials' end but the notice that webhooks were
	// added, changed or removed: each node reads again whether any is
	// enabled (webhooks.go).
	Webhooks bool `json:"webhooks,omitempty"`
}

// ErrLagged closes a subscription whose reader fell behind; the reader
// resumes from the database with EventsSince.
var ErrLagged = errors.New("subscriber fell behind")

// Hub delivers events to the subscribers of this process. Publish never
// blocks: a subscriber whose buffer is full is closed with ErrLagged, so
// one slow socket cannot stall the others. The zero Hub is not usable; use
// NewHub.
//
// The subscribers of one conversation are a short slice rather than a
// map: a visitor's conversation has one or two sockets, and tens of
// thousands of idle visitors each cost one small slice.
type Hub struct {
	mu    sync.RWMutex
	byID  map[int64][]*Subscription
	all   map[*Subscription]struct{}
	count int
	// revoked are the functions of OnRevoked, by a number of their own.
	revoked map[uint64]func(Revoked)
	nextRev uint64
	// resync are the functions of OnResync, by a number of their own
	// (from nextRev too).
	resync map[uint64]func()
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{byID: map[int64][]*Subscription{}, all: map[*Subscription]struct{}{}}
}

var _ Publisher = (*Hub)(nil)

// Subscription receives events on C, or through its function (see
// SubscribeFunc), until it is closed, by Close or because it lagged (then
// Err returns ErrLagged).
type Subscription struct {
	C <-chan Event

	c              chan Event
	fn             func(Event)
	hub            *Hub
	conversationID int64
	mu             sync.Mutex
	closed         bool
	err            error
}

// Subscribe returns a subscription to the events of one conversation, or
// of all conversations when conversationID is 0. buffer is how many events
// may wait before the subscriber counts as lagging.
func (h *Hub) Subscribe(conversationID int64, buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, hub: h, conversationID: conversationID}
	h.add(s)
	return s
}

// SubscribeFunc is Subscribe without a channel: fn is called with each
// event, in the publisher's goroutine and while the hub is locked. fn must
// not block and must not call the Hub (Subscribe, Close): it hands the
// event to its own queue, bounded, and ends the subscription later if
// that queue is full. It lets a connection receive events without a
// goroutine of its own waiting on a channel.
func (h *Hub) SubscribeFunc(conversationID int64, fn func(Event)) *Subscription {
	s := &Subscription{fn: fn, hub: h, conversationID: conversationID}
	h.add(s)
	return s
}

func (h *Hub) add(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.conversationID == 0 {
		h.all[s] = struct{}{}
	} else {
		h.byID[s.conversationID] = append(h.byID[s.conversationID], s)
	}
	h.count++
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.count
}

// Publish delivers events to the subscribers, in the order given.
func (h *Hub) Publish(events []Event) {
	var lagged []*Subscription
	h.mu.RLock()
	for _, ev := range events {
		for s := range h.all {
			if !s.offer(ev) {
				lagged = append(lagged, s)
			}
		}
		for _, s := range h.byID[ev.ConversationID] {
			if !s.offer(ev) {
				lagged = append(lagged, s)
			}
		}
	}
	h.mu.RUnlock()
	for _, s := range lagged {
		s.close(ErrLagged)
	}
}

func (s *Subscription) offer(ev Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if s.fn != nil {
		s.fn(ev)
		return true
	}
	select {
	case s.c <- ev:
		return true
	default:
		return false
	}
}

// OnRevoked calls fn with every Revoked notice published on the hub, in
// the publisher's goroutine: fn must not block nor call the Hub. stop ends
// it; fn is not called once stop returned.
func (h *Hub) OnRevoked(fn func(Revoked)) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.revoked == nil {
		h.revoked = map[uint64]func(Revoked){}
	}
	h.nextRev++
	id := h.nextRev
	h.revoked[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.revoked, id)
		h.mu.Unlock()
	}
}

// Revoke hands a notice to every OnRevoked function.
func (h *Hub) Revoke(r Revoked) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.revoked {
		fn(r)
	}
}

// OnResync calls fn each time this node may have missed Revoked notices
// (and events) of other nodes: after the bus (pgbus.go) lost its
// listening connection and listens again, once it caught up with the
// events. fn re-checks every socket's credentials against the database
// (sockets.Registry.RecheckAll), so that a logout on another node while
// this one was deaf still closes its sockets. fn runs in the bus's
// goroutine: it must not block nor call the Hub. stop ends it; fn is not
// called once stop returned.
func (h *Hub) OnResync(fn func()) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.resync == nil {
		h.resync = map[uint64]func(){}
	}
	h.nextRev++
	id := h.nextRev
	h.resync[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.resync, id)
		h.mu.Unlock()
	}
}

// Resync calls every OnResync function.
func (h *Hub) Resync() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.resync {
		fn()
	}
}

// Close ends the subscription. It is safe to call more than once. After
// Close returns, the function of a SubscribeFunc is not called again.
func (s *Subscription) Close() { s.close(nil) }

// Err says why the subscription ended: nil after Close, ErrLagged if the
// reader fell behind.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) close(err error) {
	h := s.hub
	h.mu.Lock()
	if s.conversationID == 0 {
		if _, ok := h.all[s]; ok {
			delete(h.all, s)
			h.count--
		}
	} else if list := h.byID[s.conversationID]; list != nil {
		if i := slices.Index(list, s); i >= 0 {
			list = slices.Delete(list, i, i+1)
			h.count--
		}
		if len(list) == 0 {
			delete(h.byID, s.conversationID)
		} else {
			h.byID[s.conversationID] = list
		}
	}
	h.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.err = err
	if s.c != nil {
		close(s.c)
	}
}
