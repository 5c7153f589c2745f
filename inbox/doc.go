// Package inbox is the conversation model of Microchat and its rules.
//
// Only inbox talks to the database; every write is one transaction behind a
// method of Store, and every change to a conversation appends an Event with
// the conversation's next sequence number in that same transaction. Events
// are handed to the Bus after the commit, never before, so that a subscriber
// never sees a change that could still roll back.
//
// The rules (numbered as in the product specification):
//
//  1. Unassigned: an open conversation with no participant is Unassigned.
//  2. Join: an agent becomes a participant; the first one is responsible.
//     Joining takes the conversation out of Unassigned for everybody.
//  3. Leave: the agent stops being a participant. When the last one leaves,
//     the conversation is closed and the contact is offered a rating, which
//     counts for every agent who took part. A contact the widget cannot
//     offer it to (offline, or an email conversation) is sent it by email
//     with signed single-use rating links (continuity.go). The operator
//     report (reports.go) counts joins, ratings and each agent's first
//     response after a join; a private note is never a response.
//  4. Return: a contact message in a conversation without participants puts
//     it (back) in Unassigned, reopening it if it was closed, with its whole
//     history.
//  5. Reply channel: an agent reply goes by chat while the contact is online,
//     by email while they are offline and have an address; otherwise it is
//     kept (state queued) and delivered when they come back. The agent may
//     choose the channel. The store decides with its channels (Channel:
//     the web chat, and email when a mailbox is configured; Reaches says
//     whether one reaches the contact now), inside the transaction that
//     stores the reply, so that a contact coming online at that moment
//     either is seen online or gets the queued reply. A reply by email is
//     stored queued with its email_outbox row in that transaction. After
//     the commit each new agent message is handed to its channel's
//     Deliver. AddReply says which channel was used and why; ReplyChannel
//     previews it by the same rule.
//  6. Online: presence is stored on transitions only (SetContactsOnline,
//     SetAgentPresence), as rows of the node that counts it, and is the
//     aggregate over the live nodes (nodes.go: Heartbeat, ReapNodes);
//     changes of the aggregate are announced by transient events (Seq 0,
//     never stored: typing, presence); a contact coming online gets their
//     queued chat replies, which turn sent.
//  7. Continuity: agent chat messages an offline contact with an email
//     address has not read after a delay go to them as one mail per
//     conversation (EnqueueDigests): those they left unread and those
//     queued for them while they were away, which stay queued for the
//     chat until they come back. No automatic mail (digest, survey)
//     answers automatic mail. Every mail goes through the outbox, a table
//     claimed with leases by any node (outbox.go).
//  8. Envelope: a conversation with email messages says so (HasEmail), and
//     so does each email message (Message.Email: subject, From, To, Cc);
//     EmailDetails holds its headers and whole body, EmailRaw its source.
//  9. Threading: IngestEmail puts an incoming mail in the conversation its
//     In-Reply-To/References, a signed token in the address it was sent
//     to, or a signed token in its subject name, in that order, but only
//     one its sender belongs to; otherwise in a new one. A mail is stored
//     once: the record of its Message-ID outlives its conversation. An
//     email typed into the widget is unverified until a reply to our mail
//     proves it, and the widget shows only chat conversations
//     (threading.go).
//  10. Widget session: a visitor token (only its SHA-256 is stored) binds
//     a widget to one contact, for widget.session_ttl after its last use.
//  11. Visitor information: facts of the browser and the pages viewed
//     (the newest 200) are kept with the contact.
//  12. Delete: an admin can delete a conversation (messages, attachments and
//     events gone for good) and erase a contact with all of theirs.
//
// Private notes (issue 13, item 6) are agent messages on ChannelNote:
// stored and announced to the agents like any message, but decided
// without any Channel, delivered by none, never mailed, never the
// contact's to see (the widget's reads, its socket's events, its read
// receipts and attachments), and they change neither the conversation's
// status nor its LastActivityAt. The contact's stream of events skips
// their sequence numbers.
//
// Several agents can take part in one conversation. Sequence numbers are per
// conversation, strictly increasing and without gaps: the first statement of
// every write transaction bumps conversations.seq, which also locks the row on
// PostgreSQL (SQLite runs writes one at a time on one connection). A
// transaction that locks contacts too (storing replies, presence, erase,
// a mail that proves its contact's address) locks them first, then the
// conversations, each in ascending id order. Others only read the
// contact (a survey or digest deciding whether to mail them).
//
// Messages sent by a client carry the client's own id, a key of its author
// (the conversation's contact, or one agent): a message whose (conversation,
// author, client id) is already stored with the same content is not stored
// again and the first one is returned, so a retried send is harmless; other
// content under the key is a ConflictError. Another author's equal client id
// is another key, so nobody can pre-empt another's message.
//
// An attachment is its uploader's until a message of theirs sends it: only
// they see it and attach it, once; then the whole conversation sees it.
//
// Every user text goes through text.go (SingleLine, MultiLine): NUL and
// invalid UTF-8 are refused on both databases, single-line fields lose
// control and bidi override characters.
//
// The hot path, appending a message, is prepared SQL rather than gorm and
// commits several messages per transaction (group commit); each caller is
// answered only after its message is committed. See append.go.
package inbox
