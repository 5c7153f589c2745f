package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

func TestLogin(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		admin := e.agent("admin@example.com", inbox.RoleAdmin)

		c := e.client()
		r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": " Admin@Example.com ", "password": testPassword}).want(http.StatusOK)
		var s sessionAnswer
		r.decode(&s)
		if s.Agent.ID != admin.ID || s.CSRFToken == "" {
			t.Fatalf("login = %s", r.body)
		}
		if strings.Contains(string(r.body), "password") {
			t.Fatalf("login answer shows the password hash: %s", r.body)
		}
		var ck *http.Cookie
		for _, k := range (&http.Response{Header: r.header}).Cookies() {
			if k.Name == e.cfg.Session.CookieName {
				ck = k
			}
		}
		if ck == nil || ck.Value == "" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
			ck.Secure || ck.MaxAge != int(e.cfg.Session.TTL.D()/time.Second) {
			t.Fatalf("session cookie = %+v", ck)
		}

		// The cookie is the session; the token comes back with it.
		var again sessionAnswer
		c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&again)
		if again.Agent.ID != admin.ID || again.CSRFToken != s.CSRFToken {
			t.Fatalf("session = %+v, want agent %d and token %q", again, admin.ID, s.CSRFToken)
		}

		c.csrf = s.CSRFToken
		r = c.do("POST", "/api/v1/auth/logout", nil).want(http.StatusNoContent)
		if !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("logout Set-Cookie = %q, want it expired", r.header.Get("Set-Cookie"))
		}
		c.do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)
	})
}

func TestLoginSecureCookie(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	e.agent("a@example.com", inbox.RoleAgent)
	c := e.client()
	c.header.Set("X-Forwarded-Proto", "https")
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": "a@example.com", "password": testPassword}).want(http.StatusOK)
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Fatalf("Set-Cookie behind a trusted https proxy = %q, want Secure", sc)
	}

	// The same header from an untrusted peer is ignored.
	e = newEnv(t, inboxtest.SQLiteURL(t), nil)
	e.agent("a@example.com", inbox.RoleAgent)
	c = e.client()
	c.header.Set("X-Forwarded-Proto", "https")
	r = c.do("POST", "/api/v1/auth/login", map[string]string{"email": "a@example.com", "password": testPassword}).want(http.StatusOK)
	if sc := r.header.Get("Set-Cookie"); strings.Contains(sc, "Secure") {
		t.Fatalf("Set-Cookie from an untrusted peer = %q, want not Secure", sc)
	}
}

func TestLoginWrongPassword(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		for _, body := range []map[string]string{
			{"email": "admin@example.com", "password": "wrong password"},
			{"email": "nobody@example.com", "password": testPassword},
		} {
			c := e.client()
			r := c.do("POST", "/api/v1/auth/login", body).want(http.StatusUnauthorized)
			if got := r.apiErr().Error; got != "wrong email or password" {
				t.Fatalf("error = %q", got)
			}
			if len(r.header.Values("Set-Cookie")) != 0 {
				t.Fatalf("failed login sets a cookie: %q", r.header.Values("Set-Cookie"))
			}
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.Limits.LoginAttemptsPerMinute = 3 })
		e.agent("admin@example.com", inbox.RoleAdmin)
		c := e.client()
		wrong := map[string]string{"email": "admin@example.com", "password": "wrong password"}
		for range 3 {
			c.do("POST", "/api/v1/auth/login", wrong).want(http.StatusUnauthorized)
		}
		r := c.do("POST", "/api/v1/auth/login", wrong).want(http.StatusTooManyRequests)
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
		}
		// Even the right password waits now.
		c.do("POST", "/api/v1/auth/login", map[string]string{"email": "admin@example.com", "password": testPassword}).
			want(http.StatusTooManyRequests)
	})
}

// TestLoginRateLimitKeys checks that the limits count per email across
// client IPs, per IP across emails, and that X-Forwarded-For names the IP
// only when the peer is a trusted proxy.
func TestLoginRateLimitKeys(t *testing.T) {
	// Behind a trusted proxy: each forwarded IP has its own budget, but
	// one email's budget is shared by all of them.
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) {
		c.Limits.LoginAttemptsPerMinute = 2
		c.TrustedProxies = []string{"127.0.0.0/8"}
	})
	c := e.client()
	wrong := func(email string) map[string]string {
		return map[string]string{"email": email, "password": "wrong password"}
	}
	for i := range 2 {
		c.header.Set("X-Forwarded-For", "203.0.113."+strconv.Itoa(i+1))
		c.do("POST", "/api/v1/auth/login", wrong("victim@example.com")).want(http.StatusUnauthorized)
	}
	c.header.Set("X-Forwarded-For", "203.0.113.99")
	c.do("POST", "/api/v1/auth/login", wrong("victim@example.com")).want(http.StatusTooManyRequests)
	c.do("POST", "/api/v1/auth/login", wrong("other@example.com")).want(http.StatusUnauthorized)

	// Without trusted proxies the header is the client's to forge, and
	// ignored: the peer's IP runs out whatever it says.
	e = newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) { c.Limits.LoginAttemptsPerMinute = 2 })
	c = e.client()
	for i := range 2 {
		c.header.Set("X-Forwarded-For", "203.0.113."+strconv.Itoa(i+1))
		c.do("POST", "/api/v1/auth/login", wrong("user"+strconv.Itoa(i)+"@example.com")).want(http.StatusUnauthorized)
	}
	c.header.Set("X-Forwarded-For", "198.51.100.7")
	c.do("POST", "/api/v1/auth/login", wrong("fresh@example.com")).want(http.StatusTooManyRequests)
}

func TestNoSession(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		c := e.client()
		for _, p := range []string{"/api/v1/conversations", "/api/v1/agents", "/api/v1/auth/session", "/api/v1/conversations/1"} {
			r := c.do("GET", p, nil).want(http.StatusUnauthorized)
			if got := r.apiErr().Error; got != "login required" {
				t.Fatalf("GET %s error = %q", p, got)
			}
		}
		c.do("POST", "/api/v1/conversations/1/join", nil).want(http.StatusUnauthorized)
		c.header.Set("Cookie", e.cfg.Session.CookieName+"=not-a-session")
		c.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized)
	})
}

func TestExpiredSession(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		a := e.agent("a@example.com", inbox.RoleAgent)
		token, sess, err := e.store.CreateSession(context.Background(), a.ID, -time.Minute)
		if err != nil {
			t.Fatalf("CreateSession() = %v", err)
		}
		c := e.client()
		c.header.Set("Cookie", e.cfg.Session.CookieName+"="+token)
		c.csrf = sess.CSRFToken
		if got := c.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized).apiErr().Error; got != "login required" {
			t.Fatalf("error = %q", got)
		}
		c.do("POST", "/api/v1/auth/logout", nil).want(http.StatusUnauthorized)
	})
}

func TestAdminOnly(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("agent@example.com", inbox.RoleAgent)
		e.agent("admin@example.com", inbox.RoleAdmin)
		conv := e.conversation("Carla", "")
		agent := e.login("agent@example.com")
		id := itoa64(conv.ID)
		agent.do("DELETE", "/api/v1/conversations/"+id, nil).want(http.StatusForbidden)
		agent.do("DELETE", "/api/v1/contacts/"+itoa64(conv.ContactID), nil).want(http.StatusForbidden)
		agent.do("POST", "/api/v1/agents", map[string]string{"email": "x@example.com", "name": "X", "password": testPassword}).
			want(http.StatusForbidden)
		agent.do("GET", "/api/v1/conversations/"+id, nil).want(http.StatusOK)

		// An admin adds an agent, who can then log in.
		admin := e.login("admin@example.com")
		var created inbox.Agent
		admin.do("POST", "/api/v1/agents", map[string]string{"email": "new@example.com", "name": "Nia", "password": testPassword}).
			want(http.StatusCreated).decode(&created)
		if created.Role != inbox.RoleAgent || created.Name != "Nia" {
			t.Fatalf("created = %+v", created)
		}
		admin.do("POST", "/api/v1/agents", map[string]string{"email": "p@example.com", "name": "P", "password": "short"}).
			wantField("password")
		var list agentList
		e.login("new@example.com").do("GET", "/api/v1/agents", nil).want(http.StatusOK).decode(&list)
		if len(list.Agents) != 3 {
			t.Fatalf("agents = %+v", list.Agents)
		}

		// Erasing the contact takes the conversation with it.
		admin.do("DELETE", "/api/v1/contacts/"+itoa64(conv.ContactID), nil).want(http.StatusNoContent)
		admin.do("GET", "/api/v1/contacts/"+itoa64(conv.ContactID), nil).want(http.StatusNotFound)
		admin.do("GET", "/api/v1/conversations/"+id, nil).want(http.StatusNotFound)
	})
}

func TestCSRF(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		c := e.login("a@example.com")
		token := c.csrf
		join := "/api/v1/conversations/" + itoa64(conv.ID) + "/join"

		// What a page on another site can make a browser send: the
		// cookie, but no token, and its Origin (TestCrossSiteWrites).
		c.csrf = ""
		c.header.Set("Origin", "https://evil.example")
		r := c.do("POST", join, "{}").want(http.StatusForbidden)
		if got := r.apiErr().Error; got != errCrossSiteText {
			t.Fatalf("error = %q", got)
		}
		// Without the Origin (not a browser), the token is missing.
		c.header.Del("Origin")
		r = c.do("POST", join, "{}").want(http.StatusForbidden)
		if got := r.apiErr().Error; got != "missing or wrong CSRF token" {
			t.Fatalf("error = %q", got)
		}
		c.csrf = token + "x"
		c.do("POST", join, nil).want(http.StatusForbidden)

		// A form post is not even JSON.
		c.csrf = ""
		req, _ := http.NewRequest("POST", e.ts.URL+join, strings.NewReader("a=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatalf("form post: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("form post = %d, want 415 or 403", resp.StatusCode)
		}

		item, err := e.store.ConversationItem(context.Background(), conv.ID, 0)
		if err != nil || len(item.Participants) != 0 {
			t.Fatalf("after refused joins: participants %+v, %v", item.Participants, err)
		}
		c.csrf = token
		c.do("POST", join, nil).want(http.StatusOK)
	})
}

func TestSetup(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		token, err := e.store.CreateSetupToken(context.Background(), time.Hour)
		if err != nil {
			t.Fatalf("CreateSetupToken() = %v", err)
		}
		c := e.client()
		body := map[string]string{"token": token, "email": "boss@example.com", "name": "Boss", "password": testPassword}

		body["token"] = "wrong"
		c.do("POST", "/api/v1/setup", body).want(http.StatusUnauthorized)
		body["token"] = token
		delete(body, "name")
		c.do("POST", "/api/v1/setup", body).wantField("name")
		body["name"] = "Boss"

		var a inbox.Agent
		c.do("POST", "/api/v1/setup", body).want(http.StatusCreated).decode(&a)
		if a.Role != inbox.RoleAdmin || a.Email != "boss@example.com" || a.ID == 0 {
			t.Fatalf("setup = %+v", a)
		}
		// The token worked once.
		body["email"] = "second@example.com"
		c.do("POST", "/api/v1/setup", body).want(http.StatusUnauthorized)

		admin := e.login("boss@example.com")
		admin.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK)
	})
}

func TestSetupAfterAdmin(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		token, err := e.store.CreateSetupToken(context.Background(), time.Hour)
		if err != nil {
			t.Fatalf("CreateSetupToken() = %v", err)
		}
		e.agent("first@example.com", inbox.RoleAdmin) // e.g. by `microchat agent add`
		body := map[string]string{"token": token, "email": "boss@example.com", "name": "Boss", "password": testPassword}
		e.client().do("POST", "/api/v1/setup", body).want(http.StatusConflict)
	})
}

func TestCreateAgentDuplicateEmail(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		admin := e.login("admin@example.com")
		admin.do("POST", "/api/v1/agents", map[string]string{"email": "Admin@example.com", "name": "Again", "password": testPassword}).
			wantField("email")
	})
}
