package web

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/sockets"
)

// sessionToken is the value of the client's session cookie.
func (c *client) sessionToken() string {
	c.e.t.Helper()
	u, _ := url.Parse(c.e.ts.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == c.e.cfg.Session.CookieName {
			return ck.Value
		}
	}
	c.e.t.Fatalf("no session cookie")
	return ""
}

// Login and GET /auth/session answer the same shape: the agent with
// their settings and disabled flag, the CSRF token, when the session
// expires, agents.idle_after in seconds and the message and upload
// limits, as configured.
func TestSessionAnswer(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) {
			c.Agents.IdleAfter = config.Duration(90 * time.Second)
			c.Limits.MaxUploadBytes = 3 << 20
			c.Limits.MaxMessageBytes = 8 << 10
			c.Session.TTL = config.Duration(2 * time.Hour)
		})
		a := e.agent("ann@example.com", inbox.RoleAgent)
		before := time.Now()
		c := e.client()
		var login sessionAnswer
		c.do("POST", "/api/v1/auth/login", map[string]string{"email": a.Email, "password": testPassword}).want(http.StatusOK).decode(&login)
		if login.Agent.ID != a.ID || login.CSRFToken == "" || login.IdleAfterSeconds != 90 || login.MaxUploadBytes != 3<<20 ||
			login.MaxMessageBytes != 8<<10 || login.Agent.Settings != inbox.DefaultAgentSettings() {
			t.Fatalf("login = %+v", login)
		}
		if exp := login.ExpiresAt; exp.Before(before.Add(2*time.Hour-time.Minute)) || exp.After(time.Now().Add(2*time.Hour)) || exp.Location() != time.UTC {
			t.Fatalf("login expires_at = %v, want 2 h from now, UTC", exp)
		}
		c.csrf = login.CSRFToken
		var sess sessionAnswer
		r := c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK)
		r.decode(&sess)
		if sess.Agent.ID != a.ID || sess.CSRFToken != login.CSRFToken || !sess.ExpiresAt.Equal(login.ExpiresAt) ||
			sess.IdleAfterSeconds != 90 || sess.MaxUploadBytes != 3<<20 || sess.MaxMessageBytes != 8<<10 {
			t.Fatalf("session = %+v, want the login's", sess)
		}
		var raw struct{ Agent map[string]any }
		r.decode(&raw)
		if raw.Agent["disabled"] != false || raw.Agent["settings"] == nil {
			t.Fatalf("session agent JSON = %v, want disabled false and settings", raw.Agent)
		}
		e.client().do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)

		// The default idle time is 5 minutes.
		d := newEnv(t, inboxtest.SQLiteURL(t), nil)
		d.agent("bob@example.com", inbox.RoleAgent)
		var def sessionAnswer
		d.client().do("POST", "/api/v1/auth/login", map[string]string{"email": "bob@example.com", "password": testPassword}).want(http.StatusOK).decode(&def)
		if def.IdleAfterSeconds != 300 {
			t.Fatalf("default idle_after_seconds = %d, want 300", def.IdleAfterSeconds)
		}
	})
}

// An agent sets their notifications and sound with PATCH /agents/me,
// alone or with their name; absent settings stay; the session answer
// shows them. Bad values are 400 naming the field; no session 401; no
// CSRF token 403.
func TestAgentSettings(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		a := e.agent("ann@example.com", inbox.RoleAgent)
		c := e.login(a.Email)
		var got inbox.Agent
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"notifications": "mine"}}).want(http.StatusOK).decode(&got)
		if got.Settings != (inbox.AgentSettings{Notifications: inbox.NotifyMine, Sound: true}) || got.Name != "ann" {
			t.Fatalf("after notifications mine = %+v", got)
		}
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"name": "Ann A.", "settings": map[string]any{"sound": false}}).want(http.StatusOK).decode(&got)
		if got.Settings != (inbox.AgentSettings{Notifications: inbox.NotifyMine, Sound: false}) || got.Name != "Ann A." {
			t.Fatalf("after sound off and a name = %+v", got)
		}
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"notifications": "off", "sound": true}}).want(http.StatusOK).decode(&got)
		var s sessionAnswer
		c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&s)
		if s.Agent.Settings != (inbox.AgentSettings{Notifications: inbox.NotifyOff, Sound: true}) {
			t.Fatalf("session settings = %+v", s.Agent.Settings)
		}
		// Another browser logging in gets them too.
		var login sessionAnswer
		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": a.Email, "password": testPassword}).want(http.StatusOK).decode(&login)
		if login.Agent.Settings != s.Agent.Settings {
			t.Fatalf("login settings = %+v, want %+v", login.Agent.Settings, s.Agent.Settings)
		}

		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"notifications": "some"}}).wantField("settings.notifications")
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"sound": "loud"}}).wantField("settings.sound")
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"volume": 3}}).wantField("volume")
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": "all"}).wantField("settings")
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"role": "admin"}).wantField("role") // not yours to change
		c.do("PATCH", "/api/v1/agents/me", map[string]any{"name": ""}).wantField("name")
		e.client().do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"sound": false}}).want(http.StatusUnauthorized)
		noCSRF := e.login(a.Email)
		noCSRF.csrf = ""
		noCSRF.do("PATCH", "/api/v1/agents/me", map[string]any{"settings": map[string]any{"sound": false}}).want(http.StatusForbidden)
		if ag, _ := e.store.Agent(context.Background(), a.ID); ag.Settings != s.Agent.Settings {
			t.Fatalf("settings after refused changes = %+v, want %+v", ag.Settings, s.Agent.Settings)
		}
	})
}

// POST /auth/password changes the agent's password once the current one
// is given; the agent's other sessions end at once (their sockets close
// with 4401) while this one and its socket stay. A wrong current password
// is 403 naming current_password, a short new one 400 naming
// new_password; attempts count against the login limit (429).
func TestChangePassword(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.Limits.LoginAttemptsPerMinute = 8 })
		a := e.agent("ann@example.com", inbox.RoleAgent)
		other := e.agent("bob@example.com", inbox.RoleAgent)
		c := e.login(a.Email)
		mine := e.agentSockWith(c.sessionToken())
		otherSession := e.session(a, time.Hour)
		theirs := e.agentSockWith(otherSession)
		bobs := e.agentSockWith(e.session(other, time.Hour))

		const newPassword = "a much better passphrase"
		c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": "wrong password", "new_password": newPassword}).want(http.StatusForbidden)
		if f := c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": "wrong password", "new_password": newPassword}).apiErr(); f.Field != "current_password" {
			t.Fatalf("wrong current password: field %q", f.Field)
		}
		c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": testPassword, "new_password": "short"}).wantField("new_password")
		c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": testPassword}).wantField("new_password")
		c.do("POST", "/api/v1/auth/password", map[string]string{"new_password": newPassword}).wantField("current_password")
		c.do("POST", "/api/v1/auth/password", map[string]any{"current_password": testPassword, "new_password": newPassword, "x": 1}).wantField("x")
		e.client().do("POST", "/api/v1/auth/password", map[string]string{"current_password": testPassword, "new_password": newPassword}).want(http.StatusUnauthorized)
		noCSRF := e.client()
		noCSRF.header.Set("Cookie", e.cfg.Session.CookieName+"="+otherSession)
		noCSRF.do("POST", "/api/v1/auth/password", map[string]string{"current_password": testPassword, "new_password": newPassword}).want(http.StatusForbidden)

		c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": testPassword, "new_password": newPassword}).want(http.StatusNoContent)
		if code := theirs.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("the other session's socket closed with %d, want 4401", code)
		}
		for _, sock := range []*wsClient{mine, bobs} {
			sock.send(t, agentCommand{Type: "ping"})
			agentNext(t, sock, "pong", nil)
		}
		c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK)
		noCSRF.do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)
		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": a.Email, "password": testPassword}).want(http.StatusUnauthorized)
		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": a.Email, "password": newPassword}).want(http.StatusOK)

		// Guessing the password from a session meets the login limit.
		for i := 0; ; i++ {
			r := c.do("POST", "/api/v1/auth/password", map[string]string{"current_password": "guess " + itoa64(int64(i)), "new_password": newPassword})
			if r.code == http.StatusTooManyRequests {
				break
			}
			r.want(http.StatusForbidden)
			if i == 20 {
				t.Fatalf("20 wrong passwords and no 429")
			}
		}
	})
}
