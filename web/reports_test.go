package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// GET /reports/operators answers every agent's figures for a period,
// the last 30 days by default; admins and agents may read it, nobody
// without a session. A time that is not RFC 3339, a period that ends
// before it starts or spans more than 366 days is 400 naming the field.
func TestOperatorsReportAPI(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		adm := e.agent("admin@example.com", inbox.RoleAdmin)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		conv := e.conversation("Vic", "")
		e.contactSays(conv.ID, "hello?")
		noError(t, "Join()", e.store.Join(ctx, conv.ID, bob.ID))
		if _, _, err := e.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &bob.ID, Text: "hi"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		noError(t, "Leave()", e.store.Leave(ctx, conv.ID, bob.ID))
		if _, err := e.store.Rate(ctx, conv.ID, 4, "Quick, thanks"); err != nil {
			t.Fatalf("Rate() = %v", err)
		}
		admin, agent := e.login(adm.Email), e.login(bob.Email)

		for _, c := range []*client{admin, agent} {
			var rep inbox.OperatorsReport
			c.do("GET", "/api/v1/reports/operators", nil).want(http.StatusOK).decode(&rep)
			if d := rep.To.Sub(rep.From); d != 30*24*time.Hour || time.Since(rep.To) > time.Minute || rep.To.After(time.Now()) {
				t.Fatalf("default period = %v..%v, want the last 30 days", rep.From, rep.To)
			}
			if len(rep.Operators) != 2 || rep.Operators[0].AgentID != adm.ID || rep.Operators[1].AgentID != bob.ID {
				t.Fatalf("operators = %+v, want admin and bob", rep.Operators)
			}
			op := rep.Operators[1]
			if op.ConversationsJoined != 1 || op.Ratings.Count != 1 || op.Ratings.Distribution != [5]int64{0, 0, 0, 1, 0} ||
				op.Ratings.Average == nil || *op.Ratings.Average != 4 || len(op.Ratings.Comments) != 1 ||
				op.Ratings.Comments[0].Comment != "Quick, thanks" || op.Ratings.Comments[0].ConversationID != conv.ID ||
				op.MedianFirstResponseSeconds == nil || *op.MedianFirstResponseSeconds < 0 {
				t.Fatalf("bob's figures = %+v", op)
			}
			if a := rep.Operators[0]; a.ConversationsJoined != 0 || a.Ratings.Average != nil || a.MedianFirstResponseSeconds != nil {
				t.Fatalf("the admin's figures = %+v, want none", a)
			}
			today := time.Now().UTC().Format(time.DateOnly)
			if len(rep.Daily) != 1 || rep.Daily[0] != (inbox.OperatorDay{Date: today, AgentID: bob.ID, Joined: 1, Ratings: 1}) {
				t.Fatalf("daily = %+v", rep.Daily)
			}
		}

		// The JSON of no activity: null figures, empty lists.
		r := admin.do("GET", "/api/v1/reports/operators?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00%2B01:00", nil).want(http.StatusOK)
		for _, want := range []string{`"from":"2020-01-01T00:00:00Z"`, `"to":"2020-01-31T23:00:00Z"`, `"average":null`,
			`"median_first_response_seconds":null`, `"distribution":[0,0,0,0,0]`, `"comments":[]`, `"daily":[]`} {
			if !strings.Contains(string(r.body), want) {
				t.Fatalf("empty report %s lacks %s", r.body, want)
			}
		}

		for _, path := range []string{"/api/v1/reports/operators", "/api/v1/reports/operators.csv"} {
			e.client().do("GET", path, nil).want(http.StatusUnauthorized)
			now := time.Now().UTC()
			for _, tc := range []struct{ query, field string }{
				{"from=yesterday", "from"},
				{"to=2026-13-01T00:00:00Z", "to"},
				{"from=2026-01-01", "from"},
				{"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
				{"from=2026-02-01T00:00:00Z&to=2026-02-01T00:00:00Z", "to"},
				{"from=2024-01-01T00:00:00Z&to=2025-01-02T00:00:01Z", "from"},
				{"to=" + now.Add(-400*24*time.Hour).Format(time.RFC3339) + "&from=" + now.Add(-800*24*time.Hour).Format(time.RFC3339), "from"},
			} {
				agent.do("GET", path+"?"+tc.query, nil).wantField(tc.field)
			}
		}
	})
}

// The CSV export is a header row and a row per agent, RFC 4180: a name
// with a comma, a quote or a line break is quoted, and one that starts
// with =, +, -, @ or a tab, which a spreadsheet would run as a formula,
// starts with an apostrophe instead.
func TestOperatorsReportCSV(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		e := newEnv(t, dbURL, nil)
		adm := e.agent("admin@example.com", inbox.RoleAdmin)
		names := map[string]string{ // as set -> as exported
			`Smith, "Jo"`:            `Smith, "Jo"`,
			`=HYPERLINK("http://x")`: `'=HYPERLINK("http://x")`,
			"+1 Team":                "'+1 Team",
			"-2+3":                   "'-2+3",
			"@SUM(A1)":               "'@SUM(A1)",
			"Plain Name":             "Plain Name",
			"Line one\nLine two":     "Line one\nLine two",
			"\t=cmd":                 "'\t=cmd",
			"Ünïcode ✓":              "Ünïcode ✓",
			"admin":                  "admin",
		}
		ids := map[string]int64{"admin": adm.ID}
		i := 0
		for name := range names {
			if name == "admin" {
				continue
			}
			i++
			a := e.agent("a"+itoa64(int64(i))+"@example.com", inbox.RoleAgent)
			ids[name] = a.ID
			if !strings.ContainsAny(name, "\n\t") {
				if _, err := e.store.RenameAgent(ctx, a.ID, name); err != nil {
					t.Fatalf("RenameAgent(%q) = %v", name, err)
				}
				continue
			}
			// A line break or a tab cannot be typed into a name (it is a
			// single line: they are dropped); an older row might have one
			// all the same.
			q := `UPDATE agents SET name = ? WHERE id = ?`
			if e.store.Dialect() == "postgres" {
				q = `UPDATE agents SET name = $1 WHERE id = $2`
			}
			if _, err := e.store.DB().ExecContext(ctx, q, name, a.ID); err != nil {
				t.Fatalf("set name %q: %v", name, err)
			}
		}
		conv := e.conversation("Vic", "")
		noError(t, "Join()", e.store.Join(ctx, conv.ID, ids[`Smith, "Jo"`]))
		noError(t, "Leave()", e.store.Leave(ctx, conv.ID, ids[`Smith, "Jo"`]))
		if _, err := e.store.Rate(ctx, conv.ID, 5, ""); err != nil {
			t.Fatalf("Rate() = %v", err)
		}

		c := e.login(adm.Email)
		r := c.do("GET", "/api/v1/reports/operators.csv?from=2026-01-01T00:00:00Z&to="+url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)), nil).
			want(http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("Content-Type = %q", ct)
		}
		if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="operators-20260101T000000Z-`) || !strings.HasSuffix(cd, `.csv"`) {
			t.Fatalf("Content-Disposition = %q", cd)
		}
		body := string(r.body)
		for _, raw := range []string{"\"Smith, \"\"Jo\"\"\",", "\"'=HYPERLINK(\"\"http://x\"\")\",", "\"Line one\r\nLine two\",", "\r\n"} {
			if !strings.Contains(body, raw) {
				t.Fatalf("CSV lacks %q:\n%s", raw, body)
			}
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v\n%s", err, body)
		}
		if strings.Join(rows[0], ",") != "agent_id,name,disabled,conversations_joined,ratings,average_rating,rating_1,rating_2,rating_3,rating_4,rating_5,median_first_response_seconds" {
			t.Fatalf("header = %q", rows[0])
		}
		if len(rows) != 1+len(names) {
			t.Fatalf("%d rows, want a header and %d agents:\n%s", len(rows), len(names), body)
		}
		byID := map[string][]string{}
		for _, row := range rows[1:] {
			if len(row) != len(rows[0]) {
				t.Fatalf("row %q has %d cells, want %d", row, len(row), len(rows[0]))
			}
			byID[row[0]] = row
		}
		for name, want := range names {
			row := byID[itoa64(ids[name])]
			if row == nil || row[1] != want {
				t.Errorf("name %q exported as %q, want %q", name, row, want)
			}
		}
		if row := byID[itoa64(ids[`Smith, "Jo"`])]; strings.Join(row[2:], ",") != "false,1,1,5,0,0,0,0,1," {
			t.Errorf("figures = %q, want joined 1, rated 5 once, no response", row[2:])
		}
	})
}

// csvText neutralises every cell a spreadsheet would read as a formula,
// and nothing else.
func TestCSVText(t *testing.T) {
	for in, want := range map[string]string{
		"=1+2": "'=1+2", "+1": "'+1", "-1": "'-1", "@A1": "'@A1", "\tx": "'\tx", "\rx": "'\rx",
		"": "", "a=b": "a=b", " =x": " =x", "Ann": "Ann", "'quoted": "'quoted", "1-2": "1-2",
	} {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}
