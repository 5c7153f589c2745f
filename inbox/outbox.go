package inbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// The email outbox (issue 12 item 6). Every mail Microchat sends is a row
// of email_outbox, inserted in the transaction that causes it: an agent's
// reply by email (with the message), a continuity digest (EnqueueDigests),
// a survey (the last participant leaving). A worker of any node claims due
// rows with a lease (ClaimOutbox), sends them, and records the outcome
// (OutboxSent, OutboxRetry, OutboxFailed). A node that dies while holding
// a lease, possibly after the SMTP server took the DATA, leaves the row to
// be claimed again once the lease ends: at least once, and at most one
// duplicate per crash, carrying the same Message-ID.

// States of an outbox row.
const (
	outboxPending = "pending" // due at next_attempt_at
	outboxSending = "sending" // claimed until lease_until
	outboxSent    = "sent"
	outboxFailed  = "failed"
)

// MailboxInfo is what the store knows of a configured mailbox, enough to
// address mail from it. Name is the config's name of the mailbox; Address
// its bare address, "support@example.com"; PlusAddressing says that mail
// to "support+TOKEN@example.com" reaches it, so that replies can carry the
// conversation's token in the address (rule 9).
type MailboxInfo struct {
	Name           string
	Address        string
	PlusAddressing bool
}

// outboxRow is an email_outbox row (migrations 0006, 0008 and 0009).
type outboxRow struct {
	ID             int64
	Kind           string
	ConversationID int64
	MessageID      *int64 // the reply (kind reply)
	State          string
	Attempts       int
	NextAttemptAt  time.Time
	LeaseUntil     *time.Time
	LastError      string
	CreatedAt      time.Time
	SentAt         *time.Time
	HeaderID       string `gorm:"column:header_id"` // our Message-ID, fixed at the first claim
	Mailbox        string
	RatedAt        *time.Time // a survey's rating link was used
	ToAddr         string     // where the mail was last tried to, fixed at each claim (recipient)
	ToName         string
	BouncedAt      *time.Time // the recipient's side refused it (5xx) or bounced it
}

func (outboxRow) TableName() string { return "email_outbox" }

// maxReferences is the most Message-IDs a References header of ours
// carries: the thread's first and its latest ones (RFC 5322 section
// 3.6.4 lets a long chain be shortened so).
const maxReferences = 20

// maxReasonBytes bounds a stored server answer (last_error, Message.Error).
const maxReasonBytes = 1000

// enqueueOutbox inserts a due outbox row in tx and returns its id.
// messageID is the reply a row of kind reply sends; carried are the
// messages a digest carries (email_outbox_messages), which no later digest
// carries again.
func (s *Store) enqueueOutbox(tx *gorm.DB, kind string, conversationID int64, messageID *int64, carried []int64) (int64, error) {
	now := s.now()
	row := outboxRow{Kind: kind, ConversationID: conversationID, MessageID: messageID, State: outboxPending,
		NextAttemptAt: now, CreatedAt: now}
	if err := tx.Create(&row).Error; err != nil {
		return 0, err
	}
	if len(carried) > 0 {
		q := `INSERT INTO email_outbox_messages (outbox_id, message_id) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?),", len(carried)), ",")
		args := make([]any, 0, 2*len(carried))
		for _, id := range carried {
			args = append(args, row.ID, id)
		}
		if err := tx.Exec(q, args...).Error; err != nil {
			return 0, err
		}
	}
	return row.ID, nil
}

// ClaimOutbox takes up to limit due mails for sending, each for lease: a
// pending row whose next attempt is due, or a row still sending whose
// lease ended (its holder died, perhaps after the SMTP DATA: the mail may
// go twice, never zero times). Each becomes sending until now+lease with
// one more attempt, in one transaction that several nodes can run at
// once: on PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED, so two
// claimers never get the same row; SQLite has one writer.
//
// Each mail is returned with all the sender needs (OutboundEmail), To
// the conversation's recipient as it is at the claim (recipient: the
// contact's Reply-To or address), recorded on the row. Its Message-ID,
// "m<row id>.<signature>@<domain of the mailbox>", and its mailbox are
// fixed at the first claim and recorded in email_ids (direction out)
// before anything is sent, so that a reply to it threads (rule 9). A row whose conversation or reply was
// deleted, or whose contact has no email address any more, is marked failed and not
// returned; so is one whose recipient is one of our own mailboxes
// (OwnMailbox: a mail loop, issue 12 item 8), and a digest or a survey
// that the rules of automatic mail hold back now (automaticMailStop: an
// auto-reply or a bounce came since it was enqueued). With no mailbox
// configured nothing is claimed. limit must be positive, lease at least
// a second.
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboundEmail, error) {
	if limit <= 0 {
		return nil, invalid("limit", "must be positive")
	}
	if lease < time.Second {
		return nil, invalid("lease", "must be at least a second")
	}
	if len(s.opts.Mailboxes) == 0 {
		return nil, nil
	}
	// The secret is read before the transaction: on SQLite the writer's
	// one connection is the transaction's.
	key, err := s.secret(ctx)
	if err != nil {
		return nil, err
	}
	var rows []outboxRow
	err = s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		rows = rows[:0]
		now := s.now()
		q := `SELECT id FROM email_outbox
			WHERE (state = ? AND next_attempt_at <= ?) OR (state = ? AND lease_until < ?)
			ORDER BY next_attempt_at, id LIMIT ?`
		if tx.Dialector.Name() == "postgres" {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		var ids []int64
		if err := tx.Raw(q, outboxPending, now, outboxSending, now, limit).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return errNoop
		}
		if err := tx.Exec(`UPDATE email_outbox SET state = ?, lease_until = ?, claimed_by = ?, attempts = attempts + 1 WHERE id IN ?`,
			outboxSending, now.Add(lease), s.opts.NodeID, ids).Error; err != nil {
			return err
		}
		if err := tx.Where("id IN ?", ids).Order("next_attempt_at, id").Find(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			if r.HeaderID == "" {
				if err := s.fixMessageID(tx, key, r); err != nil {
					return err
				}
			}
			to, err := s.recipient(tx, r.ConversationID)
			if err != nil {
				return err
			}
			r.ToAddr, r.ToName = to.Addr, to.Name
			if err := tx.Exec(`UPDATE email_outbox SET to_addr = ?, to_name = ? WHERE id = ?`, to.Addr, to.Name, r.ID).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]OutboundEmail, 0, len(rows))
	for _, r := range rows {
		e, reason, err := s.buildOutbound(ctx, r)
		if err != nil {
			// The claimed rows not returned are offered again when
			// their lease ends.
			return nil, err
		}
		if reason != "" {
			if err := s.OutboxFailed(ctx, r.ID, reason); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// fixMessageID gives a row its Message-ID and mailbox, in tx, and records
// the Message-ID for threading.
func (s *Store) fixMessageID(tx *gorm.DB, key []byte, r *outboxRow) error {
	mb, err := s.conversationMailbox(tx, r.ConversationID, "")
	if err != nil {
		return err
	}
	id := strconv.FormatInt(r.ID, 10)
	r.Mailbox = mb.Name
	r.HeaderID = "m" + id + "." + signWith(key, "message-id", id) + "@" + addressDomain(mb.Address)
	if err := tx.Exec(`UPDATE email_outbox SET header_id = ?, mailbox = ? WHERE id = ?`, r.HeaderID, r.Mailbox, r.ID).Error; err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO email_ids ("key", conversation_id, message_id, direction, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT ("key") DO NOTHING`, r.HeaderID, r.ConversationID, nullInt(r.MessageID), "out", s.now()).Error
}

// conversationMailbox is the mailbox to send from in a conversation: the
// one its latest incoming mail came through, else the first configured.
// A named mailbox (a row's, fixed before) is kept while it is configured.
func (s *Store) conversationMailbox(db *gorm.DB, conversationID int64, named string) (MailboxInfo, error) {
	if named == "" {
		var names []string
		if err := db.Raw(`SELECT em.mailbox FROM email_messages em JOIN messages m ON m.id = em.message_id
			WHERE m.conversation_id = ? AND m.author = ? ORDER BY m.seq DESC LIMIT 1`,
			conversationID, AuthorContact).Scan(&names).Error; err != nil {
			return MailboxInfo{}, err
		}
		if len(names) > 0 {
			named = names[0]
		}
	}
	for _, mb := range s.opts.Mailboxes {
		if mb.Name == named {
			return mb, nil
		}
	}
	return s.opts.Mailboxes[0], nil
}

// addressDomain is the domain of a bare address, "example.com" of
// "support@example.com".
func addressDomain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

// plusAddress is the mailbox's address with the conversation's token in
// its local part, "support+c42-...@example.com", when the mailbox has
// plus addressing; else "".
func plusAddress(mb MailboxInfo, token string) string {
	i := strings.LastIndexByte(mb.Address, '@')
	if !mb.PlusAddressing || i < 0 {
		return ""
	}
	return mb.Address[:i] + "+" + token + mb.Address[i:]
}

// buildOutbound reads what the sender needs of a claimed row. A reason
// says why the row cannot be sent at all (its conversation or reply is
// gone, the contact has no address); err is a database error.
func (s *Store) buildOutbound(ctx context.Context, r outboxRow) (e OutboundEmail, reason string, err error) {
	db := s.rdb.WithContext(ctx)
	var conv Conversation
	if err := db.First(&conv, r.ConversationID).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return e, "the conversation was deleted", nil
	} else if err != nil {
		return e, "", dbErr(err)
	}
	if r.ToAddr == "" {
		return e, "the contact has no email address", nil
	}
	if own, ok := OwnMailbox(s.opts.Mailboxes, r.ToAddr); ok {
		return e, "the contact's address " + r.ToAddr + " is our own mailbox " + own.Name + ": not sent (a mail loop)", nil
	}
	if r.Kind == OutboundDigest || r.Kind == OutboundSurvey {
		stop, err := automaticMailStop(db, conv.ID, r.ToAddr, r.ID)
		if err != nil {
			return e, "", dbErr(err)
		}
		if stop != "" {
			return e, "not sent: " + stop, nil
		}
	}
	mb, err := s.conversationMailbox(db, conv.ID, r.Mailbox)
	if err != nil {
		return e, "", dbErr(err)
	}
	token, err := s.ConversationToken(ctx, conv.ID)
	if err != nil {
		return e, "", err
	}
	e = OutboundEmail{ID: r.ID, Kind: r.Kind, ConversationID: conv.ID, Mailbox: mb.Name, MessageID: r.HeaderID,
		To: Address{Name: r.ToName, Addr: r.ToAddr}, Subject: conv.Subject, ReplyTo: plusAddress(mb, token),
		Attempts: r.Attempts - 1, Token: token}
	if e.InReplyTo, e.References, err = outboundThread(db, conv.ID, r.ID); err != nil {
		return e, "", dbErr(err)
	}
	var carried []int64
	switch r.Kind {
	case OutboundReply:
		if r.MessageID != nil {
			carried = []int64{*r.MessageID}
		}
	case OutboundDigest:
		if err := db.Raw(`SELECT message_id FROM email_outbox_messages WHERE outbox_id = ? ORDER BY message_id`, r.ID).
			Scan(&carried).Error; err != nil {
			return e, "", dbErr(err)
		}
	case OutboundSurvey:
		if e.RatingTokens, err = s.ratingTokens(ctx, conv.ID, r.ID); err != nil {
			return e, "", err
		}
		return e, "", nil
	default:
		return e, "unknown kind " + strconv.Quote(r.Kind), nil
	}
	if e.Messages, err = outboundMessages(db, carried); err != nil {
		return e, "", dbErr(err)
	}
	if len(e.Messages) == 0 {
		return e, "the message was deleted", nil
	}
	e.AgentName = e.Messages[len(e.Messages)-1].AgentName
	if r.Kind == OutboundDigest {
		var ctxText []string
		if err := db.Raw(`SELECT text FROM messages WHERE conversation_id = ? AND author = ?
			AND seq < (SELECT seq FROM messages WHERE id = ?) ORDER BY seq DESC LIMIT 1`,
			conv.ID, AuthorContact, e.Messages[0].ID).Scan(&ctxText).Error; err != nil {
			return e, "", dbErr(err)
		}
		if len(ctxText) > 0 {
			e.Context = ctxText[0]
		}
	}
	return e, "", nil
}

// outboundMessages reads messages with their authors' names and their
// attachments' bytes, in the conversation's order.
func outboundMessages(db *gorm.DB, ids []int64) ([]OutboundMessage, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var msgs []Message
	if err := db.Where("id IN ?", ids).Order("seq").Find(&msgs).Error; err != nil {
		return nil, err
	}
	var atts []Attachment
	if err := db.Where("message_id IN ?", ids).Order("id").Find(&atts).Error; err != nil {
		return nil, err
	}
	var agentIDs []int64
	for _, m := range msgs {
		if m.AgentID != nil {
			agentIDs = append(agentIDs, *m.AgentID)
		}
	}
	names := map[int64]string{}
	if len(agentIDs) > 0 {
		var agents []AgentName
		if err := db.Model(&Agent{}).Where("id IN ?", agentIDs).Find(&agents).Error; err != nil {
			return nil, err
		}
		for _, a := range agents {
			names[a.ID] = a.Name
		}
	}
	out := make([]OutboundMessage, 0, len(msgs))
	for _, m := range msgs {
		om := OutboundMessage{ID: m.ID, Text: m.Text, CreatedAt: m.CreatedAt.UTC()}
		if m.AgentID != nil {
			om.AgentName = names[*m.AgentID]
		}
		for _, a := range atts {
			if *a.MessageID == m.ID {
				a.CreatedAt = a.CreatedAt.UTC()
				om.Attachments = append(om.Attachments, a)
			}
		}
		out = append(out, om)
	}
	return out, nil
}

// outboundThread returns the In-Reply-To and References of a mail of the
// conversation (RFC 5322 section 3.6.4). Its parent is the conversation's
// newest email message that is not automatic mail, the contact's or ours:
// an out-of-office answer, list mail or a bounce is never what we answer.
// References are the parent's References (or, when it has none, its
// In-Reply-To when that names a single message) followed by the parent's
// Message-ID. A conversation without such a mail threads on the
// continuity mail sent in it before (digests, surveys), each of which
// threaded on the one before. The chain keeps its first and its latest
// maxReferences-1 ids.
func outboundThread(db *gorm.DB, conversationID, outboxID int64) (string, []string, error) {
	var parent []struct{ HeaderID, InReplyTo, Refs string }
	if err := db.Raw(`SELECT em.header_id, em.in_reply_to, em.refs FROM email_messages em JOIN messages m ON m.id = em.message_id
		WHERE m.conversation_id = ? AND em.header_id <> '' AND NOT em.auto ORDER BY m.seq DESC LIMIT 1`, conversationID).
		Scan(&parent).Error; err != nil {
		return "", nil, err
	}
	var chain []string
	if len(parent) > 0 {
		p := parent[0]
		chain = strings.Fields(p.Refs)
		if irt := strings.Fields(p.InReplyTo); len(chain) == 0 && len(irt) == 1 {
			chain = irt
		}
		chain = append(chain, p.HeaderID)
	} else if err := db.Raw(`SELECT header_id FROM email_outbox WHERE conversation_id = ? AND state = ? AND header_id <> ''
		AND id <> ? ORDER BY id`, conversationID, outboxSent, outboxID).Scan(&chain).Error; err != nil {
		return "", nil, err
	}
	refs := make([]string, 0, len(chain))
	for _, id := range chain {
		if id = strings.Trim(id, "<>"); id != "" && !slices.Contains(refs, id) {
			refs = append(refs, id)
		}
	}
	if len(refs) == 0 {
		return "", nil, nil
	}
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	return refs[len(refs)-1], refs, nil
}

// recipient is where the conversation's mail goes: the Reply-To of the
// contact's newest mail that is not automatic, when it had one (RFC 5322
// section 3.6.2: its author asks for answers there), else the contact's
// address; the zero Address when the contact has none. A Reply-To naming
// one of our own mailboxes is ignored: mail to it would come back to us.
// The contact stays the one known by the mail's From (threading.go).
func (s *Store) recipient(db *gorm.DB, conversationID int64) (Address, error) {
	var rows []struct{ Name, Email, ReplyTo string }
	if err := db.Raw(`SELECT ct.name, ct.email, COALESCE((SELECT em.reply_to FROM messages m
			JOIN email_messages em ON em.message_id = m.id
			WHERE m.conversation_id = c.id AND m.author = ? AND NOT em.auto ORDER BY m.seq DESC LIMIT 1), '') AS reply_to
		FROM conversations c JOIN contacts ct ON ct.id = c.contact_id WHERE c.id = ?`, AuthorContact, conversationID).
		Scan(&rows).Error; err != nil || len(rows) == 0 || rows[0].Email == "" {
		return Address{}, err
	}
	to := Address{Name: rows[0].Name, Addr: rows[0].Email}
	if rt := replyTo(rows[0].ReplyTo); rt != nil && !s.ourAddress(rt.Addr) {
		to.Addr = rt.Addr
		if rt.Name != "" {
			to.Name = rt.Name
		}
	}
	return to, nil
}

// ourAddress reports whether addr is the address of one of our
// mailboxes, with or without a "+tag" in its local part.
func (s *Store) ourAddress(addr string) bool {
	split := func(a string) (string, string) {
		a = strings.ToLower(a)
		i := strings.LastIndexByte(a, '@')
		if i < 0 {
			return a, ""
		}
		return a[:i], a[i+1:]
	}
	local, domain := split(addr)
	for _, mb := range s.opts.Mailboxes {
		if ml, md := split(mb.Address); domain == md && (local == ml || strings.HasPrefix(local, ml+"+")) {
			return true
		}
	}
	return false
}

// automaticMailStop says why no automatic mail of ours (a digest, a
// survey) may go to addr in the conversation now, or "" when it may:
//
//   - the contact's latest message is automatic mail (issue 12 item 8,
//     RFC 3834 section 2);
//   - the last mail of ours to addr in the conversation (other than the
//     outbox row except) was refused by the SMTP server (5xx) or bounced
//     (bounced_at), and the contact has sent no mail since that is not
//     automatic: until they write, the address is known not to work, and
//     each more mail to it is one more bounce.
func automaticMailStop(db *gorm.DB, conversationID int64, addr string, except int64) (string, error) {
	auto, err := latestContactAuto(db, conversationID)
	if err != nil {
		return "", err
	}
	if auto {
		return "the contact's latest message is automatic mail", nil
	}
	var last []outboxRow
	if err := db.Select("id", "bounced_at").Where("conversation_id = ? AND to_addr = ? AND id <> ? AND (state = ? OR bounced_at IS NOT NULL)",
		conversationID, addr, except, outboxSent).Order("id DESC").Limit(1).Find(&last).Error; err != nil {
		return "", err
	}
	if len(last) == 0 || last[0].BouncedAt == nil {
		return "", nil
	}
	var since []int64
	if err := db.Raw(`SELECT m.id FROM messages m JOIN email_messages em ON em.message_id = m.id
		WHERE m.conversation_id = ? AND m.author = ? AND NOT em.auto AND m.created_at > ? LIMIT 1`,
		conversationID, AuthorContact, *last[0].BouncedAt).Scan(&since).Error; err != nil {
		return "", err
	}
	if len(since) > 0 {
		return "", nil
	}
	return "the last mail to " + addr + " was refused or bounced, and the contact has not written since", nil
}

// markBounced records in tx that the recipient's side reported the mail
// of ours with Message-ID headerID, of the conversation, undeliverable (a
// bounce, RFC 3464): automaticMailStop.
func markBounced(tx *gorm.DB, conversationID int64, headerID string, at time.Time) error {
	return tx.Exec(`UPDATE email_outbox SET bounced_at = ? WHERE conversation_id = ? AND header_id = ? AND bounced_at IS NULL`,
		at, conversationID, headerID).Error
}

// smtpRefusal matches a reason that is an SMTP server's permanent
// negative answer, as the sender passes it: a 5yz reply code first (RFC
// 5321 section 4.2.1), "550 5.1.1 user unknown".
var smtpRefusal = regexp.MustCompile(`^5[0-9][0-9]([ -]|$)`)

// lockOutbox reads an outbox row in tx, locked on PostgreSQL until the
// transaction ends, so that the outcomes recorded by two nodes (a lease
// that ended while its holder was still sending) apply one after the
// other.
func lockOutbox(tx *gorm.DB, id int64) (outboxRow, error) { return lockRow[outboxRow](tx, id) }

// OutboxSent records that the SMTP server accepted the mail of row id;
// raw is the message as sent (RFC 5322). A reply's message turns
// StateSent (with a message_state event) and gets its envelope in
// email_messages (Message-ID, subject, From, To, Cc, In-Reply-To,
// References, raw) like incoming mail. Recording it twice changes
// nothing; a row failed meanwhile (a lease that ended while its holder
// still sent) counts as sent, since the mail went. ErrNotFound: no such
// row.
func (s *Store) OutboxSent(ctx context.Context, id int64, raw []byte) error {
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		r, err := lockOutbox(tx, id)
		if err != nil {
			return err
		}
		if r.State == outboxSent {
			return errNoop
		}
		now := s.now()
		if err := tx.Model(&outboxRow{}).Where("id = ?", id).Updates(map[string]any{
			"state": outboxSent, "sent_at": now, "lease_until": nil, "last_error": ""}).Error; err != nil {
			return err
		}
		if r.Kind != OutboundReply || r.MessageID == nil {
			return nil
		}
		if _, err := lockConversation(tx, r.ConversationID); errors.Is(err, ErrNotFound) {
			return nil // deleted since: nothing to show it on
		} else if err != nil {
			return err
		}
		var m Message
		if err := tx.Where("id = ? AND conversation_id = ?", *r.MessageID, r.ConversationID).Take(&m).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := s.saveSentEnvelope(tx, r, m, raw); err != nil {
			return err
		}
		if m.State != StateQueued && m.State != StateFailed {
			return nil
		}
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).Updates(map[string]any{"state": StateSent, "error": ""}).Error; err != nil {
			return err
		}
		_, err = s.addEvent(tx, r.ConversationID, EventMessageState, MessageState{MessageIDs: []int64{m.ID}, State: StateSent}, evs)
		return err
	})
}

// saveSentEnvelope stores the envelope of a sent reply (Reply-To
// included), read from the headers of raw as they went out; the row's
// Message-ID when raw has none.
func (s *Store) saveSentEnvelope(tx *gorm.DB, r outboxRow, m Message, raw []byte) error {
	headerID, inReplyTo, subject := r.HeaderID, "", ""
	var refs []string
	from, to, cc := Address{}, []Address{}, []Address{}
	var replyToAddr *Address
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		h := msg.Header
		if v := strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"); v != "" {
			headerID = v
		}
		inReplyTo = strings.Trim(strings.TrimSpace(h.Get("In-Reply-To")), "<>")
		for _, id := range strings.Fields(h.Get("References")) {
			refs = append(refs, strings.Trim(id, "<>"))
		}
		subject = h.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
			subject = dec
		}
		subject = CleanLine(subject)
		if list, err := h.AddressList("From"); err == nil && len(list) > 0 {
			from = Address{Name: list[0].Name, Addr: list[0].Address}
		}
		to, cc = headerAddresses(h, "To"), headerAddresses(h, "Cc")
		if rt := headerAddresses(h, "Reply-To"); len(rt) > 0 {
			replyToAddr = &rt[0]
		}
	}
	fromJSON, _ := json.Marshal(from)
	toJSON, _ := json.Marshal(to)
	ccJSON, _ := json.Marshal(cc)
	return tx.Exec(`INSERT INTO email_messages (message_id, mailbox, header_id, in_reply_to, refs, subject, from_addr, reply_to,
			to_addrs, cc_addrs, full_text, full_html, trimmed, auto, auto_reason, notices, raw, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, '', '[]', ?, ?) ON CONFLICT (message_id) DO NOTHING`,
		m.ID, r.Mailbox, headerID, inReplyTo, strings.Join(refs, " "), subject, string(fromJSON), replyToJSON(replyToAddr),
		string(toJSON), string(ccJSON), m.Text, false, false, raw, s.now()).Error
}

// headerAddresses is an address header's list, empty when it has none or
// cannot be parsed.
func headerAddresses(h mail.Header, name string) []Address {
	list, err := h.AddressList(name)
	out := make([]Address, 0, len(list))
	if err != nil {
		return out
	}
	for _, a := range list {
		out = append(out, Address{Name: a.Name, Addr: a.Address})
	}
	return out
}

// OutboxRetry puts a claimed row back to wait until at (a 4xx answer, a
// timeout, a connection that failed), keeping reason (the server's answer)
// in last_error. A row no longer sending (another node recorded its
// outcome) is left as it is. ErrNotFound: no such row.
func (s *Store) OutboxRetry(ctx context.Context, id int64, at time.Time, reason string) error {
	return s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		r, err := lockOutbox(tx, id)
		if err != nil {
			return err
		}
		if r.State != outboxSending {
			return errNoop
		}
		return tx.Model(&outboxRow{}).Where("id = ?", id).Updates(map[string]any{
			"state": outboxPending, "next_attempt_at": at.UTC().Truncate(time.Microsecond), "lease_until": nil,
			"last_error": cleanReason(reason)}).Error
	})
}

// OutboxFailed records that the mail of row id cannot be sent (a 5xx
// answer, issue 12 item 6), keeping reason (the server's answer). A
// reply's message turns StateFailed with Message.Error set to reason, and
// a message_state event carries both, so that the agent's screen shows it
// at once. A digest or a survey is only marked failed. A reason that is
// an SMTP refusal (a 5yz answer) also marks the address the mail went to
// as failing (bounced_at; automaticMailStop). A row already sent or
// failed is left as it is. ErrNotFound: no such row.
func (s *Store) OutboxFailed(ctx context.Context, id int64, reason string) error {
	reason = cleanReason(reason)
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		r, err := lockOutbox(tx, id)
		if err != nil {
			return err
		}
		if r.State == outboxSent || r.State == outboxFailed {
			return errNoop
		}
		failed := map[string]any{"state": outboxFailed, "lease_until": nil, "last_error": reason}
		if smtpRefusal.MatchString(reason) {
			failed["bounced_at"] = s.now()
		}
		if err := tx.Model(&outboxRow{}).Where("id = ?", id).Updates(failed).Error; err != nil {
			return err
		}
		if r.Kind != OutboundReply || r.MessageID == nil {
			return nil
		}
		if _, err := lockConversation(tx, r.ConversationID); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		res := tx.Model(&Message{}).Where("id = ? AND conversation_id = ?", *r.MessageID, r.ConversationID).
			Updates(map[string]any{"state": StateFailed, "error": reason})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		_, err = s.addEvent(tx, r.ConversationID, EventMessageState,
			MessageState{MessageIDs: []int64{*r.MessageID}, State: StateFailed, Error: reason}, evs)
		return err
	})
}

// cleanReason makes a server's answer storable and showable: one line,
// valid UTF-8 without NUL (CleanLine), at most maxReasonBytes.
func cleanReason(reason string) string {
	reason = CleanLine(reason)
	if len(reason) <= maxReasonBytes {
		return reason
	}
	cut := maxReasonBytes
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
