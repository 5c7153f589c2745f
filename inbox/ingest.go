package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	stdhtml "html"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Incoming mail: IngestEmail stores one parsed mail in one transaction
// with its events, the record that it was imported (email_ids: deleted
// stays deleted) and the IMAP checkpoint. Threading and the sender's
// identity are in threading.go.

// Directions of email_ids.
const (
	directionIn  = "in"
	directionOut = "out"
)

// Bounds of what one mail stores as its message; the whole text and HTML
// are kept in its envelope (EmailDetails), the message says it was cut.
const (
	maxEmailTextBytes = 64 << 10
	maxEmailHTMLBytes = 256 << 10
	maxEmailSubject   = 500
	maxEmailAddress   = 254 // RFC 5321 section 4.5.3.1.3, a path less its brackets
	maxEmailNotices   = 50
	maxEmailKeyBytes  = 255
)

// emailIDRow is a Message-ID received or sent (email_ids): the threading
// index and the dedupe record. Its ids are NULL once the conversation is
// deleted.
type emailIDRow struct {
	Key            string `gorm:"column:key;primaryKey"`
	ConversationID *int64
	MessageID      *int64
	Direction      string
	CreatedAt      time.Time
}

func (emailIDRow) TableName() string { return "email_ids" }

// emailMessageRow is the envelope of an email message (email_messages).
// Addresses are JSON (Address, []Address), References space-separated.
type emailMessageRow struct {
	MessageID  int64 `gorm:"primaryKey;autoIncrement:false"`
	Mailbox    string
	HeaderID   string `gorm:"column:header_id"`
	InReplyTo  string
	Refs       string `gorm:"column:refs"`
	Subject    string
	FromAddr   string
	ReplyTo    string // JSON Address; empty when the mail had no Reply-To
	ToAddrs    string
	CcAddrs    string
	FullText   string
	FullHTML   string `gorm:"column:full_html"`
	Trimmed    bool
	Auto       bool
	AutoReason string
	Notices    string
	Raw        []byte
	CreatedAt  time.Time
}

func (emailMessageRow) TableName() string { return "email_messages" }

// EmailInfo is the envelope of an email message as the thread shows it
// (rule 8): Message.Email. Trimmed says that quoted history or a
// signature was cut from the text (the whole is in EmailDetails); Auto
// that the mail was automatic (an out-of-office answer, a list);
// Notices are limits the parser or the store hit (an attachment left
// out, the text cut).
type EmailInfo struct {
	Subject string    `json:"subject"`
	From    Address   `json:"from"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	Trimmed bool      `json:"trimmed,omitempty"`
	Auto    bool      `json:"auto,omitempty"`
	Notices []string  `json:"notices,omitempty"`
}

// EmailDetails is the whole of one email message: its envelope, headers
// and full body, for an agent who opens what the thread trimmed. The raw
// source is EmailRaw's, for admins.
type EmailDetails struct {
	MessageID      int64  `json:"message_id"`
	ConversationID int64  `json:"conversation_id"`
	Mailbox        string `json:"mailbox,omitempty"`
	// HeaderID is the Message-ID header, without angle brackets;
	// InReplyTo and References likewise (RFC 5322 section 3.6.4).
	HeaderID   string   `json:"header_id,omitempty"`
	InReplyTo  []string `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// ReplyTo is the Reply-To header's first address, where answers to
	// the contact's mail go (RFC 5322 section 3.6.2); nil when it had
	// none.
	ReplyTo *Address `json:"reply_to,omitempty"`
	EmailInfo
	FullText string `json:"full_text"`
	// FullHTML is sanitized like Message.HTML.
	FullHTML   string `json:"full_html,omitempty"`
	AutoReason string `json:"auto_reason,omitempty"`
	// RawSize is the size of the raw source in bytes (EmailRaw).
	RawSize   int64     `json:"raw_size"`
	CreatedAt time.Time `json:"created_at"`
}

// emailKey is the email_ids key of a Message-ID: itself, or for one over
// 255 bytes "sha256-id:" and its hash, the same wherever it is seen (an
// entry of a PostgreSQL index holds at most about 2,700 bytes, and a
// mail that cannot be recorded would stop its mailbox).
func emailKey(messageID string) string {
	if len(messageID) <= maxEmailKeyBytes {
		return messageID
	}
	sum := sha256.Sum256([]byte(messageID))
	return "sha256-id:" + hex.EncodeToString(sum[:])
}

// IngestEmail stores one incoming mail (issue 12), in one transaction
// with its events:
//
//   - Dedupe: a mail whose key (its Message-ID, else "sha256:" and the
//     hash of its raw source) was imported before, even into a
//     conversation deleted since, or that we sent, is a Duplicate and
//     stores nothing.
//   - Bounce (RFC 3464): a report on a mail of ours marks the message it
//     carried StateFailed with the server's answer (Message.Error, and an
//     EventMessageState), and attaches the report to it as
//     message/rfc822; it starts and reopens nothing. A report on a mail
//     of ours that carried several messages (a digest) is shown as an
//     automatic message of its conversation; one on a mail of a deleted
//     conversation is dropped; one on a mail that is not ours is an
//     ordinary automatic mail.
//   - Otherwise the mail is threaded (rule 9) and becomes a contact
//     message of channel email in the conversation found, or in a new one
//     of the contact known by its From (threading.go). A contact message
//     reopens a closed conversation into Unassigned (rule 4), an
//     automatic one (in.Auto) does not. HTML is sanitized, attachments
//     and inline images stored with the message (cid: URLs of the HTML
//     point to them, RFC 2392), the envelope kept (EmailInfo,
//     EmailDetails, EmailRaw).
//   - Mail From one of our own mailboxes (OwnMailbox of
//     Options.Mailboxes) that is no bounce is our own mail coming back:
//     its key is recorded, nothing is stored, and the result is Ignored
//     (issue 12 item 8: no conversation, so nothing ever answers it).
//   - When in.UID is not 0 the checkpoint of (in.Mailbox, in.Folder)
//     advances to in.UID, in every case above.
//
// An *InvalidError means the mail cannot be stored (no sender, no key):
// quarantine it. Any other error is transient (the database): nothing
// was stored, try again later.
func (s *Store) IngestEmail(ctx context.Context, in IncomingEmail) (IngestResult, error) {
	res, err := s.IngestEmails(ctx, []IncomingEmail{in})
	if err != nil {
		return IngestResult{}, err
	}
	return res[0], nil
}

// IngestEmails stores mails as IngestEmail does, one after the other in
// the order given, all in one transaction with their events and
// checkpoints: a mail threads into the conversation a mail before it in
// the same call started, and a Message-ID twice is a Duplicate the second
// time. One transaction for a batch of fetched mail rather than one per
// mail is what makes the first import of a mailbox fast (a commit, and on
// SQLite its fsync, per batch: docs/benchmarks.md).
//
// If a mail is invalid nothing is stored and the error is that mail's
// *InvalidError: store the mails one by one with IngestEmail to find it.
// Any other error is transient and nothing was stored. On PostgreSQL a
// transaction of several mails does not wait for a lock longer than
// batchLockTimeout: it cannot lock its conversations in id order as the
// other writers do (which conversation a mail joins is known only as it
// is stored), so rather than risk a deadlock with them it gives up, and
// the mails are stored one per transaction instead.
func (s *Store) IngestEmails(ctx context.Context, ins []IncomingEmail) ([]IngestResult, error) {
	type mail struct {
		in                           IncomingEmail
		key                          string
		addressTokens, subjectTokens []int64
		html                         emailHTML
	}
	mails := make([]mail, len(ins))
	for i, in := range ins {
		key, err := cleanIncoming(&in)
		if err != nil {
			return nil, err
		}
		addressTokens, subjectTokens, err := s.mailTokens(ctx, in)
		if err != nil {
			return nil, dbErr(err)
		}
		mails[i] = mail{in, key, addressTokens, subjectTokens, sanitizeMail(in)}
	}
	results := make([]IngestResult, len(mails))
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		if len(mails) > 1 && s.dialect == dialectPostgres {
			if err := tx.Exec(`SET LOCAL lock_timeout = '` + batchLockTimeout + `'`).Error; err != nil {
				return err
			}
		}
		for i, m := range mails {
			res := IngestResult{}
			fresh, err := claimEmailKey(tx, m.key, s.now())
			if err != nil {
				return err
			}
			if !fresh {
				res.Duplicate = true
			} else if mb, own := OwnMailbox(s.opts.Mailboxes, m.in.From.Addr); own && m.in.Bounce == nil {
				res.Ignored = "From our own mailbox " + mb.Name + " (" + mb.Address + "): a mail loop"
			} else if res, err = s.ingest(tx, m.in, m.html, m.key, m.addressTokens, m.subjectTokens, evs); err != nil {
				return err
			}
			results[i] = res
			// Once per folder and batch: it never moves back within a
			// UIDVALIDITY, so the last mail's UID is where it ends.
			if next := i + 1; next < len(mails) && sameFolder(m.in, mails[next].in) {
				continue
			}
			if err := advanceCheckpoint(tx, m.in.Mailbox, m.in.Folder, m.in.UIDValidity, m.in.UID, s.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(mails) > 1 && isLockTimeout(err) {
		results = results[:0]
		for _, m := range ins {
			res, err := s.IngestEmail(ctx, m)
			if err != nil {
				return nil, err
			}
			results = append(results, res)
		}
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// batchLockTimeout is how long, on PostgreSQL, a transaction of several
// mails waits for a lock before IngestEmails stores them one by one.
const batchLockTimeout = "200ms"

// isLockTimeout reports whether err is PostgreSQL's lock_not_available
// (lock_timeout expired).
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// sameFolder reports whether two mails come from the same folder under
// the same UIDVALIDITY, so that one checkpoint covers both.
func sameFolder(a, b IncomingEmail) bool {
	return a.Mailbox == b.Mailbox && a.Folder == b.Folder && a.UIDValidity == b.UIDValidity && b.UID >= a.UID
}

// emailHTML is a mail's HTML and full HTML, sanitized before its
// transaction: sanitizing is the costliest step of storing a mail, and on
// SQLite the transaction holds the only writer. Their cid: URLs are
// pointed at the attachments once these are stored (rewriteCIDs).
type emailHTML struct{ html, full string }

func sanitizeMail(in IncomingEmail) emailHTML {
	h := emailHTML{html: SanitizeEmailHTML(in.HTML)}
	if in.FullHTML != "" && in.FullHTML != in.HTML {
		h.full = SanitizeEmailHTML(in.FullHTML)
	} else {
		h.full = h.html
	}
	return h
}

// ingest stores a mail not seen before (IngestEmail), its key claimed.
func (s *Store) ingest(tx *gorm.DB, in IncomingEmail, safe emailHTML, key string, addressTokens, subjectTokens []int64, evs *[]Event) (IngestResult, error) {
	var pick threadPick
	found := false
	if in.Bounce != nil && in.Bounce.OriginalMessageID != "" {
		res, done, conv, err := s.ingestBounce(tx, in, key, evs)
		if err != nil || done {
			return res, err
		}
		if conv != nil {
			// A report on a mail of ours that carried no single message
			// (a digest, a survey) is shown in its conversation.
			pick, found = threadPick{conv: *conv, how: threadedBounce}, true
		}
	}
	if !found {
		hits, err := threadHits(tx, in, addressTokens, subjectTokens)
		if err != nil {
			return IngestResult{}, err
		}
		if pick, found, err = s.pickThread(tx, hits, in.From.Addr, in.Auto); err != nil {
			return IngestResult{}, err
		}
	}
	res := IngestResult{Threaded: pick.how}
	conv := pick.conv
	if !found {
		contact, err := s.contactForSender(tx, in.From)
		if err != nil {
			return IngestResult{}, err
		}
		if conv, err = s.createConversation(tx, contact, ChannelEmail, truncate(in.Subject, maxEmailSubject), evs); err != nil {
			return IngestResult{}, err
		}
		res.Created = true
	}
	if pick.verify {
		// pickThread locked the contact, then the conversation: the
		// order of every transaction that locks both (doc.go).
		if err := tx.Model(&Contact{}).Where("id = ?", pick.contact.ID).Update("email_verified", true).Error; err != nil {
			return IngestResult{}, err
		}
		if !pick.contact.EmailVerified {
			if err := s.contactUpdatedHook(tx, pick.contact.ID); err != nil {
				return IngestResult{}, err
			}
		}
	}
	m, err := s.addEmailMessage(tx, conv, in, safe, evs)
	if err != nil {
		return IngestResult{}, err
	}
	if err := tx.Model(&emailIDRow{}).Where(`"key" = ?`, key).
		Updates(map[string]any{"conversation_id": conv.ID, "message_id": m.ID}).Error; err != nil {
		return IngestResult{}, err
	}
	res.ConversationID, res.MessageID = conv.ID, m.ID
	return res, nil
}

// claimEmailKey records a mail's key as imported, and reports false if
// it was already recorded. On PostgreSQL a second transaction claiming
// the same key waits for the first and then finds it.
func claimEmailKey(tx *gorm.DB, key string, at time.Time) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&emailIDRow{Key: key, Direction: directionIn, CreatedAt: at})
	return res.RowsAffected == 1, res.Error
}

// addEmailMessage stores a mail as a contact message of conv, which the
// caller locked: its attachments, the message with its message_added
// event (as the appender stores and publishes it, so that sockets and
// EventsSince see no difference) and its envelope. The appender cannot
// take it: it commits on its own connection, which on SQLite is the one
// this transaction holds.
func (s *Store) addEmailMessage(tx *gorm.DB, conv Conversation, in IncomingEmail, safe emailHTML, evs *[]Event) (Message, error) {
	at := s.now()
	open := !in.Auto
	reopened := open && conv.Status == StatusClosed
	// The conversation first (the row lock on PostgreSQL, as everywhere).
	var seqs []int64
	if err := tx.Raw(`UPDATE conversations SET seq = seq + 1, last_activity_at = ?, has_email = ?,
		status = CASE WHEN ? THEN 'open' ELSE status END,
		closed_at = CASE WHEN ? THEN NULL ELSE closed_at END
		WHERE id = ? RETURNING seq`, at, true, open, open, conv.ID).Scan(&seqs).Error; err != nil {
		return Message{}, err
	}
	if len(seqs) == 0 {
		return Message{}, ErrNotFound
	}
	atts, cids, err := s.storeEmailAttachments(tx, conv.ID, in.Attachments, at)
	if err != nil {
		return Message{}, err
	}
	notices := in.Notices
	text, html := in.Text, rewriteCIDs(safe.html, cids)
	if len(text) > maxEmailTextBytes {
		text = truncate(text, maxEmailTextBytes)
		notices = append(notices, fmt.Sprintf("The text is cut to %d KiB here; the full text is in the email's details.", maxEmailTextBytes>>10))
	}
	if len(html) > maxEmailHTMLBytes {
		html = rewriteCIDs(SanitizeEmailHTML(truncate(in.HTML, maxEmailHTMLBytes)), cids)
		notices = append(notices, fmt.Sprintf("The HTML is cut to %d KiB here; the full HTML is in the email's details.", maxEmailHTMLBytes>>10))
	}
	fullText, fullHTML := in.FullText, in.FullHTML
	if fullText == "" {
		fullText = in.Text
	}
	if fullHTML == "" {
		fullHTML = in.HTML
	}
	trimmed := strings.TrimSpace(fullText) != in.Text || fullHTML != in.HTML
	fullHTML = rewriteCIDs(safe.full, cids)

	m := Message{ConversationID: conv.ID, Seq: seqs[0], Author: AuthorContact, Channel: ChannelEmail,
		Text: text, HTML: html, State: StateSent, CreatedAt: at}
	if err := tx.Create(&m).Error; err != nil {
		return Message{}, err
	}
	if len(atts) > 0 {
		ids := make([]int64, len(atts))
		for i := range atts {
			ids[i] = atts[i].ID
			atts[i].MessageID = &m.ID
		}
		if err := tx.Model(&Attachment{}).Where("id IN ?", ids).Update("message_id", m.ID).Error; err != nil {
			return Message{}, err
		}
		m.Attachments = atts
	}
	var data []byte
	if reopened {
		data = reopenedData
	}
	row := eventRow{ConversationID: conv.ID, Seq: m.Seq, Type: EventMessageAdded, MessageID: &m.ID, Data: data, CreatedAt: at}
	if err := tx.Create(&row).Error; err != nil {
		return Message{}, err
	}

	env := emailMessageRow{MessageID: m.ID, Mailbox: in.Mailbox, HeaderID: in.MessageID,
		InReplyTo: strings.Join(in.InReplyTo, " "), Refs: strings.Join(in.References, " "),
		Subject: in.Subject, FromAddr: mustJSON(in.From), ReplyTo: replyToJSON(in.ReplyTo), ToAddrs: mustJSON(in.To), CcAddrs: mustJSON(in.Cc),
		FullText: fullText, FullHTML: fullHTML, Trimmed: trimmed, Auto: in.Auto, AutoReason: in.AutoReason,
		Notices: mustJSON(notices), Raw: in.Raw, CreatedAt: at}
	if err := tx.Create(&env).Error; err != nil {
		return Message{}, err
	}
	m.Email = env.info()
	ev := messageEvent(m, reopened)
	ev.ID = row.ID
	*evs = append(*evs, ev)
	return m, nil
}

// storeEmailAttachments stores a mail's attachments and inline images in
// the conversation, not yet attached to a message, and returns them
// (without their bytes) and the attachment URL of each Content-ID. The
// type is read from the content, as for uploads (DetectFileType); a
// type that uploads refuse is kept all the same (a mail's attachment is
// never dropped), and like every attachment it is served as a download.
func (s *Store) storeEmailAttachments(tx *gorm.DB, conversationID int64, in []IncomingAttachment, at time.Time) ([]Attachment, map[string]string, error) {
	if len(in) == 0 {
		return nil, nil, nil
	}
	atts := make([]Attachment, len(in))
	for i, a := range in {
		ct, err := DetectFileType(a.Data)
		var refused *RefusedTypeError
		if errors.As(err, &refused) {
			ct = refused.Type
		}
		atts[i] = Attachment{ConversationID: conversationID, Uploader: AuthorContact, Name: a.Name,
			ContentType: ct, Size: int64(len(a.Data)), Data: a.Data, CreatedAt: at}
	}
	if err := tx.CreateInBatches(&atts, 50).Error; err != nil {
		return nil, nil, err
	}
	cids := map[string]string{}
	for i := range atts {
		atts[i].Data = nil
		if id := in[i].ContentID; id != "" {
			cids[id] = fmt.Sprintf("/api/v1/conversations/%d/attachments/%d", conversationID, atts[i].ID)
		}
	}
	return atts, cids, nil
}

// cidURL is a cid: URL (RFC 2392) in an src attribute of sanitized HTML,
// which always quotes attribute values with ".
var cidURL = regexp.MustCompile(`(?i)\bsrc="cid:[^"]*"`)

// rewriteCIDs points the cid: URLs of sanitized html that name an
// attachment of the mail to the attachment's URL (digits and slashes
// only, so the HTML stays safe), and empties the others. It runs after
// SanitizeEmailHTML, which keeps cid: URLs and drops relative ones.
func rewriteCIDs(html string, cids map[string]string) string {
	return cidURL.ReplaceAllStringFunc(html, func(m string) string {
		id := stdhtml.UnescapeString(m[len(`src="cid:`) : len(m)-1])
		if u, ok := cids[id]; ok {
			return `src="` + u + `"`
		}
		if unescaped, err := url.PathUnescape(id); err == nil {
			if u, ok := cids[unescaped]; ok {
				return `src="` + u + `"`
			}
		}
		return `src=""`
	})
}

// ingestBounce handles a delivery status notification (RFC 3464) on a
// mail of ours. done: the report was attached to the message the mail
// carried. Otherwise conv is the conversation of a mail of ours that
// carried no single message (the report is shown there as a message),
// or nil when the mail is not ours (the report is then an ordinary
// automatic mail).
func (s *Store) ingestBounce(tx *gorm.DB, in IncomingEmail, key string, evs *[]Event) (res IngestResult, done bool, conv *Conversation, err error) {
	b := in.Bounce
	var orig []emailIDRow
	if err := tx.Where(`"key" = ? AND direction = ?`, emailKey(b.OriginalMessageID), directionOut).
		Limit(1).Find(&orig).Error; err != nil {
		return res, false, nil, err
	}
	if len(orig) == 0 {
		return res, false, nil, nil
	}
	if orig[0].ConversationID == nil {
		// Its conversation was deleted: the report, which quotes the
		// deleted mail, is not kept either.
		return IngestResult{Threaded: threadedBounce}, true, nil, nil
	}
	c, err := lockConversation(tx, *orig[0].ConversationID)
	if err != nil {
		return res, false, nil, err
	}
	if err := markBounced(tx, c.ID, b.OriginalMessageID, s.now()); err != nil {
		return res, false, nil, err
	}
	if orig[0].MessageID == nil {
		return res, false, &c, nil
	}
	messageID := *orig[0].MessageID
	reason := strings.TrimSpace(b.Status + " " + b.Diagnostic)
	if b.Recipient != "" {
		reason = b.Recipient + ": " + reason
	}
	if reason == "" {
		reason = "the mail bounced"
	}
	if err := tx.Exec(`UPDATE messages SET state = ?, error = ? WHERE id = ? AND conversation_id = ?`,
		StateFailed, reason, messageID, c.ID).Error; err != nil {
		return res, false, nil, err
	}
	report := Attachment{ConversationID: c.ID, MessageID: &messageID, Uploader: AuthorSystem,
		Name: "delivery-status-notification.eml", ContentType: "message/rfc822",
		Size: int64(len(in.Raw)), Data: in.Raw, CreatedAt: s.now()}
	if err := tx.Create(&report).Error; err != nil {
		return res, false, nil, err
	}
	if _, err := s.addEvent(tx, c.ID, EventMessageState, MessageState{MessageIDs: []int64{messageID}, State: StateFailed, Error: reason}, evs); err != nil {
		return res, false, nil, err
	}
	if err := tx.Model(&emailIDRow{}).Where(`"key" = ?`, key).Update("conversation_id", c.ID).Error; err != nil {
		return res, false, nil, err
	}
	return IngestResult{ConversationID: c.ID, MessageID: messageID, Threaded: threadedBounce}, true, nil, nil
}

// cleanIncoming makes a mail's text storable on both databases (valid
// UTF-8 without NUL; single-line fields clean, bounded) and returns its
// dedupe key: whatever the parser let through, a mail must never fail
// for good in the database, or its mailbox would stop behind it. A mail
// without a usable sender or key is an *InvalidError.
func cleanIncoming(in *IncomingEmail) (string, error) {
	line := func(s string, n int) string { return truncate(CleanLine(s), n) }
	addr := func(a Address) Address {
		return Address{Name: line(a.Name, 200), Addr: strings.ToLower(CleanLine(a.Addr))}
	}
	addrs := func(list []Address) []Address {
		var out []Address
		for _, a := range list {
			if a = addr(a); a.Addr != "" {
				out = append(out, a)
			}
		}
		return out
	}
	lines := func(list []string, n int) []string {
		var out []string
		for _, s := range list {
			if s = line(s, 998); s != "" && len(out) < n {
				out = append(out, s)
			}
		}
		return out
	}
	in.Mailbox, in.Folder = line(in.Mailbox, 200), line(in.Folder, 1000)
	in.MessageID = strings.Trim(line(in.MessageID, 998), "<>")
	in.InReplyTo = lines(in.InReplyTo, maxThreadRefs)
	if len(in.References) > maxThreadRefs {
		in.References = in.References[len(in.References)-maxThreadRefs:]
	}
	in.References = lines(in.References, maxThreadRefs)
	in.From = addr(in.From)
	if !strings.Contains(in.From.Addr, "@") || len(in.From.Addr) > maxEmailAddress {
		return "", invalid("from", "is not a usable address: %q", in.From.Addr)
	}
	in.To, in.Cc = addrs(in.To), addrs(in.Cc)
	if rt := in.ReplyTo; rt != nil {
		if a := addr(*rt); strings.Contains(a.Addr, "@") && len(a.Addr) <= maxEmailAddress {
			in.ReplyTo = &a
		} else {
			in.ReplyTo = nil
		}
	}
	in.Recipients = lines(in.Recipients, 100)
	in.Subject = line(in.Subject, 998)
	in.Text, in.FullText = strings.TrimSpace(cleanText(in.Text)), cleanText(in.FullText)
	in.HTML, in.FullHTML = cleanText(in.HTML), cleanText(in.FullHTML)
	in.Notices = lines(in.Notices, maxEmailNotices)
	in.AutoReason = line(in.AutoReason, 200)
	for i := range in.Attachments {
		a := &in.Attachments[i]
		a.Name, a.ContentID = line(a.Name, 255), strings.Trim(line(a.ContentID, 998), "<>")
		if a.Name == "" {
			a.Name = "attachment"
		}
	}
	if b := in.Bounce; b != nil {
		// A report is automatic whatever the parser said: it reopens
		// nothing and is never answered (RFC 3464 section 2).
		in.Auto = true
		if in.AutoReason == "" {
			in.AutoReason = "bounce"
		}
		b.OriginalMessageID = strings.Trim(line(b.OriginalMessageID, 998), "<>")
		b.Recipient, b.Status, b.Diagnostic = line(b.Recipient, 300), line(b.Status, 50), line(b.Diagnostic, 900)
	}
	switch {
	case in.MessageID != "":
		return emailKey(in.MessageID), nil
	case in.RawHash != "":
		return "sha256:" + strings.ToLower(line(in.RawHash, 128)), nil
	case len(in.Raw) > 0:
		sum := sha256.Sum256(in.Raw)
		return "sha256:" + hex.EncodeToString(sum[:]), nil
	}
	return "", invalid("message_id", "a mail needs a Message-ID or its raw source")
}

// cleanText is multi-line text (MultiLine) that never fails: invalid
// UTF-8 becomes U+FFFD and NUL goes.
func cleanText(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	s, _ = MultiLine("text", s)
	return s
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// replyToJSON is the email_messages.reply_to of a Reply-To: empty for none.
func replyToJSON(a *Address) string {
	if a == nil || a.Addr == "" {
		return ""
	}
	return mustJSON(*a)
}

// replyTo is the Address of an email_messages.reply_to, nil for none.
func replyTo(column string) *Address {
	var a Address
	if column == "" || json.Unmarshal([]byte(column), &a) != nil || a.Addr == "" {
		return nil
	}
	return &a
}

// info is the envelope as the thread shows it.
func (r emailMessageRow) info() *EmailInfo {
	e := &EmailInfo{Subject: r.Subject, Trimmed: r.Trimmed, Auto: r.Auto}
	// A column that does not decode shows as empty.
	_ = json.Unmarshal([]byte(r.FromAddr), &e.From)
	_ = json.Unmarshal([]byte(r.ToAddrs), &e.To)
	_ = json.Unmarshal([]byte(r.CcAddrs), &e.Cc)
	_ = json.Unmarshal([]byte(r.Notices), &e.Notices)
	return e
}

// withEmail fills in Message.Email of the email messages among msgs, with
// one query (none when all are chat messages).
func (s *Store) withEmail(ctx context.Context, msgs []Message) error {
	var ids []int64
	for _, m := range msgs {
		if m.Channel == ChannelEmail {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var rows []emailMessageRow
	if err := s.rdb.WithContext(ctx).Select("message_id", "subject", "from_addr", "to_addrs", "cc_addrs", "trimmed", "auto", "notices").
		Where("message_id IN ?", ids).Find(&rows).Error; err != nil {
		return dbErr(err)
	}
	by := make(map[int64]*EmailInfo, len(rows))
	for _, r := range rows {
		by[r.MessageID] = r.info()
	}
	for i := range msgs {
		msgs[i].Email = by[msgs[i].ID]
	}
	return nil
}

// EmailDetails returns the envelope and whole body of an email message of
// the conversation (rule 8); ErrNotFound for a message that is not an
// email of it (a chat message, an email reply not sent yet).
func (s *Store) EmailDetails(ctx context.Context, conversationID, messageID int64) (EmailDetails, error) {
	var rows []struct {
		Row     emailMessageRow `gorm:"embedded"`
		RawSize int64
	}
	err := s.rdb.WithContext(ctx).Raw(`SELECT em.message_id, em.mailbox, em.header_id, em.in_reply_to, em.refs, em.subject,
		em.from_addr, em.reply_to, em.to_addrs, em.cc_addrs, em.full_text, em.full_html, em.trimmed, em.auto, em.auto_reason,
		em.notices, em.created_at, COALESCE(LENGTH(em.raw), 0) AS raw_size
		FROM email_messages em JOIN messages m ON m.id = em.message_id
		WHERE em.message_id = ? AND m.conversation_id = ?`, messageID, conversationID).Scan(&rows).Error
	if err != nil {
		return EmailDetails{}, dbErr(err)
	}
	if len(rows) == 0 {
		return EmailDetails{}, ErrNotFound
	}
	r := rows[0].Row
	return EmailDetails{MessageID: r.MessageID, ConversationID: conversationID, Mailbox: r.Mailbox,
		HeaderID: r.HeaderID, InReplyTo: strings.Fields(r.InReplyTo), References: strings.Fields(r.Refs),
		ReplyTo: replyTo(r.ReplyTo), EmailInfo: *r.info(), FullText: r.FullText, FullHTML: r.FullHTML, AutoReason: r.AutoReason,
		RawSize: rows[0].RawSize, CreatedAt: r.CreatedAt.UTC()}, nil
}

// EmailRaw returns the raw source of an email message of the conversation
// as it was fetched (or sent), for admins; ErrNotFound as EmailDetails.
func (s *Store) EmailRaw(ctx context.Context, conversationID, messageID int64) ([]byte, error) {
	var rows []emailMessageRow
	err := s.rdb.WithContext(ctx).Select("email_messages.raw").
		Joins("JOIN messages m ON m.id = email_messages.message_id").
		Where("email_messages.message_id = ? AND m.conversation_id = ?", messageID, conversationID).Find(&rows).Error
	if err != nil {
		return nil, dbErr(err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	if rows[0].Raw == nil {
		return []byte{}, nil
	}
	return rows[0].Raw, nil
}

// IMAPCheckpoint returns how far a folder of a mailbox has been imported;
// the zero IMAPCheckpoint when it never was.
func (s *Store) IMAPCheckpoint(ctx context.Context, mailbox, folder string) (IMAPCheckpoint, error) {
	var rows []struct{ UIDValidity, LastUID int64 }
	if err := s.rdb.WithContext(ctx).Raw(`SELECT uid_validity, last_uid FROM imap_checkpoints WHERE mailbox = ? AND folder = ?`,
		mailbox, folder).Scan(&rows).Error; err != nil {
		return IMAPCheckpoint{}, dbErr(err)
	}
	if len(rows) == 0 {
		return IMAPCheckpoint{}, nil
	}
	return IMAPCheckpoint{UIDValidity: uint32(rows[0].UIDValidity), LastUID: uint32(rows[0].LastUID)}, nil
}

// SaveIMAPCheckpoint sets a folder's checkpoint to cp as given, also
// backwards (a refetch is harmless: imported mail is a Duplicate). The
// fetcher uses it where it skips mail without importing it (a new
// UIDVALIDITY, mail older than import_since); IngestEmail and Quarantine
// advance it themselves.
func (s *Store) SaveIMAPCheckpoint(ctx context.Context, mailbox, folder string, cp IMAPCheckpoint) error {
	return dbErr(s.db.WithContext(ctx).Exec(`INSERT INTO imap_checkpoints (mailbox, folder, uid_validity, last_uid, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (mailbox, folder) DO UPDATE SET
		uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
		mailbox, folder, int64(cp.UIDValidity), int64(cp.LastUID), s.now()).Error)
}

// advanceCheckpoint moves a folder's checkpoint to uid in tx, never
// backwards within one UIDVALIDITY (two fetchers may finish out of
// order); a new UIDVALIDITY starts over at uid. Nothing when uid is 0.
func advanceCheckpoint(tx *gorm.DB, mailbox, folder string, uidValidity, uid uint32, at time.Time) error {
	if uid == 0 {
		return nil
	}
	return tx.Exec(`INSERT INTO imap_checkpoints (mailbox, folder, uid_validity, last_uid, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (mailbox, folder) DO UPDATE SET
		last_uid = CASE WHEN imap_checkpoints.uid_validity = excluded.uid_validity AND imap_checkpoints.last_uid > excluded.last_uid
			THEN imap_checkpoints.last_uid ELSE excluded.last_uid END,
		uid_validity = excluded.uid_validity, updated_at = excluded.updated_at`,
		mailbox, folder, int64(uidValidity), int64(uid), at).Error
}

// quarantineRow is a QuarantinedEmail as stored (email_quarantine).
type quarantineRow struct {
	ID          int64
	Mailbox     string
	Folder      string
	UIDValidity int64 `gorm:"column:uid_validity"`
	UID         int64 `gorm:"column:uid"`
	Reason      string
	Size        int64
	Raw         []byte
	CreatedAt   time.Time
}

func (quarantineRow) TableName() string { return "email_quarantine" }

func (r quarantineRow) email() QuarantinedEmail {
	return QuarantinedEmail{ID: r.ID, Mailbox: r.Mailbox, Folder: r.Folder, UIDValidity: uint32(r.UIDValidity),
		UID: uint32(r.UID), Reason: r.Reason, Size: r.Size, CreatedAt: r.CreatedAt.UTC(), Raw: r.Raw}
}

// Quarantine keeps a mail that could not be parsed, raw, for admins
// (issue 12, item 3), and advances its folder's checkpoint past it, in
// one transaction: a bad mail never stops the rest of its mailbox. The
// same mail quarantined again (same mailbox, folder, UIDVALIDITY and UID)
// is not stored twice; the first record is returned. Size defaults to
// the raw source's.
func (s *Store) Quarantine(ctx context.Context, q QuarantinedEmail) (QuarantinedEmail, error) {
	row := quarantineRow{Mailbox: truncate(CleanLine(q.Mailbox), 200), Folder: truncate(CleanLine(q.Folder), 1000),
		UIDValidity: int64(q.UIDValidity), UID: int64(q.UID), Reason: truncate(cleanText(q.Reason), 2000),
		Size: q.Size, Raw: q.Raw}
	if row.Size == 0 {
		row.Size = int64(len(q.Raw))
	}
	if row.Raw == nil {
		row.Raw = []byte{}
	}
	var out quarantineRow
	err := s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		out = row
		out.CreatedAt = s.now()
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&out)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Omit("raw").Where("mailbox = ? AND folder = ? AND uid_validity = ? AND uid = ?",
				row.Mailbox, row.Folder, row.UIDValidity, row.UID).Take(&out).Error; err != nil {
				return err
			}
		}
		return advanceCheckpoint(tx, row.Mailbox, row.Folder, q.UIDValidity, q.UID, s.now())
	})
	if err != nil {
		return QuarantinedEmail{}, err
	}
	e := out.email()
	e.Raw = nil
	return e, nil
}

// ListQuarantine returns the quarantined mail, the newest first, without
// the raw sources.
func (s *Store) ListQuarantine(ctx context.Context) ([]QuarantinedEmail, error) {
	var rows []quarantineRow
	if err := s.rdb.WithContext(ctx).Omit("raw").Order("id DESC").Find(&rows).Error; err != nil {
		return nil, dbErr(err)
	}
	out := make([]QuarantinedEmail, len(rows))
	for i, r := range rows {
		out[i] = r.email()
	}
	return out, nil
}

// QuarantinedEmail returns one quarantined mail with its raw source, for
// an admin to download; ErrNotFound if there is none with that id.
func (s *Store) QuarantinedEmail(ctx context.Context, id int64) (QuarantinedEmail, error) {
	var rows []quarantineRow
	if err := s.rdb.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return QuarantinedEmail{}, dbErr(err)
	}
	if len(rows) == 0 {
		return QuarantinedEmail{}, ErrNotFound
	}
	return rows[0].email(), nil
}
