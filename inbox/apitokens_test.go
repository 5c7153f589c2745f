package inbox_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A token made for an agent authenticates as that agent until it expires
// or is revoked, is kept only as a hash, and is listed without it.
func TestAPITokens(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		a, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "A", Role: inbox.RoleAdmin, Password: "correct horse"})
		if err != nil {
			t.Fatalf("CreateAgent() = %v", err)
		}
		b, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "b@example.com", Name: "B", Password: "correct horse"})
		if err != nil {
			t.Fatalf("CreateAgent() = %v", err)
		}
		now := clock.Now()

		tok, value, err := s.CreateAPIToken(ctx, a.ID, "  CRM sync ", now.Add(30*24*time.Hour))
		if err != nil {
			t.Fatalf("CreateAPIToken() = %v", err)
		}
		if tok.Name != "CRM sync" || tok.AgentID != a.ID || !strings.HasPrefix(value, inbox.APITokenPrefix) ||
			len(value) != len(inbox.APITokenPrefix)+43 || tok.TokenHash == value {
			t.Fatalf("CreateAPIToken() = %+v, %q", tok, value)
		}
		var stored []string
		s.Gorm().Table("api_tokens").Pluck("token_hash", &stored)
		if len(stored) != 1 || stored[0] != inbox.SessionID(value) {
			t.Fatalf("stored hashes = %q, want the SHA-256 of the value only", stored)
		}

		got, agent, err := s.APITokenAgent(ctx, value)
		if err != nil || got.ID != tok.ID || agent.ID != a.ID || agent.Role != inbox.RoleAdmin || agent.Email != "a@example.com" ||
			got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
			t.Fatalf("APITokenAgent() = %+v, %+v, %v", got, agent, err)
		}
		// Use is recorded at most once a minute.
		clock.Advance(30 * time.Second)
		s.APITokenAgent(ctx, value)
		list, err := s.APITokens(ctx, a.ID)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(now) || list[0].TokenHash != "" {
			t.Fatalf("APITokens() = %+v, %v; want last use at %v, no hash", list, err, now)
		}
		clock.Advance(time.Minute)
		s.APITokenAgent(ctx, value)
		if list, _ = s.APITokens(ctx, a.ID); !list[0].LastUsedAt.Equal(clock.Now()) {
			t.Fatalf("last use after a minute = %v, want %v", list[0].LastUsedAt, clock.Now())
		}

		for _, bad := range []string{"", "mct_", value + "x", strings.TrimPrefix(value, inbox.APITokenPrefix)} {
			if _, _, err := s.APITokenAgent(ctx, bad); !errors.Is(err, inbox.ErrUnauthenticated) {
				t.Fatalf("APITokenAgent(%q) = %v, want ErrUnauthenticated", bad, err)
			}
		}

		// Newest first; another agent's token is not in the list and not
		// theirs to revoke.
		second, _, err := s.CreateAPIToken(ctx, a.ID, "Script", clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("CreateAPIToken(second) = %v", err)
		}
		theirs, theirValue, err := s.CreateAPIToken(ctx, b.ID, "Theirs", clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("CreateAPIToken(b) = %v", err)
		}
		if list, _ = s.APITokens(ctx, a.ID); len(list) != 2 || list[0].ID != second.ID || list[1].ID != tok.ID {
			t.Fatalf("APITokens() = %+v, want second then first", list)
		}
		if err := s.RevokeAPIToken(ctx, a.ID, theirs.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("RevokeAPIToken(another's) = %v, want ErrNotFound", err)
		}
		if err := s.RevokeAPIToken(ctx, a.ID, 99999); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("RevokeAPIToken(unknown) = %v, want ErrNotFound", err)
		}

		// Revocation is immediate, and listed.
		if err := s.RevokeAPIToken(ctx, a.ID, tok.ID); err != nil {
			t.Fatalf("RevokeAPIToken() = %v", err)
		}
		if _, _, err := s.APITokenAgent(ctx, value); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("APITokenAgent(revoked) = %v, want ErrUnauthenticated", err)
		}
		revokedAt := clock.Now()
		clock.Advance(time.Minute)
		if err := s.RevokeAPIToken(ctx, a.ID, tok.ID); err != nil {
			t.Fatalf("RevokeAPIToken() again = %v", err)
		}
		if list, _ = s.APITokens(ctx, a.ID); list[1].RevokedAt == nil || !list[1].RevokedAt.Equal(revokedAt) || list[0].RevokedAt != nil {
			t.Fatalf("APITokens() after revoking = %+v, want the first revoked at %v", list, revokedAt)
		}

		// Expiry.
		clock.Advance(time.Hour)
		if _, _, err := s.APITokenAgent(ctx, theirValue); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("APITokenAgent(expired) = %v, want ErrUnauthenticated", err)
		}
	})
}

// A name and an expiry out of bounds are invalid input naming the field;
// a disabled agent's tokens are revoked and they get no new one.
func TestAPITokenRules(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		a, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "A", Password: "correct horse"})
		if err != nil {
			t.Fatalf("CreateAgent() = %v", err)
		}
		day := time.Now().Add(24 * time.Hour)
		for _, c := range []struct {
			name    string
			expires time.Time
			field   string
		}{
			{"", day, "name"},
			{"   ", day, "name"},
			{strings.Repeat("é", inbox.MaxAPITokenName+1), day, "name"},
			{"a\x00b", day, "name"},
			{"ok", time.Now().Add(-time.Second), "expires_at"},
			{"ok", time.Now().Add(inbox.MaxAPITokenLifetime + time.Hour), "expires_at"},
		} {
			_, _, err := s.CreateAPIToken(ctx, a.ID, c.name, c.expires)
			wantInvalid(t, "CreateAPIToken("+c.name+")", err, c.field)
		}
		if _, _, err := s.CreateAPIToken(ctx, a.ID, strings.Repeat("é", inbox.MaxAPITokenName), time.Now().Add(inbox.MaxAPITokenLifetime-time.Minute)); err != nil {
			t.Fatalf("CreateAPIToken(longest name, latest expiry) = %v", err)
		}
		if _, _, err := s.CreateAPIToken(ctx, 99999, "x", day); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("CreateAPIToken(unknown agent) = %v, want ErrNotFound", err)
		}

		_, value, err := s.CreateAPIToken(ctx, a.ID, "x", day)
		if err != nil {
			t.Fatalf("CreateAPIToken() = %v", err)
		}
		if err := s.RemoveAgent(ctx, a.ID); err != nil {
			t.Fatalf("RemoveAgent() = %v", err)
		}
		if _, _, err := s.APITokenAgent(ctx, value); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("APITokenAgent(of a disabled agent) = %v, want ErrUnauthenticated", err)
		}
		if _, _, err := s.CreateAPIToken(ctx, a.ID, "x", day); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("CreateAPIToken(disabled agent) = %v, want ErrNotFound", err)
		}
		// Enabled again, the agent does not get the old tokens back.
		disabled := false
		if _, err := s.UpdateAgent(ctx, a.ID, inbox.AgentChange{Disabled: &disabled}); err != nil {
			t.Fatalf("UpdateAgent(enable) = %v", err)
		}
		if _, _, err := s.APITokenAgent(ctx, value); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("APITokenAgent(issued before the agent was disabled) = %v, want ErrUnauthenticated", err)
		}
	})
}

// 0018_api_tokens adds api_tokens to a database of 0017 whose agents
// then make and use tokens.
func TestUpgradeToAPITokens(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo("0017_nodes_stopped"); err != nil {
			t.Fatalf("MigrateTo(0017) = %v", err)
		}
		if old.Gorm().Migrator().HasTable("api_tokens") {
			t.Fatalf("0017 already has api_tokens")
		}
		if err := old.Gorm().Exec(`INSERT INTO agents (email, name, role, password_hash, created_at) VALUES ('old@example.com', 'Old', 'agent', 'x', ?)`,
			time.Now().UTC()).Error; err != nil {
			t.Fatalf("fill 0017 schema: %v", err)
		}
		old.CloseBare()

		s := inboxtest.Open(t, url, nil)
		var a inbox.Agent
		if err := s.Gorm().Where("email = ?", "old@example.com").First(&a).Error; err != nil {
			t.Fatalf("agent of 0017 lost: %v", err)
		}
		_, value, err := s.CreateAPIToken(ctx, a.ID, "after 0018", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("CreateAPIToken() after 0018 = %v", err)
		}
		if _, got, err := s.APITokenAgent(ctx, value); err != nil || got.ID != a.ID {
			t.Fatalf("APITokenAgent() after 0018 = %+v, %v", got, err)
		}
	})
}
