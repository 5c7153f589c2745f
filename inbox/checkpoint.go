package inbox

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointer copies SQLite's write-ahead log into the database file from
// a connection of its own, so that the single writer never does it: run
// by the writer after a commit (SQLite's default, every 1,000 pages), a
// checkpoint took a tenth of the server's CPU under load on the one
// goroutine that every message waits for. A PASSIVE checkpoint runs beside
// the writer and the readers and copies what it can.
//
// SQLite starts the log over from its beginning only when a write
// transaction begins with every frame of the log already copied
// (https://sqlite.org/wal.html, "Avoiding Excessively Large WAL Files").
// Under a steady load the writer commits while each PASSIVE checkpoint
// runs, so that never happens and the log grew without end: 2.9 GB after
// 25 s of 8,000 messages/s, every commit appending to a longer file. So
// when the log holds more than restartFrames frames (it has not started
// over since the last round), the checkpointer copies the rest through
// the writer's own connection,
// between two of its transactions, where no commit can come between the
// copy and the next write: that write starts the log over, and
// journal_size_limit (sqliteLogLimit) shrinks the file back.
type checkpointer struct {
	db            *sql.DB // its own connection
	w             *sql.DB // the writer's one connection
	every         time.Duration
	restartFrames int
	stop          chan struct{}
	wg            sync.WaitGroup
	log           func(err error)
	once          sync.Once
	err           error

	afterPassive func() // tests: called between the two checkpoints of a step
}

// sqliteLogLimit is the size in bytes SQLite shrinks its log file back to
// when it starts the log over (PRAGMA journal_size_limit).
const sqliteLogLimit = 64 << 20

// sqliteRestartFrames is how many frames (pages) a checkpoint may leave in
// the log before the checkpointer finishes the copy on the writer's
// connection: SQLite's own checkpoint threshold (wal_autocheckpoint).
const sqliteRestartFrames = 1000

func startCheckpointer(db, w *sql.DB, every time.Duration, restartFrames int, log func(error)) *checkpointer {
	c := &checkpointer{db: db, w: w, every: every, restartFrames: restartFrames, stop: make(chan struct{}), log: log}
	c.wg.Go(c.run)
	return c
}

func (c *checkpointer) run() {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if err := c.step(); err != nil {
				c.log(err)
			}
		}
	}
}

// step is one round: a PASSIVE checkpoint on the checkpointer's
// connection, then, if the log held more than restartFrames frames (it has
// not started over since), another on the writer's.
func (c *checkpointer) step() error {
	// Each pass copies what the writer committed during the one before,
	// so the passes shorten and the copy left to the writer is small.
	frames, err := c.checkpoint(c.db, "PASSIVE")
	passes := 1
	for last := frames; err == nil && frames > c.restartFrames && passes < maxPasses; passes++ {
		var next int
		if next, err = c.checkpoint(c.db, "PASSIVE"); next-last <= c.restartFrames/4 || next < last {
			break
		}
		last = next
	}
	if c.afterPassive != nil {
		c.afterPassive()
	}
	if err != nil || frames <= c.restartFrames {
		return err
	}
	_, err = c.checkpoint(c.w, "PASSIVE")
	return err
}

// maxPasses bounds the checkpointer's own passes in one step.
const maxPasses = 8

// checkpoint runs PRAGMA wal_checkpoint(mode) on db and returns the
// number of frames in the log when it began (https://sqlite.org/pragma.html#pragma_wal_checkpoint:
// busy, log, checkpointed).
func (c *checkpointer) checkpoint(db *sql.DB, mode string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, frames, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &done); err != nil {
		return 0, err
	}
	return frames, nil
}

// close stops the checkpoints and copies the whole log into the database
// file (the writer has stopped), leaving it empty. Calls after the first
// return its error.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		_, c.err = c.checkpoint(c.db, "TRUNCATE")
		if err := c.db.Close(); c.err == nil {
			c.err = err
		}
	})
	return c.err
}
