package inbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// NewContact is a contact to create.
type NewContact struct {
	Name  string
	Email string
	Phone string
}

// CreateContact stores a new contact.
func (s *Store) CreateContact(ctx context.Context, in NewContact) (Contact, error) {
	c := Contact{Name: strings.TrimSpace(in.Name), Email: strings.TrimSpace(in.Email), Phone: strings.TrimSpace(in.Phone), CreatedAt: s.now()}
	if err := checkContact(&c); err != nil {
		return Contact{}, err
	}
	if err := s.db.WithContext(ctx).Create(&c).Error; err != nil {
		return Contact{}, dbErr(err)
	}
	return c, nil
}

// checkContact checks and cleans a contact's name, email and phone, each
// a single line of user text (SingleLine) of at most 200 bytes.
func checkContact(c *Contact) error {
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", &c.Name}, {"email", &c.Email}, {"phone", &c.Phone}} {
		v, err := SingleLine(f.name, *f.v)
		if err != nil {
			return err
		}
		if len(v) > 200 {
			return invalid(f.name, "is longer than 200 bytes")
		}
		*f.v = v
	}
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Name != "" {
			return invalid("email", "is not an email address")
		}
		c.Email = strings.ToLower(a.Address)
	}
	if c.Phone != "" && !validPhone(c.Phone) {
		return invalid("phone", "must be 5 to 20 of digits, spaces and + - ( )")
	}
	if c.Name == "" && c.Email == "" {
		return invalid("name", "is required")
	}
	return nil
}

// validPhone accepts what people type as a phone number: 5 to 20 digits,
// spaces, +, -, ( and ), with at least one digit.
func validPhone(p string) bool {
	if len(p) < 5 || len(p) > 20 {
		return false
	}
	digits := 0
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ', r == '+', r == '-', r == '(', r == ')':
		default:
			return false
		}
	}
	return digits > 0
}

// Contact returns one contact.
func (s *Store) Contact(ctx context.Context, id int64) (Contact, error) {
	var c Contact
	err := s.rdb.WithContext(ctx).First(&c, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Contact{}, ErrNotFound
	}
	return c, dbErr(err)
}

func newToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// StartConversation opens a new conversation for a contact. It starts in
// Unassigned (rule 1).
func (s *Store) StartConversation(ctx context.Context, contactID int64, channel, subject string) (Conversation, error) {
	if channel != ChannelChat && channel != ChannelEmail {
		return Conversation{}, invalid("channel", "must be chat or email")
	}
	subject, err := SingleLine("subject", subject)
	if err != nil {
		return Conversation{}, err
	}
	if len(subject) > 500 {
		return Conversation{}, invalid("subject", "is longer than 500 bytes")
	}
	var c Conversation
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		var contact Contact
		if err := tx.First(&contact, contactID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		var err error
		c, err = s.createConversation(tx, contact, channel, subject, evs)
		return err
	})
	if err != nil {
		return Conversation{}, err
	}
	return c, nil
}

// createConversation stores a new open conversation of the contact and
// its first event, in the caller's transaction.
func (s *Store) createConversation(tx *gorm.DB, contact Contact, channel, subject string, evs *[]Event) (Conversation, error) {
	now := s.now()
	c := Conversation{ContactID: contact.ID, Channel: channel, Status: StatusOpen, Subject: subject,
		Token: newToken(15), HasEmail: channel == ChannelEmail, LastActivityAt: now, CreatedAt: now}
	if err := tx.Create(&c).Error; err != nil {
		return c, err
	}
	ev, err := s.addEvent(tx, c.ID, EventConversationCreated, ConversationCreated{Conversation: c, Contact: contact}, evs)
	c.Seq = ev.Seq
	return c, err
}

// Join makes the agent a participant (rule 2). The first participant is
// responsible. Joining a closed conversation reopens it. Joining twice
// changes nothing.
func (s *Store) Join(ctx context.Context, conversationID, agentID int64) error {
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		conv, err := lockConversation(tx, conversationID)
		if err != nil {
			return err
		}
		var agent Agent
		if err := tx.First(&agent, agentID).Error; err != nil {
			return err
		}
		var active []Participant
		if err := tx.Where("conversation_id = ? AND left_at IS NULL", conversationID).Find(&active).Error; err != nil {
			return err
		}
		for _, p := range active {
			if p.AgentID == agentID {
				return errNoop
			}
		}
		p := Participant{ConversationID: conversationID, AgentID: agentID, Responsible: len(active) == 0, JoinedAt: s.now()}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		reopened := conv.Status == StatusClosed
		if reopened {
			if err := tx.Model(&Conversation{}).Where("id = ?", conversationID).
				Updates(map[string]any{"status": StatusOpen, "closed_at": nil}).Error; err != nil {
				return err
			}
		}
		_, err = s.addEvent(tx, conversationID, EventJoined, Joined{AgentID: agentID, AgentName: agent.Name, Responsible: p.Responsible, Reopened: reopened}, evs)
		return err
	})
}

// Leave removes the agent from the conversation (rule 3). When the last
// participant leaves, the conversation is closed and the contact offered
// the survey: in the widget, and by email (an outbox row of kind survey,
// in the same transaction) when the widget cannot show it; see
// enqueueSurvey. Leaving a conversation one is not in is ErrConflict.
func (s *Store) Leave(ctx context.Context, conversationID, agentID int64) error {
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		if _, err := lockConversation(tx, conversationID); err != nil {
			return err
		}
		var agent Agent
		if err := tx.First(&agent, agentID).Error; err != nil {
			return err
		}
		return s.leave(tx, conversationID, agent, evs)
	})
}

// leave is Leave in tx, the conversation locked.
func (s *Store) leave(tx *gorm.DB, conversationID int64, agent Agent, evs *[]Event) error {
	agentID := agent.ID
	now := s.now()
	// The participation's first response (reports.go) cannot change once
	// it ends: it is kept with it, for the operator report.
	res := tx.Exec(`UPDATE participants SET left_at = ?, first_reply_at = (`+firstReply("participants", "?")+`)
		WHERE conversation_id = ? AND agent_id = ? AND left_at IS NULL`, now, now, conversationID, agentID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrConflict
	}
	if _, err := s.addEvent(tx, conversationID, EventLeft, Left{AgentID: agentID, AgentName: agent.Name}, evs); err != nil {
		return err
	}
	var left int64
	if err := tx.Model(&Participant{}).Where("conversation_id = ? AND left_at IS NULL", conversationID).Count(&left).Error; err != nil {
		return err
	}
	if left > 0 {
		return nil
	}
	if err := tx.Model(&Conversation{}).Where("id = ?", conversationID).
		Updates(map[string]any{"status": StatusClosed, "closed_at": now}).Error; err != nil {
		return err
	}
	if _, err := s.addEvent(tx, conversationID, EventClosed, Closed{SurveyOffered: true}, evs); err != nil {
		return err
	}
	return s.enqueueSurvey(tx, conversationID)
}

// lockConversation reads the conversation for update: on PostgreSQL the
// row stays locked until the transaction ends, so that concurrent joins
// and leaves see each other's participants.
func lockConversation(tx *gorm.DB, id int64) (Conversation, error) {
	return lockRow[Conversation](tx, id)
}

// lockContact reads a contact for an update of columns that are no key
// (SELECT ... FOR NO KEY UPDATE on PostgreSQL, the lock its UPDATE takes
// and SetContactsOnline's: rows that reference the contact can still be
// inserted meanwhile); ErrNotFound when there is none. A transaction
// that locks conversations too locks the contact first.
func lockContact(tx *gorm.DB, id int64) (Contact, error) {
	return lockRowFor[Contact](tx, id, "NO KEY UPDATE")
}

// lockRow reads the row of a table by id for update (SELECT ... FOR
// UPDATE on PostgreSQL; SQLite's writer holds the whole database);
// ErrNotFound when there is none.
func lockRow[T any](tx *gorm.DB, id int64) (T, error) {
	return lockRowFor[T](tx, id, clause.LockingStrengthUpdate)
}

// lockRowFor is lockRow with the lock's strength on PostgreSQL
// ("UPDATE", "NO KEY UPDATE").
func lockRowFor[T any](tx *gorm.DB, id int64, strength string) (T, error) {
	var row T
	q := tx
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: strength})
	}
	err := q.First(&row, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, ErrNotFound
	}
	return row, err
}

// Conversation returns one conversation.
func (s *Store) Conversation(ctx context.Context, id int64) (Conversation, error) {
	var c Conversation
	err := s.rdb.WithContext(ctx).First(&c, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return c, ErrNotFound
	}
	return c, dbErr(err)
}

// ConversationStart returns a conversation with its agents now (as
// Participants, the responsible one first) in one read: what a widget
// socket reads for every connect (its hello), where Conversation and
// Participants would be two. ErrNotFound if there is no such
// conversation.
func (s *Store) ConversationStart(ctx context.Context, id int64) (Conversation, []ParticipantAgent, error) {
	st, err := s.hot(ctx, `SELECT `+startColumns+`
		FROM conversations v
		LEFT JOIN participants p ON p.conversation_id = v.id AND p.left_at IS NULL
		LEFT JOIN agents a ON a.id = p.agent_id
		WHERE v.id = ?
		ORDER BY p.responsible DESC, p.joined_at, p.id`)
	if err != nil {
		return Conversation{}, nil, err
	}
	rows, err := st.QueryContext(s.readCtx(ctx), id)
	if err != nil {
		return Conversation{}, nil, dbErr(err)
	}
	c, parts, found, err := scanStart(rows)
	if err == nil && !found {
		err = ErrNotFound
	}
	return c, parts, err
}

// startColumns are what scanStart reads of a conversation (v) and each of
// its agents (p, a; NULL in the one row of a conversation without any).
const startColumns = `v.id, v.contact_id, v.channel, v.status, v.subject, v.seq, v.token,
		v.has_email, v.last_activity_at, v.created_at, v.closed_at,
		p.agent_id, a.name, p.responsible, p.joined_at, a.presence`

// scanStart reads rows of lead columns (scanned into lead, the same in
// every row) then startColumns, and closes them; found is false when
// there was no row.
func scanStart(rows *sql.Rows, lead ...any) (c Conversation, parts []ParticipantAgent, found bool, err error) {
	defer rows.Close()
	var (
		lastActivity sql.NullTime
		closed       sql.NullTime
		agentID      sql.NullInt64
		name         sql.NullString
		responsible  sql.NullBool
		joined       sql.NullTime
		presence     sql.NullString
	)
	dest := append(lead, &c.ID, &c.ContactID, &c.Channel, &c.Status, &c.Subject, &c.Seq, &c.Token,
		&c.HasEmail, &lastActivity, &c.CreatedAt, &closed,
		&agentID, &name, &responsible, &joined, &presence)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return Conversation{}, nil, false, dbErr(err)
		}
		found = true
		if agentID.Valid { // else the LEFT JOIN's one row of no agent
			parts = append(parts, ParticipantAgent{AgentID: agentID.Int64, Name: name.String,
				Responsible: responsible.Bool, JoinedAt: joined.Time.UTC(), Presence: presence.String})
		}
	}
	if err := rows.Err(); err != nil {
		return Conversation{}, nil, false, dbErr(err)
	}
	c.LastActivityAt = lastActivity.Time
	if closed.Valid {
		t := closed.Time
		c.ClosedAt = &t
	}
	return c, parts, found, nil
}

// Participants returns the agents in a conversation now, the responsible
// one first.
func (s *Store) Participants(ctx context.Context, conversationID int64) ([]ParticipantAgent, error) {
	m, err := s.participantsOf(ctx, []int64{conversationID})
	return m[conversationID], err
}

// AgentName is an agent as a conversation's history names them.
type AgentName struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Authors returns every agent who took part in the conversation, joined
// or wrote, including those who have left: the names its history shows
// the contact (the widget). An agent who only wrote private notes
// (ChannelNote) is not among them: the contact sees none.
func (s *Store) Authors(ctx context.Context, conversationID int64) ([]AgentName, error) {
	var out []AgentName
	err := s.rdb.WithContext(ctx).Raw(`SELECT id, name FROM agents WHERE id IN (
		SELECT agent_id FROM participants WHERE conversation_id = ?
		UNION SELECT agent_id FROM messages WHERE conversation_id = ? AND agent_id IS NOT NULL AND channel <> ?)
		ORDER BY id`, conversationID, conversationID, ChannelNote).Scan(&out).Error
	if err != nil {
		return nil, dbErr(err)
	}
	if out == nil {
		out = []AgentName{}
	}
	return out, nil
}

// ParticipantAgent is a current participant with the agent's name.
type ParticipantAgent struct {
	AgentID     int64     `json:"agent_id"`
	Name        string    `json:"name"`
	Responsible bool      `json:"responsible"`
	JoinedAt    time.Time `json:"joined_at"`
	Presence    string    `json:"presence"` // the agent's: online, idle or offline
}

func (s *Store) participantsOf(ctx context.Context, ids []int64) (map[int64][]ParticipantAgent, error) {
	type row struct {
		ConversationID int64
		ParticipantAgent
	}
	var rows []row
	err := s.rdb.WithContext(ctx).Table("participants p").
		Select("p.conversation_id, p.agent_id, a.name, p.responsible, p.joined_at, a.presence").
		Joins("JOIN agents a ON a.id = p.agent_id").
		Where("p.conversation_id IN ? AND p.left_at IS NULL", ids).
		Order("p.responsible DESC, p.joined_at, p.id").Scan(&rows).Error
	if err != nil {
		return nil, dbErr(err)
	}
	m := map[int64][]ParticipantAgent{}
	for _, r := range rows {
		r.JoinedAt = r.JoinedAt.UTC()
		m[r.ConversationID] = append(m[r.ConversationID], r.ParticipantAgent)
	}
	return m, nil
}

// Rate stores the contact's rating of a closed conversation, for every
// agent who took part (rule 3). A second rating replaces the first.
func (s *Store) Rate(ctx context.Context, conversationID int64, score int, comment string) (Rating, error) {
	comment, err := checkRating(score, comment)
	if err != nil {
		return Rating{}, err
	}
	var r Rating
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		var err error
		r, err = s.rate(tx, conversationID, score, comment, evs)
		return err
	})
	return r, err
}

// checkRating checks a score (1 to 5) and returns the comment cleaned
// (MultiLine, trimmed, at most 2000 bytes).
func checkRating(score int, comment string) (string, error) {
	if score < 1 || score > 5 {
		return "", invalid("score", "must be 1 to 5")
	}
	comment, err := MultiLine("comment", comment)
	if err != nil {
		return "", err
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > 2000 {
		return "", invalid("comment", "is longer than 2000 bytes")
	}
	return comment, nil
}

// rate is Rate in tx, with the score and comment checked.
func (s *Store) rate(tx *gorm.DB, conversationID int64, score int, comment string, evs *[]Event) (Rating, error) {
	conv, err := lockConversation(tx, conversationID)
	if err != nil {
		return Rating{}, err
	}
	var agentIDs []int64
	if err := tx.Model(&Participant{}).Where("conversation_id = ?", conversationID).
		Distinct().Order("agent_id").Pluck("agent_id", &agentIDs).Error; err != nil {
		return Rating{}, err
	}
	if len(agentIDs) == 0 {
		return Rating{}, invalid("score", "no agent took part in this conversation yet")
	}
	var old []int64
	tx.Model(&Rating{}).Where("conversation_id = ?", conversationID).Pluck("id", &old)
	if len(old) > 0 {
		if err := tx.Where("rating_id IN ?", old).Delete(&RatingAgent{}).Error; err != nil {
			return Rating{}, err
		}
		if err := tx.Delete(&Rating{}, old).Error; err != nil {
			return Rating{}, err
		}
	}
	r := Rating{ConversationID: conversationID, ContactID: conv.ContactID, Score: score, Comment: comment, CreatedAt: s.now()}
	if err := tx.Create(&r).Error; err != nil {
		return Rating{}, err
	}
	for _, id := range agentIDs {
		if err := tx.Create(&RatingAgent{RatingID: r.ID, AgentID: id}).Error; err != nil {
			return Rating{}, err
		}
	}
	_, err = s.addEvent(tx, conversationID, EventRated, Rated{Score: score, Comment: comment, AgentIDs: agentIDs}, evs)
	return r, err
}

// DeleteConversation removes a conversation with its messages, attachments,
// events and participations for good (rule 12). Its rating stays, without
// the comment, so that the operator report keeps its figures.
func (s *Store) DeleteConversation(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		conv, err := lockConversation(tx, id)
		if err != nil {
			return err
		}
		if err := deleteConversations(tx, []int64{id}); err != nil {
			return err
		}
		if err := tx.Model(&Rating{}).Where("conversation_id = ?", id).Update("comment", "").Error; err != nil {
			return err
		}
		data, _ := json.Marshal(ConversationDeleted{ContactID: conv.ContactID})
		*evs = append(*evs, Event{ConversationID: id, Seq: conv.Seq + 1, Type: EventConversationDeleted, Data: data, At: s.now()})
		return nil
	})
}

// deleteConversations deletes conversations with everything of theirs,
// their mail's envelopes and raw sources included, but keeps the record
// that their mail was imported (email_ids, without the ids), so that the
// same mail fetched again is a duplicate: deleted stays deleted.
func deleteConversations(tx *gorm.DB, ids []int64) error {
	for _, q := range []string{
		`UPDATE email_ids SET conversation_id = NULL, message_id = NULL WHERE conversation_id IN ?`,
		`DELETE FROM email_messages WHERE message_id IN (SELECT id FROM messages WHERE conversation_id IN ?)`,
		`DELETE FROM attachments WHERE conversation_id IN ?`,
		`DELETE FROM messages WHERE conversation_id IN ?`,
		`DELETE FROM events WHERE conversation_id IN ?`,
		`DELETE FROM participants WHERE conversation_id IN ?`,
		`DELETE FROM agent_reads WHERE conversation_id IN ?`,
		// Deliveries owed tell of what is gone (webhooks.go).
		`DELETE FROM webhook_deliveries WHERE stream IN ?`,
		`DELETE FROM conversations WHERE id IN ?`,
	} {
		if err := tx.Exec(q, ids).Error; err != nil {
			return err
		}
	}
	return nil
}

// EraseContact removes a contact and everything of theirs: conversations,
// messages, attachments and ratings (rule 12).
func (s *Store) EraseContact(ctx context.Context, contactID int64) error {
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		var convs []Conversation
		if err := tx.Where("contact_id = ?", contactID).Find(&convs).Error; err != nil {
			return err
		}
		res := tx.Delete(&Contact{}, contactID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		ids := make([]int64, 0, len(convs))
		for _, c := range convs {
			ids = append(ids, c.ID)
		}
		if len(ids) > 0 {
			if err := deleteConversations(tx, ids); err != nil {
				return err
			}
		}
		if err := tx.Exec(`DELETE FROM rating_agents WHERE rating_id IN (SELECT id FROM ratings WHERE contact_id = ?)`, contactID).Error; err != nil {
			return err
		}
		if err := tx.Where("contact_id = ?", contactID).Delete(&Rating{}).Error; err != nil {
			return err
		}
		if err := tx.Where("contact_id = ?", contactID).Delete(&VisitorSession{}).Error; err != nil {
			return err
		}
		if err := tx.Where("contact_id = ?", contactID).Delete(&PageView{}).Error; err != nil {
			return err
		}
		// What was owed of the contact goes too; receivers learn of the
		// erasure itself (webhooks.go).
		if err := tx.Exec(`DELETE FROM webhook_deliveries WHERE stream = ?`, -contactID).Error; err != nil {
			return err
		}
		if err := s.contactHook(tx, HookContactErased, contactID, HookContactErasedData{ContactID: contactID}); err != nil {
			return err
		}
		data, _ := json.Marshal(ConversationDeleted{ContactID: contactID})
		for _, c := range convs {
			*evs = append(*evs, Event{ConversationID: c.ID, Seq: c.Seq + 1, Type: EventConversationDeleted, Data: data, At: s.now()})
		}
		return nil
	})
	if err == nil {
		// The visitor's sockets close at once (their tokens are gone).
		s.pub.Revoke(Revoked{ContactID: contactID})
	}
	return err
}
