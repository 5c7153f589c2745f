package web

import (
	"sync"

	"github.com/microdeets/microchat/inbox"
)

// agentQueue holds the events that wait for one agent's socket. The hub
// hands them over in its publisher's goroutine (push, which never blocks:
// it is the function of an inbox.Hub.SubscribeFunc), and the socket's run
// takes them a batch at a time (take).
//
// Presence (contact_presence, and an agent's presence on the dashboard)
// says what is true now, so only the latest change of each contact or
// agent waits, in the place of that latest change: an earlier one still
// waiting is dropped. Presence so counts one entry per contact or agent,
// against agentMaxPresence, not against agentBacklog, which bounds the
// other events. A burst of presence changes (the thousands of visitors
// of a node that stopped, reaped in one transaction and published at
// once) waits as one entry each and does not push a socket that reads
// promptly into a resync; a socket that lets more than either bound wait
// is told to resync (take's lagged), and what waited is dropped.
type agentQueue struct {
	// wake holds a token while something waits (or a resync is due).
	wake chan struct{}

	mu sync.Mutex
	// q is what waits, oldest first; a presence change superseded by a
	// later one of the same contact or agent is a hole, skipped.
	q     []queued
	holes int
	// events is how many entries of q are not presence.
	events int
	// latest is, per contact or agent, the index of its waiting presence
	// change, counted from the first entry ever queued (base is q[0]'s).
	latest map[presenceOf]int
	base   int
	lagged bool
}

// queued is one waiting event.
type queued struct {
	ev       inbox.Event
	presence bool
	key      presenceOf
	hole     bool
}

// presenceOf names whose presence an event gives.
type presenceOf struct {
	agent bool
	id    int64
}

const (
	// agentMaxPresence is how many contacts and agents may have a
	// presence change waiting for a socket before it is told to resync.
	agentMaxPresence = 1 << 16
	// agentBatch is the most events run takes at a time: a burst is
	// written in batches, between which run answers the client.
	agentBatch = 256
)

func newAgentQueue() *agentQueue {
	return &agentQueue{wake: make(chan struct{}, 1), latest: map[presenceOf]int{}}
}

// push queues an event. An agent's presence in a conversation is for the
// visitors there and is not queued (transient writes it from its event
// without a conversation).
func (aq *agentQueue) push(ev inbox.Event) {
	var key presenceOf
	presence := false
	switch ev.Type {
	case inbox.EventContactPresence:
		var p inbox.ContactPresence
		presence = ev.Decode(&p) == nil
		key = presenceOf{id: p.ContactID}
	case inbox.EventPresence:
		if ev.ConversationID != 0 {
			return
		}
		var p inbox.AgentPresence
		presence = ev.Decode(&p) == nil
		key = presenceOf{agent: true, id: p.AgentID}
	}
	aq.mu.Lock()
	defer aq.mu.Unlock()
	if aq.lagged {
		return
	}
	switch {
	case !presence:
		if aq.events >= agentBacklog {
			aq.lag()
			return
		}
		aq.events++
	default:
		if i, ok := aq.latest[key]; ok {
			aq.q[i-aq.base] = queued{hole: true}
			aq.holes++
		} else if len(aq.latest) >= agentMaxPresence {
			aq.lag()
			return
		}
		aq.latest[key] = aq.base + len(aq.q)
	}
	aq.q = append(aq.q, queued{ev: ev, presence: presence, key: key})
	if aq.holes > agentBatch && 2*aq.holes > len(aq.q) {
		aq.compact()
	}
	aq.signal()
}

// lag drops what waits: the socket is told to resync. Called with mu held.
func (aq *agentQueue) lag() {
	aq.lagged = true
	aq.q, aq.holes, aq.events = nil, 0, 0
	clear(aq.latest)
	aq.signal()
}

// compact removes the holes. Called with mu held.
func (aq *agentQueue) compact() {
	q := make([]queued, 0, len(aq.q)-aq.holes)
	for _, e := range aq.q {
		if e.hole {
			continue
		}
		if e.presence {
			aq.latest[e.key] = aq.base + len(q)
		}
		q = append(q, e)
	}
	aq.q, aq.holes = q, 0
}

func (aq *agentQueue) signal() {
	select {
	case aq.wake <- struct{}{}:
	default:
	}
}

// take returns up to max waiting events, oldest first, or lagged when the
// socket fell behind: then nothing is returned and the queue starts
// afresh with the events pushed from now on.
func (aq *agentQueue) take(max int) (evs []inbox.Event, lagged bool) {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	if aq.lagged {
		aq.lagged = false
		aq.base = 0
		return nil, true
	}
	i := 0
	for ; i < len(aq.q) && len(evs) < max; i++ {
		e := aq.q[i]
		switch {
		case e.hole:
			aq.holes--
			continue
		case e.presence:
			delete(aq.latest, e.key)
		default:
			aq.events--
		}
		evs = append(evs, e.ev)
	}
	clear(aq.q[:i]) // the events' data is not kept by the array
	aq.q, aq.base = aq.q[i:], aq.base+i
	if len(aq.q) == 0 {
		aq.q, aq.base, aq.holes = nil, 0, 0
	} else {
		aq.signal()
	}
	return evs, false
}

// empty reports whether nothing waits and no resync is due.
func (aq *agentQueue) empty() bool {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	return !aq.lagged && len(aq.q) == aq.holes
}
