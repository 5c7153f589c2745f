package inbox

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Columns of the dashboard.
const (
	ColumnUnassigned = "unassigned" // open, no participant (rule 1)
	ColumnMine       = "mine"       // open, the agent takes part
	ColumnOpen       = "open"       // all open
	ColumnClosed     = "closed"
)

// ListQuery selects a page of conversations.
type ListQuery struct {
	// Column is one of the Column constants; empty means ColumnOpen, or
	// with Search every conversation, open or closed.
	Column  string
	AgentID int64 // whose Mine and whose unread counts
	// Search, when not empty, keeps only the conversations that match it
	// (search.go): each item then says which message matched.
	Search string
	// Cursor is NextCursor of the previous page; empty for the first.
	Cursor string
	Limit  int // 1 to 100, default 50
}

// ConversationItem is a conversation as the dashboard lists it.
type ConversationItem struct {
	Conversation
	Contact      Contact            `json:"contact"`
	Participants []ParticipantAgent `json:"participants"`
	LastMessage  *Message           `json:"last_message,omitempty"`
	// Unread counts the contact's messages after the agent's last read.
	Unread int64 `json:"unread"`
	// Match is the message a search matched (nil when only the contact
	// matched, and outside a search).
	Match *SearchMatch `json:"match,omitempty"`
}

// ConversationPage is one page of a list.
type ConversationPage struct {
	Items      []ConversationItem `json:"items"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

type listCursor struct {
	At time.Time `json:"t"`
	ID int64     `json:"i"`
}

// ListConversations returns a page of a column, the most recently active
// first (last_activity_at, then id, descending), or of a search's matches
// in the same order (ListQuery.Search).
func (s *Store) ListConversations(ctx context.Context, q ListQuery) (ConversationPage, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 100 {
		return ConversationPage{}, invalid("limit", "must be 1 to 100")
	}
	if q.Search != "" {
		return s.search(ctx, q)
	}
	if q.Column == "" {
		q.Column = ColumnOpen
	}
	filter, args, err := columnSQL(q.Column, q.AgentID)
	if err != nil {
		return ConversationPage{}, err
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return ConversationPage{}, err
		}
		cond, cargs := afterSQL(&c)
		filter, args = filter+cond, append(args, cargs...)
	}
	var convs []Conversation
	if err := s.rdb.WithContext(ctx).Table("conversations c").Where(filter, args...).
		Order("c.last_activity_at DESC, c.id DESC").Limit(q.Limit + 1).Find(&convs).Error; err != nil {
		return ConversationPage{}, dbErr(err)
	}
	page := ConversationPage{Items: []ConversationItem{}}
	if len(convs) > q.Limit {
		convs = convs[:q.Limit]
		last := convs[len(convs)-1]
		page.NextCursor = encodeCursor(last.LastActivityAt, last.ID)
	}
	items, err := s.items(ctx, convs, q.AgentID)
	if err != nil {
		return ConversationPage{}, err
	}
	page.Items = items
	return page, nil
}

func encodeCursor(at time.Time, id int64) string {
	b, _ := json.Marshal(listCursor{At: at, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (listCursor, error) {
	var c listCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return c, invalid("cursor", "is not a cursor from this list")
	}
	return c, nil
}

// columnSQL is the condition of a column on conversations aliased c, with
// its arguments; the empty column is every conversation.
func columnSQL(column string, agentID int64) (string, []any, error) {
	const active = "SELECT 1 FROM participants p WHERE p.conversation_id = c.id AND p.left_at IS NULL"
	switch column {
	case ColumnUnassigned:
		return "c.status = ? AND NOT EXISTS (" + active + ")", []any{StatusOpen}, nil
	case ColumnMine:
		return "c.status = ? AND EXISTS (" + active + " AND p.agent_id = ?)", []any{StatusOpen, agentID}, nil
	case ColumnOpen:
		return "c.status = ?", []any{StatusOpen}, nil
	case ColumnClosed:
		return "c.status = ?", []any{StatusClosed}, nil
	case "":
		return "1 = 1", nil, nil
	}
	return "", nil, invalid("column", "must be unassigned, mine, open or closed")
}

// ColumnCounts returns how many conversations each column holds for the
// agent, with one statement that reads indexes only. It counts on the
// rule that agents take part only in open conversations (Join reopens a
// closed one, the last Leave closes it; TestParticipantsOnlyInOpen):
// Unassigned is the open conversations less those with a participant,
// Mine the agent's participations, and Closed all but the open ones.
func (s *Store) ColumnCounts(ctx context.Context, agentID int64) (map[string]int64, error) {
	var all int64
	var n struct{ Open, Assigned, Mine int64 }
	db := s.rdb.WithContext(ctx)
	// Alone, as SQLite counts a whole table quickest.
	if err := db.Raw(`SELECT count(*) FROM conversations`).Scan(&all).Error; err != nil {
		return nil, dbErr(err)
	}
	err := db.Raw(`SELECT
		(SELECT count(*) FROM conversations WHERE status = ?) AS open,
		(SELECT count(DISTINCT conversation_id) FROM participants WHERE left_at IS NULL) AS assigned,
		(SELECT count(*) FROM participants WHERE agent_id = ? AND left_at IS NULL) AS mine`,
		StatusOpen, agentID).Scan(&n).Error
	if err != nil {
		return nil, dbErr(err)
	}
	return map[string]int64{ColumnUnassigned: n.Open - n.Assigned, ColumnMine: n.Mine, ColumnOpen: n.Open, ColumnClosed: all - n.Open}, nil
}

// ConversationItem returns one conversation as the dashboard shows it.
func (s *Store) ConversationItem(ctx context.Context, id, agentID int64) (ConversationItem, error) {
	c, err := s.Conversation(ctx, id)
	if err != nil {
		return ConversationItem{}, err
	}
	items, err := s.items(ctx, []Conversation{c}, agentID)
	if err != nil {
		return ConversationItem{}, err
	}
	return items[0], nil
}

// items adds contacts, participants, last messages and unread counts to
// conversations, with one query for each.
func (s *Store) items(ctx context.Context, convs []Conversation, agentID int64) ([]ConversationItem, error) {
	items := make([]ConversationItem, 0, len(convs))
	if len(convs) == 0 {
		return items, nil
	}
	ids := make([]int64, 0, len(convs))
	contactIDs := make([]int64, 0, len(convs))
	for _, c := range convs {
		ids = append(ids, c.ID)
		contactIDs = append(contactIDs, c.ContactID)
	}
	db := s.rdb.WithContext(ctx)
	var contacts []Contact
	if err := db.Where("id IN ?", contactIDs).Find(&contacts).Error; err != nil {
		return nil, dbErr(err)
	}
	byContact := map[int64]Contact{}
	for _, c := range contacts {
		byContact[c.ID] = c
	}
	parts, err := s.participantsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	// The newest message and the unread count of each conversation, each
	// from its own range of messages_seq (conversation_id, seq): a
	// conversation of 10,000 messages costs what one of ten does.
	var last []Message
	if err := db.Where(`id IN (SELECT (SELECT m.id FROM messages m WHERE m.conversation_id = c.id ORDER BY m.seq DESC LIMIT 1)
		FROM conversations c WHERE c.id IN ?)`, ids).Find(&last).Error; err != nil {
		return nil, dbErr(err)
	}
	if err := s.withEmail(ctx, last); err != nil {
		return nil, err
	}
	lastBy := map[int64]*Message{}
	for i := range last {
		last[i].CreatedAt = last[i].CreatedAt.UTC()
		lastBy[last[i].ConversationID] = &last[i]
	}
	type unread struct {
		ID int64
		N  int64
	}
	var unreads []unread
	if err := db.Raw(`SELECT c.id, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id
			AND m.seq > COALESCE((SELECT r.seq FROM agent_reads r WHERE r.agent_id = ? AND r.conversation_id = c.id), 0)
			AND m.author = ?) AS n
		FROM conversations c WHERE c.id IN ?`, agentID, AuthorContact, ids).Scan(&unreads).Error; err != nil {
		return nil, dbErr(err)
	}
	unreadBy := map[int64]int64{}
	for _, u := range unreads {
		unreadBy[u.ID] = u.N
	}
	for _, c := range convs {
		utcConversation(&c)
		p := parts[c.ID]
		if p == nil {
			p = []ParticipantAgent{}
		}
		items = append(items, ConversationItem{Conversation: c, Contact: byContact[c.ContactID], Participants: p,
			LastMessage: lastBy[c.ID], Unread: unreadBy[c.ID]})
	}
	return items, nil
}

func utcConversation(c *Conversation) {
	c.LastActivityAt, c.CreatedAt = c.LastActivityAt.UTC(), c.CreatedAt.UTC()
	if c.ClosedAt != nil {
		t := c.ClosedAt.UTC()
		c.ClosedAt = &t
	}
}

// MessageQuery selects a page of a conversation's messages by sequence
// number: Before or After (exclusive), or the newest page when both are 0.
type MessageQuery struct {
	Before, After int64
	Limit         int // 1 to 200, default 50
	// Contact selects what the conversation's contact may see (the
	// widget): every message but the private notes (ChannelNote), which
	// the page's Limit and HasBefore/HasAfter then do not count.
	Contact bool
}

// MessagePage is a page of messages in ascending order. HasBefore and
// HasAfter say whether there are more on either side.
type MessagePage struct {
	Messages  []Message `json:"messages"`
	HasBefore bool      `json:"has_before"`
	HasAfter  bool      `json:"has_after"`
}

// Messages returns a page of a conversation's messages with their
// attachments.
func (s *Store) Messages(ctx context.Context, conversationID int64, q MessageQuery) (MessagePage, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		return MessagePage{}, invalid("limit", "must be 1 to 200")
	}
	if q.Before != 0 && q.After != 0 {
		return MessagePage{}, invalid("before", "cannot be combined with after")
	}
	if _, err := s.Conversation(ctx, conversationID); err != nil {
		return MessagePage{}, err
	}
	db := s.rdb.WithContext(ctx).Where("conversation_id = ?", conversationID)
	if q.Contact {
		db = db.Where("channel <> ?", ChannelNote)
	}
	asc := q.After != 0
	switch {
	case q.After != 0:
		db = db.Where("seq > ?", q.After).Order("seq ASC")
	case q.Before != 0:
		db = db.Where("seq < ?", q.Before).Order("seq DESC")
	default:
		db = db.Order("seq DESC")
	}
	msgs := []Message{}
	if err := db.Limit(q.Limit + 1).Find(&msgs).Error; err != nil {
		return MessagePage{}, dbErr(err)
	}
	more := len(msgs) > q.Limit
	if more {
		msgs = msgs[:q.Limit]
	}
	if !asc {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	page := MessagePage{Messages: msgs}
	if asc {
		page.HasAfter, page.HasBefore = more, q.After > 0
	} else {
		page.HasBefore, page.HasAfter = more, q.Before != 0
	}
	if err := s.withDetails(ctx, msgs); err != nil {
		return MessagePage{}, err
	}
	return page, nil
}

// withDetails fills in the attachments and email envelopes of messages
// and makes their times UTC.
func (s *Store) withDetails(ctx context.Context, msgs []Message) error {
	if err := s.withAttachments(ctx, msgs); err != nil {
		return err
	}
	return s.withEmail(ctx, msgs)
}

// withAttachments fills in the attachments of messages and makes their
// times UTC.
func (s *Store) withAttachments(ctx context.Context, msgs []Message) error {
	ids := make([]int64, 0, len(msgs))
	for i := range msgs {
		msgs[i].CreatedAt = msgs[i].CreatedAt.UTC()
		ids = append(ids, msgs[i].ID)
	}
	if len(ids) == 0 {
		return nil
	}
	atts, err := s.attachmentsOf(ctx, ids)
	if err != nil {
		return err
	}
	by := map[int64][]Attachment{}
	for _, a := range atts {
		by[*a.MessageID] = append(by[*a.MessageID], a)
	}
	for i := range msgs {
		msgs[i].Attachments = by[msgs[i].ID]
	}
	return nil
}

func (s *Store) attachmentsOf(ctx context.Context, messageIDs []int64) ([]Attachment, error) {
	var atts []Attachment
	err := s.rdb.WithContext(ctx).Omit("data").Where("message_id IN ?", messageIDs).Order("id").Find(&atts).Error
	for i := range atts {
		atts[i].CreatedAt = atts[i].CreatedAt.UTC()
	}
	return atts, dbErr(err)
}

// Uploader is who uploads an attachment: the conversation's contact
// (Author AuthorContact) or an agent (Author AuthorAgent and AgentID).
type Uploader struct {
	Author  string
	AgentID int64
}

func (u Uploader) agentID() *int64 {
	if u.Author != AuthorAgent {
		return nil
	}
	return &u.AgentID
}

// AddAttachment stores a file in a conversation, to be sent with the next
// message of the same uploader that names it. Until then only the
// uploader sees it. name is a single line of user text (SingleLine), 1 to
// 255 bytes.
func (s *Store) AddAttachment(ctx context.Context, conversationID int64, by Uploader, name, contentType string, data []byte) (Attachment, error) {
	name, err := SingleLine("name", name)
	if err != nil {
		return Attachment{}, err
	}
	if name == "" || len(name) > 255 {
		return Attachment{}, invalid("name", "must be 1 to 255 bytes")
	}
	if by.Author != AuthorContact && by.Author != AuthorAgent {
		return Attachment{}, invalid("uploader", "must be a contact or an agent")
	}
	if _, err := s.Conversation(ctx, conversationID); err != nil {
		return Attachment{}, err
	}
	a := Attachment{ConversationID: conversationID, Uploader: by.Author, UploaderAgentID: by.agentID(),
		Name: name, ContentType: contentType, Size: int64(len(data)), Data: data, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Create(&a).Error; err != nil {
		return Attachment{}, dbErr(err)
	}
	a.Data = nil
	return a, nil
}

// OpenAttachment returns an attachment of the conversation with its bytes,
// for an agent: one that was sent with a message, or the agent's own
// upload. A co-agent's or the contact's unsent upload is ErrNotFound, as
// if it did not exist.
func (s *Store) OpenAttachment(ctx context.Context, conversationID, agentID, id int64) (Attachment, error) {
	var a Attachment
	err := s.rdb.WithContext(ctx).
		Where("id = ? AND conversation_id = ?", id, conversationID).
		Where("message_id IS NOT NULL OR (uploader = ? AND uploader_agent_id = ?)", AuthorAgent, agentID).
		First(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, ErrNotFound
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, dbErr(err)
}

// EventsSince returns the conversation's events after sequence number
// after, in order, at most limit of them. ErrResync means some of them are
// no longer kept, or after is beyond the conversation's last event (a
// cursor of something this server never had): load the conversation
// afresh. ErrNotFound: no such conversation.
func (s *Store) EventsSince(ctx context.Context, conversationID, after int64, limit int) ([]Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	read := func() ([]eventRow, error) { return s.eventsAfter(ctx, conversationID, after, limit) }
	rows, err := read()
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 && rows[0].Seq == after+1 {
		return s.hydrate(ctx, rows)
	}
	// Nothing, or a gap: the conversation tells which (read only now:
	// the common case needs one read).
	conv, err := s.Conversation(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		switch {
		case after == conv.Seq:
			return nil, nil
		case after > conv.Seq:
			return nil, ErrResync
		}
		// An event may have been committed between the two reads.
		if rows, err = read(); err != nil {
			return nil, err
		}
		if len(rows) > 0 && rows[0].Seq == after+1 {
			return s.hydrate(ctx, rows)
		}
	}
	return nil, ErrResync
}

// LineEvents returns the conversation's joined, left and closed events
// with from <= seq <= to, in seq order, the last limit of them (1 to 200):
// what the widget shows as lines between the messages (an agent joined or
// left, the chat ended), so that its history after a reload is the one it
// showed live. Events older than events.retention are no longer kept.
func (s *Store) LineEvents(ctx context.Context, conversationID, from, to int64, limit int) ([]Event, error) {
	if limit < 1 || limit > 200 {
		return nil, invalid("limit", "must be 1 to 200")
	}
	var rows []eventRow
	err := s.rdb.WithContext(ctx).Where("conversation_id = ? AND seq >= ? AND seq <= ? AND type IN ?", conversationID, from, to,
		[]string{EventJoined, EventLeft, EventClosed}).Order("seq DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, dbErr(err)
	}
	slices.Reverse(rows)
	return s.hydrate(ctx, rows)
}

// hydrate turns stored rows into events, reading the messages that
// message_added events point to.
// eventsAfter reads up to limit event rows of a conversation after seq
// after, in seq order: the read of every catch-up (a prepared statement
// of hot.go's, without gorm).
func (s *Store) eventsAfter(ctx context.Context, conversationID, after int64, limit int) ([]eventRow, error) {
	st, err := s.hot(ctx, `SELECT id, conversation_id, seq, type, message_id, data, created_at
		FROM events WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(s.readCtx(ctx), conversationID, after, limit)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	var out []eventRow
	for rows.Next() {
		var (
			r   eventRow
			msg sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.ConversationID, &r.Seq, &r.Type, &msg, &r.Data, &r.CreatedAt); err != nil {
			return nil, dbErr(err)
		}
		if msg.Valid {
			r.MessageID = &msg.Int64
		}
		out = append(out, r)
	}
	return out, dbErr(rows.Err())
}

func (s *Store) hydrate(ctx context.Context, rows []eventRow) ([]Event, error) {
	var msgIDs []int64
	for _, r := range rows {
		if r.MessageID != nil {
			msgIDs = append(msgIDs, *r.MessageID)
		}
	}
	msgs := map[int64]Message{}
	if len(msgIDs) > 0 {
		var list []Message
		if err := s.rdb.WithContext(ctx).Where("id IN ?", msgIDs).Find(&list).Error; err != nil {
			return nil, dbErr(err)
		}
		if err := s.withDetails(ctx, list); err != nil {
			return nil, err
		}
		for _, m := range list {
			msgs[m.ID] = m
		}
	}
	evs := make([]Event, 0, len(rows))
	for _, r := range rows {
		if r.Type == EventMessageAdded && r.MessageID != nil {
			ev := messageEvent(msgs[*r.MessageID], len(r.Data) > 0 && strings.Contains(string(r.Data), "reopened"))
			ev.ID = r.ID
			evs = append(evs, ev)
			continue
		}
		evs = append(evs, Event{ID: r.ID, ConversationID: r.ConversationID, Seq: r.Seq, Type: r.Type, Data: r.Data, At: r.CreatedAt.UTC()})
	}
	return evs, nil
}

// PruneEvents deletes events older than the given time. A subscriber that
// resumes from before them gets ErrResync. Webhook deliveries given up
// before then go too; the events a delivery still needs stay (those from
// the oldest it needs on), whatever their age.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := pruneFailedDeliveries(tx, before); err != nil {
			return err
		}
		res := tx.Exec(`DELETE FROM events WHERE created_at < ?
			AND id < COALESCE((SELECT min(event_id) FROM webhook_deliveries), 9223372036854775807)`, before.UTC())
		n = res.RowsAffected
		return res.Error
	})
	return n, dbErr(err)
}

// MarkRead records that a reader saw the other side's messages of a
// conversation up to sequence number upTo: an agent (agentID > 0) reads
// the contact's messages, the contact (agentID 0) the agents' but their
// private notes, which the contact never sees and which stay sent.
// Messages turn read and one EventMessagesRead tells both sides; reading
// nothing new changes nothing.
func (s *Store) MarkRead(ctx context.Context, conversationID, agentID, upTo int64) error {
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		conv, err := lockConversation(tx, conversationID)
		if err != nil {
			return err
		}
		if upTo <= 0 || upTo > conv.Seq {
			upTo = conv.Seq
		}
		reader, author := "contact", AuthorAgent
		if agentID > 0 {
			reader, author = "agent", AuthorContact
			if err := s.saveAgentRead(tx, agentID, conversationID, upTo); err != nil {
				return err
			}
		}
		var ids []int64
		if err := tx.Model(&Message{}).Where("conversation_id = ? AND author = ? AND seq <= ? AND state <> ? AND channel <> ?",
			conversationID, author, upTo, StateRead, ChannelNote).Order("id").Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			if agentID > 0 {
				return nil // keep the agent's read mark, add no event
			}
			return errNoop
		}
		if err := tx.Model(&Message{}).Where("id IN ?", ids).Update("state", StateRead).Error; err != nil {
			return err
		}
		_, err = s.addEvent(tx, conversationID, EventMessagesRead, MessagesRead{Reader: reader, AgentID: agentID, UpTo: upTo, MessageIDs: ids}, evs)
		return err
	})
}

func (s *Store) saveAgentRead(tx *gorm.DB, agentID, conversationID, seq int64) error {
	res := tx.Model(&AgentRead{}).Where("agent_id = ? AND conversation_id = ? AND seq < ?", agentID, conversationID, seq).Update("seq", seq)
	if res.Error != nil || res.RowsAffected > 0 {
		return res.Error
	}
	var n int64
	if err := tx.Model(&AgentRead{}).Where("agent_id = ? AND conversation_id = ?", agentID, conversationID).Count(&n).Error; err != nil || n > 0 {
		return err
	}
	return tx.Create(&AgentRead{AgentID: agentID, ConversationID: conversationID, Seq: seq}).Error
}

// SetMessageState moves messages of a conversation to a later delivery
// state (queued to sent to delivered); it never goes back.
func (s *Store) SetMessageState(ctx context.Context, conversationID int64, ids []int64, state string) error {
	order := map[string]int{StateQueued: 0, StateSent: 1, StateDelivered: 2, StateRead: 3}
	rank, ok := order[state]
	if !ok {
		return invalid("state", "unknown state %q", state)
	}
	var earlier []string
	for st, r := range order {
		if r < rank {
			earlier = append(earlier, st)
		}
	}
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		if _, err := lockConversation(tx, conversationID); err != nil {
			return err
		}
		var changed []int64
		if err := tx.Model(&Message{}).Where("conversation_id = ? AND id IN ? AND state IN ?", conversationID, ids, earlier).
			Order("id").Pluck("id", &changed).Error; err != nil {
			return err
		}
		if len(changed) == 0 {
			return errNoop
		}
		if err := tx.Model(&Message{}).Where("id IN ?", changed).Update("state", state).Error; err != nil {
			return err
		}
		_, err := s.addEvent(tx, conversationID, EventMessageState, MessageState{MessageIDs: changed, State: state}, evs)
		return err
	})
}

func marshalJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// ParseID parses a decimal id from text (a URL path, a JSON key); anything
// but a positive number is ErrNotFound, as an unknown id would be.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}
