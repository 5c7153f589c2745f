package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
)

// NewMessage is a message to append to a conversation.
type NewMessage struct {
	ConversationID int64
	// ClientID is the sender's own id for the message, an idempotency key
	// scoped to its author: the conversation's contact, or one agent. A
	// second append by the same author with the same ClientID and the same
	// content (Text, HTML and AttachmentIDs; not Channel or State, which
	// the server decides) stores nothing and returns the first message;
	// with other content it is a ConflictError (ErrConflict). Another
	// author's equal ClientID is another key. Empty means none.
	ClientID string
	Author   string // AuthorContact, AuthorAgent or AuthorSystem
	AgentID  *int64 // the author when Author is AuthorAgent
	// Channel is, for a contact's or system message, the channel it came
	// by: ChannelChat (the default) or ChannelEmail. For an agent message
	// it is the channel the agent asks for: ReplyAuto (or "") follows
	// rule 5, ChannelChat or ChannelEmail is the agent's choice. The
	// store decides it with the contact as the transaction that stores
	// the message reads them (AddReply). ChannelNote makes an agent
	// message a private note (see ChannelNote), decided without the
	// contact or any Channel.
	Channel string
	Text    string
	// HTML is the message's HTML body (email); it is sanitized here.
	HTML string
	// State is the initial delivery state of a contact's or system
	// message; empty means StateSent. An agent message's is decided with
	// its channel: leave it empty.
	State string
	// AttachmentIDs are attachments uploaded to this conversation by this
	// message's author and not yet part of a message; any other is an
	// InvalidError for "attachment_ids".
	AttachmentIDs []int64
}

// errForeignAttachment refuses a message naming an attachment that is
// unknown, already sent, or not its author's own upload.
var errForeignAttachment = invalid("attachment_ids", "unknown, already sent or not uploaded by the sender")

// reusedClientID is the error of a client id its author already used for
// a message with other content.
func reusedClientID() error {
	return &ConflictError{Field: "client_id", Reason: "was already used by this sender for a different message"}
}

// sameContent reports whether m, a retry, carries what was stored under
// its key on channel: the same text, HTML and attachments (atts sorted,
// as checkMessage leaves m.AttachmentIDs), and a private note for a
// private note. Which channel a reply went by is the server's choice,
// but whether it is a note is the agent's: a note's key used again for
// a reply (or the reverse) is other content, never answered with the
// message the contact could (or could not) see.
func sameContent(m NewMessage, channel, text, html string, atts []int64) bool {
	return m.Text == text && m.HTML == html && slices.Equal(m.AttachmentIDs, atts) &&
		(m.Channel == ChannelNote) == (channel == ChannelNote)
}

// AddMessage appends a message to a conversation and returns it with
// created false when its client id was already stored. It returns only
// once the message is committed. A contact message in a conversation
// without participants puts it in Unassigned, reopening it (rule 4).
//
// An agent message's channel is decided as AddReply says.
func (s *Store) AddMessage(ctx context.Context, m NewMessage) (Message, bool, error) {
	r, err := s.append(ctx, m)
	if err != nil {
		return Message{}, false, err
	}
	return r.msg, r.created, r.err
}

// AddReply appends an agent's reply (Author AuthorAgent) as AddMessage
// does, and also returns where it went and why. Its channel is decided
// by rule 5, or is the agent's choice (NewMessage.Channel), inside the
// transaction that stores it, with the store's channels
// (Channel.Reaches): a contact who comes online meanwhile either is seen
// online, or finds the reply committed and queued, and gets it
// (SetContactsOnline). A reply by email is stored queued with its
// email_outbox row, in that same transaction. After the commit the
// reply is handed to its channel's Deliver.
//
// A private note (Channel ChannelNote) is decided without asking any
// Channel or reading the contact: channel note, state sent, reason
// ReasonNote. It is handed to no Deliver and enqueues no mail.
//
// An explicit email that cannot go (no email channel, no address) is an
// InvalidError for "channel". A reply whose client id was already stored
// (created false) is that message, on the channel it was stored with.
func (s *Store) AddReply(ctx context.Context, m NewMessage) (Message, ReplyDecision, bool, error) {
	if m.Author != AuthorAgent {
		return Message{}, ReplyDecision{}, false, invalid("author", "must be agent for a reply")
	}
	r, err := s.append(ctx, m)
	if err != nil {
		return Message{}, ReplyDecision{}, false, err
	}
	if r.err != nil {
		return Message{}, ReplyDecision{}, false, r.err
	}
	return r.msg, r.reply, r.created, nil
}

// append queues m and waits for its commit; the request holds the
// outcome.
func (s *Store) append(ctx context.Context, m NewMessage) (*appendReq, error) {
	if err := s.checkMessage(&m); err != nil {
		return nil, err
	}
	req := &appendReq{in: m, at: s.now(), done: make(chan struct{})}
	if err := s.app.submit(ctx, req); err != nil {
		return nil, err
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		// The message may still be committed; a retry with the same client
		// id finds it.
		return nil, ctx.Err()
	}
	return req, nil
}

// AddMessageAsync is AddMessage for a caller that must not wait for the
// commit: it queues the message and returns; done is called once with
// what AddMessage would have returned, after the message's event is
// published. done runs on the store's committing goroutine and must not
// block. It is not called when AddMessageAsync returns an error (an
// invalid message, a closed store, or ctx ending before the queue had
// room).
func (s *Store) AddMessageAsync(ctx context.Context, m NewMessage, done func(Message, bool, error)) error {
	if err := s.checkMessage(&m); err != nil {
		return err
	}
	req := &appendReq{in: m, at: s.now(), then: done}
	return s.app.submit(ctx, req)
}

func (s *Store) checkMessage(m *NewMessage) error {
	switch m.Author {
	case AuthorContact, AuthorSystem:
		m.AgentID = nil
	case AuthorAgent:
		if m.AgentID == nil {
			return invalid("agent_id", "is required for an agent message")
		}
	default:
		return invalid("author", "must be contact, agent or system")
	}
	if m.Author == AuthorAgent {
		// Decided in the transaction that stores it (rule 5).
		switch m.Channel {
		case "":
			m.Channel = ReplyAuto
		case ReplyAuto, ChannelChat, ChannelEmail, ChannelNote:
		default:
			return invalid("channel", "must be auto, chat, email or note")
		}
		if m.State != "" {
			return invalid("state", "is decided with an agent message's channel (rule 5)")
		}
	} else {
		if m.Channel == "" {
			m.Channel = ChannelChat
		}
		if m.Channel != ChannelChat && m.Channel != ChannelEmail {
			return invalid("channel", "must be chat or email")
		}
		if m.State == "" {
			m.State = StateSent
		}
		switch m.State {
		case StateQueued, StateSent, StateDelivered, StateRead:
		default:
			return invalid("state", "unknown state %q", m.State)
		}
	}
	// User text (text.go): NUL and invalid UTF-8 are refused on both
	// databases alike.
	var err error
	if m.Text, err = MultiLine("text", m.Text); err != nil {
		return err
	}
	if m.HTML, err = MultiLine("html", m.HTML); err != nil {
		return err
	}
	clientID := m.ClientID
	if m.ClientID, err = SingleLine("client_id", m.ClientID); err != nil {
		return err
	}
	if clientID != "" && m.ClientID == "" {
		return invalid("client_id", "has no visible characters")
	}
	m.Text = strings.TrimSpace(m.Text)
	if m.Text == "" && m.HTML == "" && len(m.AttachmentIDs) == 0 {
		return invalid("text", "is empty")
	}
	if len(m.Text) > s.opts.MaxMessageBytes {
		return invalid("text", "is longer than %d bytes", s.opts.MaxMessageBytes)
	}
	if len(m.ClientID) > 128 {
		return invalid("client_id", "is longer than 128 bytes")
	}
	if m.HTML != "" {
		m.HTML = SanitizeEmailHTML(m.HTML)
	}
	slices.Sort(m.AttachmentIDs)
	m.AttachmentIDs = slices.Compact(m.AttachmentIDs)
	return nil
}

var (
	appendBatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "microchat_append_batch_size",
		Help:    "Messages committed per transaction by the group commit.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	appendSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "microchat_append_commit_seconds",
		Help:    "Time to commit one batch of messages.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
	})
	appendErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "microchat_append_errors_total",
		Help: "Messages that failed to append.",
	})
)

// Collectors returns the Prometheus collectors of inbox.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{appendBatchSize, appendSeconds, appendErrors, leasesHeld}
}

type appendReq struct {
	in NewMessage
	at time.Time
	// done is closed, or then called, once the message is committed.
	done chan struct{}
	then func(Message, bool, error)

	// reply is the message's channel and first state as stored: decided
	// in the transaction for an agent message (rule 5), noteDecision for
	// a private note, in.Channel and in.State for the others.
	reply    ReplyDecision
	msg      Message
	created  bool
	reopened bool
	// eventID is the id of the message_added event stored for a created
	// message: the published event carries it, as its replay does.
	eventID int64
	err     error
}

// decide sets r.reply for an agent message to contact c (rule 5).
func (r *appendReq) decide(cs *channelSet, c Contact) error {
	d, err := cs.decide(c, r.in.Channel)
	if err != nil {
		return setErr(r, err)
	}
	r.reply = d
	return nil
}

// retried makes r the earlier message stored under its client id.
func (r *appendReq) retried(m Message) {
	r.msg, r.created = m, false
	r.reply = ReplyDecision{Channel: m.Channel, State: m.State, Reason: reasonRetry}
}

// decidedWithContact reports whether r is an agent message whose channel
// is decided with its contact (rule 5): any but a private note.
func (r *appendReq) decidedWithContact() bool {
	return r.in.Author == AuthorAgent && r.in.Channel != ChannelNote
}

// hasReplies reports whether the batch holds agent messages whose
// channels are decided with their contacts.
func hasReplies(batch []*appendReq) bool {
	for _, r := range batch {
		if r.decidedWithContact() {
			return true
		}
	}
	return false
}

// appender is the group commit: workers take the waiting messages, commit
// up to MaxBatch of them in one transaction, and only then answer each
// caller and publish the events. SQLite has one writer, so one worker;
// PostgreSQL has several, each with its own connection, and locks the
// conversations of a batch in ascending id order so that two batches never
// deadlock.
type appender struct {
	s     *Store
	stmts sqliteStmts // prepared once on the writer (SQLite)
	queue chan *appendReq
	mu    sync.RWMutex
	shut  bool
	wg    sync.WaitGroup
	// committed (SQLite) takes each committed batch from the one writer
	// to the publisher goroutine, which publishes its events, hands its
	// replies to their channels and answers its callers, in commit order,
	// while the writer already stores the next batch. Nil on PostgreSQL,
	// whose workers do it themselves.
	committed chan committedBatch
	pubClose  sync.Once
	pubDone   chan struct{}
}

// committedBatch is a batch whose transaction has ended, with the
// channels it was decided with.
type committedBatch struct {
	reqs []*appendReq
	cs   *channelSet
}

var errClosed = errors.New("inbox: store closed")

func newAppender(s *Store) (*appender, error) {
	a := &appender{s: s, queue: make(chan *appendReq, 4096)}
	if s.dialect == dialectSQLite {
		if err := a.stmts.prepare(s.sqlW); err != nil {
			return nil, err
		}
	}
	workers := 1
	if s.dialect == dialectPostgres {
		workers = min(4, max(1, s.opts.MaxOpenConns/2))
	} else {
		a.committed, a.pubDone = make(chan committedBatch, 4), make(chan struct{})
		go a.publisher()
	}
	for range workers {
		a.wg.Add(1)
		go a.work()
	}
	return a, nil
}

func (a *appender) submit(ctx context.Context, r *appendReq) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.shut {
		return errClosed
	}
	select {
	case a.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops accepting and waits until every accepted message is done.
func (a *appender) close() {
	a.mu.Lock()
	if !a.shut {
		a.shut = true
		close(a.queue)
	}
	a.mu.Unlock()
	a.wg.Wait()
	if a.committed != nil {
		a.pubClose.Do(func() { close(a.committed) })
		<-a.pubDone
	}
}

// publisher finishes the writer's committed batches in order (SQLite).
func (a *appender) publisher() {
	defer close(a.pubDone)
	for b := range a.committed {
		a.finish(b.reqs, b.cs)
	}
}

// lingerBelow is the size under which a batch taken while the writer is
// busy waits Options.Linger for more (at most a quarter of the largest
// batch).
const lingerBelow = 16

func (a *appender) work() {
	defer a.wg.Done()
	size := a.s.opts.MaxBatch
	switch {
	case a.s.dialect == dialectSQLite && size <= 0:
		size = sqliteMaxRows
	case a.s.dialect == dialectSQLite:
		size = min(size, sqliteMaxRows)
	case size <= 0:
		size = 64
	}
	batch := make([]*appendReq, 0, size)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	busy := false
	for r := range a.queue {
		batch = append(batch[:0], r)
		a.fill(&batch, nil)
		// Under load (the last batch was not alone) a small batch waits
		// a little for more: a commit costs the writer about as much as
		// ten messages, so larger batches carry more messages per second
		// on the same CPU. Alone, a message is committed at once.
		if busy && len(batch) < min(cap(batch)/4, lingerBelow) && a.s.opts.Linger > 0 {
			linger.Reset(a.s.opts.Linger)
			a.fill(&batch, linger.C)
			linger.Stop()
		}
		busy = len(batch) > 1
		a.run(batch)
	}
}

// fill adds waiting messages to the batch until it is full or, with until
// nil, none waits; with until, until it fires.
func (a *appender) fill(batch *[]*appendReq, until <-chan time.Time) {
	for len(*batch) < cap(*batch) {
		if until == nil {
			select {
			case r, ok := <-a.queue:
				if !ok {
					return
				}
				*batch = append(*batch, r)
			default:
				return
			}
			continue
		}
		select {
		case r, ok := <-a.queue:
			if !ok {
				return
			}
			*batch = append(*batch, r)
		case <-until:
			return
		}
	}
}

// run commits a batch. If the batch fails for a reason other than an
// unreachable database, each message is retried alone so that one bad
// message does not fail the others.
func (a *appender) run(batch []*appendReq) {
	if TestHookAppendBatch != nil {
		TestHookAppendBatch(len(batch))
	}
	start := time.Now()
	// One set of channels decides the whole batch, retries included.
	cs := a.s.channels()
	// exec leaves the errors of single messages (an unknown conversation)
	// in their requests.
	err := a.exec(batch, cs)
	switch {
	case err != nil && len(batch) > 1 && !isUnavailable(err):
		for _, r := range batch {
			if err := a.exec([]*appendReq{r}, cs); err != nil {
				r.err = err
			}
		}
	case err != nil:
		for _, r := range batch {
			r.err = err
		}
	}
	appendSeconds.Observe(time.Since(start).Seconds())
	appendBatchSize.Observe(float64(len(batch)))
	if a.committed != nil {
		// work reuses batch's array for the next batch.
		a.committed <- committedBatch{reqs: slices.Clone(batch), cs: cs}
		return
	}
	a.finish(batch, cs)
}

// finish publishes the events of a batch's new messages, hands its
// agent messages to their channels and answers each caller: after the
// batch's transaction ended, in the order the batches were committed.
func (a *appender) finish(batch []*appendReq, cs *channelSet) {
	var evs []Event
	for _, r := range batch {
		if r.err != nil {
			appendErrors.Inc()
			r.err = dbErr(r.err)
			continue
		}
		if r.created {
			ev := messageEvent(r.msg, r.reopened)
			ev.ID = r.eventID
			evs = append(evs, ev)
		}
	}
	if len(evs) > 0 {
		a.s.pub.Publish(evs)
	}
	a.s.deliver(cs, batch)
	for _, r := range batch {
		if r.then != nil {
			r.then(r.msg, r.created, r.err)
		} else {
			close(r.done)
		}
	}
}

func (a *appender) exec(batch []*appendReq, cs *channelSet) error {
	for _, r := range batch {
		r.created, r.reopened, r.msg, r.eventID, r.err = false, false, Message{}, 0, nil
		r.reply = ReplyDecision{Channel: r.in.Channel, State: r.in.State}
		if r.in.Channel == ChannelNote {
			r.reply = noteDecision
		}
	}
	if a.s.dialect == dialectPostgres {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return a.execPostgres(ctx, batch, cs)
	}
	// No deadline on SQLite: a local file either answers or waits for its
	// lock (busy_timeout), and a cancellable context costs modernc a
	// goroutine and a progress handler for every statement.
	return a.execSQLite(context.Background(), batch, cs)
}

// TestHookAppendBatch, when set (by tests only, before the store opens and
// unset after it closed), is called by the appender with the size of each
// batch of messages before it stores it, on the appender's goroutine: a
// test of another package blocks it there to make the store slow, with
// messages waiting behind.
var TestHookAppendBatch func(messages int)

// testAfterDecide runs the tests' afterDecide hook, if any.
func (s *Store) testAfterDecide() {
	if s.afterDecide != nil {
		s.afterDecide()
	}
}

// messageEvent is the event of an added message, the same whether it is
// published now or replayed from the database later.
func messageEvent(m Message, reopened bool) Event {
	data, _ := json.Marshal(MessageAdded{Message: m, Reopened: reopened})
	return Event{ConversationID: m.ConversationID, Seq: m.Seq, Type: EventMessageAdded, Data: data, At: m.CreatedAt}
}

// reopenedData is stored in the event of a message that reopened its
// conversation; the message itself is read from messages on replay.
var reopenedData = []byte(`{"reopened":true}`)

func (r *appendReq) result(id, seq int64, created bool, prevStatus string) {
	m := r.in
	var clientID *string
	if m.ClientID != "" {
		clientID = &m.ClientID
	}
	r.created = created
	r.reopened = created && m.Author == AuthorContact && prevStatus == StatusClosed
	r.msg = Message{ID: id, ConversationID: m.ConversationID, Seq: seq, ClientID: clientID,
		Author: m.Author, AgentID: m.AgentID, Channel: r.reply.Channel, Text: m.Text, HTML: m.HTML,
		State: r.reply.State, CreatedAt: r.at}
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// setErr records a per-message error; returned from exec it also rolls the
// batch back so that run retries the others alone.
func setErr(r *appendReq, err error) error {
	r.err = err
	return err
}

// inInts expands one %s in q to placeholders for ids, after the leading
// args.
func inInts(q string, ids []int64, lead ...any) (string, []any) {
	ph := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := lead
	for _, id := range ids {
		args = append(args, id)
	}
	return fmt.Sprintf(q, ph), args
}

// PostgreSQL: one pipelined round trip per batch, plus the COMMIT. The
// first statement after BEGIN locks the batch's conversations in
// ascending id order; each message is then one statement that checks its
// client id, bumps the sequence, inserts the message and its event and
// claims its attachments. After the lock every statement sees the others'
// commits (read committed), so the check of the author's client id is
// exact.
//
// A batch with agent replies (private notes aside) takes one round trip
// more, before the lock: it reads the contacts of their conversations FOR
// SHARE, in ascending id order, and decides each reply's channel (rule 5)
// in Go with the channels' Reaches. SetContactsOnline updates the contact row,
// so it waits for this transaction, and then finds its queued chat
// replies committed; or this read waits for it, and sees the contact
// online. Every transaction that locks both takes the contacts first,
// then the conversations, each in ascending id order, so that none waits
// for another in a cycle.
const pgLock = `SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE`

const pgContacts = `SELECT v.id, c.id, c.name, c.online, c.email
	FROM conversations v JOIN contacts c ON c.id = v.contact_id
	WHERE v.id = ANY($1) ORDER BY c.id FOR SHARE OF c`

// pgAppendWith is the statement of one message; pgAppend is it alone,
// pgAppendEmail also inserts the outbox row of an email reply.
const pgAppendWith = `WITH prev AS (
	SELECT status FROM conversations WHERE id = $1
), dup AS (
	SELECT id, seq, author, agent_id, channel, text, html, state, created_at,
		(SELECT array_agg(a.id ORDER BY a.id) FROM attachments a WHERE a.message_id = messages.id) AS atts
	FROM messages
	WHERE conversation_id = $1 AND client_id = $2 AND author = $4::text AND COALESCE(agent_id, 0) = COALESCE($5::bigint, 0)
), c AS (
	UPDATE conversations SET seq = seq + 1,
		last_activity_at = CASE WHEN $6 = 'note' THEN last_activity_at ELSE $9 END,
		status = CASE WHEN $4 = 'contact' THEN 'open' ELSE status END,
		closed_at = CASE WHEN $4 = 'contact' THEN NULL ELSE closed_at END,
		has_email = has_email OR $6 = 'email'
	WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM dup)
	RETURNING seq
), m AS (
	INSERT INTO messages (conversation_id, seq, client_id, author, agent_id, channel, text, html, state, created_at)
	SELECT $1, c.seq, $2, $4, $5, $6, $7, $8, $10, $9 FROM c
	RETURNING id, seq
), e AS (
	INSERT INTO events (conversation_id, seq, type, message_id, data, created_at)
	SELECT $1, m.seq, 'message_added', m.id,
		CASE WHEN $4 = 'contact' AND (SELECT status FROM prev) = 'closed' THEN $11::bytea END, $9
	FROM m
	RETURNING id
), a AS (
	UPDATE attachments SET message_id = m.id FROM m
	WHERE attachments.id = ANY($3) AND attachments.conversation_id = $1 AND attachments.message_id IS NULL
		AND attachments.uploader = $4::text AND COALESCE(attachments.uploader_agent_id, 0) = COALESCE($5::bigint, 0)
	RETURNING attachments.id
)`

const pgAppendResult = `
SELECT m.id, m.seq, true, (SELECT status FROM prev), (SELECT count(*) FROM a), (SELECT id FROM e),
	NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::bigint[] FROM m
UNION ALL
SELECT dup.id, dup.seq, false, (SELECT status FROM prev), 0, NULL::bigint,
	dup.author, dup.agent_id, dup.channel, dup.text, dup.html, dup.state, dup.created_at, dup.atts FROM dup`

const (
	pgAppend = pgAppendWith + pgAppendResult
	// The outbox row of a reply by email (migration 0006), due at once;
	// the outbox worker sends it.
	pgAppendEmail = pgAppendWith + `, o AS (
	INSERT INTO email_outbox (kind, conversation_id, message_id, state, attempts, next_attempt_at, last_error, created_at)
	SELECT 'reply', $1, m.id, 'pending', 0, $9, '', $9 FROM m
)` + pgAppendResult
)

func (a *appender) execPostgres(ctx context.Context, batch []*appendReq, cs *channelSet) error {
	conn, err := a.s.sqlW.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		err := a.pgBatch(ctx, pc, batch, cs)
		if err == nil {
			err = a.s.testBeforeCommit()
		}
		if err == nil {
			err = a.pgCommit(ctx, pc, batch)
		}
		if err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pc.Exec(rctx, "ROLLBACK")
			return err
		}
		for _, r := range batch {
			if r.created && len(r.in.AttachmentIDs) > 0 {
				r.msg.Attachments, _ = a.s.attachmentsOf(ctx, []int64{r.msg.ID})
			}
		}
		return nil
	})
}

// pgCommit commits the batch's transaction. With the bus, the
// notifications of the batch's events (pgbus.go) go in the same round
// trip, just before the COMMIT: they are delivered at the commit.
func (a *appender) pgCommit(ctx context.Context, pc *pgx.Conn, batch []*appendReq) error {
	b := &pgx.Batch{}
	var created []*appendReq
	for _, r := range batch {
		if r.created {
			created = append(created, r)
		}
	}
	if len(created) > 0 && a.s.hooksMaybe() {
		// The webhook deliveries of the new messages (webhooks.go).
		rows := messageHookRows(created)
		typs, stream, ord, ats := make([]string, len(rows)), make([]int64, len(rows)), make([]int64, len(rows)), make([]time.Time, len(rows))
		evs := make([]int64, len(rows))
		for i, h := range rows {
			typs[i], evs[i], stream[i], ord[i], ats[i] = h.typ, *h.event, h.stream, h.ord, h.at
		}
		b.Queue(pgHookInsert, typs, evs, stream, ord, ats)
	}
	if a.s.bus == nil {
		if b.Len() == 0 {
			_, err := pc.Exec(ctx, "COMMIT")
			return err
		}
		b.Queue("COMMIT")
		return pc.SendBatch(ctx, b).Close()
	}
	var seqs []convSeq
	for _, r := range created {
		seqs = append(seqs, convSeq{r.msg.ConversationID, r.msg.Seq})
	}
	for _, p := range a.s.bus.rangePayloads(seqs) {
		b.Queue("SELECT pg_notify($1, $2)", p.channel, p.payload)
	}
	if b.Len() == 0 {
		_, err := pc.Exec(ctx, "COMMIT")
		return err
	}
	b.Queue("COMMIT")
	return pc.SendBatch(ctx, b).Close()
}

// pgBatch runs the batch's statements up to the COMMIT. A per-message
// error (unknown conversation, foreign attachment, a channel that cannot
// be used) is returned too, which rolls the batch back; run retries the
// others.
func (a *appender) pgBatch(ctx context.Context, pc *pgx.Conn, batch []*appendReq, cs *channelSet) error {
	ids := make([]int64, 0, len(batch))
	var replyIDs []int64
	for _, r := range batch {
		ids = append(ids, r.in.ConversationID)
		if r.decidedWithContact() {
			replyIDs = append(replyIDs, r.in.ConversationID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	b := &pgx.Batch{}
	lead := 0 // statements before the messages'
	if replyIDs != nil {
		slices.Sort(replyIDs)
		if err := a.pgDecide(ctx, pc, batch, cs, slices.Compact(replyIDs), ids); err != nil {
			return err
		}
	} else {
		b.Queue("BEGIN")
		b.Queue(pgLock, ids)
		lead = 2
	}
	for _, r := range batch {
		m := r.in
		atts := m.AttachmentIDs
		if atts == nil {
			atts = []int64{}
		}
		q := pgAppend
		if m.Author == AuthorAgent && r.reply.Channel == ChannelEmail {
			q = pgAppendEmail
		}
		b.Queue(q, m.ConversationID, nullString(m.ClientID), atts, m.Author, nullInt(m.AgentID),
			r.reply.Channel, m.Text, m.HTML, r.at, r.reply.State, reopenedData)
	}
	br := pc.SendBatch(ctx, b)
	err := pgResults(br, batch, lead)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, r := range batch {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// pgDecide begins the transaction, reads the contacts of the replies'
// conversations (replyIDs) FOR SHARE, locks the batch's conversations
// (ids) and decides each reply's channel.
func (a *appender) pgDecide(ctx context.Context, pc *pgx.Conn, batch []*appendReq, cs *channelSet, replyIDs, ids []int64) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(pgContacts, replyIDs)
	b.Queue(pgLock, ids)
	br := pc.SendBatch(ctx, b)
	contacts, err := pgReadContacts(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, r := range batch {
		if !r.decidedWithContact() {
			continue
		}
		c, ok := contacts[r.in.ConversationID]
		if !ok {
			return setErr(r, ErrNotFound)
		}
		// A retry of a stored reply is found by its statement; deciding
		// it again costs nothing, but a choice that can no longer go
		// (email to a contact whose address was removed) fails it.
		if err := r.decide(cs, c); err != nil {
			return err
		}
	}
	a.s.testAfterDecide()
	return nil
}

// pgReadContacts reads the results of pgDecide's batch: the contacts by
// conversation id.
func pgReadContacts(br pgx.BatchResults) (map[int64]Contact, error) {
	if _, err := br.Exec(); err != nil { // BEGIN
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	contacts := map[int64]Contact{}
	for rows.Next() {
		var (
			conv int64
			c    Contact
		)
		if err := rows.Scan(&conv, &c.ID, &c.Name, &c.Online, &c.Email); err != nil {
			rows.Close()
			return nil, err
		}
		contacts[conv] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	_, err = br.Exec() // the lock
	return contacts, err
}

// pgResults reads the batch's results: lead statements (BEGIN, the lock)
// and then one per message.
func pgResults(br pgx.BatchResults, batch []*appendReq, lead int) error {
	for range lead {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	for _, r := range batch {
		if err := pgResult(br, r); err != nil {
			return err
		}
	}
	return nil
}

func pgResult(br pgx.BatchResults, r *appendReq) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		r.err = ErrNotFound
		return nil
	}
	var (
		id, seq, attached int64
		eventID           *int64
		created           bool
		prev              *string
		author, ch, text  *string
		html, state       *string
		agentID           *int64
		at                *time.Time
		atts              []int64
	)
	if err := rows.Scan(&id, &seq, &created, &prev, &attached, &eventID, &author, &agentID, &ch, &text, &html, &state, &at, &atts); err != nil {
		return err
	}
	status := ""
	if prev != nil {
		status = *prev
	}
	r.result(id, seq, created, status)
	if eventID != nil {
		r.eventID = *eventID
	}
	switch {
	case !created && !sameContent(r.in, *ch, *text, *html, atts):
		r.msg, r.err = Message{}, reusedClientID()
	case !created:
		r.retried(Message{ID: id, ConversationID: r.in.ConversationID, Seq: seq, ClientID: r.msg.ClientID,
			Author: *author, AgentID: agentID, Channel: *ch, Text: *text, HTML: *html, State: *state, CreatedAt: at.UTC()})
	case attached != int64(len(r.in.AttachmentIDs)):
		r.err = errForeignAttachment
	}
	return rows.Err()
}
