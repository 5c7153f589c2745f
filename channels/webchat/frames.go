package webchat

import (
	"github.com/microdeets/microchat/inbox"
)

// Frames of the visitors' WebSocket (docs/widget-protocol.md).

// clientFrame is any frame from the widget; Type says which fields count.
type clientFrame struct {
	Type string `json:"type"` // auth, message, typing, read, page_view, ping
	// auth
	Token          string `json:"token"`
	LastSeq        int64  `json:"last_seq"`
	ConversationID int64  `json:"conversation_id"`
	// message
	ClientID      string  `json:"client_id"`
	Text          string  `json:"text"`
	AttachmentIDs []int64 `json:"attachment_ids"`
	// typing
	Typing bool `json:"typing"`
	// read
	UpTo int64 `json:"up_to"`
	// page_view
	URL      string `json:"url"`
	Title    string `json:"title"`
	Referrer string `json:"referrer"`
}

// Agent is an agent of a conversation as the widget shows them: name and
// presence, the responsible one first. hello and GET /widget/state carry
// them.
type Agent struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Presence    string `json:"presence"`
	Responsible bool   `json:"responsible"`
}

// Agents returns the participants as the widget shows them.
func Agents(parts []inbox.ParticipantAgent) []Agent {
	out := make([]Agent, 0, len(parts))
	for _, p := range parts {
		out = append(out, Agent{ID: p.AgentID, Name: p.Name, Presence: p.Presence, Responsible: p.Responsible})
	}
	return out
}

// helloConversation is the conversation in hello: where it stands.
type helloConversation struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Seq    int64  `json:"seq"`
}

type helloFrame struct {
	Type    string        `json:"type"` // hello
	Contact inbox.Contact `json:"contact"`
	// Conversation is null when the contact has none (it was deleted):
	// the widget offers to start one.
	Conversation *helloConversation `json:"conversation"`
	Agents       []Agent            `json:"agents"`
}

// The event frame, {"type":"event","event":{...}}, is written by
// inbox.Event.AppendFrame.

type ackFrame struct {
	Type     string        `json:"type"` // ack
	ClientID string        `json:"client_id"`
	Message  inbox.Message `json:"message"`
}

type typingFrame struct {
	Type    string `json:"type"` // typing
	AgentID int64  `json:"agent_id"`
	Name    string `json:"name"`
	Typing  bool   `json:"typing"`
}

type presenceFrame struct {
	Type     string `json:"type"` // presence
	AgentID  int64  `json:"agent_id"`
	Name     string `json:"name"`
	Presence string `json:"presence"`
}

// Error codes of error frames.
const (
	codeRateLimited = "rate_limited"
	codeInvalid     = "invalid"
	codeTooLarge    = "too_large"
	codeUnknownType = "unknown_type"
	codeUnavailable = "unavailable"
	// codeConflict: the message's client_id was already used by this
	// visitor for a message with other content; never retried.
	codeConflict = "conflict"
)

type errorFrame struct {
	Type       string `json:"type"` // error
	Code       string `json:"code"`
	Error      string `json:"error"`
	ClientID   string `json:"client_id,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

var (
	pongFrame = []byte(`{"type":"pong"}`)
	// pingFrame is the widget's heartbeat exactly as it sends it, every
	// 25 s from every socket: answered without decoding (see dispatcher).
	pingFrame   = []byte(`{"type":"ping"}`)
	resyncFrame = []byte(`{"type":"resync"}`)
)

// namedMessageAdded is the data of a message_added event of an agent's
// message as the visitor gets it: the message with its agent's name.
type namedMessageAdded struct {
	Message  namedMessage `json:"message"`
	Reopened bool         `json:"reopened,omitempty"`
}

// namedMessage is a message with agent_name, its agent's current display
// name (public to the visitor, as in /state's authors).
type namedMessage struct {
	inbox.Message
	AgentName string `json:"agent_name,omitempty"`
}
