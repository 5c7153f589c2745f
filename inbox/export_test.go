package inbox

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Hooks for the external tests of migrations.

// MigrationIDs returns the ids of all migrations, oldest first.
func MigrationIDs() []string {
	var ids []string
	for _, m := range migrations {
		ids = append(ids, m.ID)
	}
	return ids
}

// OpenBare opens a store without migrating or starting the appender.
func OpenBare(url string) (*Store, error) {
	s := &Store{opts: Options{MaxOpenConns: 2, CheckpointEvery: time.Second}, log: slog.Default()}
	if strings.HasPrefix(url, "sqlite:") {
		return s, s.openSQLite(url)
	}
	return s, s.openPostgres(url)
}

func (s *Store) MigrateTo(id string) error { return s.migrateTo(id) }
func (s *Store) Gorm() *gorm.DB            { return s.db }
func (s *Store) CloseBare() error          { return s.closeDB() }

// CheckpointStep runs one round of the SQLite checkpointer, whose log
// starts over at the next write once more than restart frames are in it,
// and whose idle log's file is truncated when larger than idleBytes;
// between its checkpoints it calls between.
func (s *Store) CheckpointStep(restart int, idleBytes int64, between func()) error {
	c := s.checkpoints
	c.restartFrames, c.idleBytes, c.afterPassive = restart, idleBytes, between
	return c.step()
}

// CheckpointTruncates is how many TRUNCATEs of an idle log the
// checkpointer tried.
func (s *Store) CheckpointTruncates() int { return s.checkpoints.truncates }

// SetBeforeCommit makes every write transaction, the appender's included,
// call f last and roll back if it fails: tests check that nothing of a
// rolled-back transaction is published. Set it while nothing writes.
func (s *Store) SetBeforeCommit(f func() error) { s.beforeCommit = f }

// SetAfterDecide makes the appender call f inside each transaction that
// stores agent replies, once their channels are decided and before they
// are stored: tests change what the decision read (the contact's
// presence) there. Set it while nothing writes.
func (s *Store) SetAfterDecide(f func()) { s.afterDecide = f }

// SetBetweenLocks makes IngestEmail call f inside its transaction when a
// mail proves its contact's address, between the two rows it locks (the
// contact's, then the conversation's): tests run a concurrent write of
// the same rows there. Set it while nothing writes.
func (s *Store) SetBetweenLocks(f func()) { s.betweenLocks = f }

// ReportQueries returns the operator report's queries by name, in the
// dialect of pg, for the test of their plans.
func ReportQueries(pg bool) map[string]string {
	return map[string]string{"joins": reportJoins(pg), "scores": reportScores(pg), "comments": reportComments,
		"medians": reportMedians(pg)}
}

// SetSearchWalk makes search walk first conversations first, then go on
// walking while at least dense of them matched, else ask the index: (1,
// 2) asks the index after one conversation, (1000000, 0) only walks.
// Indexed walks by asking the index about each chunk (PostgreSQL).
// SetSearchWalk(0, 0, false) restores the store's own choice.
func (s *Store) SetSearchWalk(first int, dense float64, indexed bool) {
	s.searchTuning = searchTuning{first: first, dense: dense, indexed: indexed}
}

// BusListenerPID returns the backend process id of the bus's listening
// connection, 0 while there is none or without the bus.
func (s *Store) BusListenerPID() uint32 {
	if s.bus == nil {
		return 0
	}
	return s.bus.pid.Load()
}

// SetBusBeforeReconnect makes the bus call f after it lost its listening
// connection and before it listens again.
func (s *Store) SetBusBeforeReconnect(f func()) { s.bus.beforeReconnect.Store(&f) }

// BusUnsent returns how many notifications (transient events,
// revocations) wait in the bus's queue or are being sent.
func (s *Store) BusUnsent() int64 { return s.bus.unsent.Load() }

// BusChannel returns the name of the bus's events channel.
func (s *Store) BusChannel() string { return s.bus.evCh }

// LockConnSettings opens a worker lock's connection for name and returns
// its session's keepalive settings and application_name.
func (s *Store) LockConnSettings(ctx context.Context, name string) (map[string]string, error) {
	conn, err := s.lockConn(ctx, name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	out := map[string]string{}
	for _, k := range []string{"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "application_name"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", k).Scan(&v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// SetBeforeUses makes each write of visitor token uses call f with the
// number of uses it carries, first. Set it while nothing writes.
func (s *Store) SetBeforeUses(f func(n int)) { s.beforeUses = f }

// QueuedUses is how many visitor token uses wait for a write.
func (s *Store) QueuedUses() int {
	s.uses.mu.Lock()
	defer s.uses.mu.Unlock()
	return len(s.uses.queue)
}
