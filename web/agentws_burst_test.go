package web

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/presence"
)

// A node's visitors leaving at once (here: node A stops, and node B reaps
// its 1,500 visitors in one transaction, one burst of contact_presence
// events) reach an agent's socket on node B that reads promptly as one
// frame each, and never as a resync: presence waits coalesced per
// contact, not against the 1,024 events a socket may let wait
// (docs/protocol.md). On PostgreSQL the visitors also come online on A
// and reach B's socket through the bus.
func TestAgentPresenceBurst(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		const visitors = 1500
		ctx := context.Background()
		postgres := strings.HasPrefix(url, "postgres")
		clock := inboxtest.NewClock() // the grace timers only
		storeA := inboxtest.Open(t, url, nil)
		nodeA := presence.New(storeA, presence.Options{Grace: time.Minute, Manual: true, AfterFunc: clock.AfterFunc})
		t.Cleanup(nodeA.Close)
		b := newEnvPresence(t, inboxtest.Open(t, url, nil), nil,
			presence.Options{Grace: time.Minute, Manual: true, AfterFunc: clock.AfterFunc})
		dash := b.agentSock(b.agent("alice@example.com", inbox.RoleAgent))

		ids := make([]int64, visitors)
		for i := range ids {
			c, err := storeA.CreateContact(ctx, inbox.NewContact{Name: "Visitor " + strconv.Itoa(i)})
			noError(t, "CreateContact()", err)
			ids[i] = c.ID
			nodeA.ContactConnected(c.ID)
		}
		noError(t, "Flush() on node A", nodeA.Flush())
		if postgres {
			presenceFrames(t, dash, ids, true)
		}

		// Node A stops: its visitors stay online for the grace, then node
		// B reaps them all at once (ReapNodes with no grace left).
		nodeA.Close()
		st, err := b.store.ReapNodes(ctx, 0)
		noError(t, "ReapNodes() on node B", err)
		if len(st.Reaped) != 1 {
			t.Fatalf("ReapNodes() reaped %v, want node A", st.Reaped)
		}
		presenceFrames(t, dash, ids, false)

		// Nothing more, and no resync, before the answer to a ping.
		dash.send(t, map[string]string{"type": "ping"})
		for f := dash.next(t); f.Type != "pong"; f = dash.next(t) {
			if f.Type == "resync" || f.Type == "contact_presence" {
				t.Fatalf("after the burst: %+v", f)
			}
		}
	})
}

// presenceFrames reads the socket's frames until each contact's
// contact_presence frame of online has come, failing on a resync.
func presenceFrames(t *testing.T, c *wsClient, ids []int64, online bool) {
	t.Helper()
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	got := 0
	for len(want) > 0 {
		var f agentFrame
		select {
		case f = <-c.frames:
		case err := <-c.closed:
			t.Fatalf("socket closed after %d of %d contact_presence online=%v: %v", got, len(ids), online, err)
		case <-time.After(frameWait):
			t.Fatalf("%d of %d contact_presence online=%v came; no frame more within %v", got, len(ids), online, frameWait)
		}
		switch {
		case f.Type == "resync":
			t.Fatalf("resync after %d of %d contact_presence online=%v", got, len(ids), online)
		case f.Type == "contact_presence" && f.Online != nil && *f.Online == online && want[f.ContactID]:
			delete(want, f.ContactID)
			got++
		}
	}
}

// A socket that lets more than 1,024 events other than presence wait
// (here it holds them, ?resume=1, while 1,100 typing events come) is told
// to resync as soon as it reads, not at the next ping.
func TestAgentResyncAtOnce(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newWSEnv(t, url)
		c, _, err := e.dialPath(t, nil, "/api/v1/ws?resume=1")
		noError(t, "dial", err)
		c.hello(t)
		// The agent's own presence, once stored, publishes nothing more
		// that would wake the socket after the burst.
		waitFor(t, "the agent online", func() bool { return agentPresence(t, e.env, e.agent.ID) == inbox.PresenceOnline })
		for range agentBacklog + 100 {
			e.store.PublishTyping(e.conv.ID, inbox.Typing{Author: inbox.AuthorContact, ContactID: e.conv.ContactID, Typing: true})
		}
		c.send(t, map[string]any{"type": "resume", "cursors": map[string]int64{}})
		for f := c.next(t); f.Type != "resync"; f = c.next(t) {
			if f.Type != "typing" {
				t.Fatalf("frame before the resync: %+v", f)
			}
		}
	})
}

// The queue keeps only the latest presence of each contact or agent, in
// the place of that latest change, and counts it apart from the other
// events.
func TestAgentQueueCoalesces(t *testing.T) {
	contact := func(id int64, online bool) inbox.Event {
		return inbox.Event{Type: inbox.EventContactPresence, Data: []byte(`{"contact_id":` + strconv.FormatInt(id, 10) + `,"online":` + strconv.FormatBool(online) + `}`)}
	}
	stored := func(seq int64) inbox.Event {
		return inbox.Event{ConversationID: 9, Seq: seq, Type: inbox.EventMessageAdded}
	}
	q := newAgentQueue()
	q.push(contact(1, true))
	q.push(stored(1))
	q.push(contact(2, true))
	q.push(inbox.Event{ConversationID: 9, Type: inbox.EventPresence, Data: []byte(`{"agent_id":3}`)}) // for visitors
	q.push(contact(1, false))
	evs, lagged := q.take(agentBatch)
	want := []inbox.Event{stored(1), contact(2, true), contact(1, false)}
	if lagged || len(evs) != len(want) {
		t.Fatalf("take() = %d events, lagged %v; want %d", len(evs), lagged, len(want))
	}
	for i := range want {
		if evs[i].Type != want[i].Type || string(evs[i].Data) != string(want[i].Data) {
			t.Fatalf("take()[%d] = %+v, want %+v", i, evs[i], want[i])
		}
	}
	if !q.empty() {
		t.Fatal("empty() = false after taking everything")
	}

	// Thousands of presence changes do not lag, and come in batches;
	// more than agentBacklog other events do.
	for i := range 3 * agentBacklog {
		q.push(contact(int64(i), i%2 == 0))
		q.push(contact(int64(i), i%2 == 1))
	}
	n := 0
	for !q.empty() {
		evs, lagged := q.take(agentBatch)
		if lagged || len(evs) > agentBatch {
			t.Fatalf("take() = %d events, lagged %v", len(evs), lagged)
		}
		n += len(evs)
	}
	if n != 3*agentBacklog {
		t.Fatalf("took %d presence events, want %d", n, 3*agentBacklog)
	}
	for i := range agentBacklog + 1 {
		q.push(stored(int64(i + 1)))
	}
	if evs, lagged := q.take(agentBatch); !lagged || len(evs) != 0 {
		t.Fatalf("take() after %d events = %d events, lagged %v; want lagged", agentBacklog+1, len(evs), lagged)
	}
	if !q.empty() {
		t.Fatal("empty() = false after the lag was taken")
	}
}
