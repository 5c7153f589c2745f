package inbox_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// BenchmarkDashboard measures what GET /api/v1/conversations costs with
// 100,000 conversations and 1,000,000 messages (dashboard_seed_test.go):
// a page of each column (first, and one 5,000 conversations deep), with
// the column counts the handler adds, and searches. Each sub-benchmark
// reports the p50 and p99 of one request. Seeding takes minutes; it is
// not part of scripts/test.sh. Run:
//
//	MICROCHAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  CGO_ENABLED=0 go test -run '^$' -bench Dashboard -benchtime 200x -timeout 60m ./inbox/
//
// MICROCHAT_BENCH_SEED_DIR=DIR keeps the seeded SQLite file in DIR for
// the next run.
func BenchmarkDashboard(b *testing.B) {
	for _, engine := range benchEngines {
		b.Run(engine.name, func(b *testing.B) {
			s, set := seededStore(b, engine.name, engine.url(b))
			benchDashboard(b, s, set)
		})
	}
}

func benchDashboard(b *testing.B, s *inbox.Store, set seedSet) {
	ctx := context.Background()
	const agent = 1
	b.Run("counts", func(b *testing.B) {
		latencies(b, func() {
			if _, err := s.ColumnCounts(ctx, agent); err != nil {
				b.Fatalf("ColumnCounts() = %v", err)
			}
		})
	})
	for _, col := range []string{inbox.ColumnUnassigned, inbox.ColumnMine, inbox.ColumnOpen, inbox.ColumnClosed} {
		for _, depth := range []int{0, 5000} {
			name := col + "/first"
			if depth > 0 {
				name = col + "/later"
			}
			q := inbox.ListQuery{Column: col, AgentID: agent}
			q.Cursor = cursorAt(b, s, q, depth)
			b.Run(name, func(b *testing.B) {
				latencies(b, func() {
					page, err := s.ListConversations(ctx, q)
					if err != nil || len(page.Items) == 0 {
						b.Fatalf("ListConversations(%+v) = %d items, %v", q, len(page.Items), err)
					}
					if _, err := s.ColumnCounts(ctx, agent); err != nil {
						b.Fatalf("ColumnCounts() = %v", err)
					}
				})
			})
		}
	}
	for _, tc := range []struct {
		name, q string
		pages   int // the page measured: 1 is the first
	}{
		{"the", "the", 1},               // in 4 messages of 5; as a prefix also they, there...
		{"t", "t", 1},                   // every word beginning with t
		{"printer", "printer", 1},       // 2% of the messages
		{"printer_page3", "printer", 3}, // a later page
		{"prin", "prin", 1},             // printer, printing, prints...: 5%
		{"refund_invoice", "refund invoice", 1},
		{"mid_word", set.midWord, 1},   // about 500 messages
		{"rare_word", set.rareWord, 1}, // about 25 messages
		{"order_number", set.orderNumber, 1},
		{"contact_email", "ulrike.zander", 1}, // one contact's address
		{"contact_name", "anna", 1},           // 4% of the contacts
		{"mueller", "müller", 1},              // contacts' names
		{"tokyo", "東京", 1},                    // Japanese messages, 0.4%
		{"none", "zzqqxx", 1},
	} {
		q := inbox.ListQuery{Search: tc.q, AgentID: agent}
		for range tc.pages - 1 {
			page, err := s.ListConversations(ctx, q)
			if err != nil || page.NextCursor == "" {
				b.Fatalf("search %q: %v, or no page after", tc.q, err)
			}
			q.Cursor = page.NextCursor
		}
		b.Run("search/"+tc.name, func(b *testing.B) {
			latencies(b, func() {
				page, err := s.ListConversations(ctx, q)
				if err != nil || (len(page.Items) == 0) != (tc.name == "none") {
					b.Fatalf("search %q = %d items, %v", tc.q, len(page.Items), err)
				}
				if _, err := s.ColumnCounts(ctx, agent); err != nil {
					b.Fatalf("ColumnCounts() = %v", err)
				}
			})
		})
	}
}

// cursorAt returns the cursor of the page that starts depth conversations
// into the column, or of the column's middle if it is shorter.
func cursorAt(b *testing.B, s *inbox.Store, q inbox.ListQuery, depth int) string {
	ctx := context.Background()
	cursor := ""
	for seen := 0; seen < depth; {
		q.Cursor, q.Limit = cursor, 100
		page, err := s.ListConversations(ctx, q)
		if err != nil {
			b.Fatalf("ListConversations() = %v", err)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		seen += len(page.Items)
	}
	return cursor
}

// latencies runs fn b.N times and reports the p50 and p99 of one call,
// and the CPU time this process spent per call (all of it, with SQLite;
// PostgreSQL's own is not counted): unlike the latencies, it hardly
// depends on what else the machine runs.
func latencies(b *testing.B, fn func()) {
	lats := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		fn()
		lats = append(lats, time.Since(start))
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
