// Package email is Microchat's email channel: mail of each configured
// mailbox comes in over IMAP and becomes conversations, agent replies go
// out over SMTP.
//
// The IMAP side (imap*.go) is an Ingester per mailbox, one goroutine that
// owns one IMAP connection at a time. Its rules:
//
//   - Mail is imported exactly once (spec rule 9): by UID within
//     UIDVALIDITY (RFC 9051 section 2.3.1.1) against a checkpoint the Sink
//     keeps in the database and advances with the mail it stores, and
//     behind that by the Sink's record of Message-IDs, which catches what
//     UIDs cannot: a folder whose UIDVALIDITY changed, two fetchers at
//     once, a crash between storing and checkpointing.
//   - The first sync of a folder (no checkpoint, or a new UIDVALIDITY)
//     reaches back config.Mailbox.ImportSince by INTERNALDATE, 14 days by
//     default; later syncs take every UID above the checkpoint.
//   - Nothing on the server changes but flags: bodies are fetched with
//     BODY.PEEK[] so \Seen is not set, nothing is moved or deleted, and
//     the keyword $MicrochatImported is added only where PERMANENTFLAGS
//     allows keywords.
//   - New mail is fetched as soon as the server announces it with IDLE
//     (RFC 2177), re-issued every 25 minutes; a server without IDLE is
//     polled with NOOP every poll_interval. A check that finds nothing
//     fetches nothing: at connect, the folder's UIDNEXT is compared with
//     the checkpoint; while connected, only an EXISTS leads to a fetch.
//   - Any failure (network, server, the Sink's database) ends the session;
//     the Ingester reconnects after an exponential backoff with jitter
//     (1 s doubling to 5 min, reset after a session that completed its
//     sync) and starts again from the Sink's checkpoint.
//   - A mail over MaxMessageSize is not downloaded: the Sink gets its
//     header and TooLarge, and quarantines it with a notice.
//
// dial.go holds what IMAP and SMTP share: connecting in a TLS mode, the
// SASL login methods, and Problem, a failure in the admin's words, which
// check.go (microchat mailbox check) prints.
package email

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

// MaxMessageSize is the largest mail downloaded (RFC822.SIZE, bytes); a
// bigger one is handed to the Sink as TooLarge, without its body (issue
// 12: a 50 MB mail).
const MaxMessageSize = 50 << 20

// Keyword is the IMAP keyword added to each imported mail when the folder
// allows keywords (PERMANENTFLAGS has \*), so that a person looking at the
// mailbox in a mail client sees what Microchat has taken.
const Keyword = "$MicrochatImported"

// Sink is where an Ingester puts what it fetches: *inbox.Store, through
// the parser, in production; in-memory fakes in tests.
type Sink interface {
	// IMAPCheckpoint returns how far a folder has been imported; the zero
	// checkpoint when never.
	IMAPCheckpoint(ctx context.Context, mailbox, folder string) (inbox.IMAPCheckpoint, error)
	// SaveIMAPCheckpoint records a checkpoint without a mail: after a
	// first sync, the UIDs below the folder's UIDNEXT that were too old
	// to import, or deleted before they were fetched. Setting it as given
	// is fine, even backwards (two fetchers): a refetch only offers
	// duplicates.
	SaveIMAPCheckpoint(ctx context.Context, mailbox, folder string, cp inbox.IMAPCheckpoint) error
	// Import stores or quarantines mails fetched from one folder, given
	// in UID order, and advances the checkpoint to the UID of each in the
	// transaction that stores it (never back, within a UIDVALIDITY), a
	// duplicate's too. Several mails may share a transaction, which is
	// what makes a big first sync fast; a checkpoint is never saved
	// without the mails below it. A mail whose Message-ID (else raw hash)
	// was imported before is recognised and not stored again, which is
	// what keeps mail offered twice (a changed UIDVALIDITY, two fetchers)
	// single. An error means "try again later" (database down): the mails
	// before some point may be stored, the others not, and the Ingester
	// stops, backs off and fetches again from the checkpoint. The
	// Ingester calls it from a goroutine of its own, while it fetches the
	// next batch, and never twice at once.
	Import(ctx context.Context, fs []Fetched) error
}

// Fetched is one mail fetched from an IMAP folder.
type Fetched struct {
	// Mailbox is the config name of the mailbox; Folder the IMAP folder.
	Mailbox, Folder string
	// UIDValidity and UID locate the mail in the folder (RFC 9051
	// section 2.3.1.1).
	UIDValidity, UID uint32
	// Raw is the whole message (RFC 5322) as the server has it; for a
	// TooLarge mail only its header section (at most 2 MB), so that the
	// notice can say who sent it and when.
	Raw []byte
	// Size is the message's size in bytes as the server reports it
	// (RFC822.SIZE).
	Size int64
	// InternalDate is when the server received the mail (INTERNALDATE).
	InternalDate time.Time
	// TooLarge is set when Size is over MaxMessageSize: the body was not
	// downloaded.
	TooLarge bool
}

// IngestOptions tune an Ingester; nil or a zero field means the default.
// Tests set the clock and the backoff's randomness so that they wait for
// nothing.
type IngestOptions struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics to update; nil means private ones, registered nowhere.
	Metrics *Metrics
	// TLSConfig is the base of the TLS configuration (RootCAs); nil means
	// the system's roots. ServerName is set to the IMAP host.
	TLSConfig *tls.Config
	// Timeout bounds connecting, and how long the server may stay silent
	// while a command waits for its answer (default 60 s).
	Timeout time.Duration
	// Batch is the most mails fetched with one FETCH (default 50); a
	// batch also stops at 32 MB.
	Batch int
	// MaxSize is the largest mail downloaded (default MaxMessageSize).
	MaxSize int64
	// BackoffMin and BackoffMax bound the wait before reconnecting after
	// a failure: BackoffMin doubling with each failure in a row, up to
	// BackoffMax (defaults 1 s and 5 min), each wait jittered between
	// its half and its whole.
	BackoffMin, BackoffMax time.Duration
	// IdleRestart is how long one IDLE lasts before it is re-issued
	// (default the mailbox's poll_interval, at most 25 min: RFC 2177 asks
	// for less than 29). Ending an IDLE makes the server report what it
	// has not (an EXISTS queued just before the IDLE began is lost by
	// some servers, go-imap's imapmemserver among them), so poll_interval
	// also bounds how late such a mail can be.
	IdleRestart time.Duration
	// Now is the clock (default time.Now); AfterFunc starts a timer on
	// it (default time.AfterFunc), used for the backoff, the poll
	// interval and IDLE's restart. inboxtest.Clock has both.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Rand returns a number in [0, 1) for the backoff's jitter (default
	// math/rand/v2).
	Rand func() float64
	// ProgressEvery is how often a long sync logs its progress: every so
	// many mails (default 1000) or every 10 s on Now, whichever comes
	// first.
	ProgressEvery int
}

// Ingester fetches the mail of one mailbox's IMAP folder into a Sink.
// Build it with NewIngester and run it with Run.
type Ingester struct {
	mb   config.Mailbox
	sink Sink
	o    IngestOptions
	log  *slog.Logger
	m    *Metrics
	// conns numbers the sessions, for the conn attribute of log lines.
	conns atomic.Uint64
	// idling is set while the session waits in IDLE or between polls,
	// for tests (Idling).
	idling atomic.Bool
}

// NewIngester returns the Ingester of mailbox mb (as config.Load leaves
// it: port, folder and auth filled in), which puts what it fetches into
// sink.
func NewIngester(mb config.Mailbox, sink Sink, o *IngestOptions) *Ingester {
	var opts IngestOptions
	if o != nil {
		opts = *o
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 50
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = MaxMessageSize
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.IdleRestart <= 0 {
		opts.IdleRestart = 25 * time.Minute
		if p := mb.PollInterval.D(); p > 0 && p < opts.IdleRestart {
			opts.IdleRestart = p
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AfterFunc == nil {
		opts.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 1000
	}
	if mb.IMAP.Folder == "" {
		mb.IMAP.Folder = "INBOX"
	}
	if mb.IMAP.Auth == "" {
		mb.IMAP.Auth = config.AuthPassword
	}
	if mb.PollInterval <= 0 {
		mb.PollInterval = config.Duration(time.Minute)
	}
	return &Ingester{
		mb:   mb,
		sink: sink,
		o:    opts,
		log:  opts.Logger.With("pkg", "email", "mailbox", mb.Name, "folder", mb.IMAP.Folder),
		m:    opts.Metrics,
	}
}

// Run fetches mail until ctx is done, reconnecting after every failure
// with a backoff (see the package comment); each failure is logged and
// counted in microchat_email_errors_total. It returns when ctx is done.
func (g *Ingester) Run(ctx context.Context) {
	failures := 0
	g.m.Connected.WithLabelValues(g.mb.Name).Set(0)
	for {
		healthy, err := g.session(ctx)
		if ctx.Err() != nil {
			return
		}
		kind := problemKind(err)
		g.m.Errors.WithLabelValues(g.mb.Name, kind).Inc()
		if healthy {
			failures = 0
		}
		d := g.backoff(failures)
		failures++
		g.log.Warn("IMAP session ended; reconnecting", "err", err, "kind", kind, "retry_in", d, "failures_in_a_row", failures)
		if !g.sleep(ctx, d) {
			return
		}
	}
}

// Idling reports whether the Ingester is connected, up to date, and
// waiting for new mail (in IDLE, or between two polls).
func (g *Ingester) Idling() bool { return g.idling.Load() }

// backoff is the wait before reconnecting after failures failures in a
// row (0 for the first): BackoffMin doubled that many times, at most
// BackoffMax, jittered between its half and its whole so that many
// processes that lost a server at once do not come back at once.
func (g *Ingester) backoff(failures int) time.Duration {
	d := doubled(g.o.BackoffMin, g.o.BackoffMax, failures)
	return d/2 + time.Duration(g.o.Rand()*float64(d/2))
}

// timer returns a channel closed after d on the Ingester's clock, and a
// function that stops it.
func (g *Ingester) timer(d time.Duration) (<-chan struct{}, func() bool) {
	c := make(chan struct{})
	stop := g.o.AfterFunc(d, func() { close(c) })
	return c, stop
}

// sleep waits d on the Ingester's clock; false if ctx was done first.
func (g *Ingester) sleep(ctx context.Context, d time.Duration) bool {
	t, stop := g.timer(d)
	defer stop()
	select {
	case <-t:
		return true
	case <-ctx.Done():
		return false
	}
}

// session runs one IMAP connection until it fails or ctx is done: log in,
// select the folder, sync, then wait for new mail. healthy reports whether
// it got as far as being up to date.
func (g *Ingester) session(ctx context.Context) (healthy bool, err error) {
	s := &session{
		g:      g,
		log:    g.log.With("conn", "imap-"+g.mb.Name+"-"+strconv.FormatUint(g.conns.Add(1), 10)),
		exists: make(chan struct{}, 1),
		folder: g.mb.IMAP.Folder,
	}
	defer g.idling.Store(false)
	return s.run(ctx)
}
