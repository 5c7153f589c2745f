package inbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// NewAgent is an agent account to create.
type NewAgent struct {
	Email    string
	Name     string
	Role     string // RoleAdmin or RoleAgent; empty means RoleAgent
	Password string
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// BcryptCost is bcrypt's work factor for new passwords. Tests lower it to
// bcrypt.MinCost to run fast; nothing else should change it.
var BcryptCost = bcrypt.DefaultCost

// CreateAgent stores a new agent with a bcrypt hash of the password.
func (s *Store) CreateAgent(ctx context.Context, in NewAgent) (Agent, error) {
	a, err := s.newAgent(in)
	if err != nil {
		return Agent{}, err
	}
	if err := s.db.WithContext(ctx).Create(&a).Error; err != nil {
		if isDuplicate(err) {
			return Agent{}, invalid("email", "an agent with this email exists")
		}
		return Agent{}, dbErr(err)
	}
	return a, nil
}

func (s *Store) newAgent(in NewAgent) (Agent, error) {
	email, err := cleanAgentEmail(in.Email)
	if err != nil {
		return Agent{}, err
	}
	name, err := checkAgentName(in.Name)
	if err != nil {
		return Agent{}, err
	}
	role := in.Role
	if role == "" {
		role = RoleAgent
	}
	if role != RoleAdmin && role != RoleAgent {
		return Agent{}, invalid("role", "must be admin or agent")
	}
	hash, err := hashPassword("password", in.Password)
	if err != nil {
		return Agent{}, err
	}
	return Agent{Email: email, Name: name, Role: role, PasswordHash: hash, CreatedAt: s.now(), Presence: PresenceOffline,
		Settings: DefaultAgentSettings()}, nil
}

// hashPassword checks a new password, given in field, and returns its
// bcrypt hash: at least MinPasswordLength characters and at most 72 bytes
// (bcrypt reads no further), or an *InvalidError for field.
func hashPassword(field, password string) (string, error) {
	// A password is not stored as text, but it is user text as any other
	// (inbox/text.go): NUL and invalid UTF-8 are refused, nothing else is
	// changed.
	if err := checkText(field, password); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return "", invalid(field, "must be at least %d characters", MinPasswordLength)
	}
	if len(password) > 72 {
		return "", invalid(field, "must be at most 72 bytes")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	return string(hash), err
}

// cleanAgentEmail checks an agent's login email and returns it as stored:
// a single line of user text holding one bare address, in lower case.
func cleanAgentEmail(email string) (string, error) {
	email, err := SingleLine("email", email)
	if err != nil {
		return "", err
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" {
		return "", invalid("email", "is not an email address")
	}
	return strings.ToLower(addr.Address), nil
}

// MaxAgentNameBytes bounds an agent's display name.
const MaxAgentNameBytes = 100

// checkAgentName is the one check of an agent's display name, for every
// way one is set (CreateAgent, CompleteSetup, RenameAgent, the
// bootstrap admin): it returns the name cleaned as a single line of user
// text (SingleLine: no control, bidi override or zero-width characters,
// trimmed), or an *InvalidError for field "name" if it holds NUL or
// invalid UTF-8, nothing is left, or it is longer than MaxAgentNameBytes.
func checkAgentName(name string) (string, error) {
	name, err := SingleLine("name", name)
	if err != nil {
		return "", err
	}
	if name == "" || len(name) > MaxAgentNameBytes {
		return "", invalid("name", "must be 1 to %d bytes of visible text", MaxAgentNameBytes)
	}
	return name, nil
}

// RenameAgent sets an agent's display name, the name customers see
// (checkAgentName decides what is valid; ErrNotFound if there is no such
// agent). What a conversation's history recorded under the old name
// (joined and left events) stays as it was; everything that names the
// agent now (the widget's agents and authors, hello, presence, the
// agents list) reads the new one. A changed name is announced after the
// commit with a transient EventPresence, carrying the agent's current
// presence, in every conversation the agent takes part in, so that open
// widgets show it at once, and once without a conversation for the
// dashboards (see SetAgentPresence). It is UpdateAgent with only a name.
func (s *Store) RenameAgent(ctx context.Context, id int64, name string) (Agent, error) {
	return s.UpdateAgent(ctx, id, AgentChange{Name: &name})
}

// announceName adds, in tx, the transient EventPresence that tells the
// conversations the agent takes part in of their new name (RenameAgent).
func (s *Store) announceName(tx *gorm.DB, a Agent, evs *[]Event) error {
	convs, err := joinedConversations(tx, a.ID)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(AgentPresence{AgentID: a.ID, Name: a.Name, Presence: a.Presence})
	now := s.now()
	for _, conv := range append(convs, 0) {
		*evs = append(*evs, Event{ConversationID: conv, Type: EventPresence, Data: data, At: now})
	}
	return nil
}

// Agent returns one agent.
func (s *Store) Agent(ctx context.Context, id int64) (Agent, error) {
	var a Agent
	err := s.rdb.WithContext(ctx).First(&a, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, ErrNotFound
	}
	return a, dbErr(err)
}

// Agents returns every agent, by name, the disabled ones too (their
// DeactivatedAt set).
func (s *Store) Agents(ctx context.Context) ([]Agent, error) {
	var list []Agent
	err := s.rdb.WithContext(ctx).Order("name, id").Find(&list).Error
	return list, dbErr(err)
}

// CountAgents returns how many agents exist (admins only if admins).
func (s *Store) CountAgents(ctx context.Context, admins bool) (int64, error) {
	db := s.rdb.WithContext(ctx).Model(&Agent{}).Where("deactivated_at IS NULL")
	if admins {
		db = db.Where("role = ?", RoleAdmin)
	}
	var n int64
	err := db.Count(&n).Error
	return n, dbErr(err)
}

// dummyHash is compared against when the email is unknown, so that the
// answer takes as long as for a known one. Made on first use, not at start.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), BcryptCost)
	return h
})

// Authenticate returns the agent with this email and password, or
// ErrUnauthenticated; an email that is not text (NUL, invalid UTF-8) is
// an InvalidError for "email".
func (s *Store) Authenticate(ctx context.Context, email, password string) (Agent, error) {
	email, err := SingleLine("email", email)
	if err != nil {
		return Agent{}, err
	}
	var a Agent
	err = s.rdb.WithContext(ctx).Where("email = ?", strings.ToLower(email)).First(&a).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return Agent{}, dbErr(err)
	}
	hash := []byte(a.PasswordHash)
	if a.ID == 0 {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || a.ID == 0 || a.DeactivatedAt != nil {
		return Agent{}, ErrUnauthenticated
	}
	return a, nil
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SessionID is the id under which the database keeps a session cookie's
// value or a visitor token (Session.ID, VisitorSession.ID): its SHA-256,
// in hex. Sockets key their credentials by it, as Revoked names them.
func SessionID(token string) string { return tokenID(token) }

func tokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CreateSession logs an agent in: it returns the cookie value and the
// session's CSRF token. The database keeps only the cookie's hash, so any
// node accepts the session.
func (s *Store) CreateSession(ctx context.Context, agentID int64, ttl time.Duration) (token string, sess Session, err error) {
	token = randomToken()
	now := s.now()
	sess = Session{ID: tokenID(token), AgentID: agentID, CSRFToken: randomToken(), CreatedAt: now, ExpiresAt: now.Add(ttl), LastUsedAt: now}
	if err := s.db.WithContext(ctx).Create(&sess).Error; err != nil {
		return "", Session{}, dbErr(err)
	}
	return token, sess, nil
}

// joinedAgent is the agent of a credential's row, read in the same query
// as the credential (SessionAgent, APITokenAgent) with
// joinedAgentColumns and a join of agents as "a".
type joinedAgent struct {
	AgentEmail, AgentName, AgentRole, AgentPasswordHash, AgentPresence string
	AgentCreatedAt                                                     time.Time
	AgentNotifications                                                 string
	AgentSound                                                         bool
}

// joinedAgentColumns selects a joinedAgent from agents joined as "a".
const joinedAgentColumns = "a.email AS agent_email, a.name AS agent_name, a.role AS agent_role, " +
	"a.password_hash AS agent_password_hash, a.presence AS agent_presence, a.created_at AS agent_created_at, " +
	"a.notifications AS agent_notifications, a.sound AS agent_sound"

// agent returns the agent, whose id is id (the credential's agent_id).
func (j joinedAgent) agent(id int64) Agent {
	return Agent{ID: id, Email: j.AgentEmail, Name: j.AgentName, Role: j.AgentRole,
		PasswordHash: j.AgentPasswordHash, CreatedAt: j.AgentCreatedAt.UTC(), Presence: j.AgentPresence,
		Settings: AgentSettings{Notifications: j.AgentNotifications, Sound: j.AgentSound}}
}

// SessionAgent returns the session of a cookie value and its agent, or
// ErrUnauthenticated if there is none or it expired. It records use at
// most once a minute, so that requests do not each write.
func (s *Store) SessionAgent(ctx context.Context, token string) (Session, Agent, error) {
	// One read for both: it runs before every agent request.
	var row struct {
		Session
		Agent joinedAgent `gorm:"embedded"` // an exported field: gorm skips unexported ones
	}
	err := s.rdb.WithContext(ctx).Table("sessions").
		Select("sessions.*, "+joinedAgentColumns).
		Joins("JOIN agents a ON a.id = sessions.agent_id AND a.deactivated_at IS NULL").
		Where("sessions.id = ?", tokenID(token)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, Agent{}, ErrUnauthenticated // no session, or its agent is gone or removed
	}
	if err != nil {
		return Session{}, Agent{}, dbErr(err)
	}
	sess := row.Session
	now := s.now()
	if !now.Before(sess.ExpiresAt) {
		return Session{}, Agent{}, ErrUnauthenticated
	}
	if now.Sub(sess.LastUsedAt) > time.Minute {
		s.db.WithContext(ctx).Model(&Session{}).Where("id = ?", sess.ID).Update("last_used_at", now)
	}
	return sess, row.Agent.agent(sess.AgentID), nil
}

// DeleteSession logs out; the session's sockets close at once (a Revoked
// notice after the commit).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	id := tokenID(token)
	if err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&Session{}).Error; err != nil {
		return dbErr(err)
	}
	s.pub.Revoke(Revoked{SessionID: id})
	return nil
}

// PruneSessions deletes expired sessions, the agents' and the visitors'.
func (s *Store) PruneSessions(ctx context.Context) error {
	now := s.now()
	if err := s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&Session{}).Error; err != nil {
		return dbErr(err)
	}
	return dbErr(s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&VisitorSession{}).Error)
}

// EnsureAdmin creates an admin with in's email, name and password unless
// an agent with the email exists, whose name and password it leaves as
// they are (the agent may have renamed themselves since). An empty name
// is the email's local part. It returns whether it created one. Several
// nodes starting at once with the same admin may all call it: one
// creates the admin, the others find it.
func (s *Store) EnsureAdmin(ctx context.Context, in NewAgent) (bool, error) {
	email, err := cleanAgentEmail(in.Email)
	if err != nil {
		return false, err
	}
	exists := func() (bool, error) {
		var n int64
		err := s.db.WithContext(ctx).Model(&Agent{}).Where("email = ?", email).Count(&n).Error
		return n > 0, dbErr(err)
	}
	if ok, err := exists(); ok || err != nil {
		return false, err
	}
	if in.Name == "" {
		in.Name, _, _ = strings.Cut(email, "@")
	}
	in.Email, in.Role = email, RoleAdmin
	_, err = s.CreateAgent(ctx, in)
	var inv *InvalidError
	if errors.As(err, &inv) && inv.Field == "email" {
		// Created since the count (by another node): it exists.
		if ok, err2 := exists(); ok || err2 != nil {
			return false, err2
		}
	}
	return err == nil, err
}

// CreateSetupToken returns a one-time token that lets whoever holds it
// create the first admin, valid for ttl. It refuses once an admin exists.
func (s *Store) CreateSetupToken(ctx context.Context, ttl time.Duration) (string, error) {
	token := randomToken()
	err := s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var n int64
		if err := tx.Model(&Agent{}).Where("role = ?", RoleAdmin).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		now := s.now()
		return tx.Create(&SetupToken{ID: tokenID(token), CreatedAt: now, ExpiresAt: now.Add(ttl)}).Error
	})
	return token, err
}

// CompleteSetup creates the first admin with a setup token. The token works
// once, and only while no admin exists.
func (s *Store) CompleteSetup(ctx context.Context, token string, in NewAgent) (Agent, error) {
	in.Role = RoleAdmin
	a, err := s.newAgent(in)
	if err != nil {
		return Agent{}, err
	}
	err = s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		res := tx.Where("id = ? AND expires_at > ?", tokenID(token), s.now()).Delete(&SetupToken{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrUnauthenticated
		}
		var n int64
		if err := tx.Model(&Agent{}).Where("role = ?", RoleAdmin).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		if err := tx.Where("1 = 1").Delete(&SetupToken{}).Error; err != nil {
			return err
		}
		return tx.Create(&a).Error
	})
	if isDuplicate(err) {
		return Agent{}, invalid("email", "an agent with this email exists")
	}
	return a, err
}

// joinedConversations returns the ids of the conversations the agent
// takes part in now, ascending (the order PostgreSQL locks rows in).
func joinedConversations(tx *gorm.DB, agentID int64) ([]int64, error) {
	var ids []int64
	err := tx.Model(&Participant{}).Where("agent_id = ? AND left_at IS NULL", agentID).
		Order("conversation_id").Pluck("conversation_id", &ids).Error
	return ids, err
}

// RemoveAgent disables an agent account (DELETE /agents/{id}, admins):
// UpdateAgent with Disabled true, except that an agent already disabled
// is ErrNotFound. See disableAgent for what disabling does; disabling
// the last enabled admin is ErrConflict.
func (s *Store) RemoveAgent(ctx context.Context, agentID int64) error {
	yes := true
	_, err := s.updateAgent(ctx, agentID, AgentChange{Disabled: &yes}, true)
	return err
}
