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
type checkpointer struct {
	db    *sql.DB
	every time.Duration
	stop  chan struct{}
	wg    sync.WaitGroup
	log   func(err error)
	once  sync.Once
	err   error
}

func startCheckpointer(db *sql.DB, every time.Duration, log func(error)) *checkpointer {
	c := &checkpointer{db: db, every: every, stop: make(chan struct{}), log: log}
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
			if err := c.checkpoint("PASSIVE"); err != nil {
				c.log(err)
			}
		}
	}
}

func (c *checkpointer) checkpoint(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")")
	return err
}

// close stops the checkpoints and copies the whole log into the database
// file (the writer has stopped), leaving it empty. Calls after the first
// return its error.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.err = c.checkpoint("TRUNCATE")
		if err := c.db.Close(); c.err == nil {
			c.err = err
		}
	})
	return c.err
}
