package webchat

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// Presence counts the open sockets of each contact and agent on this node
// and stores their presence on transitions only (spec rule 6): a contact
// is online while they have a socket open, and for the grace period after
// the last one closed, so that moving between pages does not flip them
// offline. Heartbeats and reconnects within the grace cost no write.
//
// Transitions are written by one goroutine (run), in batches, so that the
// sockets never wait for the database and a burst of connects is a few
// transactions. What is stored may lag what is wanted; the writer catches
// up, and a contact who flaps faster than it writes costs nothing.
type Presence struct {
	store *inbox.Store
	grace time.Duration
	log   *slog.Logger

	mu       sync.Mutex
	contacts map[int64]*presenceState
	agents   map[int64]*presenceState
	dirty    []presenceKey
	closed   bool

	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	writes atomic.Int64
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
	idle    bool        // agents: the dashboard said idle
	grace   *time.Timer // running while no socket is open but still online
	gen     uint32      // which grace timer is current
	want    presenceValue
	stored  presenceValue // what the database has, as far as we know
	dirty   bool          // in Presence.dirty
}

// maxPresenceBatch is the most transitions written in one transaction.
const maxPresenceBatch = 256

// NewPresence starts the writer; Close stops it.
func NewPresence(store *inbox.Store, grace time.Duration, log *slog.Logger) *Presence {
	p := &Presence{store: store, grace: grace, log: log,
		contacts: map[int64]*presenceState{}, agents: map[int64]*presenceState{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// ContactConnected counts a socket of the contact; online says whether the
// database has them online already (read when the socket authenticated).
func (p *Presence) ContactConnected(contactID int64, online bool) {
	stored := valueOffline
	if online {
		stored = valueOnline
	}
	p.connect(presenceKey{id: contactID}, stored)
}

// ContactDisconnected uncounts a socket of the contact.
func (p *Presence) ContactDisconnected(contactID int64) { p.disconnect(presenceKey{id: contactID}) }

// AgentConnected counts a dashboard socket of the agent; stored is the
// presence the database has.
func (p *Presence) AgentConnected(agentID int64, stored string) {
	p.connect(presenceKey{agent: true, id: agentID}, parsePresence(stored))
}

// AgentDisconnected uncounts a dashboard socket of the agent.
func (p *Presence) AgentDisconnected(agentID int64) {
	p.disconnect(presenceKey{agent: true, id: agentID})
}

// AgentIdle records that the agent's dashboard says they are idle, or
// back. It changes nothing for an agent without a socket here.
func (p *Presence) AgentIdle(agentID int64, idle bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := presenceKey{agent: true, id: agentID}
	if st := p.agents[agentID]; st != nil && st.sockets > 0 {
		st.idle = idle
		p.update(k, st)
	}
}

// Writes returns how many transitions were written, for tests and metrics.
func (p *Presence) Writes() int64 { return p.writes.Load() }

func (p *Presence) states(k presenceKey) map[int64]*presenceState {
	if k.agent {
		return p.agents
	}
	return p.contacts
}

func (p *Presence) connect(k presenceKey, stored presenceValue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.states(k)
	st := m[k.id]
	if st == nil {
		st = &presenceState{stored: stored, want: stored}
		m[k.id] = st
	}
	st.sockets++
	if st.grace != nil {
		st.grace.Stop()
		st.grace = nil
		st.gen++
	}
	p.update(k, st)
}

func (p *Presence) disconnect(k presenceKey) {
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
		st.grace = time.AfterFunc(p.grace, func() { p.expire(k, gen) })
	}
	p.update(k, st)
}

// expire ends a grace period: the last socket closed offline_after ago
// and none opened since.
func (p *Presence) expire(k presenceKey, gen uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states(k)[k.id]
	if st == nil || st.gen != gen || st.sockets > 0 {
		return
	}
	st.grace = nil
	p.update(k, st)
}

// update recomputes what should be stored and queues a write when it
// differs from what is; a state with nothing left to do is forgotten.
// Called with p.mu held.
func (p *Presence) update(k presenceKey, st *presenceState) {
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
	if st.sockets == 0 && st.grace == nil && !st.dirty {
		delete(p.states(k), k.id)
	}
}

// Close marks everyone still counted here offline, as this node stops
// serving them, writes what is pending, and stops the writer.
func (p *Presence) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	for _, agent := range []bool{false, true} {
		for id, st := range p.states(presenceKey{agent: agent}) {
			if st.grace != nil {
				st.grace.Stop()
				st.grace = nil
			}
			st.sockets = 0
			p.update(presenceKey{agent: agent, id: id}, st)
		}
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
}

// run is the writer: it takes the queued transitions and stores them.
func (p *Presence) run() {
	defer close(p.done)
	for {
		select {
		case <-p.wake:
			p.flush()
		case <-p.stop:
			p.flush()
			return
		}
	}
}

type transition struct {
	k    presenceKey
	want presenceValue
}

// flush writes every queued transition, in batches, retrying after a
// second while the database is unavailable (not after Close).
func (p *Presence) flush() {
	for {
		p.mu.Lock()
		n := min(len(p.dirty), maxPresenceBatch)
		batch := make([]transition, 0, n)
		for _, k := range p.dirty[:n] {
			st := p.states(k)[k.id]
			st.dirty = false
			batch = append(batch, transition{k: k, want: st.want})
		}
		p.dirty = p.dirty[n:]
		if len(p.dirty) == 0 {
			p.dirty = nil
		}
		p.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		err := p.write(batch)
		p.mu.Lock()
		for _, t := range batch {
			st := p.states(t.k)[t.k.id]
			if st == nil {
				continue
			}
			if err == nil {
				st.stored = t.want
			}
			p.update(t.k, st)
		}
		closed := p.closed
		p.mu.Unlock()
		if err != nil {
			p.log.Warn("storing presence", "count", len(batch), "err", err)
			if closed {
				return
			}
			select {
			case <-time.After(time.Second):
			case <-p.stop:
				return
			}
		}
	}
}

func (p *Presence) write(batch []transition) error {
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
