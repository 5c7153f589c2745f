package inbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// leasesHeld is microchat_worker_leases_held{worker}: 1 while this node
// holds a job's worker lock and runs it (Lead), else 0 (counted up and
// down, so that Stores of one process, in tests, add up). Summed over the
// nodes each worker's series is 1, or 0 for at most the takeover time after
// its holder died. Jobs: "mailbox:<name>" (fetching that mailbox),
// "timers" (queueing continuity digests), "prune" (expired sessions and
// old events). A series exists once its node runs Lead for the job: prune
// on every node (cmd/microchat), mailbox:<name> and timers only on nodes
// with a mailbox configured (channels/email).
var leasesHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "microchat_worker_leases_held",
	Help: "1 while this node holds the worker lock of a job and runs it (mailbox:<name>, timers, prune).",
}, []string{"worker"})

// Worker locks: one node at a time runs each job that must not run twice
// at once, such as fetching one mailbox (issue 14 item 3). A lock has a
// name ("mailbox:support"); on PostgreSQL it is a session-level advisory
// lock (pg_try_advisory_lock) on a connection of its own, outside the
// pool, so that it lasts exactly as long as that connection:
//
//   - A holder that exits or is killed (kill -9) frees it at once: the
//     kernel closes its socket, PostgreSQL ends the session, and the
//     lock goes with it.
//   - A holder whose host vanishes (power, network) frees it when
//     PostgreSQL's TCP keepalives give the silent connection up: the
//     connection sets tcp_keepalives_idle/interval/count to
//     LockKeepAlive, 3 and 3 probes: at most lockServerGone (20 s) after
//     the last thing the holder sent.
//   - The holder pings its connection every LockCheckEvery (5 s), each
//     ping allowed LockCheckEvery; a ping that fails or does not answer
//     makes the Lock Lost, and its job stops at once. A holder cut off
//     from the database therefore knows within 2×LockCheckEvery (10 s) of
//     its last answer, before PostgreSQL can give the lock to another
//     node (20 s). But when PostgreSQL ends the session of a holder it
//     can still reach (pg_terminate_backend, a restart or failover of
//     the database), the lock is free at once and the holder learns it
//     at its next ping: for up to LockCheckEvery (5 s) two nodes may
//     both hold the lock and run its job. Jobs must bear that overlap
//     (a mailbox's: each mail is stored once, by its Message-ID).
//   - Other nodes try again every LockRetryEvery (5 s, Lead), so a lock
//     is taken over within LockRetryEvery after a kill -9 and within
//     lockServerGone + LockRetryEvery (25 s) after its host vanished.
//
// The lock key is a 64-bit hash of the current schema and the name
// (hashtextextended), so that deployments, or tests, in different schemas
// of one database do not share locks. Each held lock costs one PostgreSQL
// connection besides the pool; a node waiting for one opens a connection
// for a moment at each try.
//
// On SQLite (one node) a lock is held in the process, per database file:
// two Stores on one file in one process (tests) still exclude each other.

// LockCheckEvery is how often a held lock's connection is pinged, and how
// long a ping may take (at least 2 s), on PostgreSQL
// (Options.LockCheckEvery overrides it).
const LockCheckEvery = 5 * time.Second

// minPingTimeout is the least time a lock's ping may take, whatever
// Options.LockCheckEvery says: a loaded machine (tests pinging every
// 50 ms) must not lose its locks to its own scheduler.
const minPingTimeout = 2 * time.Second

// LockRetryEvery is how often Lead tries again to take a lock that another
// node holds.
const LockRetryEvery = 5 * time.Second

// LockKeepAlive is the TCP keepalive idle time and probe interval of a lock's
// connection, on both ends; after 3 unanswered probes the connection is
// dead.
const LockKeepAlive = 5 * time.Second

// lockServerGone is how long PostgreSQL keeps the lock of a silent holder:
// idle time plus 3 probe intervals.
const lockServerGone = LockKeepAlive + 3*LockKeepAlive

// Lock is a held worker lock. Lost is closed when it is no longer ours
// (the connection failed or a ping went unanswered: stop the job now);
// Release gives it up (and closes Lost). Both are safe to call from any
// goroutine, Release more than once.
type Lock struct {
	name     string
	pid      uint32
	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	// done is closed once the lock is free.
	done chan struct{}
}

// Name is the lock's name.
func (l *Lock) Name() string { return l.name }

// PID is the PostgreSQL backend process id of the lock's connection (as
// pg_stat_activity and pg_locks show it); 0 on SQLite.
func (l *Lock) PID() uint32 { return l.pid }

// Lost is closed once the lock is not held any more.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up and waits until it is free.
func (l *Lock) Release() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

func (l *Lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// TryLock takes the worker lock name if no one holds it: held is false
// (and the Lock nil) when another node, or another Store of this process
// on the same SQLite file, has it. An error means the database could not
// be asked (ErrUnavailable); try again later.
func (s *Store) TryLock(ctx context.Context, name string) (*Lock, bool, error) {
	if name == "" {
		return nil, false, invalid("name", "is required")
	}
	l := &Lock{name: name, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if s.dialect != dialectPostgres {
		if !sqliteLocks.take(s.sqlitePath, name) {
			return nil, false, nil
		}
		go func() {
			<-l.stop
			sqliteLocks.give(s.sqlitePath, name)
			l.markLost()
			close(l.done)
		}()
		return l, true, nil
	}
	conn, err := s.lockConn(ctx, name)
	if err != nil {
		return nil, false, fmt.Errorf("%w: worker lock %s: %w", ErrUnavailable, name, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))`, name).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("%w: worker lock %s: %w", ErrUnavailable, name, err)
	}
	if !got {
		conn.Close(ctx)
		return nil, false, nil
	}
	l.pid = conn.PgConn().PID()
	every := s.opts.LockCheckEvery
	if every <= 0 {
		every = LockCheckEvery
	}
	go s.checkLock(l, conn, every)
	return l, true, nil
}

// checkLock pings the lock's connection every every until the lock is
// released or a ping fails, then closes the connection, which frees the
// lock in PostgreSQL.
func (s *Store) checkLock(l *Lock, conn *pgx.Conn, every time.Duration) {
	defer close(l.done)
	defer l.markLost()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), every)
		defer cancel()
		conn.Close(ctx)
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(every, minPingTimeout))
		err := conn.Ping(ctx)
		cancel()
		if err != nil {
			s.log.Warn("worker lock lost: its connection failed", "lock", l.name, "err", err)
			return
		}
	}
}

// lockConn opens a connection for the lock name, outside the pool, with
// TCP keepalives of LockKeepAlive on both ends.
func (s *Store) lockConn(ctx context.Context, name string) (*pgx.Conn, error) {
	cfg := s.pgCfg.Copy()
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: LockKeepAlive, Interval: LockKeepAlive, Count: 3}}
	cfg.DialFunc = d.DialContext
	secs := strconv.Itoa(int(LockKeepAlive / time.Second))
	cfg.RuntimeParams["tcp_keepalives_idle"] = secs
	cfg.RuntimeParams["tcp_keepalives_interval"] = secs
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	cfg.RuntimeParams["application_name"] = s.appName("lock " + name)
	// Its statements are few and simple: no statement cache to keep.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

// sqliteLocks are the worker locks held in this process, per SQLite file.
var sqliteLocks = &processLocks{held: map[[2]string]bool{}}

type processLocks struct {
	mu   sync.Mutex
	held map[[2]string]bool
}

func (p *processLocks) take(path, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := [2]string{path, name}
	if p.held[k] {
		return false
	}
	p.held[k] = true
	return true
}

func (p *processLocks) give(path, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held, [2]string{path, name})
}

// Leader runs a job on whichever node holds its worker lock (Lead).
type Leader struct {
	// Name is the lock's name, e.g. "mailbox:support". Required.
	Name string
	// RetryEvery is how often a node that does not hold the lock tries
	// again (default LockRetryEvery). So is a node whose database did not
	// answer.
	RetryEvery time.Duration
	// AfterFunc starts a timer (default time.AfterFunc); tests drive a
	// clock (inboxtest.Clock).
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Held, if set, is called with true once the lock is taken and with
	// false once it is given up or lost, after
	// microchat_worker_leases_held{worker=Name} is set.
	Held func(bool)
}

// Lead runs job whenever this node holds the worker lock l.Name, until ctx
// ends: it tries to take the lock, every l.RetryEvery while another node
// holds it; once it holds it, it runs job with a context that ends when
// ctx does or the lock is lost, and releases the lock when job returns. If
// job returns while ctx is still live (the lock was lost, or the job
// gave up), Lead waits l.RetryEvery and tries again. It returns when ctx
// is done and job has returned.
func (s *Store) Lead(ctx context.Context, l Leader, job func(ctx context.Context)) {
	if l.RetryEvery <= 0 {
		l.RetryEvery = LockRetryEvery
	}
	if l.AfterFunc == nil {
		l.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	leasesHeld.WithLabelValues(l.Name).Add(0)
	for ctx.Err() == nil {
		lock, held, err := s.TryLock(ctx, l.Name)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("worker lock: cannot ask the database; trying again", "lock", l.Name, "err", err, "retry_in", l.RetryEvery)
		case held:
			s.runLocked(ctx, l, lock, job)
		}
		if !sleepOn(ctx, l.AfterFunc, l.RetryEvery) {
			return
		}
	}
}

// runLocked runs job while lock is held, then releases it.
func (s *Store) runLocked(ctx context.Context, l Leader, lock *Lock, job func(ctx context.Context)) {
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-lock.Lost():
			cancel()
		case <-jctx.Done():
		}
	}()
	s.log.Info("worker lock taken: this node runs the job", "lock", l.Name)
	leasesHeld.WithLabelValues(l.Name).Inc()
	if l.Held != nil {
		l.Held(true)
	}
	job(jctx)
	cancel()
	<-stopped
	lost := false
	select {
	case <-lock.Lost():
		lost = true
	default:
	}
	lock.Release()
	leasesHeld.WithLabelValues(l.Name).Dec()
	if l.Held != nil {
		l.Held(false)
	}
	if lost {
		s.log.Warn("worker lock lost: the job stopped", "lock", l.Name)
	} else {
		s.log.Info("worker lock released", "lock", l.Name)
	}
}

// sleepOn waits d on afterFunc's clock; false if ctx ended first.
func sleepOn(ctx context.Context, afterFunc func(time.Duration, func()) func() bool, d time.Duration) bool {
	c := make(chan struct{})
	stop := afterFunc(d, func() { close(c) })
	defer stop()
	select {
	case <-c:
		return true
	case <-ctx.Done():
		return false
	}
}
