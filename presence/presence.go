// Package presence keeps who is online: the contacts, by their widget
// sockets (channels/webchat), and the agents, by their dashboard sockets
// (web). It is neither the widget's nor the mailbox's, so both report to
// one Tracker per node (per inbox.Store), which cmd/microchat builds and
// hands to each.
//
// The rules (spec rule 6):
//
//   - A contact or agent is online while one of their sockets is open on
//     a node, and for the grace period (offline_after) after the last one
//     on that node closed, so that moving between pages of a site does not
//     flip them offline. Agents are idle when their dashboard says so.
//   - Each node stores what it counts as rows of its own (inbox:
//     contact_nodes, agent_nodes), on transitions only
//     (inbox.Store.SetContactsOnline and SetAgentPresence), by one writer
//     at a time, in batches; heartbeats and reconnects within the grace
//     cost nothing. The store changes a contact's or agent's presence, and
//     announces it, only when the aggregate over the nodes changes: a tab
//     on node A and one on node B go offline when both are closed.
//   - The writer decides from what it has committed or is committing,
//     never from a value a socket read from the database.
//   - A node records its own liveness every inbox.NodeHeartbeat (one
//     UPDATE, whatever its sockets) and removes the rows of nodes silent
//     for longer than max(grace, inbox.NodeDeadAfter) (Beat): a node that
//     dies takes its visitors' and agents' presence with it within the
//     grace plus a heartbeat or two, once their sockets have not come back
//     to another node.
//   - A node that stops (Close) counts each of its sockets as closed at
//     that moment: it writes its last transitions and marks its row
//     stopped (inbox.Store.StopNode), and its rows stay for the grace.
//     A visitor or agent who reconnects to another node within it (a
//     rolling restart) never shows offline; one who does not goes
//     offline once the grace has passed since the stop, at the next Beat
//     of a node still running, announced once. When no node is left, the
//     next one to start does it (a restart of a single node, on SQLite
//     too), and a restart with the same node_id leaves its predecessor's
//     rows the same grace (inbox/nodes.go). Without a grace (0) Close
//     removes the rows at once.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// Tracker counts the open sockets of each contact and agent on this node
// and stores their presence on transitions only (spec rule 6): a contact
// is online while they have a socket open, and for the grace period after
// the last one closed, so that moving between pages does not flip them
// offline. Heartbeats and reconnects within the grace cost no write.
//
// Transitions are written by one writer at a time (the goroutine run, or
// a test's Flush), in batches, so that the sockets never wait for the
// database and a burst of connects is a few transactions. What is stored
// may lag what is wanted; the writer catches up, and a contact who flaps
// faster than it writes costs nothing.
//
// The decision to write is taken from what this Tracker has committed or
// is committing, never from a value read elsewhere: a batch records its
// values as the stored ones when it is taken, before the write, so that a
// change arriving while the write is in flight is compared with what the
// database is about to hold (and queued if it differs). A failed write
// leaves the stored value unknown, which every wanted value differs from.
type Tracker struct {
	store *inbox.Store
	grace time.Duration
	log   *slog.Logger
	opts  Options

	mu       sync.Mutex
	contacts map[int64]*presenceState
	agents   map[int64]*presenceState
	dirty    []presenceKey
	closed   bool

	// writer is held by whoever writes: one writer at a time.
	writer sync.Mutex
	// afterWrite, when set (tests), runs after each write returns and
	// before its result is recorded.
	afterWrite func()

	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	writes atomic.Int64

	// beats is the heartbeat goroutine's: a tick of its timer, its end.
	beat      chan struct{}
	beatsDone chan struct{}
	// nodes is how many live nodes the last Beat saw (0 before one).
	nodes atomic.Int64
	// beaten is when Beat last succeeded (the store's clock, UnixNano).
	beaten atomic.Int64
}

// Options tune a Tracker; the zero value is production's.
type Options struct {
	// Grace is how long a contact or agent stays online after their last
	// socket closed (the config's offline_after); 0 is none.
	Grace time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// AfterFunc starts a grace timer: it calls f once d has passed, unless
	// stop is called first (stop reports whether it stopped it, like
	// time.Timer.Stop). Nil means time.AfterFunc; tests pass a clock they
	// advance themselves (inboxtest.Clock).
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Manual starts no writer goroutine and no heartbeat goroutine:
	// transitions are written only when Flush is called, and liveness
	// and the reaping of dead nodes only when Beat is. Tests use it to
	// decide when the writer runs and so what its batches hold, and to
	// play a node that dies (it stops calling Beat).
	Manual bool
}

// Presence values as stored: contacts use offline and online, agents also
// idle.
type presenceValue uint8

const (
	valueOffline presenceValue = iota
	valueOnline
	valueIdle
)

func (v presenceValue) String() string {
	return [...]string{inbox.PresenceOffline, inbox.PresenceOnline, inbox.PresenceIdle}[v]
}

func parsePresence(s string) presenceValue {
	switch s {
	case inbox.PresenceOnline:
		return valueOnline
	case inbox.PresenceIdle:
		return valueIdle
	}
	return valueOffline
}

type presenceKey struct {
	agent bool
	id    int64
}

// presenceState is one contact's or agent's presence on this node.
type presenceState struct {
	sockets int32
	idle    bool          // agents: the dashboard said idle
	grace   func() bool   // stops the grace timer, running while no socket is open but still online
	closed  time.Time     // when the last socket closed (the store's clock), while grace runs
	gen     uint32        // which grace timer is current
	want    presenceValue // what should be stored
	// stored is what the database has once the write in flight, if any,
	// commits: the writer sets it when it takes the transition, not when
	// the write returns. valueUnknown after a failed write.
	stored  presenceValue
	writing bool // a write of this state is in flight: keep it
	dirty   bool // in Tracker.dirty
}

// valueUnknown is the stored value after a failed write: every wanted
// value differs from it, so the writer tries again.
const valueUnknown presenceValue = 255

// maxPresenceBatch is the most transitions written in one transaction.
const maxPresenceBatch = 256

// New starts the writer (unless opts.Manual); Close stops it.
func New(store *inbox.Store, opts Options) *Tracker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Logger = opts.Logger.With("pkg", "presence")
	if opts.AfterFunc == nil {
		opts.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	p := &Tracker{store: store, grace: opts.Grace, log: opts.Logger, opts: opts,
		contacts: map[int64]*presenceState{}, agents: map[int64]*presenceState{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		beat: make(chan struct{}, 1), beatsDone: make(chan struct{})}
	if opts.Manual {
		close(p.done)
		close(p.beatsDone)
	} else {
		go p.run()
		go p.beats()
	}
	return p
}

// Nodes returns how many live nodes (this one included) the last Beat
// saw, for the metric microchat_cluster_nodes; 0 before the first, and 1
// (itself) once its Beats have failed for inbox.NodeDeadAfter: a node
// cut off from the database sees no other.
func (p *Tracker) Nodes() int { return int(p.nodes.Load()) }

// ReapAfter is how long a running node's liveness row must be silent
// before this Tracker removes the node's presence: the grace period, at
// least inbox.NodeDeadAfter. A dead node's visitors so keep their grace to
// come back through another node before they show offline. A stopped
// node's presence is removed once the grace has passed since its stop.
func (p *Tracker) ReapAfter() time.Duration { return max(p.grace, inbox.NodeDeadAfter) }

// Beat records this node's liveness (one UPDATE) and removes the presence
// of nodes silent for longer than ReapAfter, or stopped for longer than
// the grace (one SELECT, and a transaction per node removed;
// inbox.Store.ReapNodes). If another node had found this one dead,
// everything this Tracker counts is written again. The heartbeat
// goroutine calls it every inbox.NodeHeartbeat; so do tests with
// Options.Manual.
func (p *Tracker) Beat(ctx context.Context) error {
	err := p.store.Heartbeat(ctx)
	if errors.Is(err, inbox.ErrNodeReaped) {
		p.log.Warn("this node was found dead by another (no heartbeat for too long): storing its presence again")
		p.rewriteAll()
		err = p.store.Heartbeat(ctx)
	}
	if err != nil {
		p.unseen()
		return fmt.Errorf("node heartbeat: %w", err)
	}
	st, err := p.store.ReapNodes(ctx, p.grace)
	if err != nil {
		p.unseen()
		return fmt.Errorf("reaping dead nodes: %w", err)
	}
	p.nodes.Store(int64(st.Live))
	p.beaten.Store(p.store.Now().UnixNano())
	return nil
}

// unseen follows a failed Beat: once the node has not read the nodes
// table for inbox.NodeDeadAfter (the others count it dead by then), it
// sees no other node, and Nodes says 1, itself; a blip shorter than
// that leaves the last count.
func (p *Tracker) unseen() {
	if last := p.beaten.Load(); last == 0 || p.store.Now().Sub(time.Unix(0, last)) >= inbox.NodeDeadAfter {
		p.nodes.Store(1)
	}
}

// rewriteAll queues every state again, as if its write had failed: the
// rows of this node are gone (inbox.ErrNodeReaped).
func (p *Tracker) rewriteAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, agent := range []bool{false, true} {
		for id, st := range p.states(presenceKey{agent: agent}) {
			st.stored = valueUnknown
			p.update(presenceKey{agent: agent, id: id}, st)
		}
	}
}

// beats runs Beat now and then every inbox.NodeHeartbeat (timed by
// Options.AfterFunc) until Close.
func (p *Tracker) beats() {
	defer close(p.beatsDone)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), inbox.NodeHeartbeat*5)
		if err := p.Beat(ctx); err != nil {
			p.log.Warn("node liveness", "err", err)
		}
		cancel()
		stop := p.opts.AfterFunc(inbox.NodeHeartbeat, func() {
			select {
			case p.beat <- struct{}{}:
			default:
			}
		})
		select {
		case <-p.beat:
		case <-p.stop:
			stop()
			return
		}
	}
}

// ContactConnected counts a socket of the contact.
func (p *Tracker) ContactConnected(contactID int64) { p.connect(presenceKey{id: contactID}) }

// ContactDisconnected uncounts a socket of the contact.
func (p *Tracker) ContactDisconnected(contactID int64) { p.disconnect(presenceKey{id: contactID}) }

// AgentConnected counts a dashboard socket of the agent.
func (p *Tracker) AgentConnected(agentID int64) { p.connect(presenceKey{agent: true, id: agentID}) }

// AgentDisconnected uncounts a dashboard socket of the agent.
func (p *Tracker) AgentDisconnected(agentID int64) {
	p.disconnect(presenceKey{agent: true, id: agentID})
}

// AgentIdle records that the agent's dashboard says they are idle, or
// back. It changes nothing for an agent without a socket here.
func (p *Tracker) AgentIdle(agentID int64, idle bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := presenceKey{agent: true, id: agentID}
	if st := p.agents[agentID]; st != nil && st.sockets > 0 {
		st.idle = idle
		p.update(k, st)
	}
}

// Writes returns how many transitions were written, for tests and metrics.
func (p *Tracker) Writes() int64 { return p.writes.Load() }

// Sockets returns how many sockets of the contact this Tracker counts,
// and whether their grace period is running; tests wait on it.
func (p *Tracker) Sockets(contactID int64) (n int, grace bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.contacts[contactID]; st != nil {
		return int(st.sockets), st.grace != nil
	}
	return 0, false
}

func (p *Tracker) states(k presenceKey) map[int64]*presenceState {
	if k.agent {
		return p.agents
	}
	return p.contacts
}

// connect counts a socket. A contact or agent this Tracker has no state
// for is offline as far as it knows: it forgets a state only once offline
// is committed, and a value the caller read from the database may already
// be stale (spec rule 6: decide from what this writer committed).
func (p *Tracker) connect(k presenceKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.states(k)
	st := m[k.id]
	if st == nil {
		st = &presenceState{stored: valueOffline, want: valueOffline}
		m[k.id] = st
	}
	st.sockets++
	if st.grace != nil {
		st.grace()
		st.grace = nil
		st.gen++
	}
	p.update(k, st)
}

func (p *Tracker) disconnect(k presenceKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states(k)[k.id]
	if st == nil || st.sockets == 0 {
		return
	}
	st.sockets--
	if st.sockets == 0 && !p.closed {
		st.gen++
		gen := st.gen
		st.grace = p.opts.AfterFunc(p.grace, func() { p.expire(k, gen) })
		st.closed = p.store.Now()
	}
	p.update(k, st)
}

// expire ends a grace period: the last socket closed offline_after ago
// and none opened since.
func (p *Tracker) expire(k presenceKey, gen uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states(k)[k.id]
	if st == nil || st.gen != gen || st.sockets > 0 || st.grace == nil {
		return
	}
	st.grace = nil
	p.update(k, st)
}

// update recomputes what should be stored and queues a write when it
// differs from what is stored or being stored; a state with nothing left
// to do is forgotten. Nothing after Close. Called with p.mu held.
func (p *Tracker) update(k presenceKey, st *presenceState) {
	if p.closed {
		return // Close writes what is queued, then nothing more
	}
	st.want = valueOffline
	if st.sockets > 0 || st.grace != nil {
		st.want = valueOnline
		if st.idle {
			st.want = valueIdle
		}
	}
	if st.want != st.stored {
		if !st.dirty {
			st.dirty = true
			p.dirty = append(p.dirty, k)
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	if st.sockets == 0 && st.grace == nil && !st.dirty && !st.writing {
		delete(p.states(k), k.id)
	}
}

// Close stops counting, stops the heartbeat and the writer, writes the
// transitions still queued, and marks this node stopped
// (inbox.Store.StopNode): each socket counts as closed now, and everyone
// counted here stays online for the grace period, through which they may
// reconnect to another node without showing offline (spec rule 6); then
// a node still running, or the next to start, takes them offline. A
// grace already running on a closed socket runs again from now. Without
// a grace Close takes them offline at once (inbox.Store.LeaveNode). Call
// it once the sockets are closed.
func (p *Tracker) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		<-p.beatsDone
		return
	}
	p.closed = true
	// What each state wants stays as it is (update does nothing from now
	// on): the queued transitions are written below, and the node's
	// expiry ends the graces; those already running end when they would
	// have (inbox.Store.StopNode's left).
	var left []inbox.PresenceLeft
	for _, agent := range []bool{false, true} {
		for id, st := range p.states(presenceKey{agent: agent}) {
			if st.grace != nil {
				st.grace()
				st.grace = nil
				left = append(left, inbox.PresenceLeft{Agent: agent, ID: id, At: st.closed})
			}
		}
	}
	p.mu.Unlock()
	if !p.opts.Manual {
		close(p.stop)
		<-p.done
		<-p.beatsDone
	}
	// The writer has stopped, after a last Flush; with Options.Manual
	// this one is the last.
	if err := p.Flush(); err != nil {
		p.log.Warn("storing presence before stopping", "err", err)
	}
	// Nothing writes a row after this.
	p.writer.Lock()
	defer p.writer.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := func(ctx context.Context) error { return p.store.StopNode(ctx, left...) }
	if p.grace <= 0 {
		stop = p.store.LeaveNode
	}
	if err := stop(ctx); err != nil {
		p.log.Warn("marking this node stopped", "err", err)
	}
}

// run is the writer: it takes the queued transitions and stores them,
// retrying after a second while the database is unavailable (not after
// Close).
func (p *Tracker) run() {
	defer close(p.done)
	for {
		var err error
		select {
		case <-p.wake:
			err = p.Flush()
		case <-p.stop:
			if err := p.Flush(); err != nil {
				p.log.Warn("storing presence", "err", err)
			}
			return
		}
		if errors.Is(err, inbox.ErrNodeReaped) {
			// Everything is queued again (Flush): write it now.
			p.log.Warn("this node was found dead by another: storing its presence again")
			continue
		}
		if err != nil {
			p.log.Warn("storing presence", "err", err)
			select {
			case <-time.After(time.Second):
				select {
				case p.wake <- struct{}{}:
				default:
				}
			case <-p.stop:
				p.Flush()
				return
			}
		}
	}
}

type transition struct {
	k    presenceKey
	want presenceValue
}

// Flush writes every queued transition now, in batches, and returns the
// first error (the transitions of a failed batch stay queued). The
// writer goroutine calls it; so do tests with Options.Manual.
func (p *Tracker) Flush() error {
	p.writer.Lock()
	defer p.writer.Unlock()
	for {
		p.mu.Lock()
		var batch []transition
		n := 0
		for _, k := range p.dirty {
			if len(batch) == maxPresenceBatch {
				break
			}
			n++
			st := p.states(k)[k.id]
			st.dirty = false
			if st.want == st.stored {
				p.update(k, st) // changed back meanwhile: nothing to write
				continue
			}
			// From here on, the database has or is getting st.want:
			// changes are compared with it (see Tracker).
			st.stored, st.writing = st.want, true
			batch = append(batch, transition{k: k, want: st.want})
		}
		p.dirty = p.dirty[n:]
		if len(p.dirty) == 0 {
			p.dirty = nil
		}
		p.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		err := p.write(batch)
		if p.afterWrite != nil {
			p.afterWrite()
		}
		p.mu.Lock()
		for _, t := range batch {
			st := p.states(t.k)[t.k.id]
			st.writing = false
			if err != nil {
				st.stored = valueUnknown
			}
			p.update(t.k, st)
		}
		p.mu.Unlock()
		if errors.Is(err, inbox.ErrNodeReaped) {
			p.rewriteAll()
		}
		if err != nil {
			return fmt.Errorf("storing %d presence transitions: %w", len(batch), err)
		}
	}
}
func (p *Tracker) write(batch []transition) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var contacts []inbox.ContactOnline
	for _, t := range batch {
		if t.k.agent {
			if _, err := p.store.SetAgentPresence(ctx, t.k.id, t.want.String()); err != nil {
				return err
			}
			p.writes.Add(1)
			continue
		}
		contacts = append(contacts, inbox.ContactOnline{ContactID: t.k.id, Online: t.want == valueOnline})
	}
	if len(contacts) == 0 {
		return nil
	}
	if _, err := p.store.SetContactsOnline(ctx, contacts); err != nil {
		return err
	}
	p.writes.Add(int64(len(contacts)))
	return nil
}
