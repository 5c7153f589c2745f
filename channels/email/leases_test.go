package email

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"slices"
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
		// And a holds "timers" before b starts: else b may take it (a's
		// try had not run yet on a loaded machine) and wait for one lock
		// only.
		inboxtest.Eventually(t, "node a to hold the timers lock", func() bool { return a.ch.timers.Load() })
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
			t.Fatalf("microchat_worker_leases_held{worker=mailbox:support} = %v, want 1 (node b)", got)
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

// leasesHeld returns microchat_worker_leases_held{worker} of this process.
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
				if l.GetName() == "worker" && l.GetValue() == job {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no microchat_worker_leases_held{worker=%q}", job)
	return 0
}

// sendingNode is a node's outbox Worker on its own Store, the Stores of a
// test sharing one database and one clock.
type sendingNode struct {
	st     *inbox.Store
	w      *Worker
	ob     *killableOutbox
	tick   chan time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

// killableOutbox is a node's outbox that dies on kill, as with kill -9:
// from then on it claims nothing and records no outcome.
type killableOutbox struct {
	Outbox
	dead atomic.Bool
}

func (k *killableOutbox) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]inbox.OutboundEmail, error) {
	if k.dead.Load() {
		return nil, nil
	}
	return k.Outbox.ClaimOutbox(ctx, limit, lease)
}
func (k *killableOutbox) OutboxSent(ctx context.Context, id int64, raw []byte) error {
	if k.dead.Load() {
		return nil
	}
	return k.Outbox.OutboxSent(ctx, id, raw)
}
func (k *killableOutbox) OutboxRetry(ctx context.Context, id int64, at time.Time, reason string) error {
	if k.dead.Load() {
		return nil
	}
	return k.Outbox.OutboxRetry(ctx, id, at, reason)
}
func (k *killableOutbox) OutboxFailed(ctx context.Context, id int64, reason string) error {
	if k.dead.Load() {
		return nil
	}
	return k.Outbox.OutboxFailed(ctx, id, reason)
}

// outboxLease is the lease of the sending tests' Workers.
const outboxLease = time.Minute

// startSending opens a Store on url (with the email channel, so that
// replies may go by email) and runs an outbox Worker on it.
func startSending(t *testing.T, url string, clock *inboxtest.Clock, mb config.Mailbox, srv *emailtest.SMTPServer) *sendingNode {
	t.Helper()
	n := &sendingNode{tick: make(chan time.Time), done: make(chan struct{})}
	n.st = inboxtest.Open(t, url, &inbox.Options{Now: clock.Now, Mailboxes: MailboxInfos([]config.Mailbox{mb})})
	cfg := config.Defaults()
	cfg.Mailboxes = []config.Mailbox{mb}
	ch, err := New(Options{Store: n.st, Config: cfg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.st.SetChannels(ch); err != nil {
		t.Fatal(err)
	}
	n.ob = &killableOutbox{Outbox: n.st}
	n.w = NewWorker(WorkerOptions{Outbox: n.ob, Mailboxes: cfg.Mailboxes, SMTP: smtpOptions(srv), Tick: n.tick,
		Now: clock.Now, Rand: func() float64 { return 0.5 }, Logger: testLogger(t), Lease: outboxLease,
		ShutdownGrace: time.Nanosecond})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.done)
		n.w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-n.done
	})
	return n
}

// replyByEmail stores an agent's reply by email to a new contact through
// st and returns the conversation.
func replyByEmail(t *testing.T, st *inbox.Store, agentID int64, i int) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := st.CreateContact(ctx, inbox.NewContact{Name: fmt.Sprint("Customer ", i), Email: fmt.Sprintf("c%d@customer.test", i)})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := st.StartConversation(ctx, c.ID, inbox.ChannelEmail, "Order")
	if err != nil {
		t.Fatal(err)
	}
	m, d, _, err := st.AddReply(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &agentID,
		Channel: inbox.ChannelEmail, Text: fmt.Sprint("Reply ", i)})
	if err != nil || d.Channel != inbox.ChannelEmail || m.State != inbox.StateQueued {
		t.Fatalf("AddReply = %+v, %+v, %v; want by email, queued", m, d, err)
	}
	return conv.ID
}

// outboxStates returns how many outbox rows are in each state.
func outboxStates(t *testing.T, st *inbox.Store) map[string]int {
	t.Helper()
	rows, err := st.DB().Query(`SELECT state, COUNT(*) FROM email_outbox GROUP BY state`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	return out
}

// messageIDs returns the Message-ID of each mail, in order.
func messageIDsOf(t *testing.T, mails []emailtest.Mail) []string {
	t.Helper()
	var ids []string
	for _, m := range mails {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.Header.Get("Message-ID"))
	}
	return ids
}

// twoSendingNodes starts an SMTP server and two sending nodes on url, on
// one clock, and creates an agent.
func twoSendingNodes(t *testing.T, url string) (srv *emailtest.SMTPServer, clock *inboxtest.Clock, a, b *sendingNode, agentID int64) {
	t.Helper()
	srv = startServer(t)
	mb := mailboxOn(srv, config.TLSStartTLS, "agent", "secret")
	clock = inboxtest.NewClock()
	a = startSending(t, url, clock, mb, srv)
	b = startSending(t, url, clock, mb, srv)
	agent, err := a.st.CreateAgent(context.Background(), inbox.NewAgent{Email: "alice@example.com", Name: "Alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return srv, clock, a, b, agent.ID
}

// TestOutboxTwoNodes: two nodes on one database, each with its outbox
// Worker, and replies written through either: every mail is sent once,
// whichever node wrote the reply and whichever claims it.
func TestOutboxTwoNodes(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		srv, clock, a, b, agentID := twoSendingNodes(t, url)
		const total = 24
		for i := range total {
			st := a.st
			if i%2 == 1 {
				st = b.st
			}
			replyByEmail(t, st, agentID, i)
			// Both wake, as after a commit on either node each would
			// at its next tick.
			a.w.Wake()
			b.w.Wake()
		}
		mails := srv.WaitMails(total, inboxtest.Patience)
		inboxtest.Eventually(t, "every row sent", func() bool { return outboxStates(t, a.st)["sent"] == total })
		// More ticks on both nodes claim nothing more.
		for range 3 {
			a.tick <- clock.Now()
			b.tick <- clock.Now()
		}
		a.tick <- clock.Now() // the previous tick's claim is done
		b.tick <- clock.Now()
		mails = srv.Mails()
		ids := messageIDsOf(t, mails)
		slices.Sort(ids)
		if len(mails) != total || len(slices.Compact(ids)) != total {
			t.Fatalf("%d mails sent with %d distinct Message-IDs; want %d once each", len(mails), len(slices.Compact(ids)), total)
		}
	})
}

// TestOutboxNodeKilledMidSend: the node sending a reply dies after the
// final dot of DATA, before it records the outcome (kill -9). Once the
// row's lease expires the other node sends it again, with the same
// Message-ID: if the server had accepted the first, the recipient has
// it twice (the documented duplicate), else once; never zero, never
// three times.
func TestOutboxNodeKilledMidSend(t *testing.T) {
	for _, accepted := range []bool{true, false} {
		t.Run(fmt.Sprint("accepted=", accepted), func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) {
				srv, clock, a, b, agentID := twoSendingNodes(t, url)
				b.ob.dead.Store(true) // b claims nothing until a is gone
				srv.Hold()
				replyByEmail(t, a.st, agentID, 1)
				a.w.Wake()
				inboxtest.Eventually(t, "a's DATA sent", func() bool { return srv.Held() == 1 })
				a.ob.dead.Store(true) // kill -9: nothing more is recorded
				a.cancel()
				<-a.done
				if !accepted {
					srv.Script(emailtest.StageData, emailtest.Reply{Code: 421, Enhanced: [3]int{4, 3, 0}, Message: "closing"})
				}
				srv.Release()
				b.ob.dead.Store(false)
				b.tick <- clock.Now()
				b.tick <- clock.Now()
				if got := outboxStates(t, b.st); got["sending"] != 1 {
					t.Fatalf("outbox %v before the lease expired; want the row still sending", got)
				}
				clock.Advance(outboxLease + time.Second)
				b.tick <- clock.Now()
				want := 1
				if accepted {
					want = 2
				}
				mails := srv.WaitMails(want, inboxtest.Patience)
				inboxtest.Eventually(t, "the row sent", func() bool { return outboxStates(t, b.st)["sent"] == 1 })
				b.tick <- clock.Now()
				b.tick <- clock.Now()
				mails = srv.Mails()
				ids := messageIDsOf(t, mails)
				if len(mails) != want || len(slices.Compact(ids)) != 1 {
					t.Fatalf("%d mails with Message-IDs %v; want %d, one Message-ID", len(mails), ids, want)
				}
			})
		})
	}
}
