package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// bearerClient is a script: no cookies, no CSRF token, only the API token.
func (e *env) bearerClient(token string) *client {
	c := e.client()
	c.header.Set("Authorization", "Bearer "+token)
	return c
}

// makeAPIToken creates a token through the API with c's session.
func (c *client) makeAPIToken(name string, days int) createdAPIToken {
	c.e.t.Helper()
	var tok createdAPIToken
	c.do("POST", "/api/v1/profile/tokens", map[string]any{"name": name, "expires_in_days": days}).
		want(http.StatusCreated).decode(&tok)
	if tok.ID == 0 || tok.Name != name || !strings.HasPrefix(tok.Token, inbox.APITokenPrefix) {
		c.e.t.Fatalf("created token = %+v", tok)
	}
	return tok
}

// The "done when": a script with an API token lists and answers
// conversations, with no cookie and no CSRF token, as its agent; the
// token is kept hashed, and revoked it is refused by the very next
// request.
func TestAPITokenScript(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		e := newEnvStore(t, inboxtest.Open(t, url, &inbox.Options{Now: clock.Now}), nil)
		a := e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "carla@example.com")
		e.contactSays(conv.ID, "Where is my order?")

		browser := e.login("a@example.com")
		tok := browser.makeAPIToken("Order bot", 30)
		if want := clock.Now().Add(30 * 24 * time.Hour); !tok.ExpiresAt.Equal(want) || tok.RevokedAt != nil || tok.LastUsedAt != nil {
			t.Fatalf("created token = %+v, want expiry %v", tok, want)
		}

		// Stored hashed: the value is nowhere in the table.
		rows, err := e.store.DB().QueryContext(context.Background(), `SELECT name, token_hash FROM api_tokens`)
		if err != nil {
			t.Fatalf("reading api_tokens: %v", err)
		}
		for rows.Next() {
			var name, hash string
			if err := rows.Scan(&name, &hash); err != nil {
				t.Fatalf("scan: %v", err)
			}
			if strings.Contains(name+hash, tok.Token) || strings.Contains(name+hash, strings.TrimPrefix(tok.Token, inbox.APITokenPrefix)) ||
				hash != inbox.SessionID(tok.Token) {
				t.Fatalf("api_tokens row = %q, %q: want the SHA-256 of the token only", name, hash)
			}
		}
		rows.Close()

		script := e.bearerClient(tok.Token)
		var list conversationList
		script.do("GET", "/api/v1/conversations?column=unassigned", nil).want(http.StatusOK).decode(&list)
		if len(list.Items) != 1 || list.Items[0].ID != conv.ID {
			t.Fatalf("conversations = %+v, want %d", list.Items, conv.ID)
		}
		var who sessionAnswer
		script.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&who)
		if who.Agent.ID != a.ID || who.CSRFToken != "" || !who.ExpiresAt.Equal(tok.ExpiresAt) {
			t.Fatalf("session of a token = %+v", who)
		}
		path := "/api/v1/conversations/" + itoa64(conv.ID)
		script.do("POST", path+"/join", nil).want(http.StatusOK)
		var ans replyAnswer
		script.do("POST", path+"/messages", map[string]string{"text": "It ships today."}).want(http.StatusCreated).decode(&ans)
		var page inbox.MessagePage
		browser.do("GET", path+"/messages", nil).want(http.StatusOK).decode(&page)
		last := page.Messages[len(page.Messages)-1]
		if last.ID != ans.Message.ID || last.Text != "It ships today." || last.Author != inbox.AuthorAgent || last.AgentID == nil || *last.AgentID != a.ID {
			t.Fatalf("stored reply = %+v, want the agent's", last)
		}

		// The token carries the agent's role, not an admin's.
		script.do("DELETE", path, nil).want(http.StatusForbidden)
		script.do("GET", "/api/v1/quarantine", nil).want(http.StatusForbidden)

		// What only a person logged in may do.
		for _, r := range []struct{ method, path string }{
			{"POST", "/api/v1/profile/tokens"},
			{"POST", "/api/v1/auth/logout"},
			{"POST", "/api/v1/auth/password"},
			{"GET", "/api/v1/ws"},
		} {
			res := script.do(r.method, r.path, map[string]any{"name": "more", "expires_in_days": 1}).want(http.StatusForbidden)
			if msg := res.apiErr().Error; !strings.Contains(msg, "login session") {
				t.Fatalf("%s %s with a token = %q, want it to say a session is needed", r.method, r.path, msg)
			}
		}

		// The list shows use, never the value or the hash.
		var tokens apiTokenList
		script.do("GET", "/api/v1/profile/tokens", nil).want(http.StatusOK).decode(&tokens)
		if len(tokens.Items) != 1 || tokens.Items[0].ID != tok.ID || tokens.Items[0].LastUsedAt == nil {
			t.Fatalf("tokens = %+v", tokens.Items)
		}
		listed := script.do("GET", "/api/v1/profile/tokens", nil).want(http.StatusOK)
		if strings.Contains(string(listed.body), tok.Token) || strings.Contains(string(listed.body), inbox.SessionID(tok.Token)) ||
			strings.Contains(string(listed.body), "hash") {
			t.Fatalf("token list = %s, shows a value or hash", listed.body)
		}

		// A wrong token is refused, with or without a cookie beside it.
		e.bearerClient(tok.Token+"x").do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		e.bearerClient("mct_nothing").do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		browser.header.Set("Authorization", "Bearer wrong")
		browser.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		browser.header.Del("Authorization")

		// Revoked, the very next request is refused.
		browser.do("DELETE", "/api/v1/profile/tokens/"+itoa64(tok.ID), nil).want(http.StatusNoContent)
		r := script.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		if msg := r.apiErr().Error; !strings.Contains(msg, "API token") {
			t.Fatalf("revoked token's error = %q", msg)
		}
		script.do("POST", path+"/messages", map[string]string{"text": "again"}).want(http.StatusUnauthorized)
		browser.do("GET", "/api/v1/profile/tokens", nil).want(http.StatusOK).decode(&tokens)
		if tokens.Items[0].RevokedAt == nil {
			t.Fatalf("revoked token listed as %+v", tokens.Items[0])
		}

		// A token may revoke itself; expired, it is refused.
		other := browser.makeAPIToken("Short", 1)
		e.bearerClient(other.Token).do("DELETE", "/api/v1/profile/tokens/999999", nil).want(http.StatusNotFound)
		clock.Advance(24*time.Hour + time.Second)
		e.bearerClient(other.Token).do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		self := browser.makeAPIToken("Self", 1)
		e.bearerClient(self.Token).do("DELETE", "/api/v1/profile/tokens/"+itoa64(self.ID), nil).want(http.StatusNoContent)
		e.bearerClient(self.Token).do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
	})
}

// An admin's token may do what an admin may; an agent may not revoke
// another's token; a cookie's write without the CSRF token is still
// refused when tokens exist.
func TestAPITokenRoles(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		admin := e.login("admin@example.com")
		agent := e.login("a@example.com")
		adminTok := admin.makeAPIToken("Admin script", 365)
		agentTok := agent.makeAPIToken("Agent script", 1)

		e.bearerClient(agentTok.Token).do("POST", "/api/v1/agents", map[string]string{"email": "x@example.com", "name": "X", "password": testPassword}).
			want(http.StatusForbidden)
		e.bearerClient(adminTok.Token).do("POST", "/api/v1/agents", map[string]string{"email": "x@example.com", "name": "X", "password": testPassword}).
			want(http.StatusCreated)
		e.bearerClient(adminTok.Token).do("GET", "/api/v1/quarantine", nil).want(http.StatusOK)
		e.bearerClient(agentTok.Token).do("DELETE", "/api/v1/profile/tokens/"+itoa64(adminTok.ID), nil).want(http.StatusNotFound)
		e.bearerClient(adminTok.Token).do("GET", "/api/v1/conversations", nil).want(http.StatusOK)

		// Any Authorization header is the credentials the client chose:
		// an empty or malformed one is refused, never served by the
		// cookie sent beside it.
		for _, h := range []string{"", "Bearer", "Bearer ", "Bearer\t" + agentTok.Token, "Token " + agentTok.Token, agentTok.Token} {
			agent.header = http.Header{"Authorization": {h}}
			agent.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
		}
		agent.header = nil
		agent.do("GET", "/api/v1/conversations", nil).want(http.StatusOK)

		// The cookie's writes still need the CSRF token.
		agent.csrf = ""
		agent.do("POST", "/api/v1/conversations/"+itoa64(conv.ID)+"/join", nil).want(http.StatusForbidden)
		agent.do("POST", "/api/v1/profile/tokens", map[string]any{"name": "x", "expires_in_days": 1}).want(http.StatusForbidden)

		// Bad input names its field.
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"expires_in_days": 1}, "name"},
			{map[string]any{"name": "x"}, "expires_at"},
			{map[string]any{"name": "x", "expires_in_days": 1, "expires_at": time.Now().Add(time.Hour)}, "expires_at"},
			{map[string]any{"name": "x", "expires_in_days": 0}, "expires_in_days"},
			{map[string]any{"name": "x", "expires_in_days": 366}, "expires_in_days"},
			{map[string]any{"name": "x", "expires_at": time.Now().Add(-time.Hour)}, "expires_at"},
			{map[string]any{"name": "x", "expires_at": "tomorrow"}, "expires_at"},
			{map[string]any{"name": strings.Repeat("n", inbox.MaxAPITokenName+1), "expires_in_days": 1}, "name"},
		} {
			admin.do("POST", "/api/v1/profile/tokens", c.body).wantField(c.field)
		}
		var created createdAPIToken
		admin.do("POST", "/api/v1/profile/tokens", map[string]any{"name": "dated", "expires_at": time.Now().Add(48 * time.Hour)}).
			want(http.StatusCreated).decode(&created)
		if created.Token == "" || created.Name != "dated" {
			t.Fatalf("created = %+v", created)
		}
		// No cache keeps the one answer with the token's value.
		if r := admin.do("POST", "/api/v1/profile/tokens", map[string]any{"name": "cached?", "expires_in_days": 1}).want(http.StatusCreated); r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
		}
	})
}
