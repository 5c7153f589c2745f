package inbox_test

import (
	"context"
	"database/sql"
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
	path := filepath.Join(t.TempDir(), "microchat.db")
	s := inboxtest.Open(t, "sqlite:"+path, &inbox.Options{CheckpointEvery: 20 * time.Millisecond})
	f := &fixture{s: s}
	var err error
	if f.contact, err = s.CreateContact(ctx, inbox.NewContact{Name: "Carol"}); err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	c := f.start(t)
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
