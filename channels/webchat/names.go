package webchat

import (
	"context"
	"sync"

	"github.com/microdeets/microchat/inbox"
)

// agentNames caches agents' display names for the agent_name of the
// agent messages written to visitors (visitorConn.named): without it,
// every agent message cost one read per visitor socket that shows it.
//
// An entry lives until the agent's name may have changed: a rename is
// published as a presence event without a conversation (inbox's
// announceName: ConversationID 0, Type inbox.EventPresence), on every
// node (see the events bus), and any such event of an agent forgets that
// agent's entry, so the next message reads the name again. A read that
// started before such an event is not kept (gen), so a name read just
// before a rename commits cannot outlive the rename's event.
type agentNames struct {
	mu   sync.Mutex
	gen  uint64 // bumped by each forget
	byID map[int64]string
}

// maxCachedNames bounds the cache; past it the cache starts again empty
// (a team has far fewer agents).
const maxCachedNames = 4096

// name returns agent id's display name, from the cache or read with
// read (inbox.Store.Agent) and kept.
func (n *agentNames) name(ctx context.Context, id int64, read func(context.Context, int64) (inbox.Agent, error)) (string, error) {
	n.mu.Lock()
	name, ok := n.byID[id]
	gen := n.gen
	n.mu.Unlock()
	if ok {
		return name, nil
	}
	a, err := read(ctx, id)
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	if n.gen == gen {
		if n.byID == nil || len(n.byID) >= maxCachedNames {
			n.byID = map[int64]string{}
		}
		n.byID[id] = a.Name
	}
	n.mu.Unlock()
	return a.Name, nil
}

// event is the hub callback of the subscription to every conversation:
// an agent's presence event without a conversation (a rename among them)
// forgets that agent's name. It does not block.
func (n *agentNames) event(ev inbox.Event) {
	if ev.ConversationID != 0 || ev.Type != inbox.EventPresence {
		return
	}
	var p inbox.AgentPresence
	if ev.Decode(&p) != nil {
		n.forget(0) // unknown agent: forget them all
		return
	}
	n.forget(p.AgentID)
}

// forget drops agent id's entry, or every entry for id 0.
func (n *agentNames) forget(id int64) {
	n.mu.Lock()
	n.gen++
	if id == 0 {
		clear(n.byID)
	} else {
		delete(n.byID, id)
	}
	n.mu.Unlock()
}
