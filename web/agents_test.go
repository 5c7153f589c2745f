package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestRenameAgent: an agent sets their display name with PATCH
// /api/v1/agents/me (an admin anyone's with PATCH /api/v1/agents/{id});
// the visitor's open widget gets a presence frame with the new name at
// once, and /widget/state, hello and the agents list name them so from
// then on. Invalid names are 400, no session 401, no CSRF token 403, an
// agent renaming another 403.
func TestRenameAgent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		admin := e.agent("admin@example.com", inbox.RoleAdmin)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		v := e.startVisitor("Pia")
		conv := v.start.Conversation.ID
		noError(t, "Join()", e.store.Join(ctx, conv, admin.ID))
		sock, hello := v.connect(0)
		if len(hello.Agents) != 1 || hello.Agents[0].Name != "admin" {
			t.Fatalf("hello agents = %+v, want admin", hello.Agents)
		}

		ac := e.login(admin.Email)
		var renamed inbox.Agent
		ac.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "  Ada Lovelace "}).want(http.StatusOK).decode(&renamed)
		if renamed.ID != admin.ID || renamed.Name != "Ada Lovelace" || renamed.Email != admin.Email {
			t.Fatalf("PATCH /agents/me = %+v", renamed)
		}
		// The replay of the joined event brought a presence frame with the
		// old name; the rename's comes after it.
		for {
			f := sock.find(t, "presence")
			if f.Name == "admin" {
				continue
			}
			if f.AgentID != admin.ID || f.Name != "Ada Lovelace" || f.Presence != inbox.PresenceOffline {
				t.Fatalf("presence after the rename = %s, want the new name and the presence unchanged", f)
			}
			break
		}
		var st stateAnswer
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if len(st.Agents) != 1 || st.Agents[0].Name != "Ada Lovelace" || len(st.Authors) != 1 || st.Authors[0].Name != "Ada Lovelace" {
			t.Fatalf("/widget/state agents %+v, authors %+v; want Ada Lovelace", st.Agents, st.Authors)
		}
		if _, hello := v.connect(0); len(hello.Agents) != 1 || hello.Agents[0].Name != "Ada Lovelace" {
			t.Fatalf("hello after the rename: agents = %+v", hello.Agents)
		}
		var s sessionAnswer
		ac.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&s)
		if s.Agent.Name != "Ada Lovelace" {
			t.Fatalf("session agent = %+v", s.Agent)
		}

		// The same name again changes nothing and says nothing.
		ac.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Ada Lovelace"}).want(http.StatusOK)

		// An admin renames another agent; an agent cannot.
		var b inbox.Agent
		ac.do("PATCH", "/api/v1/agents/"+itoa64(bob.ID), map[string]string{"name": "Bob B."}).want(http.StatusOK).decode(&b)
		if b.Name != "Bob B." {
			t.Fatalf("PATCH /agents/{bob} = %+v", b)
		}
		ac.do("PATCH", "/api/v1/agents/999999", map[string]string{"name": "Nobody"}).want(http.StatusNotFound)
		bc := e.login(bob.Email)
		bc.do("PATCH", "/api/v1/agents/"+itoa64(admin.ID), map[string]string{"name": "admin"}).want(http.StatusForbidden)
		bc.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Bob"}).want(http.StatusOK)

		// Invalid names.
		for _, name := range []string{"", "   ", strings.Repeat("x", inbox.MaxAgentNameBytes+1)} {
			ac.do("PATCH", "/api/v1/agents/me", map[string]string{"name": name}).wantField("name")
		}
		ac.do("PATCH", "/api/v1/agents/me", map[string]any{"nickname": "x"}).want(http.StatusBadRequest)
		ac.do("PATCH", "/api/v1/agents/me", nil).want(http.StatusBadRequest)

		// No session; no CSRF token.
		e.client().do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Eve"}).want(http.StatusUnauthorized)
		noCSRF := e.login(admin.Email)
		noCSRF.csrf = ""
		noCSRF.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Eve"}).want(http.StatusForbidden)

		var list agentList
		ac.do("GET", "/api/v1/agents", nil).want(http.StatusOK).decode(&list)
		names := map[int64]string{}
		for _, a := range list.Agents {
			names[a.ID] = a.Name
		}
		if names[admin.ID] != "Ada Lovelace" || names[bob.ID] != "Bob" {
			t.Fatalf("agents = %+v", list.Agents)
		}
	})
}
