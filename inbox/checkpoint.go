package inbox

import (
	"context"
	"database/sql"
	"os"
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
//
// Once the log is idle (a round found it all copied and no frame added
// since the round before) and its file is larger than idleBytes, the
// checkpointer truncates the file (a TRUNCATE checkpoint on its own
// connection, which waits at most 100 ms for the writer and the readers,
// once per idle spell: it holds the write lock meanwhile): a burst leaves
// no log of tens of megabytes behind.
type checkpointer struct {
	db            *sql.DB // its own connection
	w             *sql.DB // the writer's one connection
	walPath       string  // the log's file
	every         time.Duration
	restartFrames int
	idleBytes     int64
	lastFrames    int // the log's frames at the round before
	// idleTried is set once an idle log's truncation was tried, until
	// the log changes: a TRUNCATE holds the write lock while it waits
	// for readers, and one tried every round beside a long reader would
	// starve the writers.
	idleTried bool
	truncates int // TRUNCATEs of an idle log tried (tests)
	stop      chan struct{}
	wg        sync.WaitGroup
	log       func(err error)
	once      sync.Once
	err       error

	afterPassive func() // tests: called between the two checkpoints of a step
}

// sqliteLogLimit is the size in bytes SQLite shrinks its log file back to
// when it starts the log over (PRAGMA journal_size_limit).
const sqliteLogLimit = 64 << 20

// sqliteRestartFrames is how many frames (pages) a checkpoint may leave in
// the log before the checkpointer finishes the copy on the writer's
// connection: SQLite's own checkpoint threshold (wal_autocheckpoint).
const sqliteRestartFrames = 1000

// sqliteIdleLogBytes is the size above which an idle log's file is
// truncated.
const sqliteIdleLogBytes = 4 << 20

func startCheckpointer(db, w *sql.DB, walPath string, every time.Duration, log func(error)) *checkpointer {
	c := &checkpointer{db: db, w: w, walPath: walPath, every: every, restartFrames: sqliteRestartFrames,
		idleBytes: sqliteIdleLogBytes, lastFrames: -1, stop: make(chan struct{}), log: log}
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
// not started over since), another on the writer's; or, when the log is
// idle, a TRUNCATE if its file is larger than idleBytes.
func (c *checkpointer) step() error {
	// Each pass copies what the writer committed during the one before,
	// so the passes shorten and the copy left to the writer is small.
	frames, done, err := c.checkpoint(c.db, "PASSIVE")
	idle := err == nil && frames == done && frames == c.lastFrames
	c.lastFrames = frames
	passes := 1
	for last := frames; err == nil && frames > c.restartFrames && passes < maxPasses; passes++ {
		var next int
		if next, _, err = c.checkpoint(c.db, "PASSIVE"); next-last <= c.restartFrames/4 || next < last {
			break
		}
		last = next
	}
	if c.afterPassive != nil {
		c.afterPassive()
	}
	if idle {
		if st, serr := os.Stat(c.walPath); !c.idleTried && serr == nil && st.Size() > c.idleBytes {
			c.idleTried = true
			c.truncates++
			// Busy (a reader, or a write came): the next idle spell.
			_, _, err = c.checkpoint(c.db, "TRUNCATE")
		}
		return err
	}
	c.idleTried = false
	if err != nil || frames <= c.restartFrames {
		return err
	}
	_, _, err = c.checkpoint(c.w, "PASSIVE")
	return err
}

// maxPasses bounds the checkpointer's own passes in one step.
const maxPasses = 8

// checkpoint runs PRAGMA wal_checkpoint(mode) on db and returns the
// number of frames in the log when it began and how many of them are
// copied (https://sqlite.org/pragma.html#pragma_wal_checkpoint: busy,
// log, checkpointed; busy is 1 when it could not finish, which is no
// error).
func (c *checkpointer) checkpoint(db *sql.DB, mode string) (frames, done int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy int
	err = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &done)
	return frames, done, err
}

// close stops the checkpoints and copies the whole log into the database
// file (the writer has stopped), leaving it empty. Calls after the first
// return its error.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		_, _, c.err = c.checkpoint(c.db, "TRUNCATE")
		if err := c.db.Close(); c.err == nil {
			c.err = err
		}
	})
	return c.err
}
