package inbox

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Personal API tokens (issue 15, part 5): an agent names a token and
// gives it an expiry; whoever holds it acts as that agent, with the
// agent's role, on the HTTP API (web checks Authorization: Bearer with
// APITokenAgent). The value is shown once, when it is made, and the
// database keeps only its SHA-256 (tokenID, as for sessions), so that a
// copy of the database lets no one in. Nothing about a token is cached:
// every request reads it, so a revoked token, an expired one, or one of
// an agent disabled since, is refused by the very next request, on every
// node. Tokens make no events: they are no conversation's.

// APITokenPrefix starts every API token, so that a token is recognised
// for what it is (in logs, by secret scanners) and told apart from a
// visitor's token or a session cookie.
const APITokenPrefix = "mct_"

// Bounds of an API token.
const (
	// MaxAPITokenName is the longest name, in characters.
	MaxAPITokenName = 100
	// MaxAPITokenLifetime is the latest expiry, from the time it is made:
	// a token that lives forever is one nobody remembers to revoke.
	MaxAPITokenLifetime = 365 * 24 * time.Hour
)

// APIToken is an agent's personal API token, without its value. A token
// is live while RevokedAt is nil and ExpiresAt is ahead; the agent's list
// keeps the others, marked so, for what they did (LastUsedAt).
type APIToken struct {
	ID      int64 `json:"id"`
	AgentID int64 `json:"agent_id"`
	// Name is a single line of 1 to MaxAPITokenName characters, the
	// agent's reminder of what uses it.
	Name string `json:"name"`
	// TokenHash is the hex SHA-256 of the value; it never leaves inbox.
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the token stops working, at most
	// MaxAPITokenLifetime after CreatedAt.
	ExpiresAt time.Time `json:"expires_at"`
	// LastUsedAt is when it last authenticated a request, to the minute
	// (APITokenAgent records it at most once a minute); nil if never.
	LastUsedAt *time.Time `json:"last_used_at"`
	// RevokedAt is when the agent revoked it (RevokeAPIToken) or an
	// admin disabled the agent; nil while it is not revoked.
	RevokedAt *time.Time `json:"revoked_at"`
}

// TableName is the table of API tokens (migration 0018).
func (APIToken) TableName() string { return "api_tokens" }

func utcAPIToken(t *APIToken) {
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	for _, p := range []**time.Time{&t.LastUsedAt, &t.RevokedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
}

// CreateAPIToken makes a token for the agent and returns it with its
// value, which nothing can show again. name is trimmed, a single line of
// user text (SingleLine) of 1 to MaxAPITokenName characters, or an
// *InvalidError for "name"; expiresAt must be ahead of now by at most
// MaxAPITokenLifetime, or an *InvalidError for "expires_at". ErrNotFound
// if the agent does not exist or is disabled.
func (s *Store) CreateAPIToken(ctx context.Context, agentID int64, name string, expiresAt time.Time) (APIToken, string, error) {
	name, err := SingleLine("name", name)
	if err != nil {
		return APIToken{}, "", err
	}
	if name == "" || utf8.RuneCountInString(name) > MaxAPITokenName {
		return APIToken{}, "", invalid("name", "must be 1 to %d characters of visible text", MaxAPITokenName)
	}
	now := s.now()
	expiresAt = expiresAt.UTC().Truncate(time.Microsecond)
	if !expiresAt.After(now) || expiresAt.Sub(now) > MaxAPITokenLifetime {
		return APIToken{}, "", invalid("expires_at", "must be in the future and at most %d days ahead", MaxAPITokenLifetime/(24*time.Hour))
	}
	value := APITokenPrefix + randomToken()
	t := APIToken{AgentID: agentID, Name: name, TokenHash: tokenID(value), CreatedAt: now, ExpiresAt: expiresAt}
	err = s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var n int64
		if err := tx.Model(&Agent{}).Where("id = ? AND deactivated_at IS NULL", agentID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return tx.Create(&t).Error
	})
	if err != nil {
		return APIToken{}, "", dbErr(err)
	}
	return t, value, nil
}

// APITokens returns the agent's tokens, newest first, the revoked and
// expired ones too (RevokedAt, ExpiresAt say so), never their hashes.
func (s *Store) APITokens(ctx context.Context, agentID int64) ([]APIToken, error) {
	list := []APIToken{}
	err := s.rdb.WithContext(ctx).Omit("token_hash").Where("agent_id = ?", agentID).Order("id DESC").Find(&list).Error
	if err != nil {
		return nil, dbErr(err)
	}
	for i := range list {
		list[i].TokenHash = ""
		utcAPIToken(&list[i])
	}
	return list, nil
}

// RevokeAPIToken revokes one of the agent's tokens: the next request
// that carries it is refused (APITokenAgent reads every time). Revoking
// a revoked token changes nothing and is no error; ErrNotFound if the
// token is not the agent's.
func (s *Store) RevokeAPIToken(ctx context.Context, agentID, id int64) error {
	return s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var n int64
		if err := tx.Model(&APIToken{}).Where("id = ? AND agent_id = ?", id, agentID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return tx.Model(&APIToken{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now()).Error
	})
}

// APITokenAgent returns the token of a value and its agent, in one read,
// or ErrUnauthenticated if the value is no token, or its token expired
// or was revoked, or its agent is disabled. It records use at most once
// a minute (LastUsedAt), so that requests do not each write.
func (s *Store) APITokenAgent(ctx context.Context, value string) (APIToken, Agent, error) {
	if !strings.HasPrefix(value, APITokenPrefix) {
		return APIToken{}, Agent{}, ErrUnauthenticated
	}
	var row struct {
		APIToken
		Agent joinedAgent `gorm:"embedded"` // an exported field: gorm skips unexported ones
	}
	err := s.rdb.WithContext(ctx).Table("api_tokens").
		Select("api_tokens.*, "+joinedAgentColumns).
		Joins("JOIN agents a ON a.id = api_tokens.agent_id AND a.deactivated_at IS NULL").
		Where("api_tokens.token_hash = ?", tokenID(value)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return APIToken{}, Agent{}, ErrUnauthenticated // no such token, or its agent is disabled
	}
	if err != nil {
		return APIToken{}, Agent{}, dbErr(err)
	}
	t := row.APIToken
	now := s.now()
	if t.RevokedAt != nil || !now.Before(t.ExpiresAt) {
		return APIToken{}, Agent{}, ErrUnauthenticated
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", t.ID).Update("last_used_at", now)
		t.LastUsedAt = &now
	}
	t.TokenHash = ""
	utcAPIToken(&t)
	return t, row.Agent.agent(t.AgentID), nil
}

// revokeAgentTokens revokes, in tx, every token of an agent being
// disabled (disableAgent), as their sessions are deleted: enabling the
// agent again does not bring back what was issued before.
func (s *Store) revokeAgentTokens(tx *gorm.DB, agentID int64) error {
	return tx.Model(&APIToken{}).Where("agent_id = ? AND revoked_at IS NULL", agentID).Update("revoked_at", s.now()).Error
}
