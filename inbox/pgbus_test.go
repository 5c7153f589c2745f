package inbox_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Two nodes in one process: two Stores on one PostgreSQL database, each
// with its own Hub and bus (pgbus.go).

// twoNodes returns node a (a fixture: agents and a contact) and node b on
// one fresh database, both listening.
func twoNodes(t *testing.T) (a *fixture, b *inbox.Store) {
	t.Helper()
	a, b, _ = twoNodesURL(t)
	return a, b
}

// twoNodesURL is twoNodes, and the database's URL.
func twoNodesURL(t *testing.T) (a *fixture, b *inbox.Store, url string) {
	t.Helper()
	url = inboxtest.SharedPostgres(t)
	a = newFixtureOpts(t, url, &inbox.Options{NodeID: "node-a"})
	b = inboxtest.Open(t, url, &inbox.Options{NodeID: "node-b"})
	for _, s := range []*inbox.Store{a.s, b} {
		if s.Bus() == nil {
			t.Fatalf("store %s on PostgreSQL has no bus", s.NodeID())
		}
		inboxtest.Eventually(t, s.NodeID()+" ready", func() bool { return s.Ready() == nil })
	}
	return a, b, url
}

// follower receives, on one node, the events of every conversation
// through a Follower, as an agent's socket does, and keeps per
// conversation what it delivered.
type follower struct {
	t      *testing.T
	sub    *inbox.Subscription
	f      *inbox.Follower
	byConv map[int64][]inbox.Event
	typing []inbox.Event
}

func newFollower(t *testing.T, s *inbox.Store) *follower {
	sub := s.Hub().Subscribe(0, 100_000)
	t.Cleanup(sub.Close)
	return &follower{t: t, sub: sub, f: s.NewFollower(), byConv: map[int64][]inbox.Event{}}
}

// seen makes the Follower start a conversation at seq.
func (fl *follower) seen(conv, seq int64) { fl.f.Seen(conv, seq) }

// until receives events until cond holds.
func (fl *follower) until(what string, cond func() bool) {
	fl.t.Helper()
	for !cond() {
		ev := inboxtest.Receive(fl.t, fl.sub.C, what)
		out, err := fl.f.Next(ctx, ev)
		if err != nil {
			fl.t.Fatalf("Follower.Next(%s %d/%d) = %v", ev.Type, ev.ConversationID, ev.Seq, err)
		}
		for _, ev := range out {
			if ev.Transient() {
				fl.typing = append(fl.typing, ev)
				continue
			}
			fl.byConv[ev.ConversationID] = append(fl.byConv[ev.ConversationID], ev)
		}
	}
}

// last is the last seq delivered of a conversation.
func (fl *follower) last(conv int64) int64 {
	evs := fl.byConv[conv]
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// sameEvents fails unless got is want: seq, type, payload and time. A
// message's delivery state is left out: another node, like a replay,
// reads the message as it is when it reads it (read since, say), and the
// events after it say so too.
func sameEvents(t *testing.T, got, want []inbox.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), types(got), len(want), types(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ConversationID != w.ConversationID || g.Seq != w.Seq || g.Type != w.Type ||
			stateless(t, g) != stateless(t, w) || !g.At.Equal(w.At) {
			t.Fatalf("event %d = %d/%d %s %s %v, want %d/%d %s %s %v", i,
				g.ConversationID, g.Seq, g.Type, g.Data, g.At, w.ConversationID, w.Seq, w.Type, w.Data, w.At)
		}
	}
}

// stateless is the event's payload, without a message's state.
func stateless(t *testing.T, ev inbox.Event) string {
	t.Helper()
	if ev.Type != inbox.EventMessageAdded {
		return string(ev.Data)
	}
	var m inbox.MessageAdded
	if err := ev.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", ev.Data, err)
	}
	m.Message.State = ""
	b, _ := json.Marshal(m)
	return string(b)
}

// contiguous fails unless the events of one conversation have the seqs
// from+1, from+2, ... in order: none lost, none twice.
func contiguous(t *testing.T, evs []inbox.Event, from int64) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != from+int64(i)+1 {
			t.Fatalf("event %d of conversation %d has seq %d, want %d (seqs %v)", i, ev.ConversationID, ev.Seq, from+int64(i)+1, seqsOf(evs))
		}
	}
}

func seqsOf(evs []inbox.Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// TestBusEventsCrossNodes: a conversation's messages, join, read and
// typing, committed on node a, reach a subscriber on node b in seq order,
// as b replays them from the database; a 16 KiB message crosses too.
func TestBusEventsCrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	onB := newFollower(t, b)
	onA := newFollower(t, a.s)

	c := a.start(t)
	a.say(t, c.ID, inbox.AuthorContact, "hello")
	if err := a.s.Join(ctx, c.ID, a.alice.ID); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	a.say(t, c.ID, inbox.AuthorAgent, "hi, how can I help?")
	if err := a.s.MarkRead(ctx, c.ID, 0, 0); err != nil {
		t.Fatalf("MarkRead() = %v", err)
	}
	big := strings.Repeat("0123456789abcdef", 1024) // 16 KiB
	a.say(t, c.ID, inbox.AuthorContact, big)
	a.s.PublishTyping(c.ID, inbox.Typing{Author: "contact", ContactID: a.contact.ID, Typing: true})

	want := events(t, b, c.ID)
	if len(want) < 6 {
		t.Fatalf("stored events %v, want at least 6", types(want))
	}
	onB.until("node a's events on node b", func() bool {
		return onB.last(c.ID) == want[len(want)-1].Seq && len(onB.typing) > 0
	})
	sameEvents(t, onB.byConv[c.ID], want)
	contiguous(t, onB.byConv[c.ID], 0)
	var last inbox.MessageAdded
	if err := onB.byConv[c.ID][len(want)-1].Decode(&last); err != nil || last.Message.Text != big {
		t.Fatalf("the 16 KiB message on node b: %d bytes, %v", len(last.Message.Text), err)
	}
	var ty inbox.Typing
	if err := onB.typing[0].Decode(&ty); err != nil || !ty.Typing || onB.typing[0].ConversationID != c.ID {
		t.Fatalf("typing on node b = %+v (%v) in %d", ty, err, onB.typing[0].ConversationID)
	}
	// Node a has its own events once: its own notifications are skipped.
	onA.until("node a's own events", func() bool { return onA.last(c.ID) == want[len(want)-1].Seq && len(onA.typing) > 0 })
	contiguous(t, onA.byConv[c.ID], 0)
	// A second typing event after the first: had a's own notification
	// come back, a's subscriber would have had a second one in between.
	a.s.PublishTyping(c.ID, inbox.Typing{Author: "contact", ContactID: a.contact.ID, Typing: false})
	onA.until("the second typing event", func() bool { return len(onA.typing) >= 2 })
	if len(onA.typing) != 2 {
		t.Fatalf("node a had %d typing events, want 2", len(onA.typing))
	}
}

// TestBusBurst: many transactions at once on node a (concurrent senders
// in many conversations, batched by the appender, and gorm writes) all
// reach node b, each conversation in order, none twice.
func TestBusBurst(t *testing.T) {
	a, b := twoNodes(t)
	onB := newFollower(t, b)
	const convs, perConv = 30, 40
	ids := make([]int64, convs)
	for i := range ids {
		ids[i] = a.start(t).ID
	}
	var wg sync.WaitGroup
	errs := make(chan error, convs)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConv {
				if _, _, err := a.s.AddMessage(ctx, inbox.NewMessage{ConversationID: id, Author: inbox.AuthorContact, Text: fmt.Sprint("m", j)}); err != nil {
					errs <- err
					return
				}
				if j%10 == 0 {
					if err := a.s.MarkRead(ctx, id, a.alice.ID, 0); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	finals := map[int64]int64{}
	for _, id := range ids {
		c, err := b.Conversation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		finals[id] = c.Seq
	}
	onB.until("every conversation's last event on node b", func() bool {
		for id, seq := range finals {
			if onB.last(id) != seq {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		contiguous(t, onB.byConv[id], 0)
		sameEvents(t, onB.byConv[id], events(t, b, id))
	}
}

// TestBusCatchUp: node b's listening connection is killed while node a
// writes; b says it is not ready until it listens again and caught up,
// and its Follower then has every event once, in order. Its sockets'
// credentials are checked again (OnResync), since a revocation may have
// been missed.
func TestBusCatchUp(t *testing.T) {
	a, b := twoNodes(t)
	c := a.start(t)
	a.say(t, c.ID, inbox.AuthorContact, "before")
	onB := newFollower(t, b)
	conv, err := b.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	onB.seen(c.ID, conv.Seq)
	var resyncs atomic.Int32
	stop := b.Hub().OnResync(func() { resyncs.Add(1) })
	defer stop()
	missed := make(chan inbox.Revoked, 10)
	stopRev := b.Hub().OnRevoked(func(r inbox.Revoked) { missed <- r })
	defer stopRev()

	lost, release := make(chan struct{}, 1), make(chan struct{})
	b.SetBusBeforeReconnect(func() {
		select {
		case lost <- struct{}{}:
		default:
		}
		<-release
	})
	pid := b.BusListenerPID()
	if pid == 0 {
		t.Fatal("node b has no listening connection")
	}
	if _, err := a.s.DB().ExecContext(ctx, "SELECT pg_terminate_backend($1)", int(pid)); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	inboxtest.Receive(t, lost, "node b losing its listening connection")
	if err := b.Ready(); err == nil {
		t.Fatal("node b is ready without its listening connection")
	}
	// Node a writes while b is deaf: a message, a join, a read.
	for i := range 5 {
		a.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("while deaf ", i))
	}
	if err := a.s.Join(ctx, c.ID, a.bob.ID); err != nil {
		t.Fatal(err)
	}
	c2 := a.start(t) // a conversation b never saw
	a.say(t, c2.ID, inbox.AuthorContact, "new while deaf")
	token, _, err := a.s.CreateSession(ctx, a.alice.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	// The logout's notice leaves node a in the background: sent once b
	// listens again, b would hear it.
	inboxtest.Eventually(t, "node a's notifications sent", func() bool { return a.s.BusUnsent() == 0 })
	close(release)
	inboxtest.Eventually(t, "node b ready again", func() bool { return b.Ready() == nil })
	if resyncs.Load() != 1 {
		t.Fatalf("OnResync called %d times, want 1", resyncs.Load())
	}
	if b.BusListenerPID() == pid || b.BusListenerPID() == 0 {
		t.Fatalf("node b listens on backend %d, before %d", b.BusListenerPID(), pid)
	}
	a.say(t, c.ID, inbox.AuthorContact, "after")
	want := events(t, b, c.ID)
	onB.until("every event on node b after catching up", func() bool {
		return onB.last(c.ID) == want[len(want)-1].Seq && onB.last(c2.ID) == 2
	})
	sameEvents(t, onB.byConv[c.ID], want[conv.Seq:])
	contiguous(t, onB.byConv[c.ID], conv.Seq)
	sameEvents(t, onB.byConv[c2.ID], events(t, b, c2.ID))
	// The revocation b missed was not delivered: the resync is what
	// closes its sockets (sockets.Registry.RecheckAll).
	select {
	case r := <-missed:
		t.Fatalf("node b received %+v sent while it was deaf", r)
	default:
	}
}

// TestBusCatchUpFromStart: a node that loses its listening connection
// soon after it started catches up on what it missed, and not on what
// was committed before it listened (its sockets get a conversation's
// events from their start; a tester saw a node 15 s old replay 154 old
// events to its agents' sockets after a lost connection).
func TestBusCatchUpFromStart(t *testing.T) {
	a, _, url := twoNodesURL(t)
	c := a.start(t)
	for i := range 5 {
		a.say(t, c.ID, inbox.AuthorContact, fmt.Sprint("before node c ", i))
	}
	before := events(t, a.s, c.ID)
	preSeq := before[len(before)-1].Seq
	late := inboxtest.Open(t, url, &inbox.Options{NodeID: "node-c"})
	inboxtest.Eventually(t, "node c ready", func() bool { return late.Ready() == nil })
	sub := late.Hub().Subscribe(0, 10_000)
	defer sub.Close()

	lost, release := make(chan struct{}, 1), make(chan struct{})
	late.SetBusBeforeReconnect(func() {
		select {
		case lost <- struct{}{}:
		default:
		}
		<-release
	})
	if _, err := a.s.DB().ExecContext(ctx, "SELECT pg_terminate_backend($1)", int(late.BusListenerPID())); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	inboxtest.Receive(t, lost, "node c losing its listening connection")
	a.say(t, c.ID, inbox.AuthorContact, "while deaf")
	close(release)
	inboxtest.Eventually(t, "node c ready again", func() bool { return late.Ready() == nil })
	a.say(t, c.ID, inbox.AuthorContact, "after")
	want := events(t, a.s, c.ID)
	var got []int64
	for len(got) == 0 || got[len(got)-1] != want[len(want)-1].Seq {
		ev := inboxtest.Receive(t, sub.C, "node c's events up to the last")
		if ev.ConversationID != c.ID || ev.Transient() {
			continue
		}
		if ev.Seq <= preSeq {
			t.Fatalf("node c published seq %d (%s), committed before it listened (up to %d)", ev.Seq, ev.Type, preSeq)
		}
		got = append(got, ev.Seq)
	}
	if len(got) != 2 || got[0] != preSeq+1 {
		t.Fatalf("node c published seqs %v, want %d and %d", got, preSeq+1, preSeq+2)
	}
}

// TestBusRevoked: a Revoked notice published on node a reaches node b's
// OnRevoked, and node a's own once.
func TestBusRevoked(t *testing.T) {
	a, b := twoNodes(t)
	onA, onB := make(chan inbox.Revoked, 10), make(chan inbox.Revoked, 10)
	defer a.s.Hub().OnRevoked(func(r inbox.Revoked) { onA <- r })()
	defer b.Hub().OnRevoked(func(r inbox.Revoked) { onB <- r })()
	token, sess, err := a.s.CreateSession(ctx, a.alice.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if r := inboxtest.Receive(t, onB, "the revocation on node b"); r.SessionID != sess.ID {
		t.Fatalf("node b got %+v, want session %s", r, sess.ID)
	}
	if r := inboxtest.Receive(t, onA, "the revocation on node a"); r.SessionID != sess.ID {
		t.Fatalf("node a got %+v, want session %s", r, sess.ID)
	}
	// A second notice: had a's own notification come back, a would have
	// had the first twice before it.
	if err := a.s.EraseContact(ctx, a.contact.ID); err != nil {
		t.Fatal(err)
	}
	if r := inboxtest.Receive(t, onA, "the second revocation on node a"); r.ContactID != a.contact.ID {
		t.Fatalf("node a got %+v, want contact %d", r, a.contact.ID)
	}
	if r := inboxtest.Receive(t, onB, "the second revocation on node b"); r.ContactID != a.contact.ID {
		t.Fatalf("node b got %+v, want contact %d", r, a.contact.ID)
	}
}

// TestBusRollbackNotifiesNothing: a write transaction or an appender
// batch that rolls back sends no notification; the next one that commits
// does.
func TestBusRollbackNotifiesNothing(t *testing.T) {
	a, _, url := twoNodesURL(t)
	c := a.start(t)
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{a.s.BusChannel()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("rolled back by the test")
	a.s.SetBeforeCommit(func() error { return failed })
	if _, _, err := a.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "never"}); err == nil {
		t.Fatal("AddMessage() succeeded through a failing commit")
	}
	if err := a.s.Join(ctx, c.ID, a.alice.ID); err == nil {
		t.Fatal("Join() succeeded through a failing commit")
	}
	a.s.SetBeforeCommit(nil)
	a.say(t, c.ID, inbox.AuthorContact, "committed")
	n, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("snode-a\n%d:%d", c.ID, c.Seq+1)
	if n.Payload != want {
		t.Fatalf("first notification %q, want %q (the committed message alone)", n.Payload, want)
	}
}

// TestLiveCredentials: of the credentials asked about, those that ended
// (logout, token revoked, agent removed) are left out.
func TestLiveCredentials(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		tokA, sessA, err := f.s.CreateSession(ctx, f.alice.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, sessB, err := f.s.CreateSession(ctx, f.bob.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, sessA2, err := f.s.CreateSession(ctx, f.alice.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteSession(ctx, tokA); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RemoveAgent(ctx, f.bob.ID); err != nil {
			t.Fatal(err)
		}
		live, err := f.s.LiveSessions(ctx, []string{sessA.ID, sessB.ID, sessA2.ID, "unknown"})
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 1 || !live[sessA2.ID].Equal(sessA2.ExpiresAt) {
			t.Fatalf("LiveSessions() = %v, want %s alone, expiring %v", live, sessA2.ID, sessA2.ExpiresAt)
		}
		v1, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Vera"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := f.s.StartVisitor(ctx, inbox.NewVisitor{Name: "Vic"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.RevokeVisitorToken(ctx, v1.Token); err != nil {
			t.Fatal(err)
		}
		id1, id2 := inbox.SessionID(v1.Token), inbox.SessionID(v2.Token)
		vl, err := f.s.LiveVisitorSessions(ctx, []string{id1, id2})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := vl[id2]; len(vl) != 1 || !ok {
			t.Fatalf("LiveVisitorSessions() = %v, want %s alone", vl, id2)
		}
	})
}
