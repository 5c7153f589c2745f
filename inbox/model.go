package inbox

import (
	"encoding/json"
	"time"
)

// Channel names: where a conversation started and how a message travelled.
const (
	ChannelChat  = "chat"
	ChannelEmail = "email"
)

// Conversation statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Message authors.
const (
	AuthorContact = "contact"
	AuthorAgent   = "agent"
	AuthorSystem  = "system"
)

// Delivery states of a message, in the order they happen. Queued is a reply
// kept for a contact who is offline and has no email address (rule 5); it
// becomes sent when they come back.
const (
	StateQueued    = "queued"
	StateSent      = "sent"
	StateDelivered = "delivered"
	StateRead      = "read"
)

// Agent presences. Online while the agent has a dashboard open, idle when
// the dashboard says so, offline after the grace period once the last one
// closed. Stored on transitions only.
const (
	PresenceOnline  = "online"
	PresenceIdle    = "idle"
	PresenceOffline = "offline"
)

// Agent roles.
const (
	RoleAdmin = "admin"
	RoleAgent = "agent"
)

// Contact is a customer, known by a widget session, an email address or both.
type Contact struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// EmailVerified says that Email is proved to be the contact's: mail
	// came from it, or they answered mail we sent to it (our Message-ID
	// or signed token; see threading.go). An address typed into the
	// widget is not: anyone can type anyone's address, so mail from it
	// never shows in that widget until proved (issue 12, item 5).
	EmailVerified bool   `json:"email_verified"`
	Phone         string `json:"phone,omitempty"`
	// Online is stored only on transitions (rule 6); heartbeats never write.
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	// Facts about the visitor's browser, recorded from the widget's
	// requests (spec rule 11); empty for an email-only contact.
	Browser        string `json:"browser,omitempty" gorm:"column:browser"`
	BrowserVersion string `json:"browser_version,omitempty" gorm:"column:browser_version"`
	OS             string `json:"os,omitempty" gorm:"column:os"`
	IP             string `json:"ip,omitempty" gorm:"column:ip"`
	Country        string `json:"country,omitempty" gorm:"column:country"` // ISO 3166-1 alpha-2
}

// Conversation is one thread with one contact.
type Conversation struct {
	ID        int64  `json:"id"`
	ContactID int64  `json:"contact_id"`
	Channel   string `json:"channel"` // origin: chat or email
	Status    string `json:"status"`
	Subject   string `json:"subject,omitempty"`
	// Seq is the sequence number of the conversation's latest event.
	Seq int64 `json:"seq"`
	// Token is a long random string that identifies the conversation in
	// addresses and subjects of email (threading, rule 9).
	Token          string     `json:"-"`
	HasEmail       bool       `json:"has_email"` // envelope indicator (rule 8)
	LastActivityAt time.Time  `json:"last_activity_at"`
	CreatedAt      time.Time  `json:"created_at"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
}

// Message is one entry of a conversation.
type Message struct {
	ID             int64   `json:"id"`
	ConversationID int64   `json:"conversation_id"`
	Seq            int64   `json:"seq"`                 // of the event that added it
	ClientID       *string `json:"client_id,omitempty"` // the sender's own id, for retries
	Author         string  `json:"author"`
	AgentID        *int64  `json:"agent_id,omitempty"`
	Channel        string  `json:"channel"`
	Text           string  `json:"text"`
	// HTML is sanitized HTML (email); never stored unsanitized.
	HTML        string       `json:"html,omitempty"`
	State       string       `json:"state"`
	Error       string       `json:"error,omitempty"` // why, when State is StateFailed: the server's answer
	CreatedAt   time.Time    `json:"created_at"`
	Attachments []Attachment `json:"attachments,omitempty" gorm:"-"`
	// Email is the envelope of an email message (rule 8): nil for chat
	// messages, and for an email reply not sent yet.
	Email *EmailInfo `json:"email,omitempty" gorm:"-"`
}

// Attachment is a file sent with a message. Its bytes live in the database
// (so every node sees them) and are loaded only by OpenAttachment.
//
// An attachment is its uploader's until it is sent: only they can see it
// and attach it, to one message; once sent (MessageID set) everyone of
// the conversation sees it (OpenAttachment, OpenContactAttachment).
type Attachment struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	MessageID      *int64 `json:"message_id,omitempty"`
	// Uploader is AuthorContact (the conversation's contact, or the
	// sender of an incoming mail), AuthorAgent (then UploaderAgentID) or
	// AuthorSystem (the bounce report attached to a mail that bounced);
	// empty for an unsent upload stored before uploaders were recorded,
	// which nobody can attach.
	Uploader        string    `json:"uploader,omitempty"`
	UploaderAgentID *int64    `json:"uploader_agent_id,omitempty"`
	Name            string    `json:"name"`
	ContentType     string    `json:"content_type"`
	Size            int64     `json:"size"`
	Data            []byte    `json:"-"`
	CreatedAt       time.Time `json:"created_at"`
}

// Notification settings of an agent (AgentSettings.Notifications): which
// events their dashboard notifies them of.
const (
	// NotifyAll: new conversations, contact messages in Unassigned ones
	// (rule 1), and messages in the conversations the agent joined.
	NotifyAll = "all"
	// NotifyMine: only messages in the conversations the agent joined.
	NotifyMine = "mine"
	// NotifyOff: none.
	NotifyOff = "off"
)

// AgentSettings are an agent's own preferences for their dashboard, kept
// with the account so that every browser they log in from has them. The
// server only stores them; the dashboard applies them.
type AgentSettings struct {
	// Notifications is NotifyAll (the default), NotifyMine or NotifyOff.
	Notifications string `json:"notifications" gorm:"column:notifications"`
	// Sound plays a sound with each notification (default true).
	Sound bool `json:"sound" gorm:"column:sound"`
}

// DefaultAgentSettings are a new agent's settings.
func DefaultAgentSettings() AgentSettings {
	return AgentSettings{Notifications: NotifyAll, Sound: true}
}

// Agent is an account that logs in to the dashboard. Its JSON also has
// "disabled": true while DeactivatedAt is set (MarshalJSON).
type Agent struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	// Presence is online, idle or offline (PresenceOnline, ...).
	Presence string `json:"presence"`
	// DeactivatedAt is when the agent was disabled (RemoveAgent,
	// UpdateAgent); a disabled agent cannot log in until re-enabled, and
	// the row stays for the name on its messages.
	DeactivatedAt *time.Time `json:"deactivated_at,omitempty"`
	// Settings are the agent's own preferences (PATCH /agents/me).
	Settings AgentSettings `json:"settings" gorm:"embedded"`
}

// IsAdmin reports whether the agent may do admin actions.
func (a *Agent) IsAdmin() bool { return a.Role == RoleAdmin }

// Disabled reports whether the agent is disabled (cannot log in).
func (a *Agent) Disabled() bool { return a.DeactivatedAt != nil }

// agentFields is Agent without its MarshalJSON.
type agentFields Agent

// AgentJSON is an Agent as the API shows it: its fields and "disabled",
// derived from DeactivatedAt so that the two never disagree.
type AgentJSON struct {
	agentFields
	Disabled bool `json:"disabled"`
}

// MarshalJSON writes the agent as AgentJSON.
func (a Agent) MarshalJSON() ([]byte, error) {
	return json.Marshal(AgentJSON{agentFields(a), a.DeactivatedAt != nil})
}

// Participant records that an agent takes or took part in a conversation.
// LeftAt is nil while they are in it; past participations stay so that a
// rating counts for everyone who took part.
type Participant struct {
	ID             int64      `json:"-"`
	ConversationID int64      `json:"-"`
	AgentID        int64      `json:"agent_id"`
	Responsible    bool       `json:"responsible"`
	JoinedAt       time.Time  `json:"joined_at"`
	LeftAt         *time.Time `json:"left_at,omitempty"`
}

// Rating is the contact's satisfaction survey answer for a conversation.
type Rating struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	ContactID      int64     `json:"contact_id"`
	Score          int       `json:"score"`
	Comment        string    `json:"comment,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// RatingAgent links a rating to each agent who took part.
type RatingAgent struct {
	RatingID int64 `gorm:"primaryKey;autoIncrement:false"`
	AgentID  int64 `gorm:"primaryKey;autoIncrement:false"`
}

// Session is an agent's login. The primary key is the SHA-256 of the cookie
// value, so a copy of the database does not hold usable cookies.
type Session struct {
	ID         string    `gorm:"primaryKey"`
	AgentID    int64     `gorm:"index"`
	CSRFToken  string    `gorm:"column:csrf_token"`
	CreatedAt  time.Time //
	ExpiresAt  time.Time `gorm:"index"`
	LastUsedAt time.Time
}

// VisitorSession binds a widget's visitor token to a contact. The primary
// key is the SHA-256 of the token, as for agent sessions. It expires
// widget.session_ttl after its last use (recorded at most once a minute).
type VisitorSession struct {
	ID         string `gorm:"primaryKey"`
	ContactID  int64
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
}

// PageView is a page of the customer's site that a visitor viewed (spec
// rule 11). Only the newest maxPageViews of a contact are kept.
type PageView struct {
	ID        int64     `json:"-"`
	ContactID int64     `json:"-"`
	URL       string    `json:"url" gorm:"column:url"`
	Title     string    `json:"title,omitempty"`
	Referrer  string    `json:"referrer,omitempty"`
	ViewedAt  time.Time `json:"viewed_at"`
}

// AgentRead is how far an agent has read a conversation, for unread counts.
type AgentRead struct {
	AgentID        int64 `gorm:"primaryKey;autoIncrement:false"`
	ConversationID int64 `gorm:"primaryKey;autoIncrement:false;index"`
	Seq            int64
}

// SetupToken is the one-time token of the setup link printed on first run.
type SetupToken struct {
	ID        string `gorm:"primaryKey"` // SHA-256 of the token
	ExpiresAt time.Time
	CreatedAt time.Time
}

// SavedReply is a reply the team keeps for reuse, inserted in the composer
// by typing "/" and its shortcut. Admins write them; every agent reads them.
type SavedReply struct {
	ID int64 `json:"id"`
	// Shortcut is 1 to 32 of a-z, 0-9, _ and -, unique.
	Shortcut string `json:"shortcut"`
	// Title is a single line of 1 to 100 bytes, shown in the picker.
	Title string `json:"title"`
	// Text is what is inserted: multi-line, 1 byte to the store's
	// MaxMessageBytes, so that it can be sent as it is.
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
}

// eventRow is an Event as stored.
type eventRow struct {
	ID             int64
	ConversationID int64
	Seq            int64
	Type           string
	MessageID      *int64
	Data           []byte
	CreatedAt      time.Time
}

func (eventRow) TableName() string { return "events" }
