package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
)

// PGBus is the Publisher of a Store on PostgreSQL: it carries events,
// transient events and Revoked notices to every node (process) on the same
// database and schema, through LISTEN/NOTIFY, without a broker.
//
//   - Stored events: the transaction that stores them (Store.write, the
//     appender's batch) also runs pg_notify on the events channel with
//     the writing node's id and the (conversation, first seq, last seq)
//     ranges of its events, never their payloads (NOTIFY carries at most
//     8,000 bytes; a message may be 16 KiB). PostgreSQL delivers it at
//     the commit, and never for a rollback. After the commit the writing
//     node publishes the events to its own Hub, as on SQLite.
//   - Non-stored events (typing, presence, contact_presence: Seq 0; and
//     conversation_deleted, whose rows are gone) carry their JSON: inside
//     the transaction that made them when there is one, else sent by a
//     goroutine of the bus just after Publish (Publish never blocks).
//   - Revoked notices go on a channel of their own, as JSON, sent the
//     same way, and reach the local Hub at once.
//
// Each node listens on a connection of its own (not from the pool). A
// notification from another node is read in batches: while one batch's
// events are read from the database (one query for the events and one
// for their messages), the next notifications gather. The events are
// handed to the local Hub in (conversation, seq) order; the Follower of
// each socket drops what it already had and reads what it missed.
//
// When the listening connection is lost the node is behind (Ready says
// why; metrics microchat_events_listening and microchat_events_behind):
// it reconnects with backoff (50 ms doubling to 5 s, jittered), listens
// again, and then catches up from the database: every event whose
// created_at is at most catchUpMargin before the connection was last
// known alive, past the last seq this node saw of its conversation, is
// published locally. Then it asks the Hub's OnResync functions to re-check
// every socket's credentials (Revoked notices missed while deaf), and is
// ready again.
//
// Channel names are "microchat_events" and "microchat_revoked" on the
// schema public and, on another schema (the tests' schemas, or several
// installations on one database), suffixed with "." and the schema,
// truncated to 63 bytes: NOTIFY reaches the listeners of a whole
// database, and the nodes of one installation share a schema.
type PGBus struct {
	s      *Store
	hub    *Hub
	node   string // the node id, without newlines
	evCh   string // channel of stored-event ranges and non-stored events
	revCh  string // channel of Revoked notices
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sendq  chan busNote
	// sendMu guards closing sendq against enqueue.
	sendMu     sync.RWMutex
	sendClosed bool

	listening atomic.Bool
	behind    atomic.Bool
	// pid is the listening connection's backend process id, 0 while
	// there is none (tests terminate it).
	pid atomic.Uint32
	// beforeReconnect, when set (tests), runs after the listening
	// connection was lost and before listening again.
	beforeReconnect atomic.Pointer[func()]

	notifications atomic.Uint64 // notifications received from other nodes
	remote        atomic.Uint64 // events of other nodes published locally
	caughtUp      atomic.Uint64 // events published by catching up
	dropped       atomic.Uint64 // notifications that could not be sent
	unsent        atomic.Int64  // notifications queued or being sent

	mu sync.Mutex
	// seen is the last seq of each conversation published on this node
	// (by it or another), at most seenCap of them: catching up starts
	// there. When full it is emptied: catching up then republishes the
	// window's events of the conversations it forgot, which Followers
	// drop as duplicates.
	seen map[int64]int64
}

// The bus's tunables.
const (
	// maxNotifyPayload is the most bytes of one notification's payload
	// (PostgreSQL's limit is 8,000 less the channel name).
	maxNotifyPayload = 7900
	// catchUpMargin is how long before the listening connection was last
	// known alive a catch-up starts: it covers transactions that were
	// still open then (the appender's run at most 30 s), and the nodes'
	// clocks disagreeing (created_at is the writer's clock).
	catchUpMargin = time.Minute
	// seenCap bounds PGBus.seen.
	seenCap = 100_000
	// pingEvery is how long the listening connection may stay silent
	// before a query checks that it still answers.
	pingEvery = 10 * time.Second
	// catchUpPage is how many events a catch-up reads at a time.
	catchUpPage = 500
	// busBatch is the most notifications handled in one batch.
	busBatch = 1024
)

// Payload kinds, the first byte of a payload on the events channel,
// followed by the node id, a newline and the rest.
const (
	payloadRanges    = 's' // "conv:first-last,conv:seq,..." (a lone seq: first = last)
	payloadTransient = 't' // a JSON array of events
)

// busNote is one notification to send.
type busNote struct{ channel, payload string }

// convSeq is one stored event's place.
type convSeq struct{ conv, seq int64 }

// startBus starts the bus of s: it listens at once when it can (else the
// node starts behind, and catches up once listening), and returns.
func startBus(ctx context.Context, s *Store) (*PGBus, error) {
	var schema string
	if err := s.sqlW.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b := &PGBus{s: s, hub: s.hub, node: strings.ReplaceAll(s.opts.NodeID, "\n", " "),
		evCh: busChannel("microchat_events", schema), revCh: busChannel("microchat_revoked", schema),
		sendq: make(chan busNote, 4096), seen: map[int64]int64{}}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	lostAt := s.now()
	conn, err := b.listen(ctx)
	if err != nil {
		s.log.Warn("events: not listening for other nodes' events yet", "err", err)
		b.behind.Store(true)
	}
	b.wg.Add(2)
	go b.run(conn, lostAt)
	go b.sender()
	return b, nil
}

// busChannel is the channel name base on schema.
func busChannel(base, schema string) string {
	if schema == "" || schema == "public" {
		return base
	}
	name := base + "." + schema
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

var _ Publisher = (*PGBus)(nil)

// Publish hands events to the local Hub and sends the non-stored ones
// (transient, conversation_deleted) to the other nodes. Stored events are
// announced by the transaction that stored them.
func (b *PGBus) Publish(evs []Event) {
	b.local(evs)
	var out []Event
	for _, ev := range evs {
		if !stored(ev) {
			out = append(out, ev)
		}
	}
	for _, p := range b.jsonPayloads(out) {
		b.enqueue(p)
	}
}

// Revoke hands the notice to the local Hub and sends it to the other
// nodes.
func (b *PGBus) Revoke(r Revoked) {
	b.hub.Revoke(r)
	data, _ := json.Marshal(r)
	b.enqueue(busNote{b.revCh, b.node + "\n" + string(data)})
}

// Ready is nil while the node listens and has caught up; else an error
// that says which.
func (b *PGBus) Ready() error {
	switch {
	case !b.listening.Load():
		return errors.New("events: not listening for other nodes' events (reconnecting)")
	case b.behind.Load():
		return errors.New("events: catching up after a lost listening connection")
	}
	return nil
}

// Collectors returns the bus's Prometheus metrics: whether it listens,
// whether it is behind, and its counters.
func (b *PGBus) Collectors() []prometheus.Collector {
	gauge := func(o prometheus.GaugeOpts, v *atomic.Bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(o, func() float64 {
			if v.Load() {
				return 1
			}
			return 0
		})
	}
	counter := func(o prometheus.CounterOpts, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(o, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		gauge(prometheus.GaugeOpts{Name: "microchat_events_listening", Help: "1 while this node listens for the other nodes' events (PostgreSQL LISTEN)."}, &b.listening),
		gauge(prometheus.GaugeOpts{Name: "microchat_events_behind", Help: "1 while this node has not caught up with the events committed while it was not listening."}, &b.behind),
		counter(prometheus.CounterOpts{Name: "microchat_events_notifications_total", Help: "Notifications received from other nodes (event ranges, transient events, revocations)."}, &b.notifications),
		counter(prometheus.CounterOpts{Name: "microchat_events_remote_total", Help: "Stored events of other nodes read and published to this node's sockets."}, &b.remote),
		counter(prometheus.CounterOpts{Name: "microchat_events_catchup_total", Help: "Events published by catching up after a lost listening connection."}, &b.caughtUp),
		counter(prometheus.CounterOpts{Name: "microchat_events_notify_dropped_total", Help: "Transient events and revocations not sent to the other nodes (queue full or database unavailable)."}, &b.dropped),
	}
}

// close stops listening and sending; what waits to be sent is sent first,
// within a few seconds.
func (b *PGBus) close() {
	b.sendMu.Lock()
	if !b.sendClosed {
		b.sendClosed = true
		close(b.sendq)
	}
	b.sendMu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// Ready is nil while this node receives the other nodes' events: always
// on SQLite (one node) and without the bus; on PostgreSQL, an error while
// the bus does not listen or has not caught up after a lost listening
// connection (PGBus.Ready). web's /readyz answers 503 with it.
func (s *Store) Ready() error {
	if s.bus == nil {
		return nil
	}
	return s.bus.Ready()
}

// Bus returns the store's PGBus, nil on SQLite or without it
// (Options.NoBus, Options.Publisher).
func (s *Store) Bus() *PGBus { return s.bus }

// Collectors returns this store's own Prometheus metrics: the bus's
// (PGBus.Collectors) on PostgreSQL, none otherwise. Package-level metrics
// are Collectors().
func (s *Store) Collectors() []prometheus.Collector {
	if s.bus == nil {
		return nil
	}
	return s.bus.Collectors()
}

// stored reports whether ev has a row in events: not transient, and not
// the deletion of its conversation.
func stored(ev Event) bool { return !ev.Transient() && ev.Type != EventConversationDeleted }

// local publishes committed events on this node's Hub and records their
// seqs.
func (b *PGBus) local(evs []Event) {
	b.record(evs)
	b.hub.Publish(evs)
}

// record notes the last seq of each stored event's conversation, and
// forgets deleted conversations.
func (b *PGBus) record(evs []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range evs {
		switch {
		case ev.Type == EventConversationDeleted:
			delete(b.seen, ev.ConversationID)
		case ev.Transient():
		case ev.Seq > b.seen[ev.ConversationID]:
			if len(b.seen) >= seenCap {
				clear(b.seen)
			}
			b.seen[ev.ConversationID] = ev.Seq
		}
	}
}

// lastSeen returns the last seq of the conversation published here, and
// whether it is known.
func (b *PGBus) lastSeen(conv int64) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq, ok := b.seen[conv]
	return seq, ok
}

// txPayloads are the notifications that a write transaction sends before
// its commit for the events it made: the ranges of the stored ones, the
// JSON of the others.
func (b *PGBus) txPayloads(evs []Event) []busNote {
	var seqs []convSeq
	var other []Event
	for _, ev := range evs {
		if stored(ev) {
			seqs = append(seqs, convSeq{ev.ConversationID, ev.Seq})
		} else {
			other = append(other, ev)
		}
	}
	return append(b.rangePayloads(seqs), b.jsonPayloads(other)...)
}

// rangePayloads encodes stored events' places as ranges, as few
// notifications as fit in maxNotifyPayload bytes each.
func (b *PGBus) rangePayloads(seqs []convSeq) []busNote {
	if len(seqs) == 0 {
		return nil
	}
	slices.SortFunc(seqs, func(x, y convSeq) int {
		if x.conv != y.conv {
			return int(x.conv - y.conv)
		}
		return int(x.seq - y.seq)
	})
	head := string(payloadRanges) + b.node + "\n"
	var out []busNote
	var sb strings.Builder
	flush := func() {
		if sb.Len() > len(head) {
			out = append(out, busNote{b.evCh, sb.String()})
		}
		sb.Reset()
		sb.WriteString(head)
	}
	flush()
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1].conv == seqs[i].conv && seqs[j+1].seq <= seqs[j].seq+1 {
			j++
		}
		r := strconv.FormatInt(seqs[i].conv, 10) + ":" + strconv.FormatInt(seqs[i].seq, 10)
		if seqs[j].seq != seqs[i].seq {
			r += "-" + strconv.FormatInt(seqs[j].seq, 10)
		}
		if sb.Len()+1+len(r) > maxNotifyPayload {
			flush()
		}
		if sb.Len() > len(head) {
			sb.WriteByte(',')
		}
		sb.WriteString(r)
		i = j + 1
	}
	flush()
	return out
}

// jsonPayloads encodes non-stored events as JSON arrays, as few
// notifications as fit in maxNotifyPayload bytes each. An event larger
// than that alone is logged and not sent.
func (b *PGBus) jsonPayloads(evs []Event) []busNote {
	if len(evs) == 0 {
		return nil
	}
	head := string(payloadTransient) + b.node + "\n"
	var out []busNote
	var parts []string
	size := len(head) + 2
	flush := func() {
		if len(parts) > 0 {
			out = append(out, busNote{b.evCh, head + "[" + strings.Join(parts, ",") + "]"})
		}
		parts, size = parts[:0], len(head)+2
	}
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		if len(head)+2+len(data) > maxNotifyPayload {
			b.s.log.Warn("events: a transient event is too large for the other nodes", "type", ev.Type, "bytes", len(data))
			b.dropped.Add(1)
			continue
		}
		if size+len(data)+1 > maxNotifyPayload {
			flush()
		}
		parts = append(parts, string(data))
		size += len(data) + 1
	}
	flush()
	return out
}

// enqueue hands a notification to the sender; if 4,096 already wait, or
// the store is closing, it is dropped (and counted): Publish and Revoke
// never block.
func (b *PGBus) enqueue(n busNote) {
	b.sendMu.RLock()
	defer b.sendMu.RUnlock()
	if b.sendClosed {
		b.dropped.Add(1)
		return
	}
	b.unsent.Add(1)
	select {
	case b.sendq <- n:
	default:
		b.unsent.Add(-1)
		b.dropped.Add(1)
		b.s.log.Warn("events: notification queue full; a transient event or revocation was not sent to the other nodes")
	}
}

// sender sends the queued notifications, up to 64 in one statement on a
// pooled connection (autocommit: delivered at once), retrying for up to
// 10 s while the database does not answer.
func (b *PGBus) sender() {
	defer b.wg.Done()
	const q = `SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)`
	for n := range b.sendq {
		chans, payloads := []string{n.channel}, []string{n.payload}
	more:
		for len(chans) < 64 {
			select {
			case n, ok := <-b.sendq:
				if !ok {
					break more
				}
				chans, payloads = append(chans, n.channel), append(payloads, n.payload)
			default:
				break more
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := b.s.sqlW.ExecContext(ctx, q, chans, payloads)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.dropped.Add(uint64(len(chans)))
				b.s.log.Error("events: notifications not sent to the other nodes", "count", len(chans), "err", err)
				break
			}
			time.Sleep(wait)
		}
		b.unsent.Add(-int64(len(chans)))
	}
}

// listen opens the listening connection.
func (b *PGBus) listen(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := b.s.pgCfg.Copy()
	cfg.RuntimeParams["application_name"] = b.s.appName("listen")
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, ch := range []string{b.evCh, b.revCh} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	b.pid.Store(conn.PgConn().PID())
	b.listening.Store(true)
	return conn, nil
}

// run listens until the store closes: conn is the listening connection
// (nil: connect first, then catch up from lostAt).
func (b *PGBus) run(conn *pgx.Conn, lostAt time.Time) {
	defer b.wg.Done()
	seeded := false
	if conn != nil {
		seeded = b.seed()
	}
	for {
		if conn == nil {
			if f := b.beforeReconnect.Load(); f != nil {
				(*f)()
			}
			if conn = b.reconnect(); conn == nil {
				return
			}
			if !seeded {
				seeded = b.seed()
			}
			if !b.catchUp(lostAt) {
				conn.Close(context.Background())
				return
			}
		}
		lostAt = b.serve(conn)
		b.listening.Store(false)
		b.behind.Store(true)
		b.pid.Store(0)
		conn.Close(context.Background())
		conn = nil
		if b.ctx.Err() != nil {
			return
		}
	}
}

// seed records, once this node first listens, the last seq of every
// conversation with events created within catchUpMargin: a catch-up
// (after a lost listening connection) reaches back that far, and without
// them it would publish events committed before this node listened,
// which its sockets never were to get from the bus ("events of a
// conversation come from the connection's start", docs/protocol.md).
// Events committed after LISTEN are notified; the read, after LISTEN,
// sees every commit before it. false if the read failed (logged): the
// next listen tries again.
func (b *PGBus) seed() bool {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	rows, err := b.s.sqlR.QueryContext(ctx, `SELECT conversation_id, max(seq) FROM events
		WHERE created_at >= $1 GROUP BY conversation_id`, b.s.now().Add(-catchUpMargin).UTC())
	if err != nil {
		b.s.log.Warn("events: reading where conversations stand", "err", err)
		return false
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.ConversationID, &ev.Seq); err != nil {
			b.s.log.Warn("events: reading where conversations stand", "err", err)
			return false
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		b.s.log.Warn("events: reading where conversations stand", "err", err)
		return false
	}
	b.record(evs)
	return true
}

// reconnect listens again, waiting longer after each failure (50 ms
// doubling to 5 s, with jitter); nil once the store closes.
func (b *PGBus) reconnect() *pgx.Conn {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		conn, err := b.listen(b.ctx)
		if err == nil {
			b.s.log.Info("events: listening again; catching up")
			return conn
		}
		if b.ctx.Err() != nil {
			return nil
		}
		b.s.log.Warn("events: listening for other nodes' events", "err", err)
		if !b.pause(wait/2 + rand.N(wait/2+1)) {
			return nil
		}
	}
}

// pause waits d, or until the store closes (false).
func (b *PGBus) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// catchUp publishes locally the events committed since shortly before
// lostAt that this node has not published, asks for the sockets'
// credentials to be checked again, and marks the node ready. It retries
// until it succeeds, or the store closes (false).
func (b *PGBus) catchUp(lostAt time.Time) bool {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		n, err := b.catchUpOnce(lostAt.Add(-catchUpMargin))
		if err == nil {
			b.caughtUp.Add(uint64(n))
			b.s.log.Info("events: caught up", "events", n)
			b.hub.Resync()
			b.behind.Store(false)
			return true
		}
		if b.ctx.Err() != nil {
			return false
		}
		b.s.log.Warn("events: catching up", "err", err)
		if !b.pause(wait) {
			return false
		}
	}
}

// catchUpOnce reads the events created since since, a page at a time in
// (conversation, seq) order, and publishes those past what this node saw.
func (b *PGBus) catchUpOnce(since time.Time) (int, error) {
	const q = `SELECT id, conversation_id, seq, type, message_id, data, created_at FROM events
		WHERE created_at >= $1 AND (conversation_id, seq) > ($2, $3)
		ORDER BY conversation_id, seq LIMIT ` + "500"
	var afterConv, afterSeq int64
	total := 0
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		rows, err := b.readRows(ctx, q, since.UTC(), afterConv, afterSeq)
		if err != nil {
			cancel()
			return total, err
		}
		var fresh []eventRow
		for _, r := range rows {
			if last, ok := b.lastSeen(r.ConversationID); !ok || r.Seq > last {
				fresh = append(fresh, r)
			}
		}
		if len(fresh) > 0 {
			evs, err := b.s.hydrate(ctx, fresh)
			if err != nil {
				cancel()
				return total, err
			}
			b.local(evs)
			total += len(evs)
		}
		cancel()
		if len(rows) < catchUpPage {
			return total, nil
		}
		afterConv, afterSeq = rows[len(rows)-1].ConversationID, rows[len(rows)-1].Seq
	}
}

// readRows runs a query of event rows on the read pool.
func (b *PGBus) readRows(ctx context.Context, q string, args ...any) ([]eventRow, error) {
	rs, err := b.s.sqlR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var rows []eventRow
	for rs.Next() {
		var r eventRow
		if err := rs.Scan(&r.ID, &r.ConversationID, &r.Seq, &r.Type, &r.MessageID, &r.Data, &r.CreatedAt); err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, rs.Err()
}

// serve receives notifications on conn until it fails or the store
// closes, and returns when conn was last known alive. One goroutine
// receives; this one handles what gathered meanwhile, as one batch.
func (b *PGBus) serve(conn *pgx.Conn) (alive time.Time) {
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	type received struct {
		n  *pgconn.Notification
		at time.Time
	}
	ch := make(chan received, busBatch)
	var aliveAt atomic.Int64
	aliveAt.Store(b.s.now().UnixNano())
	go func() {
		defer close(ch)
		for {
			wctx, wcancel := context.WithTimeout(ctx, pingEvery)
			n, err := conn.WaitForNotification(wctx)
			wcancel()
			switch {
			case err == nil:
				now := b.s.now()
				aliveAt.Store(now.UnixNano())
				select {
				case ch <- received{n, now}:
				case <-ctx.Done():
					return
				}
			case ctx.Err() != nil:
				return
			case pgconn.Timeout(err):
				// Silent for a while: does it still answer?
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := conn.Exec(pctx, "SELECT 1")
				pcancel()
				if err != nil {
					b.s.log.Warn("events: lost the listening connection", "err", err)
					return
				}
				aliveAt.Store(b.s.now().UnixNano())
			default:
				b.s.log.Warn("events: lost the listening connection", "err", err)
				return
			}
		}
	}()
	batch := make([]*pgconn.Notification, 0, busBatch)
	for r := range ch {
		batch = append(batch[:0], r.n)
		first := r.at
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, r.n)
			default:
				break more
			}
		}
		if err := b.handle(batch); err != nil && b.ctx.Err() == nil {
			// Their events could not be read: catch up from the database
			// after listening anew.
			b.s.log.Warn("events: reading other nodes' events", "err", err)
			cancel()
			for range ch {
			}
			return first
		}
	}
	return time.Unix(0, aliveAt.Load()).UTC()
}

// handle publishes locally what a batch of notifications announced:
// revocations and transient events at once, then the stored events of
// all their ranges, read in one query (and one for their messages).
func (b *PGBus) handle(batch []*pgconn.Notification) error {
	var convs, firsts, lasts []int64
	for _, n := range batch {
		node, rest, ok := strings.Cut(n.Payload, "\n")
		if n.Channel == b.evCh && node != "" {
			node = node[1:]
		}
		if !ok || node == b.node {
			continue
		}
		b.notifications.Add(1)
		switch {
		case n.Channel == b.revCh:
			var r Revoked
			if err := json.Unmarshal([]byte(rest), &r); err == nil {
				b.hub.Revoke(r)
			}
		case n.Payload[0] == payloadTransient:
			var evs []Event
			if err := json.Unmarshal([]byte(rest), &evs); err == nil {
				b.local(evs)
			}
		case n.Payload[0] == payloadRanges:
			for _, r := range strings.Split(rest, ",") {
				c, f, l, ok := parseRange(r)
				if ok {
					convs, firsts, lasts = append(convs, c), append(firsts, f), append(lasts, l)
				}
			}
		}
	}
	if len(convs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	rows, err := b.readRows(ctx, `SELECT e.id, e.conversation_id, e.seq, e.type, e.message_id, e.data, e.created_at
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS r(c, f, l)
		JOIN events e ON e.conversation_id = r.c AND e.seq BETWEEN r.f AND r.l
		ORDER BY e.conversation_id, e.seq`, convs, firsts, lasts)
	if err != nil {
		return err
	}
	// Two ranges of one batch may overlap (never in practice).
	rows = slices.CompactFunc(rows, func(x, y eventRow) bool { return x.ID == y.ID })
	if len(rows) == 0 {
		// Pruned or deleted meanwhile: a Follower that needs them
		// finds out when it reads.
		return nil
	}
	evs, err := b.s.hydrate(ctx, rows)
	if err != nil {
		return err
	}
	b.remote.Add(uint64(len(evs)))
	b.local(evs)
	return nil
}

// parseRange parses "conv:first-last" or "conv:seq".
func parseRange(s string) (conv, first, last int64, ok bool) {
	c, r, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, 0, false
	}
	f, l, isRange := strings.Cut(r, "-")
	var err1, err2, err3 error
	conv, err1 = strconv.ParseInt(c, 10, 64)
	first, err2 = strconv.ParseInt(f, 10, 64)
	last = first
	if isRange {
		last, err3 = strconv.ParseInt(l, 10, 64)
	}
	return conv, first, last, err1 == nil && err2 == nil && err3 == nil && first <= last
}
