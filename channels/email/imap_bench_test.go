package email

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/inbox"
)

// Benchmarks of the IMAP side (issue 12, "Speed"):
//
//	CGO_ENABLED=0 go test ./channels/email/ -run '^$' -bench 'NoopCheck|Fetch$|Ingest$' -benchtime 20x
//
// BenchmarkNoopCheck is a check that finds nothing new in a folder of
// 50,000 mails (target: under 50 ms): "poll" is what runs every
// poll_interval on an open connection (NOOP), "reconnect" a whole new
// session up to the conclusion that nothing is new (connect, login,
// SELECT, UIDNEXT against the checkpoint). BenchmarkFetch is a bare
// go-imap fetch of 10,000 mails of about 4 KB, the baseline for the whole
// import; BenchmarkIngest is the Ingester fetching the same mails into a
// Sink that does nothing, its overhead over the bare fetch.

// benchSink counts imports and keeps a checkpoint, nothing else.
type benchSink struct {
	cp       inbox.IMAPCheckpoint
	imported atomic.Int64
}

func (s *benchSink) IMAPCheckpoint(context.Context, string, string) (inbox.IMAPCheckpoint, error) {
	return s.cp, nil
}

func (s *benchSink) SaveIMAPCheckpoint(_ context.Context, _, _ string, cp inbox.IMAPCheckpoint) error {
	s.cp = cp
	return nil
}

func (s *benchSink) Import(_ context.Context, fs []Fetched) error {
	f := fs[len(fs)-1]
	s.cp = inbox.IMAPCheckpoint{UIDValidity: f.UIDValidity, LastUID: f.UID}
	s.imported.Add(int64(len(fs)))
	return nil
}

// fill appends n mails of about size bytes to the server's INBOX.
func fill(b *testing.B, srv *emailtest.IMAPServer, n, size int) {
	now := time.Now()
	for i := range n {
		srv.Append(b, "", mailText(fmt.Sprint("m", i), size), now.Add(-time.Duration(n-i)*time.Second))
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func BenchmarkNoopCheck(b *testing.B) {
	const n = 50_000
	srv := emailtest.StartIMAP(b, nil)
	fill(b, srv, n, 300)
	sink := &benchSink{cp: inbox.IMAPCheckpoint{UIDValidity: srv.UIDValidity(b, ""), LastUID: n}}
	g := NewIngester(srv.Mailbox("support"), sink, &IngestOptions{Logger: quietLogger()})
	newSession := func() *session {
		return &session{g: g, log: g.log, exists: make(chan struct{}, 1), folder: "INBOX"}
	}
	ctx := context.Background()
	fetches := srv.Commands("UID FETCH")

	b.Run("poll", func(b *testing.B) {
		s := newSession()
		sel, err := s.open(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		if err := s.sync(ctx, sel); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if newMail, err := s.poll(); err != nil || newMail {
				b.Fatalf("poll() = %v, %v", newMail, err)
			}
		}
	})
	b.Run("reconnect", func(b *testing.B) {
		for b.Loop() {
			s := newSession()
			sel, err := s.open(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.sync(ctx, sel); err != nil {
				b.Fatal(err)
			}
			s.close()
		}
	})
	if srv.Commands("UID FETCH") != fetches || sink.imported.Load() != 0 || srv.Commands("UID SEARCH") != 0 {
		b.Fatalf("a check that found nothing fetched: %d FETCH, %d SEARCH", srv.Commands("UID FETCH")-fetches, srv.Commands("UID SEARCH"))
	}
}

// fetchMailbox is a folder of 10,000 mails of about 4 KB.
func fetchMailbox(b *testing.B) *emailtest.IMAPServer {
	srv := emailtest.StartIMAP(b, nil)
	fill(b, srv, 10_000, 4000)
	return srv
}

func BenchmarkFetch(b *testing.B) {
	srv := fetchMailbox(b)
	c := srv.Dial(b)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for b.Loop() {
		bytes = 0
		fetchAll(b, c, 10_000, func(_ imap.UID, body []byte) { bytes += int64(len(body)) })
	}
	b.SetBytes(bytes)
	b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "mails/s")
}

// fetchAll fetches the body of every mail of the folder c has selected
// with one UID FETCH 1:* BODY.PEEK[], hands each to each as it arrives,
// and fails unless there were n.
func fetchAll(b *testing.B, c *imapclient.Client, n int, each func(uid imap.UID, body []byte)) {
	cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	got := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			b.Fatal(err)
		}
		for _, body := range buf.BodySection {
			each(buf.UID, body.Bytes)
		}
		got++
	}
	if err := cmd.Close(); err != nil || got != n {
		b.Fatalf("fetched %d of %d: %v", got, n, err)
	}
}

func BenchmarkIngest(b *testing.B) {
	srv := fetchMailbox(b)
	mb := srv.Mailbox("support")
	ctx := context.Background()
	for b.Loop() {
		sink := &benchSink{}
		g := NewIngester(mb, sink, &IngestOptions{Logger: quietLogger()})
		s := &session{g: g, log: g.log, exists: make(chan struct{}, 1), folder: "INBOX"}
		sel, err := s.open(ctx)
		if err != nil {
			b.Fatal(err)
		}
		err = s.sync(ctx, sel)
		s.close()
		if err != nil || sink.imported.Load() != 10_000 {
			b.Fatalf("imported %d: %v", sink.imported.Load(), err)
		}
	}
	b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "mails/s")
}
