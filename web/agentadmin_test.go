package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/sockets"
)

// An admin changes an agent's name, role and whether they may log in with
// PATCH /agents/{id}. Disabling ends their sessions and closes their
// sockets with 4401; the agents list keeps them, "disabled": true, with
// their presence; enabling lets them log in again. The last enabled admin
// cannot be demoted or disabled (409 naming the field). An agent gets
// 403, no session 401, bad values 400 naming the field, an unknown agent
// 404.
func TestUpdateAgent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		adm := e.agent("admin@example.com", inbox.RoleAdmin)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		conv := e.conversation("Vic", "")
		noError(t, "Join()", e.store.Join(context.Background(), conv.ID, bob.ID))
		admin := e.login(adm.Email)
		bc := e.login(bob.Email)
		path := "/api/v1/agents/" + itoa64(bob.ID)

		// Access.
		bc.do("PATCH", "/api/v1/agents/"+itoa64(adm.ID), map[string]any{"disabled": true}).want(http.StatusForbidden)
		bc.do("PATCH", path, map[string]any{"role": "admin"}).want(http.StatusForbidden)
		e.client().do("PATCH", path, map[string]any{"disabled": true}).want(http.StatusUnauthorized)
		noCSRF := e.login(adm.Email)
		noCSRF.csrf = ""
		noCSRF.do("PATCH", path, map[string]any{"disabled": true}).want(http.StatusForbidden)
		admin.do("PATCH", "/api/v1/agents/999999", map[string]any{"disabled": true}).want(http.StatusNotFound)

		// Bad values.
		admin.do("PATCH", path, map[string]any{"role": "boss"}).wantField("role")
		admin.do("PATCH", path, map[string]any{"disabled": "yes"}).wantField("disabled")
		admin.do("PATCH", path, map[string]any{"name": "  "}).wantField("name")
		admin.do("PATCH", path, map[string]any{"settings": map[string]any{"sound": false}}).wantField("settings")
		admin.do("PATCH", path, nil).want(http.StatusBadRequest)

		// The last enabled admin.
		for _, body := range []map[string]any{{"role": "agent"}, {"disabled": true}} {
			r := admin.do("PATCH", "/api/v1/agents/"+itoa64(adm.ID), body).want(http.StatusConflict)
			for field := range body {
				if f := r.apiErr().Field; f != field {
					t.Fatalf("last admin %v: field %q, want %q", body, f, field)
				}
			}
		}

		// Promote and rename in one change; then the first admin may step
		// down, and Bob may not.
		var got inbox.Agent
		admin.do("PATCH", path, map[string]any{"role": "admin", "name": "Bob B."}).want(http.StatusOK).decode(&got)
		if got.Role != inbox.RoleAdmin || got.Name != "Bob B." || got.Disabled() {
			t.Fatalf("promoted = %+v", got)
		}
		admin.do("PATCH", "/api/v1/agents/"+itoa64(adm.ID), map[string]any{"role": "agent"}).want(http.StatusOK)
		bc.do("PATCH", path, map[string]any{"disabled": true}).want(http.StatusConflict)
		bc.do("PATCH", "/api/v1/agents/"+itoa64(adm.ID), map[string]any{"role": "admin"}).want(http.StatusOK)
		admin = e.login(adm.Email)

		// Disable Bob: his socket closes, his session ends, he leaves his
		// conversation, he stays in the list.
		sock := e.agentSockWith(e.session(bob, time.Hour))
		r := admin.do("PATCH", path, map[string]any{"disabled": true}).want(http.StatusOK)
		var raw map[string]any
		r.decode(&raw)
		if raw["disabled"] != true || raw["presence"] != inbox.PresenceOffline {
			t.Fatalf("disabled agent = %s", r.body)
		}
		if code := sock.closeCode(t); code != sockets.CloseUnauthorized {
			t.Fatalf("disabled agent's socket closed with %d, want 4401", code)
		}
		bc.do("GET", "/api/v1/auth/session", nil).want(http.StatusUnauthorized)
		e.client().do("POST", "/api/v1/auth/login", map[string]string{"email": bob.Email, "password": testPassword}).want(http.StatusUnauthorized)
		if parts, _ := e.store.Participants(context.Background(), conv.ID); len(parts) != 0 {
			t.Fatalf("participants after disabling = %+v", parts)
		}
		var list struct {
			Agents []map[string]any `json:"agents"`
		}
		admin.do("GET", "/api/v1/agents", nil).want(http.StatusOK).decode(&list)
		disabled := map[float64]any{}
		for _, a := range list.Agents {
			disabled[a["id"].(float64)] = a["disabled"]
			if a["presence"] == nil {
				t.Fatalf("agent without presence: %v", a)
			}
		}
		if len(list.Agents) != 2 || disabled[float64(bob.ID)] != true || disabled[float64(adm.ID)] != false {
			t.Fatalf("agents = %v, want both, Bob disabled", list.Agents)
		}
		// Disabling again changes nothing; DELETE of a disabled agent is 404.
		admin.do("PATCH", path, map[string]any{"disabled": true}).want(http.StatusOK)
		admin.do("DELETE", path, nil).want(http.StatusNotFound)

		// Enabled again, he logs in.
		admin.do("PATCH", path, map[string]any{"disabled": false}).want(http.StatusOK).decode(&got)
		if got.Disabled() {
			t.Fatalf("enabled agent = %+v", got)
		}
		e.login(bob.Email)
	})
}
