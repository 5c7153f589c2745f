package email

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// fakeStore is the database behind fakeSinks: a record of Message-IDs
// that dedupes as the real store does, and the checkpoints.
type fakeStore struct {
	mu sync.Mutex
	// stored counts how often each Message-ID was stored (1, or a bug).
	stored map[string]int
	// offered counts the successful Import calls by Message-ID,
	// duplicates included.
	offered map[string]int
	// attempts counts every Import call by Message-ID, failed ones too.
	attempts map[string]int
	// imports are the successful Import calls, in order.
	imports     []Fetched
	checkpoints map[string]inbox.IMAPCheckpoint
	// belowCheckpoint records mail offered at or below the checkpoint of
	// its UIDVALIDITY: refetched though the checkpoint said it was done.
	belowCheckpoint []string
	// truncated records mail offered with fewer bytes than its
	// RFC822.SIZE: a body cut short taken for a whole one.
	truncated []string
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		stored:      map[string]int{},
		offered:     map[string]int{},
		attempts:    map[string]int{},
		checkpoints: map[string]inbox.IMAPCheckpoint{},
	}
}

// fakeSink is one fetcher's view of a fakeStore. fail, when set, decides
// whether an Import fails (the database is down).
type fakeSink struct {
	st   *fakeStore
	mu   sync.Mutex
	fail func(f Fetched, messageID string) error
}

func (st *fakeStore) sink() *fakeSink { return &fakeSink{st: st} }

func (s *fakeSink) IMAPCheckpoint(_ context.Context, mailbox, folder string) (inbox.IMAPCheckpoint, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.checkpoints[mailbox+"/"+folder], nil
}

func (s *fakeSink) SaveIMAPCheckpoint(_ context.Context, mailbox, folder string, cp inbox.IMAPCheckpoint) error {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.advance(mailbox+"/"+folder, cp)
	return nil
}

// advance moves a checkpoint as the store must: never back within a
// UIDVALIDITY.
func (st *fakeStore) advance(key string, cp inbox.IMAPCheckpoint) {
	old := st.checkpoints[key]
	if old.UIDValidity != cp.UIDValidity || cp.LastUID > old.LastUID {
		st.checkpoints[key] = cp
	}
}

// Import stores the mails one by one, as a store with a transaction per
// mail would: when fail fails one, those before it are stored.
func (s *fakeSink) Import(ctx context.Context, fs []Fetched) error {
	for _, f := range fs {
		if err := s.importOne(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeSink) importOne(_ context.Context, f Fetched) error {
	id := messageID(f.Raw)
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	s.st.mu.Lock()
	s.st.attempts[id]++
	s.st.mu.Unlock()
	if fail != nil {
		if err := fail(f, id); err != nil {
			return err
		}
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	key := f.Mailbox + "/" + f.Folder
	if cp := s.st.checkpoints[key]; cp.UIDValidity == f.UIDValidity && f.UID <= cp.LastUID {
		s.st.belowCheckpoint = append(s.st.belowCheckpoint, id)
	}
	if !f.TooLarge && int64(len(f.Raw)) != f.Size {
		s.st.truncated = append(s.st.truncated, fmt.Sprintf("%s: %d of %d bytes", id, len(f.Raw), f.Size))
	}
	s.st.offered[id]++
	if s.st.stored[id] == 0 || id == "" {
		s.st.stored[id]++
	}
	s.st.imports = append(s.st.imports, f)
	s.st.advance(key, inbox.IMAPCheckpoint{UIDValidity: f.UIDValidity, LastUID: f.UID})
	return nil
}

func (s *fakeSink) setFail(fail func(f Fetched, messageID string) error) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// messageID is the Message-ID of raw without brackets.
func messageID(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return strings.Trim(m.Header.Get("Message-Id"), "<>")
}

// storedIDs returns the Message-IDs stored, sorted.
func (st *fakeStore) storedIDs() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ids []string
	for id := range st.stored {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (st *fakeStore) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.stored)
}

func (st *fakeStore) checkpoint(mailbox string) inbox.IMAPCheckpoint {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.checkpoints[mailbox+"/INBOX"]
}

// checkOnce fails the test unless every Message-ID in ids was stored
// exactly once, and nothing else.
func (st *fakeStore) checkOnce(t *testing.T, ids []string) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, id := range ids {
		if st.stored[id] != 1 {
			t.Errorf("%s stored %d times, want once", id, st.stored[id])
		}
	}
	if len(st.truncated) > 0 {
		t.Errorf("mail offered truncated: %v", st.truncated)
	}
	if len(st.stored) != len(ids) {
		var got []string
		for id := range st.stored {
			got = append(got, id)
		}
		slices.Sort(got)
		t.Errorf("stored %v, want %v", got, ids)
	}
}

// mailText returns a mail with Message-ID <id@test> and a body of about
// size bytes.
func mailText(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Customer <customer@example.org>\r\nTo: support@example.com\r\nSubject: Question %s\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\nMessage-ID: <%s@test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", id, id)
	line := "Hello, I have a question about my order, which has not arrived yet.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// harness runs one Ingester against a test IMAP server, on a test clock.
type harness struct {
	t     *testing.T
	srv   *emailtest.IMAPServer
	clock *inboxtest.Clock
	store *fakeStore
	sink  *fakeSink
	g     *Ingester
	m     *Metrics
	mb    config.Mailbox
	opts  IngestOptions
	stop  func()
}

func newHarness(t *testing.T, o *emailtest.IMAPOptions) *harness {
	h := &harness{t: t, srv: emailtest.StartIMAP(t, o), clock: inboxtest.NewClock(), store: newFakeStore(), m: NewMetrics()}
	h.sink = h.store.sink()
	h.mb = h.srv.Mailbox("support")
	h.opts = IngestOptions{
		Logger:    testLogger(t),
		Metrics:   h.m,
		TLSConfig: h.srv.ClientTLS,
		Now:       h.clock.Now,
		AfterFunc: h.clock.AfterFunc,
		Rand:      func() float64 { return 1 }, // the whole backoff, no jitter
	}
	return h
}

// testLogger logs to the test's output until it ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// append adds a mail received age before the test clock's now.
func (h *harness) append(id string, age time.Duration) uint32 {
	return h.srv.Append(h.t, "", mailText(id, 1000), h.clock.Now().Add(-age))
}

// start runs a new Ingester with the harness's sink until the test ends.
func (h *harness) start() *Ingester {
	return h.startWith(h.sink)
}

func (h *harness) startWith(sink Sink) *Ingester {
	g := NewIngester(h.mb, sink, &h.opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		g.Run(ctx)
		close(done)
	}()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(inboxtest.Patience):
			h.t.Errorf("Run did not return within %v of its context's end", inboxtest.Patience)
		}
	})
	if h.g == nil {
		h.g = g
	}
	h.stop = cancel
	return g
}

// backingOff reports whether g is waiting to reconnect: not idling, with
// one timer pending (the session's timers are stopped when it ends).
func (h *harness) backingOff(g *Ingester) bool {
	return !g.Idling() && h.clock.Timers() == 1
}

// waitFor waits for cond, moving the clock through the backoffs of the
// Ingesters on the way.
func (h *harness) waitFor(what string, cond func() bool, gs ...*Ingester) {
	h.t.Helper()
	if len(gs) == 0 {
		gs = []*Ingester{h.g}
	}
	inboxtest.Eventually(h.t, what, func() bool {
		if cond() {
			return true
		}
		for _, g := range gs {
			if h.backingOff(g) {
				h.clock.Advance(5 * time.Minute)
			}
		}
		return false
	})
}

// expectBackoff checks that the Ingester waits exactly d before it
// reconnects, and lets it reconnect.
func (h *harness) expectBackoff(d time.Duration) {
	h.t.Helper()
	inboxtest.Eventually(h.t, "the Ingester to back off", func() bool { return h.backingOff(h.g) })
	accepted := h.srv.Accepted()
	h.clock.Advance(d - time.Millisecond)
	if h.clock.Timers() != 1 {
		h.t.Fatalf("the backoff ended before %v", d)
	}
	h.clock.Advance(time.Millisecond)
	inboxtest.Eventually(h.t, "a new connection", func() bool { return h.srv.Accepted() > accepted })
}

func (h *harness) idle(what string) {
	h.t.Helper()
	h.waitFor(what, h.g.Idling)
}

// TestFirstSync checks how far back a first sync reaches (import_since,
// by INTERNALDATE), that new mail then arrives through IDLE without any
// poll, and that the mail on the server is left as it was but for the
// keyword.
func TestFirstSync(t *testing.T) {
	tests := []struct {
		since config.Lookback
		want  []string
	}{
		{config.Lookback{}, []string{"d1", "h1", "new"}}, // unset: 14 days
		{config.LookbackOf(config.DefaultImportSince), []string{"d1", "h1", "new"}},
		{config.LookbackOf(36 * time.Hour), []string{"h1", "new"}},
		{config.LookbackAll, []string{"d1", "d15", "d30", "h1", "new"}},
		{config.LookbackOf(0), []string{"new"}},
	}
	for _, tt := range tests {
		t.Run(cmp.Or(tt.since.String(), "unset"), func(t *testing.T) {
			h := newHarness(t, nil)
			h.mb.ImportSince = tt.since
			h.append("d30", 30*24*time.Hour)
			h.append("d15", 15*24*time.Hour)
			h.append("d1", 13*24*time.Hour+23*time.Hour) // just inside 14 days
			h.append("h1", time.Hour)
			h.start()
			h.idle("the first sync")
			validity := h.srv.UIDValidity(t, "")
			if cp := h.store.checkpoint("support"); cp != (inbox.IMAPCheckpoint{UIDValidity: validity, LastUID: 4}) {
				t.Errorf("checkpoint after the first sync = %+v, want {%d 4}: the UIDs too old to import are done with", cp, validity)
			}
			fetches := h.srv.Commands("UID FETCH")

			// New mail comes through IDLE: the clock never moves, so no
			// poll could find it.
			uid := h.append("new", 0)
			h.waitFor("the new mail", func() bool { return slices.Contains(h.store.storedIDs(), "new@test") })
			if got, want := h.store.storedIDs(), ids(tt.want...); !slices.Equal(got, want) {
				t.Errorf("stored %v, want %v", got, want)
			}
			if n := h.srv.Commands("NOOP"); n != 0 || h.srv.Commands("IDLE") == 0 {
				t.Errorf("%d NOOP and %d IDLE commands, want IDLE and no polling", n, h.srv.Commands("IDLE"))
			}
			if n := h.srv.Commands("UID FETCH") - fetches; n > 3 {
				t.Errorf("%d FETCH for one new mail", n)
			}
			if f := h.lastImport(); f.UID != uid || f.UIDValidity != validity || f.Mailbox != "support" || f.Folder != "INBOX" || f.TooLarge || f.Size != int64(len(f.Raw)) || !f.InternalDate.Equal(h.clock.Now().Truncate(time.Second)) {
				t.Errorf("Fetched = %+v", f)
			}

			// Nothing deleted, moved or marked \Seen: flags only.
			msgs := h.srv.Messages(t, "")
			if len(msgs) != 5 {
				t.Fatalf("%d mails on the server, want all 5", len(msgs))
			}
			for i, m := range msgs {
				want := []string(nil)
				if slices.Contains(tt.want, []string{"d30", "d15", "d1", "h1", "new"}[i]) {
					want = []string{Keyword}
				}
				// Keywords are case-insensitive (RFC 9051 section 2.3.2).
				if !slices.EqualFunc(m.Flags, want, strings.EqualFold) {
					t.Errorf("UID %d has flags %v, want %v", m.UID, m.Flags, want)
				}
			}
			if n := testutil.ToFloat64(h.m.Imported.WithLabelValues("support")); n != float64(len(tt.want)) {
				t.Errorf("microchat_email_imported_total = %v, want %d", n, len(tt.want))
			}
			if n := testutil.ToFloat64(h.m.Connected.WithLabelValues("support")); n != 1 {
				t.Errorf("microchat_email_connected = %v, want 1", n)
			}
		})
	}
}

func ids(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+"@test")
	}
	slices.Sort(out)
	return out
}

func (h *harness) lastImport() Fetched {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return h.store.imports[len(h.store.imports)-1]
}

// TestIdleRestart checks that IDLE is re-issued every IdleRestart (RFC
// 2177: before the server's 30-minute timeout) and mail still arrives.
func TestIdleRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.mb.PollInterval = config.Duration(time.Hour)
	h.start()
	h.idle("the first sync")
	for i := range 3 {
		n := h.srv.Commands("IDLE")
		h.clock.Advance(25*time.Minute - time.Second)
		if h.srv.Commands("IDLE") != n {
			t.Fatalf("IDLE re-issued before 25 minutes")
		}
		h.clock.Advance(time.Second)
		inboxtest.Eventually(t, "IDLE to be re-issued", func() bool { return h.srv.Commands("IDLE") == n+1 && h.g.Idling() })
		h.append(fmt.Sprint("m", i), 0)
		h.idle("the new mail")
		inboxtest.Eventually(t, "the new mail", func() bool { return h.store.count() == i+1 })
	}
	if n := h.srv.Accepted(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestPoll checks a server without IDLE: new mail is found by a NOOP every
// poll_interval, and a poll that finds nothing fetches nothing.
func TestPoll(t *testing.T) {
	h := newHarness(t, &emailtest.IMAPOptions{NoIdle: true})
	h.mb.PollInterval = config.Duration(30 * time.Second)
	h.append("a", time.Hour)
	h.start()
	h.idle("the first sync")
	if h.store.count() != 1 || h.srv.Commands("IDLE") != 0 {
		t.Fatalf("first sync: %v stored, %d IDLE", h.store.storedIDs(), h.srv.Commands("IDLE"))
	}
	fetches, searches := h.srv.Commands("UID FETCH"), h.srv.Commands("UID SEARCH")

	// A poll that finds nothing: one NOOP, no FETCH.
	h.clock.Advance(30 * time.Second)
	inboxtest.Eventually(t, "a NOOP", func() bool { return h.srv.Commands("NOOP") == 1 })
	h.idle("the poll to end")
	if f, s := h.srv.Commands("UID FETCH")-fetches, h.srv.Commands("UID SEARCH")-searches; f != 0 || s != 0 {
		t.Errorf("a poll that found nothing sent %d FETCH and %d SEARCH", f, s)
	}

	// New mail waits for the next poll.
	h.append("b", 0)
	h.clock.Advance(29 * time.Second)
	if h.srv.Commands("NOOP") != 1 {
		t.Fatalf("polled before poll_interval")
	}
	h.clock.Advance(time.Second)
	h.waitFor("the new mail", func() bool { return h.store.count() == 2 })
	h.store.checkOnce(t, ids("a", "b"))
}

// TestReconnectNothingNew checks that connecting to a folder with nothing
// new costs no SEARCH and no FETCH: UIDNEXT is compared with the
// checkpoint.
func TestReconnectNothingNew(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 5 {
		h.append(fmt.Sprint("m", i), time.Hour)
	}
	// Mail deleted before it was fetched leaves UIDNEXT above the last
	// UID: the checkpoint moves over the gap all the same.
	h.srv.Append(t, "", mailText("gone", 100), h.clock.Now())
	c := h.srv.Dial(t)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imapUIDSet(6), storeDeleted(), nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.idle("the first sync")
	if cp := h.store.checkpoint("support"); cp.LastUID != 6 {
		t.Fatalf("checkpoint %+v, want LastUID 6", cp)
	}
	h.store.checkOnce(t, ids("m0", "m1", "m2", "m3", "m4"))
	fetches, searches, accepted := h.srv.Commands("UID FETCH"), h.srv.Commands("UID SEARCH"), h.srv.Accepted()
	for range 3 {
		accepted = h.srv.Accepted()
		h.srv.DropConnections()
		h.waitFor("a new connection", func() bool { return h.srv.Accepted() > accepted && h.g.Idling() })
	}
	if f, s := h.srv.Commands("UID FETCH")-fetches, h.srv.Commands("UID SEARCH")-searches; f != 0 || s != 0 {
		t.Errorf("reconnecting with nothing new sent %d FETCH and %d SEARCH", f, s)
	}
	if n := len(h.store.imports); n != 5 {
		t.Errorf("%d imports, want 5", n)
	}
}

// TestDropMidFetch cuts the connection in the middle of a FETCH, twice:
// the Ingester reconnects and every mail is imported exactly once, none
// offered again.
func TestDropMidFetch(t *testing.T) {
	h := newHarness(t, nil)
	h.opts.Batch = 5
	var want []string
	for i := range 20 {
		h.srv.Append(t, "", mailText(fmt.Sprint("m", i), 4000), h.clock.Now().Add(-time.Hour))
		want = append(want, fmt.Sprint("m", i, "@test"))
	}
	slices.Sort(want)
	// Greeting, login, SELECT, SEARCH and the metadata take a few KB;
	// each batch of bodies about 20 KB: the cut falls inside a FETCH of
	// bodies, in the second batch of each connection.
	h.srv.CutNext(30_000)
	h.srv.CutNext(30_000)
	h.start()
	h.idle("every mail")
	h.store.checkOnce(t, want)
	h.store.mu.Lock()
	for id, n := range h.store.offered {
		if n != 1 {
			t.Errorf("%s offered %d times, want once", id, n)
		}
	}
	below := h.store.belowCheckpoint
	h.store.mu.Unlock()
	if len(below) > 0 {
		t.Errorf("offered again below the checkpoint: %v", below)
	}
	if n := h.srv.Accepted(); n != 3 {
		t.Errorf("%d connections, want 3 (two cut)", n)
	}
	if n := testutil.ToFloat64(h.m.Errors.WithLabelValues("support", ProblemProtocol)); n != 2 {
		t.Errorf("microchat_email_errors_total{kind=protocol} = %v, want 2", n)
	}
}

var errDatabaseDown = errors.New("database is down")

// TestSinkDown checks that a failing Sink (the database down) stops the
// ingest, which backs off (1 s, then 2 s), resumes from the checkpoint and
// loses nothing; and that the backoff starts again from 1 s after a
// healthy session.
func TestSinkDown(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 5 {
		h.append(fmt.Sprint("m", i), time.Hour)
	}
	var mu sync.Mutex
	failures := 2
	h.sink.setFail(func(f Fetched, id string) error {
		mu.Lock()
		defer mu.Unlock()
		if id == "m2@test" && failures > 0 {
			failures--
			return errDatabaseDown
		}
		return nil
	})
	h.start()
	h.expectBackoff(time.Second)
	h.expectBackoff(2 * time.Second)
	h.idle("every mail")
	h.store.checkOnce(t, ids("m0", "m1", "m2", "m3", "m4"))
	h.store.mu.Lock()
	attempts, offered, below := h.store.attempts["m2@test"], h.store.offered["m0@test"], h.store.belowCheckpoint
	h.store.mu.Unlock()
	if attempts != 3 || offered != 1 || len(below) > 0 {
		t.Errorf("m2 tried %d times (want 3), m0 offered %d times (want 1, then the checkpoint), below checkpoint %v", attempts, offered, below)
	}
	if n := testutil.ToFloat64(h.m.Errors.WithLabelValues("support", ProblemStore)); n != 2 {
		t.Errorf("microchat_email_errors_total{kind=store} = %v, want 2", n)
	}

	// After a healthy session the backoff starts again at 1 s.
	h.srv.DropConnections()
	h.expectBackoff(time.Second)
	h.idle("the session after the drop")
}

// TestUIDValidityChange recreates the folder under a new UIDVALIDITY with
// its mail appended again, plus a new mail: the new one is imported, the
// old ones are offered again and recognised by their Message-ID, and the
// checkpoint moves to the new UIDVALIDITY without skipping anything.
func TestUIDValidityChange(t *testing.T) {
	h := newHarness(t, nil)
	for _, id := range []string{"a", "b", "c"} {
		h.append(id, 2*time.Hour)
	}
	h.start()
	h.idle("the first sync")
	old := h.srv.UIDValidity(t, "")

	validity := h.srv.RecreateFolder(t, "")
	if validity == old {
		t.Fatalf("UIDVALIDITY did not change")
	}
	for _, id := range []string{"a", "b", "c"} {
		h.append(id, 2*time.Hour)
	}
	h.append("d", time.Hour)
	h.append("ancient", 40*24*time.Hour) // outside import_since
	h.srv.DropConnections()
	h.waitFor("the new mail", func() bool { return h.store.count() == 4 && h.g.Idling() })

	h.store.checkOnce(t, ids("a", "b", "c", "d"))
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for id, want := range map[string]int{"a@test": 2, "b@test": 2, "c@test": 2, "d@test": 1, "ancient@test": 0} {
		if n := h.store.offered[id]; n != want {
			t.Errorf("%s offered %d times, want %d", id, n, want)
		}
	}
	if len(h.store.belowCheckpoint) > 0 {
		t.Errorf("offered below the checkpoint: %v", h.store.belowCheckpoint)
	}
	for _, f := range h.store.imports[3:] {
		if f.UIDValidity != validity {
			t.Errorf("%s offered with UIDVALIDITY %d, want %d", messageID(f.Raw), f.UIDValidity, validity)
		}
	}
	if cp := h.store.checkpoints["support/INBOX"]; cp != (inbox.IMAPCheckpoint{UIDValidity: validity, LastUID: 5}) {
		t.Errorf("checkpoint %+v, want {%d 5}", cp, validity)
	}
}

// TestTwoFetchers runs two Ingesters on one mailbox at once, each with its
// own view of one store: every mail is stored once.
func TestTwoFetchers(t *testing.T) {
	h := newHarness(t, nil)
	var want []string
	for i := range 30 {
		h.append(fmt.Sprint("m", i), time.Hour)
		want = append(want, fmt.Sprint("m", i))
	}
	h.opts.Batch = 7
	a := h.startWith(h.store.sink())
	b := h.startWith(h.store.sink())
	h.waitFor("both first syncs", func() bool { return a.Idling() && b.Idling() }, a, b)
	for i := 30; i < 40; i++ {
		h.append(fmt.Sprint("m", i), 0)
		want = append(want, fmt.Sprint("m", i))
	}
	h.waitFor("the new mail", func() bool { return h.store.count() == 40 }, a, b)
	h.store.checkOnce(t, ids(want...))
}

// TestTooLarge checks that a mail over the size limit is not downloaded:
// the Sink gets its header and TooLarge, and the mails around it as usual.
func TestTooLarge(t *testing.T) {
	h := newHarness(t, nil)
	h.opts.MaxSize = 10_000
	h.append("small1", time.Hour)
	big := mailText("big", 20_000)
	h.srv.Append(t, "", big, h.clock.Now().Add(-time.Hour))
	h.append("small2", time.Hour)
	h.start()
	h.idle("the first sync")
	h.store.checkOnce(t, ids("small1", "big", "small2"))
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for _, f := range h.store.imports {
		wantLarge := messageID(f.Raw) == "big@test"
		if f.TooLarge != wantLarge {
			t.Errorf("UID %d TooLarge = %v", f.UID, f.TooLarge)
		}
		if wantLarge {
			header := big[:bytes.Index(big, []byte("\r\n\r\n"))+4]
			if !bytes.Equal(f.Raw, header) || f.Size != int64(len(big)) {
				t.Errorf("too large: Raw %q (want the header only), Size %d (want %d)", f.Raw, f.Size, len(big))
			}
		}
	}
}

// TestStartTLSAndTokens runs the ingest over STARTTLS and implicit TLS,
// logging in with a password, an XOAUTH2 and an OAUTHBEARER token.
func TestStartTLSAndTokens(t *testing.T) {
	for _, tt := range []struct {
		mode config.TLSMode
		auth config.AuthMethod
	}{
		{config.TLSStartTLS, config.AuthPassword},
		{config.TLSImplicit, config.AuthXOAuth2},
		{config.TLSImplicit, config.AuthOAuthBearer},
	} {
		t.Run(string(tt.mode)+"-"+string(tt.auth), func(t *testing.T) {
			h := newHarness(t, &emailtest.IMAPOptions{TLS: tt.mode, Token: "tok-123"})
			h.mb.IMAP.Auth = tt.auth
			if tt.auth.Bearer() {
				h.mb.IMAP.Password = "tok-123"
			}
			h.append("a", time.Hour)
			h.start()
			h.idle("the first sync")
			h.store.checkOnce(t, ids("a"))
		})
	}
}

func imapUIDSet(uids ...uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}

func storeDeleted() *imap.StoreFlags {
	return &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
}

// progressSink records, at each import, what the remaining gauge says.
type progressSink struct {
	*fakeSink
	m         *Metrics
	remaining []float64
}

func (s *progressSink) Import(ctx context.Context, fs []Fetched) error {
	s.remaining = append(s.remaining, testutil.ToFloat64(s.m.Remaining.WithLabelValues(fs[0].Mailbox)))
	return s.fakeSink.Import(ctx, fs)
}

// TestProgress checks that a big sync reports its progress in the log
// (every ProgressEvery mails) and in microchat_email_sync_remaining.
func TestProgress(t *testing.T) {
	h := newHarness(t, nil)
	var logs bytes.Buffer
	var logMu sync.Mutex
	h.opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	h.opts.Batch, h.opts.ProgressEvery = 5, 10
	for i := range 25 {
		h.append(fmt.Sprint("m", i), time.Hour)
	}
	sink := &progressSink{fakeSink: h.sink, m: h.m}
	h.startWith(sink)
	h.idle("the first sync")
	want := []float64{25, 20, 15, 10, 5} // before each batch's import
	if !slices.Equal(sink.remaining, want) {
		t.Errorf("microchat_email_sync_remaining at each import = %v, want %v", sink.remaining, want)
	}
	if n := testutil.ToFloat64(h.m.Remaining.WithLabelValues("support")); n != 0 {
		t.Errorf("microchat_email_sync_remaining after the sync = %v, want 0", n)
	}
	logMu.Lock()
	text := logs.String()
	logMu.Unlock()
	for _, want := range []string{"msg=\"IMAP fetching\" pkg=email mailbox=support folder=INBOX conn=imap-support-1 mails=25", "msg=\"IMAP sync progress\" pkg=email mailbox=support folder=INBOX conn=imap-support-1 done=10 total=25", "done=20 total=25", "msg=\"IMAP sync done\""} {
		if !strings.Contains(text, want) {
			t.Errorf("log has no %q:\n%s", want, text)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
