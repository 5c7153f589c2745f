package browsertest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// BenchmarkDashboard measures the dashboard in Chromium against a real
// server whose database holds 100,000 conversations and 1,000,000
// messages (issue 13, "Speed"), on SQLite and on PostgreSQL
// (MICROCHAT_TEST_DATABASE_URL):
//
//   - first_page: from the navigation to /inbox (logged in) to the first
//     row of the list in the page; target 1 s.
//   - open_10k: from ctx.open() of a conversation of 10,000 messages to
//     its newest message on screen (the frame after); target 300 ms.
//
// Each reports its median as ms/op-like metrics and logs p50, p90 and max;
// the seeding (bulk SQL, seedDashboard) is not timed. A benchmark, so
// that the ordinary test run leaves it out:
//
//	MICROCHAT_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  CGO_ENABLED=0 go test ./web/browsertest/ -run '^$' -bench Dashboard -benchtime 20x
func BenchmarkDashboard(b *testing.B) {
	browser := newBrowser(b)
	for _, engine := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", inboxtest.SQLiteURL}, {"postgres", inboxtest.PostgresURL}} {
		b.Run(engine.name, func(b *testing.B) {
			s := newServerAt(b, engine.url(b), nil, nil)
			acct := s.newAgentAccount("alice@example.com", "Alice Moreau", inbox.RoleAgent)
			start := time.Now()
			long := seedDashboard(b, s, acct.ID, 100_000, 1_000_000, 10_000)
			b.Logf("seeded 100,000 conversations and 1,000,000 messages (one of 10,000) in %v", time.Since(start).Round(time.Second))

			p := openDashboard(b, browser, s, "")
			p.login(acct.Email)
			p.waitJSWithin(40*time.Second, "the list", `document.querySelector("#list li[data-id]") !== null`)
			p.do("stamp the first row", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: firstRowClock})
				return err
			}))
			b.Run("first_page", func(b *testing.B) {
				var ms, api []float64
				for range b.N {
					p.do("reload", chromedp.Navigate(s.URL+"/inbox"))
					p.waitJSWithin(inboxtest.Patience, "the first row", `window.__firstRow > 0`)
					ms = append(ms, eval[float64](p, `window.__firstRow`))
					api = append(api, eval[float64](p, `performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/v1/conversations?")).map((e) => e.duration)[0] || 0`))
				}
				report(b, "first page of the list", "ms-first-page", ms)
				report(b, "  of which GET /conversations", "ms-list-api", api)
			})
			p.waitJS("the socket", `window.microchat.ctx.status() === "open"`)
			small := s.conversation("Short Talker", "hello")
			b.Run("open_10k", func(b *testing.B) {
				var ms []float64
				for range b.N {
					p.do("open another", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.microchat.ctx.open(%d)`, small)))
					p.waitJS("the other open", fmt.Sprintf(`document.getElementById("thread").dataset.id === "%d" && document.getElementById("thread").dataset.state === "ready"`, small))
					ms = append(ms, eval[float64](p, fmt.Sprintf(`new Promise((done) => {
						const el = document.getElementById("thread");
						const t0 = performance.now();
						window.microchat.ctx.open(%d);
						const check = () => {
							if (el.dataset.id === "%d" && el.dataset.state === "ready" && el.querySelector('[data-message-id="%d"]')) requestAnimationFrame(() => done(performance.now() - t0));
							else requestAnimationFrame(check);
						};
						check();
					})`, long.conv, long.conv, long.last)))
				}
				report(b, "opening 10,000 messages", "ms-open-10k", ms)
			})
		})
	}
}

// firstRowClock records in window.__firstRow when the list's first row
// appears, in ms since the navigation began.
const firstRowClock = `(() => {
	window.__firstRow = 0;
	const o = new MutationObserver(() => {
		if (document.querySelector("#list li[data-id]")) { window.__firstRow = performance.now(); o.disconnect(); }
	});
	o.observe(document, {childList: true, subtree: true});
})()`

// report logs the median, p90 and max of ms and reports the median as
// metric unit.
func report(b *testing.B, what, unit string, ms []float64) {
	b.Helper()
	ys := slices.Clone(ms)
	sort.Float64s(ys)
	at := func(p float64) float64 { return ys[min(len(ys)-1, int(float64(len(ys))*p))] }
	b.Logf("%s: p50 %.0f ms, p90 %.0f ms, max %.0f ms over %d", what, at(0.5), at(0.9), ys[len(ys)-1], len(ys))
	b.ReportMetric(at(0.5), unit)
}

// longConversation is the seeded conversation of many messages and its
// newest message.
type longConversation struct{ conv, last int64 }

// seedDashboard stores convs conversations of as many contacts with msgs
// messages in all, one conversation of them with long messages and the
// others sharing the rest, by multi-row INSERTs straight into the tables
// (inbox/model.go), in batches of one transaction: a test-only shortcut
// around the store, which would take an hour for a million messages.
// Statuses: 70% closed, the others open, half of them joined by agent;
// the last activity spread over 90 days, the long conversation newest.
func seedDashboard(b *testing.B, s *server, agent int64, convs, msgs, long int) longConversation {
	b.Helper()
	ctx := context.Background()
	db := s.store.DB()
	pg := s.store.Dialect() == "postgres"
	const batch = 500 // rows per INSERT: 9 columns stay under SQLite's and PostgreSQL's variable limits
	now := time.Now().UTC()
	span := 90 * 24 * time.Hour
	per := (msgs - long) / (convs - 1)
	var contacts, conversations, parts, messages [][]any
	flush := func(force bool) {
		if !force && len(messages) < 20*batch {
			return
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatalf("begin: %v", err)
		}
		for _, t := range []struct {
			table, cols string
			rows        *[][]any
		}{
			{"contacts", "id, name, email, phone, online, created_at", &contacts},
			{"conversations", "id, contact_id, channel, status, subject, seq, token, has_email, last_activity_at, created_at", &conversations},
			{"participants", "conversation_id, agent_id, responsible, joined_at", &parts},
			{"messages", "conversation_id, seq, author, agent_id, channel, text, html, state, created_at", &messages},
		} {
			for lo := 0; lo < len(*t.rows); lo += batch {
				inboxtest.InsertRows(b, tx, pg, t.table, t.cols, (*t.rows)[lo:min(lo+batch, len(*t.rows))])
			}
			*t.rows = (*t.rows)[:0]
		}
		if err := tx.Commit(); err != nil {
			b.Fatalf("commit: %v", err)
		}
	}
	for i := range convs {
		id := int64(i + 1)
		n, at := per, now.Add(-span+time.Duration(i)*(span/time.Duration(convs)))
		status := "closed"
		if i%10 >= 7 {
			status = "open"
		}
		if i == convs-1 {
			n, at, status = long, now, "open"
		}
		start := at.Add(-time.Duration(n) * time.Second)
		contacts = append(contacts, []any{id, fmt.Sprintf("Visitor %d", id), fmt.Sprintf("visitor%d@customer.test", id), "", false, start})
		conversations = append(conversations, []any{id, id, "chat", status, "", int64(n), fmt.Sprintf("seedtok%d", id), false, at, start})
		if status == "open" && i%2 == 0 && i != convs-1 {
			parts = append(parts, []any{id, agent, true, start.Add(time.Second)})
		}
		for k := range n {
			author, agentID := "contact", any(nil)
			if k%2 == 1 {
				author, agentID = "agent", agent
			}
			text := fmt.Sprintf("message %d of conversation %d: my order has not arrived yet, can you check?", k+1, id)
			messages = append(messages, []any{id, int64(k + 1), author, agentID, "chat", text, "", "read", at.Add(-time.Duration(n-k-1) * time.Second)})
		}
		flush(false)
	}
	flush(true)
	if pg {
		for _, t := range []string{"contacts", "conversations"} {
			if _, err := db.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), (SELECT max(id) FROM %s))`, t, t)); err != nil {
				b.Fatalf("setval %s: %v", t, err)
			}
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatalf("ANALYZE: %v", err)
	}
	var last int64
	if err := db.QueryRowContext(ctx, map[bool]string{false: "SELECT max(id) FROM messages WHERE conversation_id = ?", true: "SELECT max(id) FROM messages WHERE conversation_id = $1"}[pg], convs).Scan(&last); err != nil {
		b.Fatalf("the long conversation's last message: %v", err)
	}
	return longConversation{conv: int64(convs), last: last}
}
