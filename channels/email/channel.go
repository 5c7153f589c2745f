package email

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

// Channel is the email channel of one node (spec rules 5, 7, 9): an
// Ingester per configured mailbox reads its IMAP folder into the inbox,
// and the outbox Worker sends replies, continuity digests and surveys by
// SMTP. As an inbox.Channel it reaches every contact with an email
// address, and Deliver wakes the Worker: the reply's outbox row was
// committed with it.
type Channel struct {
	// mailboxes are the configured ones, to which no reply is sent.
	mailboxes []inbox.MailboxInfo
	ingesters []*Ingester
	worker    *Worker
	// store holds the worker locks: one node at a time fetches each
	// mailbox and runs the timers (inbox.Store.Lead).
	store *inbox.Store
	// lead tunes the locks' retries (clock); timers is whether this
	// node holds the "timers" lock.
	lead    inbox.Leader
	timers  atomic.Bool
	metrics *Metrics
	log     *slog.Logger
}

var _ inbox.Channel = (*Channel)(nil)

// Options configure a Channel. Store and at least one mailbox in
// Config.Mailboxes are required.
type Options struct {
	Store  *inbox.Store
	Config config.Config
	Logger *slog.Logger
	// Ingest and Worker tune the IMAP and SMTP sides (tests: clocks,
	// ticks, TLS roots); their Store-given fields (Outbox, Mailboxes,
	// BaseURL, EmailAfterUnread, Logger, Metrics) are set here.
	Ingest *IngestOptions
	Worker WorkerOptions
	// LockRetryEvery is how often a node that does not hold a job's
	// worker lock tries to take it (default inbox.LockRetryEvery, 5 s),
	// on Ingest.AfterFunc's clock.
	LockRetryEvery time.Duration
}

// New returns the email channel of cfg's mailboxes; Run starts it.
func New(o Options) (*Channel, error) {
	if o.Store == nil {
		return nil, errors.New("email: Options.Store is required")
	}
	if len(o.Config.Mailboxes) == 0 {
		return nil, errors.New("email: no mailbox is configured")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Channel{mailboxes: MailboxInfos(o.Config.Mailboxes), metrics: NewMetrics(), log: log, store: o.Store,
		lead: inbox.Leader{RetryEvery: o.LockRetryEvery}}
	if o.Ingest != nil {
		c.lead.AfterFunc = o.Ingest.AfterFunc
	}
	var own []string
	for _, mb := range o.Config.Mailboxes {
		own = append(own, mb.Address)
	}
	sink := &StoreSink{Store: o.Store, Logger: log, Parse: mailparse.Options{
		MaxAttachmentBytes: int64(o.Config.Limits.MaxUploadBytes), OwnAddresses: own}}
	for _, mb := range o.Config.Mailboxes {
		io := IngestOptions{}
		if o.Ingest != nil {
			io = *o.Ingest
		}
		io.Logger, io.Metrics = log, c.metrics
		c.ingesters = append(c.ingesters, NewIngester(mb, sink, &io))
	}
	wo := o.Worker
	wo.Outbox, wo.Mailboxes, wo.BaseURL, wo.Logger = o.Store, o.Config.Mailboxes, o.Config.BaseURL, log
	wo.EmailAfterUnread = o.Config.EmailAfterUnread.D()
	wo.TimersHeld = c.timers.Load
	c.worker = NewWorker(wo)
	return c, nil
}

// Name is inbox.ChannelEmail.
func (c *Channel) Name() string { return inbox.ChannelEmail }

// Reaches reports whether the contact has an email address: a reply by
// email reaches them whether or not they are on the site (rule 5). An
// address of one of our own mailboxes reaches no one but us (a mail loop,
// issue 12 item 8; inbox.OwnMailbox).
func (c *Channel) Reaches(ct inbox.Contact) bool {
	if ct.Email == "" {
		return false
	}
	_, own := inbox.OwnMailbox(c.mailboxes, ct.Email)
	return !own
}

// Deliver wakes the outbox Worker for a reply stored on the email
// channel, so it is sent now rather than at the next tick. It never
// blocks.
func (c *Channel) Deliver(_ context.Context, m inbox.Message) error {
	if m.Channel == inbox.ChannelEmail {
		c.worker.Wake()
	}
	return nil
}

// Collectors are the channel's Prometheus metrics, for the server's
// registry.
func (c *Channel) Collectors() []prometheus.Collector { return c.metrics.Collectors() }

// Run fetches and sends until ctx ends, then waits for the Ingesters and
// the Worker (which records the outcome of the sends in progress) to stop.
//
// Of several nodes on one database (issue 14) exactly one at a time
// fetches each mailbox: its Ingester runs only while the node holds the
// worker lock "mailbox:<name>" (inbox.Store.Lead), and stops at once if
// the lock is lost; the others try to take it every LockRetryEvery. The
// continuity digests are queued by the node holding "timers". Every node
// sends: the outbox's rows are claimed one node at a time.
func (c *Channel) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, g := range c.ingesters {
		l := c.lead
		l.Name = "mailbox:" + g.mb.Name
		wg.Go(func() { c.store.Lead(ctx, l, g.Run) })
	}
	l := c.lead
	l.Name = "timers"
	l.Held = c.timers.Store
	wg.Go(func() { c.store.Lead(ctx, l, func(ctx context.Context) { <-ctx.Done() }) })
	wg.Go(func() {
		if err := c.worker.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Error("email outbox stopped", "err", err)
		}
	})
	wg.Wait()
}

// MailboxInfos are the mailboxes of a config as the store knows them: it
// sends from them and reads their plus addressing (rule 9).
func MailboxInfos(mbs []config.Mailbox) []inbox.MailboxInfo {
	out := make([]inbox.MailboxInfo, len(mbs))
	for i, mb := range mbs {
		out[i] = inbox.MailboxInfo{Name: mb.Name, Address: mb.Address, PlusAddressing: mb.PlusAddressing}
	}
	return out
}
