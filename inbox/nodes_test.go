package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A node's heartbeat costs one UPDATE of its own nodes row and one SELECT
// of the nodes, whatever number of visitors it counts online: an idle
// socket costs no database write (issue 14: the peer compared spends an
// UPDATE per idle visitor every ten seconds).
func TestHeartbeatCost(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{NodeID: "a", Now: clock.Now})
		var online []inbox.ContactOnline
		for i := 0; i < 300; i++ {
			c, err := s.CreateContact(ctx, inbox.NewContact{Name: fmt.Sprint("c", i)})
			if err != nil {
				t.Fatal(err)
			}
			online = append(online, inbox.ContactOnline{ContactID: c.ID, Online: true})
		}
		if n, err := s.SetContactsOnline(ctx, online); err != nil || n != len(online) {
			t.Fatalf("SetContactsOnline() = %d, %v", n, err)
		}
		take := s.CountStatements()
		const beats = 10
		for i := 0; i < beats; i++ {
			clock.Advance(inbox.NodeHeartbeat)
			if err := s.Heartbeat(ctx); err != nil {
				t.Fatalf("Heartbeat() = %v", err)
			}
			if st, err := s.ReapNodes(ctx, inbox.NodeDeadAfter); err != nil || st.Live != 1 || len(st.Reaped) != 0 {
				t.Fatalf("ReapNodes() = %+v, %v", st, err)
			}
		}
		stmts := take()
		var updates, selects int
		for _, q := range stmts {
			switch {
			case strings.HasPrefix(q, "UPDATE nodes SET seen_at"):
				updates++
			case strings.HasPrefix(q, "SELECT id, seen_at, stopped_at FROM nodes"):
				selects++
			default:
				t.Errorf("a heartbeat ran %q", q)
			}
		}
		if updates != beats || selects != beats {
			t.Fatalf("%d heartbeats ran %d UPDATEs and %d SELECTs, want one each per beat (%d statements: %q)",
				beats, updates, selects, len(stmts), stmts)
		}
		c, err := s.Contact(ctx, online[0].ContactID)
		if err != nil || !c.Online {
			t.Fatalf("a contact of the beating node: online %v, %v", c.Online, err)
		}
	})
}

// BenchmarkReapNode measures the reaping of a dead node that counted
// 10,000 visitors online: one transaction that takes them offline and
// announces each. Run:
//
//	MICROCHAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  CGO_ENABLED=0 go test -run '^$' -bench ReapNode -benchtime 5x ./inbox/
func BenchmarkReapNode(b *testing.B) {
	const visitors = 10000
	for _, engine := range benchEngines {
		b.Run(engine.name, func(b *testing.B) {
			ctx := context.Background()
			url := engine.url(b)
			clock := inboxtest.NewClock()
			dead := inboxtest.Open(b, url, &inbox.Options{NodeID: "dead", Now: clock.Now})
			live := inboxtest.Open(b, url, &inbox.Options{NodeID: "live", Now: clock.Now})
			q := `INSERT INTO contacts (name, created_at) SELECT 'c' || g, now() FROM generate_series(1, 10000) g`
			if dead.Dialect() == "sqlite" {
				q = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 10000)
					SELECT 'c' || n, datetime('now') FROM g`
				q = `INSERT INTO contacts (name, created_at) ` + q
			}
			if _, err := dead.DB().ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
			var changes []inbox.ContactOnline
			rows, err := dead.DB().QueryContext(ctx, `SELECT id FROM contacts`)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var id int64
				rows.Scan(&id)
				changes = append(changes, inbox.ContactOnline{ContactID: id, Online: true})
			}
			rows.Close()
			if len(changes) != visitors {
				b.Fatalf("%d contacts", len(changes))
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// The node comes back (reaped by the last iteration).
				err := dead.Heartbeat(ctx)
				if errors.Is(err, inbox.ErrNodeReaped) {
					err = dead.Heartbeat(ctx)
				}
				if err != nil {
					b.Fatal(err)
				}
				for c := range slices.Chunk(changes, 256) {
					if _, err := dead.SetContactsOnline(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
				clock.Advance(inbox.NodeDeadAfter + time.Second)
				b.StartTimer()
				st, err := live.ReapNodes(ctx, inbox.NodeDeadAfter)
				if err != nil || len(st.Reaped) != 1 {
					b.Fatalf("ReapNodes() = %+v, %v", st, err)
				}
			}
			b.StopTimer()
			if c, err := live.Contact(ctx, changes[0].ContactID); err != nil || c.Online {
				b.Fatalf("a visitor of the dead node: online %v, %v", c.Online, err)
			}
		})
	}
}

// TestDuplicateNodeIDWarns: a process that starts with the node_id of
// one that is still beating (and never stopped) says so in its log; one
// that starts after a stop does not (a tester's second process with a
// running node's id retired the live node's presence without a word).
func TestDuplicateNodeIDWarns(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testDuplicateNodeIDWarns(t, inboxtest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { testDuplicateNodeIDWarns(t, inboxtest.SharedPostgres(t)) })
}

func testDuplicateNodeIDWarns(t *testing.T, url string) {
	ctx := context.Background()
	const warning = "another process may be running with this node_id"
	start := func(id string) (*inbox.Store, *inboxtest.Buffer) {
		buf := &inboxtest.Buffer{}
		s := inboxtest.Open(t, url, &inbox.Options{NodeID: id, NoBus: true, Logger: slog.New(slog.NewTextHandler(buf, nil))})
		if err := s.Heartbeat(ctx); err != nil {
			t.Fatalf("Heartbeat() = %v", err)
		}
		return s, buf
	}
	start("dup") // stays open, beating
	_, log := start("dup")
	if !strings.Contains(log.String(), warning) {
		t.Fatalf("second process with a running node's id logged no warning:\n%s", log.String())
	}

	stopped, _ := start("again")
	if err := stopped.StopNode(ctx); err != nil {
		t.Fatalf("StopNode() = %v", err)
	}
	_, log = start("again")
	if strings.Contains(log.String(), warning) {
		t.Fatalf("a restart after a stop warned of a duplicate:\n%s", log.String())
	}
}
