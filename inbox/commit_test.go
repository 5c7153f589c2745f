package inbox_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// commitChecker is a Publisher that checks, as each stored event is
// published, that its row is committed: visible from another Store on the
// same database, whose connections see only committed rows. It then
// hands the events on to a hub.
type commitChecker struct {
	other *inbox.Store
	hub   *inbox.Hub

	mu        sync.Mutex
	published []inbox.Event
	bad       []string
}

func (c *commitChecker) Publish(evs []inbox.Event) {
	for _, ev := range evs {
		if ev.Seq == 0 {
			continue // transient: nothing stored
		}
		got, err := c.other.EventsSince(ctx, ev.ConversationID, ev.Seq-1, 1)
		if err != nil || len(got) != 1 || got[0].Seq != ev.Seq || got[0].Type != ev.Type {
			c.mu.Lock()
			c.bad = append(c.bad, fmt.Sprintf("%s seq %d of conversation %d published before its commit (read back %v, %v)",
				ev.Type, ev.Seq, ev.ConversationID, types(got), err))
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	c.published = append(c.published, evs...)
	c.mu.Unlock()
	c.hub.Publish(evs)
}

// Revoke hands a notice of ended credentials on to the hub.
func (c *commitChecker) Revoke(r inbox.Revoked) { c.hub.Revoke(r) }

func (c *commitChecker) events() (published []inbox.Event, bad []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]inbox.Event(nil), c.published...), append([]string(nil), c.bad...)
}

// newCheckedFixture is a fixture whose store publishes through a
// commitChecker.
func newCheckedFixture(t *testing.T, url string) (*fixture, *commitChecker) {
	t.Helper()
	hub := inbox.NewHub()
	c := &commitChecker{other: inboxtest.Open(t, url, nil), hub: hub}
	return newFixtureOpts(t, url, &inbox.Options{Hub: hub, Publisher: c}), c
}

// Every stored event is published once, and only after its transaction
// committed: from Store.write (start, join, leave, presence) and from the
// message appender (one message, and concurrent batches).
func TestEventsPublishedOnlyAfterCommit(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f, check := newCheckedFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "hello")
		errs := make(chan error, 20)
		for i := range 20 {
			go func() {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: fmt.Sprint("m", i)})
				errs <- err
			}()
		}
		for range 20 {
			noErr(t, "AddMessage()", inboxtest.Receive(t, errs, "a message stored"))
		}
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		f.say(t, c.ID, inbox.AuthorAgent, "hi")
		noErr(t, "SetContactOnline()", f.s.SetContactOnline(ctx, f.contact.ID, true))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
		noErr(t, "Join() again", f.s.Join(ctx, c.ID, f.bob.ID))

		stored := events(t, f.s, c.ID)
		published, bad := check.events()
		for _, b := range bad {
			t.Error(b)
		}
		var seqs []int64
		for _, ev := range published {
			if ev.Seq > 0 {
				seqs = append(seqs, ev.Seq)
			}
		}
		if len(seqs) != len(stored) {
			t.Fatalf("%d stored events published, want each of the %d stored once (%v)", len(seqs), len(stored), seqs)
		}
	})
}

var errInjected = errors.New("injected before commit")

// A transaction that rolls back publishes nothing, not even its transient
// events: Store.write (join, presence) and the message appender.
func TestNothingPublishedOnRollback(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f, check := newCheckedFixture(t, url)
		c := f.start(t)
		before, _ := check.events()
		f.s.SetBeforeCommit(func() error { return errInjected })
		if err := f.s.Join(ctx, c.ID, f.alice.ID); err == nil {
			t.Fatalf("Join() with a failing commit = nil")
		}
		if err := f.s.SetContactOnline(ctx, f.contact.ID, true); err == nil {
			t.Fatalf("SetContactOnline() with a failing commit = nil")
		}
		if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "lost"}); err == nil {
			t.Fatalf("AddMessage() with a failing commit = nil")
		}
		errs := make(chan error, 10)
		for i := range 10 {
			go func() {
				_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: fmt.Sprint("lost ", i)})
				errs <- err
			}()
		}
		for range 10 {
			if err := inboxtest.Receive(t, errs, "a message refused"); err == nil {
				t.Fatalf("AddMessage() in a batch with a failing commit = nil")
			}
		}
		f.s.SetBeforeCommit(nil)
		if after, _ := check.events(); len(after) != len(before) {
			t.Fatalf("published %v of rolled-back transactions", types(after[len(before):]))
		}
		if evs := events(t, f.s, c.ID); len(evs) != 1 {
			t.Fatalf("stored %v, want only the creation", types(evs))
		}
		// The same writes succeed once commits do.
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		f.say(t, c.ID, inbox.AuthorContact, "kept")
		if after, bad := check.events(); len(after) != len(before)+2 || len(bad) > 0 {
			t.Fatalf("published %v (%v), want joined and message_added", types(after[len(before):]), bad)
		}
	})
}

// Joining a closed conversation reopens it, and its joined event says so;
// joining an open one does not.
func TestJoinReopensClosed(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))
		noErr(t, "Leave()", f.s.Leave(ctx, c.ID, f.alice.ID))
		conv, err := f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		if conv.Status != inbox.StatusClosed {
			t.Fatalf("after the last left: %s, want closed", conv.Status)
		}
		noErr(t, "Join() of the closed conversation", f.s.Join(ctx, c.ID, f.bob.ID))
		conv, err = f.s.Conversation(ctx, c.ID)
		noErr(t, "Conversation()", err)
		if conv.Status != inbox.StatusOpen || conv.ClosedAt != nil {
			t.Fatalf("after a join: status %s, closed at %v; want open", conv.Status, conv.ClosedAt)
		}
		evs := events(t, f.s, c.ID)
		var j inbox.Joined
		if last := evs[len(evs)-1]; last.Type != inbox.EventJoined || last.Decode(&j) != nil || !j.Reopened || j.AgentID != f.bob.ID || !j.Responsible {
			t.Fatalf("last event = %s %s, want bob's joined, responsible, reopened", last.Type, last.Data)
		}
		var j1 inbox.Joined
		if first := evs[1]; first.Decode(&j1) != nil || j1.Reopened {
			t.Fatalf("the first join = %s, want not reopened", first.Data)
		}
	})
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v", what, err)
	}
}
