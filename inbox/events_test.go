package inbox_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

func TestEventsPublishedAfterCommitAndReplayed(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		all := f.s.Hub().Subscribe(0, 100)
		defer all.Close()
		c := f.start(t)
		one := f.s.Hub().Subscribe(c.ID, 100)
		defer one.Close()
		m := f.say(t, c.ID, inbox.AuthorContact, "hello")
		noErr(t, "Join()", f.s.Join(ctx, c.ID, f.alice.ID))

		var live []inbox.Event
		for len(live) < 3 {
			select {
			case ev := <-all.C:
				live = append(live, ev)
			case <-time.After(5 * time.Second):
				t.Fatalf("got %v, want 3 events", types(live))
			}
		}
		stored := events(t, f.s, c.ID)
		for i := range stored {
			// The id too: a socket on this node gets the published event,
			// one on another node the one read from the database.
			if live[i].ID != stored[i].ID || live[i].Seq != stored[i].Seq || live[i].Type != stored[i].Type || string(live[i].Data) != string(stored[i].Data) {
				t.Fatalf("published id %d %d %s %s, stored id %d %d %s %s", live[i].ID, live[i].Seq, live[i].Type, live[i].Data,
					stored[i].ID, stored[i].Seq, stored[i].Type, stored[i].Data)
			}
		}
		var added inbox.MessageAdded
		if err := stored[1].Decode(&added); err != nil || added.Message.ID != m.ID || added.Message.Text != "hello" {
			t.Fatalf("replayed message_added = %s, %v", stored[1].Data, err)
		}
		// The per-conversation subscription saw the two events after it began.
		if ev := inboxtest.Receive(t, one.C, "the conversation's first event"); ev.Seq != 2 {
			t.Fatalf("conversation subscriber got seq %d first, want 2", ev.Seq)
		}
		// Resume from the middle.
		rest, err := f.s.EventsSince(ctx, c.ID, 2, 10)
		if err != nil || len(rest) != 1 || rest[0].Type != inbox.EventJoined {
			t.Fatalf("EventsSince(2) = %v, %v", types(rest), err)
		}
		if rest, err := f.s.EventsSince(ctx, c.ID, 3, 10); err != nil || len(rest) != 0 {
			t.Fatalf("EventsSince(latest) = %v, %v", types(rest), err)
		}
		if rest, err := f.s.EventsSince(ctx, c.ID, 4, 10); !errors.Is(err, inbox.ErrResync) {
			t.Fatalf("EventsSince(beyond the latest) = %v, %v; want ErrResync", types(rest), err)
		}
	})
}

func TestResyncWhenEventsArePruned(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		f.say(t, c.ID, inbox.AuthorContact, "old")
		if _, err := f.s.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("PruneEvents() = %v", err)
		}
		f.say(t, c.ID, inbox.AuthorContact, "new")
		if _, err := f.s.EventsSince(ctx, c.ID, 1, 10); !errors.Is(err, inbox.ErrResync) {
			t.Fatalf("EventsSince(too old) = %v, want ErrResync", err)
		}
		if evs, err := f.s.EventsSince(ctx, c.ID, 2, 10); err != nil || len(evs) != 1 {
			t.Fatalf("EventsSince(2) = %v, %v; want the kept event", types(evs), err)
		}
		fl := f.s.NewFollower()
		fl.Seen(c.ID, 0)
		if _, err := fl.Since(ctx, c.ID, 0); !errors.Is(err, inbox.ErrResync) {
			t.Fatalf("Follower.Since(0) = %v, want ErrResync", err)
		}
	})
}

// The Follower turns out-of-order, repeated and missing events into the
// stored order.
func TestFollowerFillsGaps(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		for i := range 5 {
			f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint(i))
		}
		stored := events(t, f.s, c.ID) // seq 1..6
		fl := f.s.NewFollower()
		fl.Seen(c.ID, 1)
		var got []int64
		for _, i := range []int{3, 1, 2, 5, 4, 0} { // seq 4, 2, 3, 6, 5, 1
			out, err := fl.Next(ctx, stored[i])
			if err != nil {
				t.Fatalf("Next(%d) = %v", stored[i].Seq, err)
			}
			for _, ev := range out {
				got = append(got, ev.Seq)
			}
		}
		if fmt.Sprint(got) != "[2 3 4 5 6]" {
			t.Fatalf("delivered %v, want [2 3 4 5 6]", got)
		}
	})
}

// Follower.Resume sends what the reader lacks once, in order, or says
// resync: for a cursor beyond the conversation, and for one before events
// it delivered without knowing the cursor; after a resync it goes on from
// the conversation's last event.
func TestFollowerResume(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		for i := range 5 {
			f.say(t, c.ID, inbox.AuthorContact, fmt.Sprint(i))
		}
		stored := events(t, f.s, c.ID) // seq 1..6
		seqs := func(evs []inbox.Event) string {
			var out []int64
			for _, ev := range evs {
				out = append(out, ev.Seq)
			}
			return fmt.Sprint(out)
		}

		// A cursor beyond the conversation: resync, and the Follower is at 6.
		fl := f.s.NewFollower()
		if evs, err := fl.Resume(ctx, c.ID, 60); !errors.Is(err, inbox.ErrResync) || len(evs) != 0 {
			t.Fatalf("Resume(60) = %s, %v; want ErrResync", seqs(evs), err)
		}
		if last, ok := fl.Last(c.ID); !ok || last != 6 {
			t.Fatalf("after the resync: Last() = %d, %v; want 6", last, ok)
		}
		if evs, _ := fl.Next(ctx, stored[5]); len(evs) != 0 {
			t.Fatalf("Next(6) after the resync = %s, want nothing", seqs(evs))
		}

		// Seq 5 delivered live before the cursor is known.
		fl = f.s.NewFollower()
		if evs, err := fl.Next(ctx, stored[4]); err != nil || seqs(evs) != "[5]" {
			t.Fatalf("Next(5) = %s, %v", seqs(evs), err)
		}
		// A cursor just before it: only 6 is missing.
		if evs, err := fl.Resume(ctx, c.ID, 4); err != nil || seqs(evs) != "[6]" {
			t.Fatalf("Resume(4) after 5 live = %s, %v; want [6]", seqs(evs), err)
		}
		// Again, and from further back: 5 and 6 are not sent twice, and
		// 2..4 cannot come after them.
		if evs, err := fl.Resume(ctx, c.ID, 6); err != nil || len(evs) != 0 {
			t.Fatalf("Resume(6) = %s, %v; want nothing", seqs(evs), err)
		}
		if evs, err := fl.Resume(ctx, c.ID, 1); !errors.Is(err, inbox.ErrResync) || len(evs) != 0 {
			t.Fatalf("Resume(1) after 5 and 6 = %s, %v; want ErrResync", seqs(evs), err)
		}
		// An unknown conversation's cursor reads from it.
		fl = f.s.NewFollower()
		if evs, err := fl.Resume(ctx, c.ID, 3); err != nil || seqs(evs) != "[4 5 6]" {
			t.Fatalf("Resume(3) = %s, %v; want [4 5 6]", seqs(evs), err)
		}
		if evs, err := fl.Next(ctx, stored[4]); err != nil || len(evs) != 0 {
			t.Fatalf("Next(5) after the resume = %s, %v; want nothing", seqs(evs), err)
		}
	})
}

func TestHubLaggingSubscriberIsClosed(t *testing.T) {
	h := inbox.NewHub()
	slow := h.Subscribe(7, 2)
	fast := h.Subscribe(7, 100)
	defer fast.Close()
	for i := range 5 {
		h.Publish([]inbox.Event{{ConversationID: 7, Seq: int64(i + 1)}})
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), inbox.ErrLagged) {
		t.Fatalf("slow subscriber got %d events, err %v; want 2 and ErrLagged", n, slow.Err())
	}
	if len(fast.C) != 5 {
		t.Fatalf("fast subscriber has %d events, want 5", len(fast.C))
	}
	if h.Subscribers() != 1 {
		t.Fatalf("Subscribers() = %d, want 1", h.Subscribers())
	}
	slow.Close() // closing twice is fine
}

// Concurrent joins, leaves and messages on one conversation: sequence
// numbers stay 1..n without gaps, and nothing is lost. Run with -race.
func TestConcurrentChangesKeepSequence(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		agents := []inbox.Agent{f.alice, f.bob}
		for i := range 4 {
			a, err := f.s.CreateAgent(ctx, inbox.NewAgent{Email: fmt.Sprintf("a%d@example.com", i), Name: fmt.Sprint("A", i), Password: "0123456789"})
			if err != nil {
				t.Fatalf("CreateAgent() = %v", err)
			}
			agents = append(agents, a)
		}
		sub := f.s.Hub().Subscribe(c.ID, 10000)
		defer sub.Close()
		const rounds = 15
		var wg sync.WaitGroup
		var mu sync.Mutex
		var msgs int
		for _, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					if err := f.s.Join(ctx, c.ID, a.ID); err != nil {
						t.Errorf("Join() = %v", err)
					}
					_, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorAgent, AgentID: &a.ID,
						Text: fmt.Sprint(a.Name, i), ClientID: fmt.Sprint(a.ID, "-", i)})
					if err != nil {
						t.Errorf("AddMessage() = %v", err)
					}
					if _, _, err := f.s.AddMessage(ctx, inbox.NewMessage{ConversationID: c.ID, Author: inbox.AuthorContact, Text: "c"}); err != nil {
						t.Errorf("AddMessage(contact) = %v", err)
					}
					mu.Lock()
					msgs += 2
					mu.Unlock()
					if err := f.s.Leave(ctx, c.ID, a.ID); err != nil {
						t.Errorf("Leave() = %v", err)
					}
				}
			}()
		}
		wg.Wait()
		evs := events(t, f.s, c.ID) // checks 1..n, no gaps
		counts := map[string]int{}
		for _, ev := range evs {
			counts[ev.Type]++
		}
		joins := len(agents) * rounds
		if counts[inbox.EventMessageAdded] != msgs || counts[inbox.EventJoined] != joins || counts[inbox.EventLeft] != joins {
			t.Fatalf("event counts %v; want %d messages, %d joins and leaves", counts, msgs, joins)
		}
		page, err := f.s.Messages(ctx, c.ID, inbox.MessageQuery{Limit: 200})
		noErr(t, "Messages()", err)
		if len(page.Messages) != msgs {
			t.Fatalf("%d messages stored, want %d", len(page.Messages), msgs)
		}
		// Exactly one responsible participant whenever somebody joined an
		// empty conversation: a closed event follows each last leave.
		if conv, _ := f.s.Conversation(ctx, c.ID); conv.Status != inbox.StatusClosed {
			t.Fatalf("status after everyone left = %s", conv.Status)
		}
		// Every stored event was published, and a Follower puts them in order.
		fl := f.s.NewFollower()
		fl.Seen(c.ID, 1)
		var seqs []int64
		for len(seqs) < len(evs)-1 {
			select {
			case ev := <-sub.C:
				out, err := fl.Next(ctx, ev)
				if err != nil {
					t.Fatalf("Follower.Next() = %v", err)
				}
				for _, e := range out {
					seqs = append(seqs, e.Seq)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("got %d of %d events", len(seqs), len(evs)-1)
			}
		}
		for i, seq := range seqs {
			if seq != int64(i+2) {
				t.Fatalf("followed seq %d at %d", seq, i)
			}
		}
	})
}

// The appender stores messages in batches (several conversations, contact
// messages and agent replies in one transaction); each published
// message_added carries the id of its stored event, as a replay reads it.
func TestBatchedMessagesPublishTheirEventIDs(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		// One committing worker on PostgreSQL too, so that the messages
		// queued behind the held one make one batch.
		f := newFixtureOpts(t, url, &inbox.Options{MaxOpenConns: 2})
		var convs []int64
		for range 3 {
			convs = append(convs, f.start(t).ID)
		}
		all := f.s.Hub().Subscribe(0, 1000)
		defer all.Close()

		held, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		var mu sync.Mutex
		commits := 0
		f.s.SetBeforeCommit(func() error {
			mu.Lock()
			commits++
			mu.Unlock()
			once.Do(func() {
				close(held)
				<-release
			})
			return nil
		})
		defer f.s.SetBeforeCommit(nil)
		const n = 30
		var wg sync.WaitGroup
		submit := func(i int) {
			m := inbox.NewMessage{ConversationID: convs[i%len(convs)], Author: inbox.AuthorContact, Text: fmt.Sprint("message ", i)}
			if i%2 == 1 {
				m.Author, m.AgentID = inbox.AuthorAgent, &f.alice.ID
			}
			wg.Add(1)
			err := f.s.AddMessageAsync(ctx, m, func(_ inbox.Message, _ bool, err error) {
				if err != nil {
					t.Errorf("message %d: %v", i, err)
				}
				wg.Done()
			})
			noErr(t, "AddMessageAsync()", err)
		}
		submit(0)
		<-held
		for i := 1; i < n; i++ {
			submit(i)
		}
		close(release)
		wg.Wait()
		if commits >= n {
			t.Fatalf("%d transactions for %d messages, want batches", commits, n)
		}

		stored := map[[2]int64]int64{} // (conversation, seq) to event id
		for _, c := range convs {
			for _, ev := range events(t, f.s, c) {
				stored[[2]int64{ev.ConversationID, ev.Seq}] = ev.ID
			}
		}
		for got := 0; got < n; {
			ev := inboxtest.Receive(t, all.C, "the messages' events")
			if ev.Type != inbox.EventMessageAdded {
				continue
			}
			got++
			if id := stored[[2]int64{ev.ConversationID, ev.Seq}]; ev.ID == 0 || ev.ID != id {
				t.Errorf("published message_added of conversation %d seq %d has id %d, stored %d", ev.ConversationID, ev.Seq, ev.ID, id)
			}
		}
	})
}
