package email

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// fakeOutbox is the store's outbox in memory, on a test clock, with the
// semantics of EMAIL.md: a claim takes due pending rows and sending rows
// whose lease expired.
type fakeOutbox struct {
	clock *inboxtest.Clock

	mu     sync.Mutex
	rows   []*fakeRow
	nextID int64
	claims int
	// onSent, when set, runs first in OutboxSent; an error is returned
	// as the store's (the outcome is not recorded).
	onSent func(id int64) error
	// due, when set, is what EnqueueDigests queues at now.
	due   func(now time.Time, after time.Duration) []inbox.OutboundEmail
	after []time.Duration // EnqueueDigests' arguments

	// outcomes receives every recorded outcome.
	outcomes chan outcome
}

type fakeRow struct {
	m        inbox.OutboundEmail
	state    string // pending, sending, sent, failed
	next     time.Time
	lease    time.Time
	attempts int
	raw      []byte
}

type outcome struct {
	kind   string // sent, retry, failed
	id     int64
	at     time.Time
	reason string
	raw    []byte
}

func newFakeOutbox(clock *inboxtest.Clock) *fakeOutbox {
	return &fakeOutbox{clock: clock, outcomes: make(chan outcome, 1000)}
}

// add queues m, due now.
func (f *fakeOutbox) add(m inbox.OutboundEmail) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(m)
}

func (f *fakeOutbox) addLocked(m inbox.OutboundEmail) int64 {
	f.nextID++
	m.ID = f.nextID
	f.rows = append(f.rows, &fakeRow{m: m, state: "pending", next: f.clock.Now()})
	return m.ID
}

func (f *fakeOutbox) row(id int64) *fakeRow {
	for _, r := range f.rows {
		if r.m.ID == id {
			return r
		}
	}
	panic("no outbox row")
}

func (f *fakeOutbox) state(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.row(id).state
}

func (f *fakeOutbox) claimCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claims
}

func (f *fakeOutbox) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]inbox.OutboundEmail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	now := f.clock.Now()
	var l []inbox.OutboundEmail
	for _, r := range f.rows {
		if len(l) == limit {
			break
		}
		if r.state == "pending" && !r.next.After(now) || r.state == "sending" && !r.lease.After(now) {
			r.state, r.lease = "sending", now.Add(lease)
			m := r.m
			m.Attempts = r.attempts
			r.attempts++
			l = append(l, m)
		}
	}
	return l, nil
}

func (f *fakeOutbox) OutboxSent(ctx context.Context, id int64, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return err // as the database would
	}
	if f.onSent != nil {
		if err := f.onSent(id); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.row(id)
	r.state, r.raw = "sent", raw
	f.outcomes <- outcome{kind: "sent", id: id, raw: raw}
	return nil
}

func (f *fakeOutbox) OutboxRetry(ctx context.Context, id int64, at time.Time, reason string) error {
	if err := ctx.Err(); err != nil {
		return err // as the database would
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.row(id)
	r.state, r.next = "pending", at
	f.outcomes <- outcome{kind: "retry", id: id, at: at, reason: reason}
	return nil
}

func (f *fakeOutbox) OutboxFailed(ctx context.Context, id int64, reason string) error {
	if err := ctx.Err(); err != nil {
		return err // as the database would
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.row(id).state = "failed"
	f.outcomes <- outcome{kind: "failed", id: id, reason: reason}
	return nil
}

func (f *fakeOutbox) EnqueueDigests(ctx context.Context, after time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after = append(f.after, after)
	if f.due == nil {
		return 0, nil
	}
	l := f.due(f.clock.Now(), after)
	for _, m := range l {
		f.addLocked(m)
	}
	return len(l), nil
}

var _ Outbox = (*fakeOutbox)(nil)

// testWorker is a Worker sending through srv from the fake outbox, driven
// by the test's clock and ticks.
type testWorker struct {
	*Worker
	tick   chan time.Time
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t testing.TB, ob *fakeOutbox, srv *emailtest.SMTPServer, edit func(*WorkerOptions)) *testWorker {
	t.Helper()
	mb := mailboxOn(srv, config.TLSStartTLS, "agent", "secret")
	o := WorkerOptions{
		Outbox:           ob,
		Mailboxes:        []config.Mailbox{mb},
		BaseURL:          "https://chat.example.com",
		EmailAfterUnread: 5 * time.Minute,
		SMTP:             smtpOptions(srv),
		Now:              ob.clock.Now,
		Rand:             func() float64 { return 0.5 }, // no jitter: delays exact
		Logger:           testLogger(t),
	}
	if edit != nil {
		edit(&o)
	}
	tick := make(chan time.Time)
	o.Tick = tick
	w := &testWorker{Worker: NewWorker(o), tick: tick, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.done <- w.Run(ctx) }()
	t.Cleanup(w.stop)
	return w
}

// stop cancels the worker and waits for Run to return.
func (w *testWorker) stop() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(inboxtest.Patience):
		panic("worker did not stop")
	}
	w.done <- nil // for the next stop
}

// Tick hands the worker one tick (it has taken it when Tick returns).
func (w *testWorker) Tick(t testing.TB, now time.Time) {
	t.Helper()
	select {
	case w.tick <- now:
	case <-time.After(inboxtest.Patience):
		t.Fatal("the worker does not take its tick")
	}
}

func startServer(t testing.TB) *emailtest.SMTPServer {
	return emailtest.StartSMTP(t, &emailtest.SMTPOptions{TLS: config.TLSStartTLS, Username: "agent", Password: "secret"})
}

func nextOutcome(t testing.TB, ob *fakeOutbox) outcome {
	t.Helper()
	return inboxtest.Receive(t, ob.outcomes, "an outcome recorded in the outbox")
}

func TestWorkerSendsReply(t *testing.T) {
	srv := startServer(t)
	ob := newFakeOutbox(inboxtest.NewClock())
	m := testReply()
	id := ob.add(m)
	startWorker(t, ob, srv, nil)

	o := nextOutcome(t, ob)
	if o.kind != "sent" || o.id != id {
		t.Fatalf("outcome %+v, want sent %d", o, id)
	}
	mails := srv.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails received, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "support@example.com" || !slices.Equal(got.To, []string{"zoe@example.org", "col@example.org"}) {
		t.Errorf("envelope MAIL FROM %q RCPT TO %q, want the mailbox to To + Cc", got.From, got.To)
	}
	if !bytes.Equal(got.Raw, o.raw) {
		t.Errorf("OutboxSent got other bytes than the server")
	}
	p := parseMail(t, got.Raw)
	if got, want := sortedKeys(p.keys), sortedKeys(replyKeys); !slices.Equal(got, want) {
		t.Errorf("header fields %v, want %v", got, want)
	}
	if from := p.addresses(t, "From"); len(from) != 1 || from[0].String() != `"Alice via Example Support" <support@example.com>` {
		t.Errorf("From = %v", from)
	}
	if rt := p.addresses(t, "Reply-To"); len(rt) != 1 || rt[0].Address != m.ReplyTo {
		t.Errorf("Reply-To = %v, want %s", rt, m.ReplyTo)
	}
	if id, _ := p.header.MessageID(); id != m.MessageID {
		t.Errorf("Message-ID = %q, want %q", id, m.MessageID)
	}
	if l, _ := p.header.MsgIDList("In-Reply-To"); !slices.Equal(l, []string{m.InReplyTo}) {
		t.Errorf("In-Reply-To = %q", l)
	}
	if l, _ := p.header.MsgIDList("References"); !slices.Equal(l, m.References) {
		t.Errorf("References = %q", l)
	}
	if s := p.get(t, "Subject"); s != "Re: "+m.Subject {
		t.Errorf("Subject = %q", s)
	}
	if p.header.Has("Auto-Submitted") {
		t.Errorf("a reply carries Auto-Submitted")
	}
	if p.text != m.Messages[0].Text+"\n" || !strings.Contains(p.html, "your order &lt;#42&gt;") {
		t.Errorf("text %q, HTML %q", p.text, p.html)
	}
	if len(p.attachments) != 2 || !bytes.Equal(p.attachments[1].data, m.Messages[0].Attachments[1].Data) || p.attachments[1].name != "Rechnung März.txt" {
		t.Errorf("attachments %+v", p.attachments)
	}
	if s := ob.state(id); s != "sent" {
		t.Errorf("row %s, want sent", s)
	}
}

// TestWorkerRetriesTemporary: 421 after DATA, then 250: sent once, after
// one retry 30 s later.
func TestWorkerRetriesTemporary(t *testing.T) {
	srv := startServer(t)
	srv.Script(emailtest.StageData, emailtest.Reply{Code: 421, Enhanced: [3]int{4, 3, 0}, Message: "try again later"})
	clock := inboxtest.NewClock()
	ob := newFakeOutbox(clock)
	id := ob.add(testReply())
	w := startWorker(t, ob, srv, nil)

	o := nextOutcome(t, ob)
	if o.kind != "retry" || !o.at.Equal(clock.Now().Add(30*time.Second)) || !strings.Contains(o.reason, "421 4.3.0 try again later") {
		t.Fatalf("outcome %+v, want a retry in 30 s with the server's answer", o)
	}
	w.Tick(t, clock.Now()) // not due yet
	clock.Advance(30 * time.Second)
	w.Tick(t, clock.Now())
	if o := nextOutcome(t, ob); o.kind != "sent" || o.id != id {
		t.Fatalf("outcome %+v, want sent", o)
	}
	if n, d := len(srv.Mails()), srv.Attempts(emailtest.StageData); n != 1 || d != 2 {
		t.Errorf("%d mails in %d DATA, want 1 in 2", n, d)
	}
}

// TestWorkerFailsPermanent: 550 5.1.1: failed at once, the answer kept.
func TestWorkerFailsPermanent(t *testing.T) {
	srv := startServer(t)
	srv.Refuse("zoe@example.org", emailtest.Reply{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "user unknown"})
	ob := newFakeOutbox(inboxtest.NewClock())
	id := ob.add(testReply())
	startWorker(t, ob, srv, nil)
	if o := nextOutcome(t, ob); o.kind != "failed" || o.id != id || o.reason != "550 5.1.1 user unknown" {
		t.Fatalf("outcome %+v, want failed with 550 5.1.1 user unknown", o)
	}
	if n := srv.Attempts(emailtest.StageRcpt); n != 1 {
		t.Errorf("%d RCPT, want 1: no retry after 5xx", n)
	}
}

// TestWorkerFailsUncomposable: a mail that cannot be built fails without
// reaching the server.
func TestWorkerFailsUncomposable(t *testing.T) {
	srv := startServer(t)
	ob := newFakeOutbox(inboxtest.NewClock())
	m := testReply()
	m.To.Addr = "not an address"
	ob.add(m)
	startWorker(t, ob, srv, nil)
	if o := nextOutcome(t, ob); o.kind != "failed" || !strings.Contains(o.reason, "not an address") {
		t.Fatalf("outcome %+v, want failed", o)
	}
	if n := srv.Attempts(emailtest.StageMail); n != 0 {
		t.Errorf("%d MAIL commands", n)
	}
}

// TestWorkerServerDown: with the server down for minutes the mail is
// retried after 30 s, 1, 2, 4 and 8 min, then sent once when it is back.
func TestWorkerServerDown(t *testing.T) {
	srv := startServer(t)
	srv.Stop()
	clock := inboxtest.NewClock()
	ob := newFakeOutbox(clock)
	id := ob.add(testReply())
	w := startWorker(t, ob, srv, nil)

	var delays []time.Duration
	for range 5 {
		o := nextOutcome(t, ob)
		if o.kind != "retry" {
			t.Fatalf("outcome %+v, want retry", o)
		}
		delays = append(delays, o.at.Sub(clock.Now()))
		clock.Advance(o.at.Sub(clock.Now()))
		w.Tick(t, clock.Now())
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	if !slices.Equal(delays, want) {
		t.Errorf("retry delays %v, want %v", delays, want)
	}
	o := nextOutcome(t, ob) // the attempt the last tick started
	if o.kind != "retry" {
		t.Fatalf("outcome %+v, want retry", o)
	}
	srv.Start()
	clock.Advance(o.at.Sub(clock.Now()))
	w.Tick(t, clock.Now())
	if o := nextOutcome(t, ob); o.kind != "sent" || o.id != id {
		t.Fatalf("outcome %+v, want sent", o)
	}
	if n := len(srv.Mails()); n != 1 {
		t.Errorf("%d mails received, want 1", n)
	}
}

// TestWorkerCrashAfterData: the worker dies after the server accepted the
// mail and before the store recorded it. Another worker sends it again
// once the lease expires, with the same Message-ID: the contact gets it
// twice at most, never zero times.
func TestWorkerCrashAfterData(t *testing.T) {
	srv := startServer(t)
	clock := inboxtest.NewClock()
	ob := newFakeOutbox(clock)
	m := testReply()
	id := ob.add(m)
	var crash sync.Once
	crashed := make(chan struct{}, 1)
	ob.onSent = func(int64) error {
		err := error(nil)
		crash.Do(func() {
			crashed <- struct{}{}
			err = errors.New("process killed")
		})
		return err
	}
	first := startWorker(t, ob, srv, nil)
	inboxtest.Receive(t, crashed, "the mail to be sent")
	first.cancel()
	if err := inboxtest.Receive(t, first.done, "the first worker to die"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v", err)
	}
	first.done <- nil
	if n := len(srv.Mails()); n != 1 {
		t.Fatalf("%d mails received before the crash, want 1", n)
	}
	if s := ob.state(id); s != "sending" {
		t.Fatalf("row %s after the crash, want sending", s)
	}

	second := startWorker(t, ob, srv, nil)
	claims := ob.claimCount()
	second.Tick(t, clock.Now())
	second.Tick(t, clock.Now()) // taken once the first tick's claim is done
	if n := ob.claimCount(); n <= claims {
		t.Fatalf("%d claims after a tick, want more than %d", n, claims)
	}
	if s := ob.state(id); s != "sending" {
		t.Fatalf("row %s while its lease runs, want sending (not sent again yet)", s)
	}
	clock.Advance(5 * time.Minute) // the default lease
	second.Tick(t, clock.Now())
	if o := nextOutcome(t, ob); o.kind != "sent" || o.id != id {
		t.Fatalf("outcome %+v, want sent", o)
	}
	mails := srv.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails received, want 2 (one duplicate)", len(mails))
	}
	for _, mail := range mails {
		h := parseMail(t, mail.Raw).header
		if id, _ := h.MessageID(); id != m.MessageID {
			t.Errorf("Message-ID %q, want %q on both", id, m.MessageID)
		}
	}
}

// TestWorkerShutdown: a send in progress when the worker is stopped
// finishes, and its outcome is recorded, so that it is not sent again.
func TestWorkerShutdown(t *testing.T) {
	srv := startServer(t)
	srv.Hold()
	ob := newFakeOutbox(inboxtest.NewClock())
	id := ob.add(testReply())
	w := startWorker(t, ob, srv, func(o *WorkerOptions) { o.ShutdownGrace = inboxtest.Patience })
	inboxtest.Eventually(t, "the send to reach DATA", func() bool { return srv.Held() == 1 })
	w.cancel()
	srv.Release()
	if o := nextOutcome(t, ob); o.kind != "sent" || o.id != id {
		t.Fatalf("outcome %+v, want sent", o)
	}
	if err := inboxtest.Receive(t, w.done, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v", err)
	}
	w.done <- nil
}

// TestWorkerDigestAndSurvey: continuity mail and the survey are automatic
// mail (Auto-Submitted) with the conversation's token in the subject, and
// the survey has its five rating links.
func TestWorkerDigestAndSurvey(t *testing.T) {
	srv := startServer(t)
	ob := newFakeOutbox(inboxtest.NewClock())
	ob.add(testDigest())
	ob.add(testSurvey())
	startWorker(t, ob, srv, nil)
	for range 2 {
		if o := nextOutcome(t, ob); o.kind != "sent" {
			t.Fatalf("outcome %+v, want sent", o)
		}
	}
	for _, m := range srv.Mails() {
		p := parseMail(t, m.Raw)
		if v := p.header.Get("Auto-Submitted"); v != "auto-generated" {
			t.Errorf("Auto-Submitted = %q, want auto-generated", v)
		}
		if s := p.get(t, "Subject"); !strings.HasPrefix(s, "[#c42-ABCDEFGH23456789] ") {
			t.Errorf("Subject %q without the token", s)
		}
		switch {
		case strings.Contains(p.text, "Reply to this email to continue the conversation."):
		case strings.Contains(p.text, "5 (excellent): https://chat.example.com/rate/r5-EEEE") &&
			strings.Contains(p.html, `href="https://chat.example.com/rate/r1-AAAA"`):
		default:
			t.Errorf("neither the digest nor the survey:\n%s", p.text)
		}
	}
}

// TestContinuityDigestOnTick: the tick that finds the digest due sends it
// at once, not on a later tick: it leaves within a second of
// email_after_unread expiring (the target is 5 s).
func TestContinuityDigestOnTick(t *testing.T) {
	srv := startServer(t)
	clock := inboxtest.NewClock()
	ob := newFakeOutbox(clock)
	unreadSince := clock.Now()
	queued := false
	ob.due = func(now time.Time, after time.Duration) []inbox.OutboundEmail {
		if queued || now.Sub(unreadSince) < after {
			return nil
		}
		queued = true
		return []inbox.OutboundEmail{testDigest()}
	}
	w := startWorker(t, ob, srv, func(o *WorkerOptions) { o.EmailAfterUnread = 2 * time.Minute })

	clock.Advance(2*time.Minute - time.Second)
	w.Tick(t, clock.Now())
	clock.Advance(time.Second)
	w.Tick(t, clock.Now())
	if o := nextOutcome(t, ob); o.kind != "sent" {
		t.Fatalf("outcome %+v, want the digest sent", o)
	}
	if n := len(srv.Mails()); n != 1 {
		t.Errorf("%d mails, want the digest", n)
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if len(ob.after) < 2 || ob.after[0] != 2*time.Minute {
		t.Errorf("EnqueueDigests called with %v, want email_after_unread on every tick", ob.after)
	}
}

// TestWorkerPerMailbox: no more than PerMailbox mails of a mailbox are
// sent at once; the others wait for their turn.
func TestWorkerPerMailbox(t *testing.T) {
	srv := startServer(t)
	srv.Hold()
	ob := newFakeOutbox(inboxtest.NewClock())
	for i := range 5 {
		m := testReply()
		m.MessageID = strings.Replace(m.MessageID, "m.7.", "m.7"+string(rune('a'+i))+".", 1)
		ob.add(m)
	}
	w := startWorker(t, ob, srv, func(o *WorkerOptions) { o.PerMailbox = 2 })
	inboxtest.Eventually(t, "two sends held by the server", func() bool { return srv.Held() == 2 })
	// More chances to claim: the slots are full.
	w.Wake()
	w.Tick(t, ob.clock.Now())
	w.Tick(t, ob.clock.Now())
	ob.mu.Lock()
	sending := 0
	for _, r := range ob.rows {
		if r.state == "sending" {
			sending++
		}
	}
	ob.mu.Unlock()
	if sending != 2 || srv.Held() != 2 {
		t.Errorf("%d rows claimed, %d sends at the server; want 2 and 2", sending, srv.Held())
	}
	srv.Release()
	for range 5 {
		if o := nextOutcome(t, ob); o.kind != "sent" {
			t.Fatalf("outcome %+v", o)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	w := NewWorker(WorkerOptions{Mailboxes: []config.Mailbox{testMailbox}, Rand: func() float64 { return 0.5 }})
	var total time.Duration
	attempts := 0
	for ; ; attempts++ {
		d, giveUp := w.retryAfter(attempts)
		if giveUp {
			break
		}
		if attempts == 1000 {
			t.Fatalf("still retrying after %d attempts over %v", attempts, total)
		}
		if attempts < 6 && d != 30*time.Second<<attempts {
			t.Errorf("delay after attempt %d = %v, want %v", attempts+1, d, 30*time.Second<<attempts)
		}
		if d > 30*time.Minute {
			t.Errorf("delay after attempt %d = %v, over the 30 min cap", attempts+1, d)
		}
		total += d
	}
	if total > 24*time.Hour || total < 23*time.Hour {
		t.Errorf("gave up after %d attempts over %v, want about a day", attempts+1, total)
	}
	// The jitter: 2 min ±20%.
	for r, want := range map[float64]time.Duration{0: 96 * time.Second, 0.25: 108 * time.Second, 0.75: 132 * time.Second} {
		w.o.Rand = func() float64 { return r }
		if d, _ := w.retryAfter(2); d != want {
			t.Errorf("delay with Rand() = %v: %v, want %v", r, d, want)
		}
	}
}

// BenchmarkContinuityDigest measures from the tick on which a digest
// falls due to its being sent and recorded: with the 1 s tick, a digest
// leaves within a second and this long of email_after_unread expiring
// (the target is 5 s). The store's EnqueueDigests query is not
// in it (the fake queues in memory).
func BenchmarkContinuityDigest(b *testing.B) {
	srv := startServer(b)
	clock := inboxtest.NewClock()
	ob := newFakeOutbox(clock)
	var due atomic.Bool
	ob.due = func(time.Time, time.Duration) []inbox.OutboundEmail {
		if due.CompareAndSwap(true, false) {
			return []inbox.OutboundEmail{testDigest()}
		}
		return nil
	}
	w := startWorker(b, ob, srv, func(o *WorkerOptions) { o.Logger = slog.New(slog.DiscardHandler) })
	for b.Loop() {
		due.Store(true)
		w.Tick(b, clock.Now())
		if o := nextOutcome(b, ob); o.kind != "sent" {
			b.Fatalf("outcome %+v", o)
		}
	}
}
