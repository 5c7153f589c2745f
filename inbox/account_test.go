package inbox_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// 0012_dashboard gives the agents of before it the default settings, and
// the participations that ended before it their first reply (a note
// before it not counting), which the operator report then reads.
func TestUpgradeToDashboard(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		old, err := inbox.OpenBare(url)
		if err != nil {
			t.Fatalf("OpenBare() = %v", err)
		}
		if err := old.MigrateTo("0009_recipients"); err != nil {
			t.Fatalf("MigrateTo(0009) = %v", err)
		}
		db := old.Gorm()
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		at := func(secs int) time.Time { return t0.Add(time.Duration(secs) * time.Second) }
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO contacts (id, name, email, phone, online, created_at) VALUES (1, 'Eve', '', '', false, ?)`, []any{t0}},
			{`INSERT INTO agents (id, email, name, role, password_hash, created_at) VALUES (1, 'a@example.com', 'A', 'admin', 'x', ?)`, []any{t0}},
			{`INSERT INTO conversations (id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at)
				VALUES (1, 1, 'chat', 'closed', '', 4, 'tok', false, ?, ?)`, []any{t0, t0}},
			{`INSERT INTO participants (conversation_id, agent_id, responsible, joined_at, left_at) VALUES (1, 1, true, ?, ?)`, []any{at(10), at(100)}},
			{`INSERT INTO messages (conversation_id, seq, author, agent_id, channel, text, html, state, created_at)
				VALUES (1, 1, 'contact', NULL, 'chat', 'hi', '', 'read', ?), (1, 2, 'agent', 1, 'note', 'hmm', '', 'sent', ?),
				(1, 3, 'agent', 1, 'chat', 'hello', '', 'read', ?), (1, 4, 'agent', 1, 'chat', 'bye', '', 'read', ?)`, []any{at(0), at(20), at(40), at(90)}},
		} {
			if err := db.Exec(q.sql, q.args...).Error; err != nil {
				t.Fatalf("fill 0009 schema: %v", err)
			}
		}
		old.CloseBare()

		s := inboxtest.Open(t, url, nil)
		a, err := s.Agent(ctx, 1)
		if err != nil || a.Settings != inbox.DefaultAgentSettings() {
			t.Fatalf("agent after 0012 = %+v, %v; want the default settings", a, err)
		}
		rep, err := s.OperatorsReport(ctx, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatalf("OperatorsReport() = %v", err)
		}
		if len(rep.Operators) != 1 || fmtPtr(rep.Operators[0].MedianFirstResponseSeconds) != "30" || rep.Operators[0].ConversationsJoined != 1 {
			t.Fatalf("report after 0012 = %+v, want one join answered in 30 s", rep.Operators)
		}
		if _, err := s.CreateSavedReply(ctx, inbox.SavedReplyInput{Shortcut: ptr("hi"), Title: ptr("Hi"), Text: ptr("Hello!")}); err != nil {
			t.Fatalf("CreateSavedReply() after 0012 = %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// Two admins demoting each other at once: one succeeds, the other is
// refused, and an enabled admin remains (on PostgreSQL the guard locks
// the admins' rows; SQLite writes one transaction at a time).
func TestLastAdminConcurrent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		for round := range 10 {
			var admins []inbox.Agent
			for i := range 2 {
				a, err := s.CreateAgent(ctx, inbox.NewAgent{Email: fmt.Sprintf("admin%d-%d@example.com", round, i), Name: "Admin", Role: inbox.RoleAdmin, Password: "correct horse"})
				if err != nil {
					t.Fatalf("CreateAgent() = %v", err)
				}
				admins = append(admins, a)
			}
			// The one admin the last round left steps down: these two
			// are the only ones.
			all, err := s.Agents(ctx)
			if err != nil {
				t.Fatalf("Agents() = %v", err)
			}
			for _, a := range all {
				if a.IsAdmin() && !a.Disabled() && a.ID != admins[0].ID && a.ID != admins[1].ID {
					if _, err := s.UpdateAgent(ctx, a.ID, inbox.AgentChange{Role: ptr(inbox.RoleAgent)}); err != nil {
						t.Fatalf("demote %d: %v", a.ID, err)
					}
				}
			}
			changes := []inbox.AgentChange{{Role: ptr(inbox.RoleAgent)}, {Disabled: ptr(true)}}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = s.UpdateAgent(ctx, admins[i].ID, changes[i])
				}()
			}
			close(start)
			wg.Wait()
			var conflicts int
			for _, err := range errs {
				var ce *inbox.ConflictError
				switch {
				case err == nil:
				case errors.As(err, &ce) && (ce.Field == "role" || ce.Field == "disabled"):
					conflicts++
				default:
					t.Fatalf("UpdateAgent() = %v", err)
				}
			}
			if n, _ := s.CountAgents(ctx, true); conflicts != 1 || n != 1 {
				t.Fatalf("round %d: %d refused, %d admins left; want 1 and 1", round, conflicts, n)
			}
		}
	})
}
