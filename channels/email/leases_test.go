package email

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// node is one Microchat node's email channel in a test of several nodes
// on one database: its own Store and clock, its Channel running until
// stop.
type node struct {
	st    *inbox.Store
	ch    *Channel
	clock *inboxtest.Clock
	gate  *gatedSink
	stop  context.CancelFunc
	done  chan struct{}
}

// gatedSink is a node's Sink that can be made to stall before it stores
// a batch (a node that froze in the middle of an import), counting the
// batches it was given.
type gatedSink struct {
	Sink
	mu      sync.Mutex
	stall   bool
	stalled chan []Fetched // a stalled batch, when it stalls
	resume  chan struct{}  // closed: the stalled batch goes on
	batches atomic.Int64
}

func (g *gatedSink) Import(ctx context.Context, fs []Fetched) error {
	g.batches.Add(1)
	g.mu.Lock()
	stall := g.stall
	g.stall = false
	g.mu.Unlock()
	if stall {
		g.stalled <- fs
		<-g.resume
		// Whatever became of the node meanwhile, it stores the batch
		// now: a holder that froze and wakes up after losing its lock.
		ctx = context.WithoutCancel(ctx)
	}
	return g.Sink.Import(ctx, fs)
}

// startNode opens a Store on url and runs the email channel of mb on it.
func startNode(t *testing.T, url string, mb config.Mailbox) *node {
	t.Helper()
	n := &node{clock: inboxtest.NewClock(), done: make(chan struct{})}
	n.st = inboxtest.Open(t, url, &inbox.Options{Mailboxes: MailboxInfos([]config.Mailbox{mb}),
		LockCheckEvery: 50 * time.Millisecond})
	cfg := config.Defaults()
	cfg.Mailboxes = []config.Mailbox{mb}
	ch, err := New(Options{Store: n.st, Config: cfg, Logger: testLogger(t),
		Ingest: &IngestOptions{Batch: 5, AfterFunc: n.clock.AfterFunc, Rand: func() float64 { return 1 }},
		Worker: WorkerOptions{Tick: make(chan time.Time)}})
	if err != nil {
		t.Fatal(err)
	}
	n.ch = ch
	n.gate = &gatedSink{Sink: ch.ingesters[0].sink, stalled: make(chan []Fetched, 1), resume: make(chan struct{})}
	ch.ingesters[0].sink = n.gate
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() {
		defer close(n.done)
		ch.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.gate.resume:
		default:
			close(n.gate.resume)
		}
		<-n.done
	})
	return n
}

// importedMails returns how many mails the database holds, and how many
// distinct Message-IDs among them.
func importedMails(t *testing.T, st *inbox.Store) (mails, distinct int) {
	t.Helper()
	if err := st.DB().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT header_id) FROM email_messages`).Scan(&mails, &distinct); err != nil {
		t.Fatal(err)
	}
	return mails, distinct
}

// lockHolderPID returns the PostgreSQL backend that holds the worker lock
// name in st's schema, 0 if none.
func lockHolderPID(t *testing.T, st *inbox.Store, name string) int {
	t.Helper()
	var pids []int
	rows, err := st.DB().Query(`SELECT l.pid FROM pg_locks l,
		(SELECT hashtextextended(current_schema() || '/' || $1, 0) AS k) h
		WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
		AND l.classid::bigint = (h.k >> 32) & 4294967295 AND l.objid::bigint = h.k & 4294967295`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if len(pids) > 1 {
		t.Fatalf("lock %s held by %v", name, pids)
	}
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

// TestMailboxTakeover: two nodes on one database run the email channel of
// one mailbox; only the holder of its worker lock fetches. The holder
// freezes in the middle of its first sync with a batch fetched and not
// stored, and loses its lock (on PostgreSQL its lock's session is
// terminated, as PostgreSQL does to a silent holder; on SQLite the node
// stops); the other node takes over at its next try and imports the
// mailbox; the frozen node then wakes and stores its stale batch. Every
// mail is imported exactly once.
func TestMailboxTakeover(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		srv := emailtest.StartIMAP(t, nil)
		mb := srv.Mailbox("support")
		mb.SMTP = config.SMTP{Host: "127.0.0.1", Port: 1, TLS: config.TLSNone}
		const total = 40
		for i := range total {
			srv.Append(t, "", mailText(fmt.Sprint("t", i), 500), time.Now().Add(-time.Hour))
		}
		a := startNode(t, url, mb)
		a.gate.mu.Lock()
		a.gate.stall = true // its first batch
		a.gate.mu.Unlock()
		// a took the lock first: its first batch arrives and stalls.
		stale := inboxtest.Receive(t, a.gate.stalled, "node a's first batch")
		b := startNode(t, url, mb)
		// b finds both locks (mailbox:support and timers) held and waits
		// to try again.
		inboxtest.Eventually(t, "node b to wait for the locks", func() bool { return b.clock.Timers() == 2 })
		b.clock.Advance(inbox.LockRetryEvery)
		inboxtest.Eventually(t, "node b to wait for the locks again", func() bool { return b.clock.Timers() == 2 })
		if n := b.gate.batches.Load(); n != 0 {
			t.Fatalf("node b imported %d batches while node a held the lock", n)
		}

		if a.st.Dialect() == "postgres" {
			pid := lockHolderPID(t, b.st, "mailbox:support")
			if pid == 0 {
				t.Fatal("no one holds the lock of mailbox support")
			}
			if _, err := b.st.DB().Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			inboxtest.Eventually(t, "the lock to be free", func() bool { return lockHolderPID(t, b.st, "mailbox:support") == 0 })
		} else {
			a.stop()
		}
		// On SQLite a's lock is free once its Ingester returned, which
		// waits for the stalled batch: let it go now.
		if a.st.Dialect() == "sqlite" {
			close(a.gate.resume)
			<-a.done
		}
		b.clock.Advance(inbox.LockRetryEvery)
		inboxtest.Eventually(t, "node b to import the mailbox", func() bool {
			mails, _ := importedMails(t, b.st)
			return mails >= total && b.ch.ingesters[0].Idling()
		})
		if a.st.Dialect() == "postgres" {
			// a lost its lock: its job stopped; the frozen batch wakes
			// up after b imported everything.
			close(a.gate.resume)
			inboxtest.Eventually(t, "node a to wait for the lock again", func() bool { return a.clock.Timers() >= 1 })
		}
		if mails, distinct := importedMails(t, b.st); mails != total || distinct != total {
			t.Fatalf("%d mails stored, %d distinct; want %d once each (a's stale batch of %d)", mails, distinct, total, len(stale))
		}
		if cp, err := b.st.IMAPCheckpoint(context.Background(), "support", "INBOX"); err != nil || cp.LastUID != total {
			t.Fatalf("checkpoint %+v, %v; want UID %d", cp, err, total)
		}
		if got := leasesHeld(t, "mailbox:support"); got != 1 {
			t.Fatalf("microchat_worker_leases_held{job=mailbox:support} = %v, want 1 (node b)", got)
		}
		// New mail reaches the new holder only.
		before := a.gate.batches.Load()
		srv.Append(t, "", mailText("new", 500), time.Now())
		inboxtest.Eventually(t, "the new mail", func() bool {
			mails, _ := importedMails(t, b.st)
			return mails == total+1
		})
		if a.gate.batches.Load() != before {
			t.Fatal("node a fetched after losing its lock")
		}
	})
}

// leasesHeld returns microchat_worker_leases_held{job} of this process.
func leasesHeld(t *testing.T, job string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(inbox.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "microchat_worker_leases_held" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "job" && l.GetValue() == job {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no microchat_worker_leases_held{job=%q}", job)
	return 0
}
