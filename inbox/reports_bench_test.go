package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// BenchmarkOperatorsReport times Reports > Operators over a database of
// 100,000 conversations spread over a year (about 274 a day), each with
// one join (a tenth with a second agent who does not reply; the newest
// thousand still joined, the others left), six messages (contact, agent
// reply, private note, contact, agent, contact: 600,000 in all) and, for
// three in ten, a rating (a third of them with a comment), among ten
// agents: the last 30 days (the default period) and the whole year (the
// longest). Run:
//
//	MICROCHAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  CGO_ENABLED=0 go test -run '^$' -bench OperatorsReport -benchtime 20x -timeout 30m ./inbox/
func BenchmarkOperatorsReport(b *testing.B) {
	onEngines(b, func(b *testing.B, s *inbox.Store) {
		const conversations = 100_000
		end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		start := time.Now()
		seedReports(b, s, conversations, end.Add(-365*24*time.Hour), end)
		b.Logf("seeded %d conversations in %v", conversations, time.Since(start).Round(time.Millisecond))
		for _, period := range []struct {
			name string
			span time.Duration
		}{{"30_days", 30 * 24 * time.Hour}, {"366_days", inbox.MaxReportSpan}} {
			b.Run(period.name, func(b *testing.B) {
				var lats []time.Duration
				var rep inbox.OperatorsReport
				for i := 0; i < b.N; i++ {
					t := time.Now()
					var err error
					if rep, err = s.OperatorsReport(ctx, end.Add(-period.span), end); err != nil {
						b.Fatalf("OperatorsReport() = %v", err)
					}
					lats = append(lats, time.Since(t))
				}
				joined := int64(0)
				for _, op := range rep.Operators {
					joined += op.ConversationsJoined
					if op.MedianFirstResponseSeconds == nil {
						b.Fatalf("%s has no median", op.Name)
					}
				}
				slices.Sort(lats)
				b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(joined), "joins")
			})
		}
	})
}

// seedReports stores n conversations between from and to, with their
// joins, messages and ratings (see BenchmarkOperatorsReport), in
// multi-row statements through the store's own writer connection.
func seedReports(b *testing.B, s *inbox.Store, n int, from, to time.Time) {
	b.Helper()
	c := context.Background()
	pg := s.Dialect() == "postgres"
	var agents []int64
	for i := range 10 {
		a, err := s.CreateAgent(c, inbox.NewAgent{Email: fmt.Sprintf("agent%d@example.com", i), Name: fmt.Sprintf("Agent %d", i), Password: "correct horse"})
		if err != nil {
			b.Fatalf("CreateAgent() = %v", err)
		}
		agents = append(agents, a.ID)
	}
	db := s.DB()
	ins := func(tx *sql.Tx, table, cols string, rows [][]any) { inboxtest.InsertRows(b, tx, pg, table, cols, rows) }
	step := to.Sub(from) / time.Duration(n)
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		tx, err := db.BeginTx(c, nil)
		if err != nil {
			b.Fatal(err)
		}
		var contacts, convs, parts, msgs, ratings, ratingAgents [][]any
		for i := lo; i < min(lo+batch, n); i++ {
			id := int64(i + 1)
			at := from.Add(time.Duration(i) * step)
			agent := agents[i%len(agents)]
			contacts = append(contacts, []any{id, fmt.Sprintf("Visitor %d", i), "", "", false, at})
			convs = append(convs, []any{id, id, "chat", "closed", "", 6, fmt.Sprintf("tok%d", i), false, at.Add(20 * time.Minute), at})
			joined := at.Add(time.Duration(10+i%50) * time.Second)
			reply := joined.Add(time.Duration(5+i%300) * time.Second)
			// The newest thousand are still joined: their first replies
			// are looked up; the others' were kept when they left.
			var left, first any = at.Add(20 * time.Minute), reply
			if i >= n-1000 {
				left, first = nil, nil
			}
			parts = append(parts, []any{id, agent, true, joined, left, first})
			if i%10 == 0 {
				parts = append(parts, []any{id, agents[(i+1)%len(agents)], false, joined.Add(time.Minute), left, nil})
			}
			for seq, m := range []struct {
				author, channel string
				agent           any
				at              time.Time
			}{
				{"contact", "chat", nil, at},
				{"agent", "note", agent, joined.Add(2 * time.Second)},
				{"agent", "chat", agent, reply},
				{"contact", "chat", nil, reply.Add(time.Minute)},
				{"agent", "chat", agent, reply.Add(2 * time.Minute)},
				{"contact", "chat", nil, reply.Add(3 * time.Minute)},
			} {
				msgs = append(msgs, []any{id, seq + 1, m.author, m.agent, m.channel, "some text of a message", "", "read", m.at})
			}
			if i%10 < 3 {
				comment := ""
				if i%10 == 0 {
					comment = "thanks, that helped"
				}
				ratings = append(ratings, []any{id, id, id, 1 + i%5, comment, at.Add(21 * time.Minute)})
				ratingAgents = append(ratingAgents, []any{id, agent})
			}
		}
		ins(tx, "contacts", "id, name, email, phone, online, created_at", contacts)
		ins(tx, "conversations", "id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at", convs)
		ins(tx, "participants", "conversation_id, agent_id, responsible, joined_at, left_at, first_reply_at", parts)
		ins(tx, "messages", "conversation_id, seq, author, agent_id, channel, text, html, state, created_at", msgs)
		ins(tx, "ratings", "id, conversation_id, contact_id, score, comment, created_at", ratings)
		ins(tx, "rating_agents", "rating_id, agent_id", ratingAgents)
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []string{"ANALYZE"} {
		if _, err := db.ExecContext(c, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}
