package inbox_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The writer does not checkpoint SQLite's log; the checkpointer copies it
// into the database file while the store runs, and empties it on Close.
func TestSQLiteCheckpoints(t *testing.T) {
	path, s, f, c := sqliteConversation(t, 20*time.Millisecond)
	for i := range 50 {
		f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("message ", i))
	}
	// The database file alone, its log ignored (immutable), fills up.
	inboxtest.Eventually(t, "the database file to hold the 50 messages (the log checkpointed)",
		func() bool { return fileMessages(t, path) == 50 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() != 0 {
		t.Fatalf("the log holds %d bytes after Close, want it emptied", st.Size())
	}
}

// sqliteConversation opens a store in a new SQLite file (path) whose
// checkpointer runs every every, with a conversation of Carol's.
func sqliteConversation(t *testing.T, every time.Duration) (string, *inbox.Store, *fixture, inbox.Conversation) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "microchat.db")
	s := inboxtest.Open(t, "sqlite:"+path, &inbox.Options{CheckpointEvery: every})
	f := &fixture{s: s}
	var err error
	if f.contact, err = s.CreateContact(ctx, inbox.NewContact{Name: "Carol"}); err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	return path, s, f, f.start(t)
}

// fileMessages counts the messages in the database file itself, without
// its write-ahead log; -1 before the table is there.
func fileMessages(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatalf("sql.Open() = %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM messages").Scan(&n); err != nil {
		return -1
	}
	return n
}

// A commit that lands while a checkpoint copies the log (here: frames a
// reader kept it from copying, the reader ending just after) would leave
// the log uncopied at every next write, and SQLite starts the log over
// only at a write that finds it all copied: under a steady load it grew
// without end (2.9 GB in 25 s). The checkpointer copies the rest on the
// writer's connection, so the next write starts the log over.
func TestSQLiteLogStartsOver(t *testing.T) {
	path, s, f, c := sqliteConversation(t, time.Hour)
	f.say(t, c.ID, inbox.AuthorContact, "before the reader")
	rtx := openReader(t, path)
	for i := range 5 {
		f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("beside the reader ", i))
	}
	before := logSequence(t, path)
	if err := s.CheckpointStep(1, 1<<30, func() { rtx.Rollback() }); err != nil {
		t.Fatalf("CheckpointStep() = %v", err)
	}
	f.say(t, c.ID, inbox.AuthorContact, "after the checkpoint")
	if after := logSequence(t, path); after == before {
		t.Fatalf("the log's checkpoint sequence is still %d after a write that followed a checkpoint, want it started over", after)
	}
}

// openReader begins a read transaction on the SQLite file of another
// connection and reads in it, so that it holds its snapshot of the log
// (checkpoints cannot copy past it) until it ends; the connection closes
// with the test.
func openReader(t *testing.T, path string) *sql.Tx {
	t.Helper()
	reader, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	rtx, err := reader.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return rtx
}

// logSequence is the checkpoint sequence number in the header of the
// database's write-ahead log, which SQLite increments each time it starts
// the log over (https://sqlite.org/fileformat2.html#walformat, offset 12).
func logSequence(t *testing.T, path string) uint32 {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	if err != nil || len(b) < 32 {
		t.Fatalf("reading the log's header: %d bytes, %v", len(b), err)
	}
	return binary.BigEndian.Uint32(b[12:16])
}

// A log that a burst grew is truncated once it is idle (all copied, no
// frame added since the round before); journal_size_limit alone only
// cuts it back to 64 MB, and only at a write.
func TestSQLiteIdleLogTruncated(t *testing.T) {
	path, s, f, c := sqliteConversation(t, time.Hour)
	for i := range 20 {
		f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("message ", i))
	}
	logSize := func() int64 {
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := logSize()
	if before == 0 {
		t.Fatal("the log is empty after 20 messages")
	}
	// The first round copies the log; the second finds it idle.
	for round := range 2 {
		if err := s.CheckpointStep(1<<30, 1, nil); err != nil {
			t.Fatalf("CheckpointStep() round %d = %v", round, err)
		}
		if got := logSize(); round == 0 && got != before {
			t.Fatalf("the log is %d bytes after a round that found it busy, want %d as it was", got, before)
		}
	}
	if got := logSize(); got != 0 {
		t.Fatalf("the idle log is %d bytes, want it truncated (it was %d)", got, before)
	}
	// Writes go on as before.
	f.say(t, c.ID, inbox.AuthorContact, "after the truncation")
	if got := fileMessages(t, path); got < 20 {
		t.Fatalf("the database file holds %d messages, want the 20 copied before", got)
	}
}

// A TRUNCATE holds the write lock while it waits for the readers: beside
// a long reader it is tried once per idle spell, not at every round,
// which would starve the writers.
func TestSQLiteIdleTruncateOnce(t *testing.T) {
	path, s, f, c := sqliteConversation(t, time.Hour)
	f.say(t, c.ID, inbox.AuthorContact, "a first message")
	rtx := openReader(t, path)
	defer rtx.Rollback()
	for round := range 4 {
		if err := s.CheckpointStep(1<<30, 1, nil); err != nil {
			t.Fatalf("CheckpointStep() round %d = %v", round, err)
		}
	}
	if got := s.CheckpointTruncates(); got != 1 {
		t.Fatalf("%d truncations tried in one idle spell beside a reader, want 1", got)
	}
}
