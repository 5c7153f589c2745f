package inbox_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// twoNodes opens two Stores on one database (two nodes), whose held locks
// are checked every 50 ms.
func twoLockNodes(t *testing.T, url string) (a, b *inbox.Store) {
	t.Helper()
	o := &inbox.Options{LockCheckEvery: 50 * time.Millisecond}
	return inboxtest.Open(t, url, o), inboxtest.Open(t, url, o)
}

// TestTryLock: one node at a time holds a lock; a released lock is free
// for the other; locks of other names are independent.
func TestTryLock(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		a, b := twoLockNodes(t, url)
		la, held, err := a.TryLock(ctx, "mailbox:support")
		if err != nil || !held {
			t.Fatalf("a.TryLock = %v, %v; want held", held, err)
		}
		if _, held, err := b.TryLock(ctx, "mailbox:support"); err != nil || held {
			t.Fatalf("b.TryLock while a holds it = %v, %v; want not held", held, err)
		}
		if _, held, err := a.TryLock(ctx, "mailbox:support"); err != nil || held {
			t.Fatalf("a.TryLock again = %v, %v; want not held (one holder per name)", held, err)
		}
		lo, held, err := b.TryLock(ctx, "mailbox:sales")
		if err != nil || !held {
			t.Fatalf("b.TryLock(other name) = %v, %v; want held", held, err)
		}
		defer lo.Release()
		select {
		case <-la.Lost():
			t.Fatal("lock lost while held")
		default:
		}
		la.Release()
		la.Release() // twice is fine
		<-la.Lost()
		lb, held, err := b.TryLock(ctx, "mailbox:support")
		if err != nil || !held {
			t.Fatalf("b.TryLock after release = %v, %v; want held", held, err)
		}
		lb.Release()
	})
}

// TestLockLostWithConnection: when the lock's PostgreSQL session ends (as
// when PostgreSQL gives up a silent holder's connection), the holder
// sees Lost and the other node can take the lock.
func TestLockLostWithConnection(t *testing.T) {
	url := inboxtest.PostgresURL(t)
	a, b := twoLockNodes(t, url)
	la, held, err := a.TryLock(ctx, "timers")
	if err != nil || !held || la.PID() == 0 {
		t.Fatalf("a.TryLock = %v, %v (pid %d)", held, err, la.PID())
	}
	if err := b.Gorm().Exec(`SELECT pg_terminate_backend(?)`, la.PID()).Error; err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	case <-time.After(inboxtest.Patience):
		t.Fatal("not Lost after the lock's session was terminated")
	}
	var lb *inbox.Lock
	inboxtest.Eventually(t, "b takes the lock", func() bool {
		l, held, err := b.TryLock(ctx, "timers")
		if err != nil {
			t.Fatal(err)
		}
		lb = l
		return held
	})
	la.Release()
	if _, held, _ := a.TryLock(ctx, "timers"); held {
		t.Fatal("a took the lock b holds")
	}
	lb.Release()
}

// TestLockKeepAlive: the lock's session tells PostgreSQL to give a silent
// client up after LockKeepAlive and 3 probes, and names itself and its
// node.
func TestLockKeepAlive(t *testing.T) {
	url := inboxtest.PostgresURL(t)
	a := inboxtest.Open(t, url, &inbox.Options{NodeID: "node-a"})
	got, err := a.LockConnSettings(ctx, "mailbox:support")
	if err != nil {
		t.Fatal(err)
	}
	secs := strconv.Itoa(int(inbox.LockKeepAlive / time.Second))
	want := map[string]string{"tcp_keepalives_idle": secs, "tcp_keepalives_interval": secs, "tcp_keepalives_count": "3",
		"application_name": "microchat node-a lock mailbox:support"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestLead: two nodes Lead the same job; exactly one runs it at a time,
// and when the holder's job ends (its node stops) the other takes over
// on its next try, driven by a clock.
func TestLead(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		a, b := twoLockNodes(t, url)
		var running atomic.Int32
		var overlap atomic.Bool
		type node struct {
			name   string
			cancel context.CancelFunc
			clock  *inboxtest.Clock
			held   atomic.Bool
			jobs   chan string
			done   chan struct{}
		}
		start := func(s *inbox.Store, name string) *node {
			n := &node{name: name, clock: inboxtest.NewClock(), jobs: make(chan string, 4), done: make(chan struct{})}
			cctx, cancel := context.WithCancel(ctx)
			n.cancel = cancel
			go func() {
				defer close(n.done)
				s.Lead(cctx, inbox.Leader{Name: "mailbox:support", AfterFunc: n.clock.AfterFunc,
					Held: func(h bool) { n.held.Store(h) }}, func(jctx context.Context) {
					if running.Add(1) > 1 {
						overlap.Store(true)
					}
					n.jobs <- name
					<-jctx.Done()
					running.Add(-1)
				})
			}()
			return n
		}
		na := start(a, "a")
		if got := inboxtest.Receive(t, na.jobs, "a's job"); got != "a" {
			t.Fatalf("job ran on %s", got)
		}
		nb := start(b, "b")
		// b tries, finds the lock held, and waits for its clock.
		inboxtest.Eventually(t, "b waits to try again", func() bool { return nb.clock.Timers() == 1 })
		nb.clock.Advance(inbox.LockRetryEvery)
		inboxtest.Eventually(t, "b waits to try again", func() bool { return nb.clock.Timers() == 1 })
		select {
		case j := <-nb.jobs:
			t.Fatalf("b ran the job (%s) while a holds the lock", j)
		default:
		}
		if !na.held.Load() || nb.held.Load() {
			t.Fatalf("held: a %v, b %v", na.held.Load(), nb.held.Load())
		}
		na.cancel() // node a stops
		<-na.done
		if na.held.Load() {
			t.Fatal("a still says it holds the lock")
		}
		nb.clock.Advance(inbox.LockRetryEvery)
		inboxtest.Receive(t, nb.jobs, "b's job once a stopped")
		if !nb.held.Load() {
			t.Fatal("b does not say it holds the lock")
		}
		nb.cancel()
		<-nb.done
		if overlap.Load() {
			t.Fatal("the job ran on both nodes at once")
		}
	})
}

// TestLeadLostStopsJob: a job whose lock is lost is stopped at once, and
// its node tries again later.
func TestLeadLostStopsJob(t *testing.T) {
	url := inboxtest.PostgresURL(t)
	a, b := twoLockNodes(t, url)
	// application_name finds the lock's backend: unique among the tests
	// that share the server.
	name := "lost-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	clock := inboxtest.NewClock()
	started := make(chan struct{}, 2)
	stopped := make(chan struct{}, 2)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Lead(cctx, inbox.Leader{Name: name, AfterFunc: clock.AfterFunc}, func(jctx context.Context) {
			started <- struct{}{}
			<-jctx.Done()
			stopped <- struct{}{}
		})
	}()
	inboxtest.Receive(t, started, "the job starts")
	var pid int
	if err := b.Gorm().Raw(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE ?`, "% lock "+name).Scan(&pid).Error; err != nil || pid == 0 {
		t.Fatalf("lock's backend: %d, %v", pid, err)
	}
	if err := b.Gorm().Exec(`SELECT pg_terminate_backend(?)`, pid).Error; err != nil {
		t.Fatal(err)
	}
	inboxtest.Receive(t, stopped, "the job stops once the lock is lost")
	inboxtest.Eventually(t, "a waits to try again", func() bool { return clock.Timers() == 1 })
	clock.Advance(inbox.LockRetryEvery)
	inboxtest.Receive(t, started, "the job starts again once the lock is taken again")
	cancel()
	<-done
}
