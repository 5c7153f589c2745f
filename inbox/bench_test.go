package inbox_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// BenchmarkAppend stores messages through inbox with 1,000 conversations
// receiving at once (1,000 concurrent senders), next to a baseline: one
// raw single-row INSERT per transaction through the same driver and
// database, one writer. Run:
//
//	MICROCHAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  CGO_ENABLED=0 go test -run '^$' -bench Append -benchtime 20000x ./inbox/
func BenchmarkAppend(b *testing.B) {
	onEngines(b, func(b *testing.B, s *inbox.Store) {
		b.Run("baseline_raw_insert", func(b *testing.B) { benchRawInsert(b, s) })
		b.Run("inbox_1000_conversations", func(b *testing.B) { benchInbox(b, s) })
	})
}

// onEngines runs fn as a sub-benchmark on a fresh store of each database
// of benchEngines.
func onEngines(b *testing.B, fn func(b *testing.B, s *inbox.Store)) {
	for _, engine := range benchEngines {
		b.Run(engine.name, func(b *testing.B) { fn(b, inboxtest.Open(b, engine.url(b), nil)) })
	}
}

// benchEngines are the databases benchmarks run on.
var benchEngines = []struct {
	name string
	url  func(testing.TB) string
}{{"sqlite", inboxtest.SQLiteURL}, {"postgres", inboxtest.PostgresURL}}

func benchRawInsert(b *testing.B, s *inbox.Store) {
	db := s.DB()
	ctx := context.Background()
	ddl := `CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, conversation_id BIGINT, text TEXT)`
	if s.Dialect() == "postgres" {
		ddl = `CREATE TABLE IF NOT EXISTS bench_raw (id BIGSERIAL PRIMARY KEY, conversation_id BIGINT, text TEXT)`
	}
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		b.Fatalf("create: %v", err)
	}
	q := `INSERT INTO bench_raw (conversation_id, text) VALUES (?, ?)`
	if s.Dialect() == "postgres" {
		q = `INSERT INTO bench_raw (conversation_id, text) VALUES ($1, $2)`
	}
	stmt, err := db.PrepareContext(ctx, q)
	if err != nil {
		b.Fatalf("prepare: %v", err)
	}
	defer stmt.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := stmt.ExecContext(ctx, i%1000, "hello, I have a question about my order"); err != nil {
			b.Fatalf("insert: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func benchInbox(b *testing.B, s *inbox.Store) {
	ctx := context.Background()
	const conversations = 1000
	ids := make([]int64, 0, conversations)
	contact, err := s.CreateContact(ctx, inbox.NewContact{Name: "Bench"})
	if err != nil {
		b.Fatalf("CreateContact() = %v", err)
	}
	for range conversations {
		c, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		if err != nil {
			b.Fatalf("StartConversation() = %v", err)
		}
		ids = append(ids, c.ID)
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		seq  atomic.Int64
	)
	// 1,000 senders on this machine's GOMAXPROCS.
	b.SetParallelism(max(1, conversations/max(1, runtimeProcs())))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			n := seq.Add(1)
			start := time.Now()
			_, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: ids[rand.IntN(len(ids))], Author: inbox.AuthorContact,
				Text: "hello, I have a question about my order", ClientID: fmt.Sprint("b", n)})
			if err != nil {
				b.Errorf("AddMessage() = %v", err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if len(lats) > 0 {
		slices.Sort(lats)
		b.ReportMetric(float64(lats[len(lats)*50/100].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkAppendBus is what the bus (pgbus.go) costs the PostgreSQL
// append, as BenchmarkAppend's inbox run: without it (Options.NoBus), with
// it (a pg_notify pipelined with each batch's COMMIT), and with it and a
// second node listening, which reads every batch's events back. -count
// alternates the three. Run:
//
//	MICROCHAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  CGO_ENABLED=0 go test -run '^$' -bench AppendBus -benchtime 20000x -count 3 ./inbox/
func BenchmarkAppendBus(b *testing.B) {
	for _, v := range []struct {
		name         string
		noBus, other bool
	}{{"nobus", true, false}, {"bus", false, false}, {"bus_second_node", false, true}} {
		b.Run(v.name, func(b *testing.B) {
			url := inboxtest.SharedPostgres(b)
			s := inboxtest.Open(b, url, &inbox.Options{NoBus: v.noBus, NodeID: "a"})
			if v.other {
				other := inboxtest.Open(b, url, &inbox.Options{NodeID: "b"})
				var n atomic.Int64
				sub := other.Hub().SubscribeFunc(0, func(inbox.Event) { n.Add(1) })
				defer sub.Close()
				defer func() { b.ReportMetric(float64(n.Load())/float64(b.N), "remote-events/msg") }()
			}
			benchInbox(b, s)
		})
	}
}

// BenchmarkConnectReads is what a widget socket reads to connect (its
// token, then its conversation with the agents), against a single
// primary-key read in the same run as the baseline: ns/op per connect.
func BenchmarkConnectReads(b *testing.B) {
	onEngines(b, func(b *testing.B, s *inbox.Store) {
		ctx := context.Background()
		const visitors = 1000
		var vs []inbox.VisitorStart
		for i := range visitors {
			v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: fmt.Sprint("V", i)}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			vs = append(vs, v)
		}
		b.Run("baseline_conversation", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := s.Conversation(ctx, vs[i%visitors].Conversation.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("auth", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := s.VisitorAuthConversation(ctx, vs[i%visitors].Token, time.Hour, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("auth_with_start", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				v := vs[i%visitors]
				if c, err := s.VisitorAuthConversation(ctx, v.Token, time.Hour, v.Conversation.ID); err != nil || !c.Started {
					b.Fatal(c.Started, err)
				}
			}
		})
		b.Run("conversation_and_participants", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				id := vs[i%visitors].Conversation.ID
				if _, err := s.Conversation(ctx, id); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Participants(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("conversation_start", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, _, err := s.ConversationStart(ctx, vs[i%visitors].Conversation.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
