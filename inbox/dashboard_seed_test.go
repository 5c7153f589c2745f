package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/microdeets/microchat/inbox"
)

// The dashboard's data for the list and search benchmarks: 100,000
// conversations with 1,000,000 messages, written with bulk INSERTs (SQLite)
// or COPY (PostgreSQL) in big transactions, never through the append
// path, into a database migrated up to just before 0011_search; opening
// it as a Store then runs 0011 on a full database, as an upgrade would.
//
// The shape (deterministic, seed 13):
//   - 20 agents; 80,000 contacts (2% with non-Latin names, 70% with an
//     email address), some with several conversations;
//   - 100,000 conversations over a year, 30% by email; open when active
//     in the last 60 days or returned (2% come back with a message in the
//     last 30 days): about 18,000 open, a quarter of them Unassigned, the
//     rest joined by one agent (some by two); the closed ones keep their
//     past participant;
//   - 1,000,000 messages: one conversation of 10,000 (open, agent 1's,
//     the most recent of all), ten of 1,000, the others 1 to 18; contact
//     and agent in turn; text of 4 to 24 words drawn from a Zipf law over
//     a vocabulary of common support words and 30,000 rarer ones, with an
//     order number in 1% of them and German or Japanese text in 1%;
//   - the agents' read marks: closed conversations read to the end, half
//     of the joined ones a couple of messages short.
const (
	seedConversations = 100_000
	seedMessages      = 1_000_000
	seedContacts      = 80_000
	seedAgents        = 20
	seedBigMessages   = 10_000
)

// seedNow is the seeded data's present: everything happened in the year
// before it.
var seedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// seedWords are the most frequent words, most frequent first; the
// generator appends 30,000 rarer made-up words after them.
var seedWords = strings.Fields(`the i to and you a is my it for of in your we have this on
	that with order can be not please thanks hi hello but are was me help do
	if so will at account there just no get any now as how from our what
	they please could would there when up all out about one which need know
	printer invoice refund delivery payment password login email card shipping
	package tracking return price subscription discount address phone error
	problem issue question update cancel change product size colour color item
	week today tomorrow yesterday morning support team message reply answer
	website app download install version browser mobile laptop screen button
	page link working broken received sent charged twice wrong missing damaged
	replacement warranty store customer service manager agent chat ticket
	number code voucher gift coupon bank transfer paypal visa mastercard
	receipt tax vat company business plan monthly yearly trial upgrade
	downgrade renewal expired reset locked blocked verify confirmation
	notification settings profile username signup register unsubscribe
	newsletter feedback complaint rating review stars excellent terrible
	slow fast quickly asap urgent waiting still again already maybe sure
	great fine okay good bad sorry unfortunately apologize understand
	explain check look see find try tried works worked work printing printed
	print prints printers cartridge ink toner paper scanner wifi network
	cable charger battery keyboard mouse monitor headphones speaker camera`)

// seedSentences are German and Japanese messages, one in a hundred.
var seedSentences = []string{
	"Ich habe eine Frage zu meiner Bestellung, viele Grüße aus Köln",
	"Der Drucker funktioniert nicht mehr, können Sie mir helfen? Straße und Hausnummer stimmen.",
	"東京の店舗で買ったプリンターが動きません。",
	"注文番号を確認してください。東京都新宿区",
	"Merci beaucoup, le colis est arrivé à Genève",
}

// seedNames are contact names: the generator combines them; one in fifty
// contacts takes one of the non-Latin names.
var (
	seedFirst   = strings.Fields(`anna ben carla david emma felix greta hugo ida jonas karla leo mia noah olga paul rosa sam tina umar vera will xena yusuf zoe`)
	seedLast    = strings.Fields(`smith jones brown taylor wilson davies evans thomas johnson roberts walker wright robinson thompson white hughes edwards green hall wood`)
	seedForeign = []string{"Jürgen Müller", "Zoë Ångström", "田中 太郎", "山本 花子", "Σωκράτης Παπαδόπουλος", "Олег Петров", "Renée Lefèvre"}
)

// seedSet is what the benchmarks ask for: the ids and words the seed
// put where the queries expect them.
type seedSet struct {
	bigConversation int64  // 10,000 messages, the most recent, agent 1's
	orderNumber     string // in exactly one message
	contactToken    string // in exactly one contact's email address
	rareWord        string // one of the rarest made-up words
	midWord         string // a made-up word of middling frequency
}

// seedRand is the generator's random source.
func seedRand() *rand.Rand { return rand.New(rand.NewPCG(13, 13)) }

// madeUpWord returns the i-th rare word, pronounceable and unique.
func madeUpWord(i int) string {
	syl := []string{"ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "pi", "qua", "zen", "bri", "mo", "tas", "ne", "gil"}
	var b strings.Builder
	for n := i + len(syl); n > 0; n /= len(syl) {
		b.WriteString(syl[n%len(syl)])
	}
	return b.String()
}

// rowWriter writes rows of a table in bulk.
type rowWriter interface {
	// rows writes the rows of table with the given columns.
	rows(table string, cols []string, rows [][]any) error
}

// seedDashboard fills a database migrated up to before 0011 with the
// dashboard's data.
func seedDashboard(w rowWriter) (seedSet, error) {
	r := seedRand()
	set := seedSet{}
	vocab := slices.Clone(seedWords)
	for i := range 30_000 {
		vocab = append(vocab, madeUpWord(i))
	}
	set.rareWord = vocab[len(vocab)-7]
	set.midWord = vocab[len(seedWords)+1500]
	zipf := rand.NewZipf(r, 1.07, 1, uint64(len(vocab)-1))

	var agents [][]any
	for i := 1; i <= seedAgents; i++ {
		agents = append(agents, []any{int64(i), fmt.Sprintf("agent%d@support.example", i), fmt.Sprintf("Agent %d", i), "agent", "x", seedNow.AddDate(-2, 0, 0)})
	}
	if err := w.rows("agents", []string{"id", "email", "name", "role", "password_hash", "created_at"}, agents); err != nil {
		return set, err
	}

	contacts := make([][]any, 0, seedContacts)
	for i := 1; i <= seedContacts; i++ {
		first, last := seedFirst[r.IntN(len(seedFirst))], seedLast[r.IntN(len(seedLast))]
		name := strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
		if r.IntN(50) == 0 {
			name = seedForeign[r.IntN(len(seedForeign))]
		}
		email := ""
		if r.IntN(10) < 7 {
			email = fmt.Sprintf("%s.%s%d@mail%d.example", first, last, i, i%50)
		}
		contacts = append(contacts, []any{int64(i), name, email, "", false, seedNow.AddDate(-1, 0, 0)})
	}
	set.contactToken = fmt.Sprintf("%d", seedContacts-3)
	contacts[seedContacts-4][2] = "ulrike.zander" + set.contactToken + "@mail3.example"
	if err := w.rows("contacts", []string{"id", "name", "email", "phone", "online", "created_at"}, contacts); err != nil {
		return set, err
	}

	// Messages per conversation: one big, ten of a thousand, the rest
	// spread to make the total.
	counts := make([]int, seedConversations)
	big := seedConversations // the newest conversation
	counts[big-1] = seedBigMessages
	for k := range 10 {
		counts[(k+1)*seedConversations/12] = 1000
	}
	set.bigConversation = int64(big)
	left := seedMessages - seedBigMessages - 10*1000
	for i := range counts {
		if counts[i] == 0 {
			counts[i] = 1 + r.IntN(18)
			left -= counts[i]
		}
	}
	for left != 0 {
		i := r.IntN(len(counts))
		switch {
		case counts[i] >= 1000:
		case left > 0:
			counts[i]++
			left--
		case counts[i] > 1:
			counts[i]--
			left++
		}
	}

	yearSecs := 365 * 24 * 3600
	start := seedNow.Add(-time.Duration(yearSecs) * time.Second)
	convCols := []string{"id", "contact_id", "channel", "status", "subject", "seq", "token", "has_email", "last_activity_at", "created_at", "closed_at"}
	msgCols := []string{"id", "conversation_id", "seq", "author", "agent_id", "channel", "text", "html", "state", "created_at"}
	partCols := []string{"conversation_id", "agent_id", "responsible", "joined_at", "left_at"}
	readCols := []string{"agent_id", "conversation_id", "seq"}
	var convs, msgs, parts, reads [][]any
	flush := func(final bool) error {
		if len(msgs) < 50_000 && !final {
			return nil
		}
		for _, t := range []struct {
			name string
			cols []string
			rows *[][]any
		}{{"conversations", convCols, &convs}, {"messages", msgCols, &msgs}, {"participants", partCols, &parts}, {"agent_reads", readCols, &reads}} {
			if err := w.rows(t.name, t.cols, *t.rows); err != nil {
				return err
			}
			*t.rows = (*t.rows)[:0]
		}
		return nil
	}
	msgID := int64(0)
	orderAt := seedMessages / 3
	for i := 1; i <= seedConversations; i++ {
		id := int64(i)
		created := start.Add(time.Duration(int64(i)*int64(yearSecs)/seedConversations) * time.Second)
		channel := "chat"
		if r.IntN(10) < 3 {
			channel = "email"
		}
		n := counts[i-1]
		times := make([]time.Time, n)
		at := created
		for k := range times {
			at = at.Add(time.Duration(30+r.IntN(600)) * time.Second)
			times[k] = at
		}
		returned := r.IntN(50) == 0
		if returned {
			times[n-1] = seedNow.Add(-time.Duration(r.IntN(30*24*3600)) * time.Second)
		}
		if id == set.bigConversation {
			// Its last message is the newest of all.
			times[n-1] = seedNow
		}
		if times[n-1].After(seedNow) {
			times[n-1] = seedNow.Add(-time.Minute)
		}
		last := times[n-1]
		open := returned || id == set.bigConversation || seedNow.Sub(last) < 60*24*time.Hour
		agent := int64(1 + r.IntN(seedAgents))
		if id == set.bigConversation {
			agent = 1
		}
		status, closedAt := "closed", any(last)
		assigned := true
		if open {
			status, closedAt = "open", nil
			assigned = id == set.bigConversation || r.IntN(4) != 0
		}
		contact := int64(1 + (i*7919)%seedContacts)
		if id == set.bigConversation {
			contact = int64(seedContacts - 4) // the one with the unique email address
		}
		convs = append(convs, []any{id, contact, channel, status, "", int64(n), fmt.Sprintf("tok%d", i), channel == "email", last, created, closedAt})
		if assigned {
			var left any
			if !open {
				left = last
			}
			parts = append(parts, []any{id, agent, true, created.Add(time.Minute), left})
			if open && r.IntN(10) == 0 {
				second := agent%seedAgents + 1
				parts = append(parts, []any{id, second, false, created.Add(2 * time.Minute), nil})
			}
			readTo := int64(n)
			if open && r.IntN(2) == 0 {
				readTo = max(0, int64(n-2))
			}
			reads = append(reads, []any{agent, id, readTo})
		}
		var text strings.Builder
		for k := range n {
			msgID++
			author, agentID := "contact", any(nil)
			if k%2 == 1 {
				author, agentID = "agent", agent
			}
			text.Reset()
			switch {
			case msgID == int64(orderAt):
				set.orderNumber = "A7310429"
				text.WriteString("my order number is A7310429 and it has not arrived")
			case r.IntN(100) == 0:
				text.WriteString(seedSentences[r.IntN(len(seedSentences))])
			default:
				for w := range 4 + r.IntN(21) {
					if w > 0 {
						text.WriteByte(' ')
					}
					text.WriteString(vocab[zipf.Uint64()])
				}
				if r.IntN(100) == 0 {
					fmt.Fprintf(&text, " order B%07d", r.IntN(10_000_000))
				}
			}
			msgs = append(msgs, []any{msgID, id, int64(k + 1), author, agentID, channel, text.String(), "", "read", times[k]})
		}
		if err := flush(false); err != nil {
			return set, err
		}
	}
	return set, flush(true)
}

// sqliteRows writes rows with multi-row INSERTs, all in one transaction
// per call.
type sqliteRows struct{ db *sql.DB }

func (w sqliteRows) rows(table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := w.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const per = 100
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	stmts := map[int]*sql.Stmt{}
	for len(rows) > 0 {
		n := min(per, len(rows))
		st := stmts[n]
		if st == nil {
			q := "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
			if st, err = tx.Prepare(q); err != nil {
				return err
			}
			stmts[n] = st
		}
		args := make([]any, 0, n*len(cols))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := st.Exec(args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return tx.Commit()
}

// pgRows writes rows with COPY.
type pgRows struct{ db *sql.DB }

func (w pgRows) rows(table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	conn, err := w.db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		_, err := pc.CopyFrom(context.Background(), pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table, err)
		}
		return nil
	})
}

// seededStore opens a Store on the dashboard's data: it seeds a fresh
// database at the migration before 0011_search, then opens it (running
// 0011 and any later migration) and reports how long that took. On
// SQLite, with MICROCHAT_BENCH_SEED_DIR set, the seeded file is kept
// there and copied for later runs.
func seededStore(b testing.TB, engine string, url string) (*inbox.Store, seedSet) {
	b.Helper()
	ids := inbox.MigrationIDs()
	before := ids[slices.Index(ids, "0011_search")-1]
	seed := func(url string) seedSet {
		old, err := inbox.OpenBare(url)
		if err != nil {
			b.Fatalf("OpenBare() = %v", err)
		}
		defer old.CloseBare()
		if err := old.MigrateTo(before); err != nil {
			b.Fatalf("MigrateTo(%s) = %v", before, err)
		}
		var w rowWriter = sqliteRows{old.DB()}
		if engine == "postgres" {
			w = pgRows{old.DB()}
		}
		start := time.Now()
		set, err := seedDashboard(w)
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
		b.Logf("%s: seeded %d conversations, %d messages in %v", engine, seedConversations, seedMessages, time.Since(start).Round(time.Millisecond))
		return set
	}
	var set seedSet
	cache := os.Getenv("MICROCHAT_BENCH_SEED_DIR")
	if engine == "sqlite" && cache != "" {
		kept := filepath.Join(cache, "dashboard-seed-"+before+".db")
		if _, err := os.Stat(kept); err != nil {
			set = seed("sqlite:" + kept)
		} else {
			set = seedSetOnly()
		}
		path := strings.TrimPrefix(url, "sqlite:")
		if err := copyFile(kept, path); err != nil {
			b.Fatalf("copy the seeded database: %v", err)
		}
	} else {
		set = seed(url)
	}
	size := func() string {
		if engine == "sqlite" {
			fi, err := os.Stat(strings.TrimPrefix(url, "sqlite:"))
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%.0f MB", float64(fi.Size())/1e6)
		}
		return ""
	}
	seeded := size()
	start := time.Now()
	s, err := inbox.Open(context.Background(), url, nil)
	if err != nil {
		b.Fatalf("inbox.Open() = %v", err)
	}
	b.Cleanup(func() { s.Close() })
	b.Logf("%s: migrations after %s on the seeded database took %v", engine, before, time.Since(start).Round(time.Millisecond))
	if engine == "postgres" {
		// As autovacuum would have, on a database that has been in use:
		// statistics for the planner, and the visibility map.
		if _, err := s.DB().Exec(`VACUUM ANALYZE`); err != nil {
			b.Fatalf("VACUUM ANALYZE: %v", err)
		}
		var messages, search, contacts string
		if err := s.DB().QueryRow(`SELECT pg_size_pretty(pg_relation_size('messages')), pg_size_pretty(pg_relation_size('messages_search')),
			pg_size_pretty(pg_relation_size('contacts_search'))`).Scan(&messages, &search, &contacts); err == nil {
			b.Logf("postgres: messages %s, their search index %s, the contacts' %s", messages, search, contacts)
		}
	} else {
		if _, err := s.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err == nil {
			b.Logf("sqlite: the database file was %s seeded, %s with the search index", seeded, size())
		}
	}
	return s, set
}

// seedSetOnly returns what seedDashboard returns without writing
// anything, for a database seeded earlier.
func seedSetOnly() seedSet {
	set, err := seedDashboard(discardRows{})
	if err != nil {
		panic(err)
	}
	return set
}

type discardRows struct{}

func (discardRows) rows(string, []string, [][]any) error { return nil }

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
