package inbox

import "time"

// The email channel's side of the model: what the IMAP ingest hands to the
// store (IncomingEmail), what the store hands to the SMTP sender
// (OutboundEmail), and the records that keep mail exactly-once (rule 9).
// The channel itself, IMAP and SMTP, is channels/email; only this package
// reads and writes the database.

// StateFailed is the delivery state of a reply that could not be sent: an
// email the SMTP server refused for good (5xx), or that bounced. The
// server's answer is kept on the message (Message.Error).
const StateFailed = "failed"

// Kinds of outgoing email (OutboundEmail.Kind).
const (
	// OutboundReply is one agent reply sent by email (rule 5).
	OutboundReply = "reply"
	// OutboundDigest is the continuity mail: the agent chat messages an
	// offline contact has not read (rule 7), several in one mail.
	OutboundDigest = "digest"
	// OutboundSurvey is the satisfaction survey of a closed conversation,
	// for a contact who is offline or email-only (rule 3).
	OutboundSurvey = "survey"
)

// Address is a mail address with its display name (RFC 5322 section 3.4).
// Addr is the bare addr-spec, "user@example.com"; Name may be empty.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

// IncomingEmail is one parsed mail of a mailbox, handed to
// Store.IngestEmail. Text and HTML are what the thread shows (quoted
// history and signature trimmed); FullText and FullHTML are the whole
// body. HTML is sanitized again by the store whatever the caller did.
type IncomingEmail struct {
	// Mailbox is the config name of the mailbox the mail was read from.
	Mailbox string
	// MessageID is the Message-ID header without the angle brackets (RFC
	// 5322 section 3.6.4); empty when the mail has none, and then RawHash
	// is its key for deduplication.
	MessageID string
	// RawHash is the hex SHA-256 of Raw.
	RawHash string
	// InReplyTo and References are the Message-IDs of those headers,
	// without angle brackets, oldest first for References.
	InReplyTo  []string
	References []string
	From       Address
	// ReplyTo is the Reply-To header's first address, if any.
	ReplyTo *Address
	To, Cc  []Address
	// Recipients are the addresses the mail was delivered to as far as
	// the headers say: To, Cc, Delivered-To, X-Original-To, Envelope-To.
	// A plus-address conversation token (rule 9) is looked for here.
	Recipients []string
	Subject    string
	Date       time.Time
	Text       string
	FullText   string
	HTML       string
	FullHTML   string
	// Attachments are every attachment and inline image of the mail.
	Attachments []IncomingAttachment
	// Auto is set when the mail is automatic (Auto-Submitted other than
	// "no", Precedence bulk/junk/list, List-Id, an empty Return-Path, a
	// bounce, or From one of our own mailboxes; RFC 3834): no automatic
	// mail is sent in answer, and it does not reopen a closed
	// conversation. AutoReason says which signal it was.
	Auto       bool
	AutoReason string
	// Bounce is set for a delivery status notification (RFC 3464,
	// multipart/report): the Message-ID of the mail that bounced and the
	// reason.
	Bounce *Bounce
	// Notices are limits the parser hit (an attachment over the size
	// limit, a part in an unknown charset), shown on the message.
	Notices []string
	// Raw is the whole message as fetched, kept for admins.
	Raw []byte
	// UIDValidity and UID locate the mail in its IMAP folder; when set,
	// IngestEmail advances the folder's checkpoint (IMAPCheckpoint) to UID
	// in the same transaction. Folder is the IMAP folder's name.
	Folder      string
	UIDValidity uint32
	UID         uint32
}

// IncomingAttachment is an attachment or inline image of an incoming
// mail. ContentID is the Content-ID without angle brackets, by which the
// HTML part refers to an inline image as "cid:...".
type IncomingAttachment struct {
	Name        string
	ContentType string
	ContentID   string
	Inline      bool
	Data        []byte
}

// Bounce is what a delivery status notification says (RFC 3464).
// OriginalMessageID is the Message-ID (without brackets) of the mail that
// could not be delivered; Status is the DSN status code ("5.1.1");
// Diagnostic is the remote server's answer.
type Bounce struct {
	OriginalMessageID string
	Recipient         string
	Status            string
	Diagnostic        string
}

// IngestResult is what IngestEmail did with a mail. Duplicate means the
// mail had been imported before (by Message-ID, else by RawHash) and
// nothing was stored, even when its conversation was deleted since.
type IngestResult struct {
	ConversationID int64
	MessageID      int64
	Created        bool // a new conversation was started for it
	Duplicate      bool
	// Threaded says how the conversation was found: "references",
	// "address", "subject", "bounce" or "" for a new conversation.
	Threaded string
	// Ignored, when not empty, says why the mail was recorded as seen
	// (it is not imported again) but stored nowhere: mail From one of
	// our own mailboxes that is no bounce is a loop (issue 12 item 8).
	// ConversationID and MessageID are then 0.
	Ignored string
}

// IMAPCheckpoint is how far one IMAP folder has been imported: every mail
// with a UID up to LastUID within UIDValidity is stored or quarantined
// (RFC 9051 section 2.3.1.1).
type IMAPCheckpoint struct {
	UIDValidity uint32
	LastUID     uint32
}

// QuarantinedEmail is a mail that could not be parsed, kept raw for admins
// so that it never stops the rest of its mailbox.
type QuarantinedEmail struct {
	ID          int64     `json:"id"`
	Mailbox     string    `json:"mailbox"`
	Folder      string    `json:"folder"`
	UIDValidity uint32    `json:"uid_validity"`
	UID         uint32    `json:"uid"`
	Reason      string    `json:"reason"`
	Size        int64     `json:"size"`
	CreatedAt   time.Time `json:"created_at"`
	Raw         []byte    `json:"-"`
}

// OutboundEmail is one mail for the SMTP sender to compose and send, read
// from the outbox by Store.ClaimOutbox: everything it needs, so that
// composing is a pure function of it.
type OutboundEmail struct {
	// ID is the outbox row's id, for OutboxSent / OutboxRetry /
	// OutboxFailed.
	ID             int64
	Kind           string // OutboundReply, OutboundDigest or OutboundSurvey
	ConversationID int64
	// Mailbox is the config name of the mailbox to send from: the one the
	// conversation's mail came in through, else the first configured.
	Mailbox string
	// MessageID is our Message-ID for this mail, without brackets, the
	// same on every attempt so that a duplicate after a crash is
	// recognisable (RFC 5322 section 3.6.4).
	MessageID string
	// InReplyTo and References thread the mail (RFC 5322 section 3.6.4):
	// the newest Message-ID of the conversation, and its chain.
	InReplyTo  string
	References []string
	To         Address
	Cc         []Address
	Subject    string
	// ReplyTo is the address replies should go to, carrying the
	// conversation's token when the mailbox has plus addressing; empty
	// means the mailbox's address.
	ReplyTo string
	// AgentName is the author's display name, for "Agent Name via
	// Support"; empty for a survey.
	AgentName string
	// Messages are the agent messages carried: one for a reply, the
	// unread ones of a digest, none for a survey.
	Messages []OutboundMessage
	// Context is the conversation's last contact message before the
	// carried ones (digest), to remind the contact what it was about.
	Context string
	// RatingTokens are the survey's signed single-use tokens, for the
	// scores 1 to 5 in order (survey only); the link of one is
	// base_url + "/rate/" + token, a page that records the rating.
	RatingTokens []string
	// Attempts is how many sends were tried before this one.
	Attempts int
	// Token is the conversation's signed token (Store.ConversationToken),
	// for the subject ("[#c42-...]", rule 9).
	Token string
}

// OutboundMessage is one agent message carried by an OutboundEmail.
type OutboundMessage struct {
	ID          int64
	AgentName   string
	Text        string
	CreatedAt   time.Time
	Attachments []Attachment // with Data
}
