package inbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Every query of the operator report reads its period through the
// indexes of migration 0012, never by scanning participants, ratings or
// messages: SQLite's plans as they are, PostgreSQL's with sequential
// scans priced out (its tables are empty here, and on empty tables a
// scan is cheapest; the check is that an index can serve the query, the
// messages' partial one included).
func TestOperatorsReportPlan(t *testing.T) {
	want := map[string][]string{
		"joins":    {"participants_joined"},
		"scores":   {"ratings_created"},
		"comments": {"ratings_created"},
		"medians":  {"participants_joined", "messages_agent_replies"},
	}
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		pg := s.Dialect() == "postgres"
		to := time.Now()
		from := to.Add(-30 * 24 * time.Hour)
		for name, q := range inbox.ReportQueries(pg) {
			args := []any{from, to}
			if name == "comments" {
				args = append(args, 100)
			}
			var plan []string
			db := s.Gorm()
			if pg {
				tx := db.Begin()
				tx.Exec(`SET LOCAL enable_seqscan = off`)
				err := tx.Raw(`EXPLAIN `+q, args...).Scan(&plan).Error
				tx.Rollback()
				if err != nil {
					t.Fatalf("EXPLAIN %s: %v", name, err)
				}
			} else {
				var rows []struct{ Detail string }
				if err := db.Raw(`EXPLAIN QUERY PLAN `+q, args...).Scan(&rows).Error; err != nil {
					t.Fatalf("EXPLAIN %s: %v", name, err)
				}
				for _, r := range rows {
					plan = append(plan, r.Detail)
				}
			}
			text := strings.Join(plan, "\n")
			for _, index := range want[name] {
				if !strings.Contains(text, index) {
					t.Errorf("%s: the plan does not use %s:\n%s", name, index, text)
				}
			}
			for _, table := range []string{"participants", "ratings", "messages"} {
				for _, scan := range []string{"SCAN " + table + " ", "SCAN " + table + "\n", "Seq Scan on " + table} {
					if strings.Contains(text+"\n", scan) && !strings.Contains(text, "SCAN "+table+" USING") {
						t.Errorf("%s: the plan scans %s:\n%s", name, table, text)
					}
				}
			}
			t.Logf("%s:\n%s", name, text)
		}
	})
}
