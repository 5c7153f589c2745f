package inbox

import (
	"context"
	"errors"
)

// Follower turns the events a subscription receives into, per
// conversation, a stream in sequence order without gaps or duplicates.
// Published events can arrive out of order (two transactions commit, then
// publish, concurrently) or be missed (a lagging subscription, a
// reconnect); the Follower reads what is missing from the database.
// Transient events (Seq 0) pass through as they are. One Follower belongs
// to one goroutine at a time.
//
// Its owner subscribes first, then gives the Follower its starting point
// (Seen or Resume), which reads what was committed before: an event
// published in between reaches the subscription too, and the Follower
// drops it as already delivered. Reading the starting point before
// subscribing loses what is committed between the two.
type Follower struct {
	s *Store
	// The first conversation followed is kept outside the map, so that
	// a Follower of one conversation (a visitor's socket; there may be
	// tens of thousands) allocates no map.
	oneID int64
	one   followed
	more  map[int64]followed
}

// followed is where the reader of one conversation stands: it has every
// event up to last, and the events after floor came from this Follower,
// in order, without a gap. A reader that says it has everything up to a
// cursor at or after floor therefore has everything up to last too; one
// whose cursor is before floor lacks events that can no longer come in
// order.
type followed struct {
	last, floor int64
}

// NewFollower returns a Follower that knows no conversation yet.
func (s *Store) NewFollower() *Follower {
	return &Follower{s: s}
}

func (f *Follower) get(id int64) (followed, bool) {
	if id != 0 && id == f.oneID {
		return f.one, true
	}
	st, ok := f.more[id]
	return st, ok
}

func (f *Follower) set(id int64, st followed) {
	if f.oneID == 0 || f.oneID == id {
		f.oneID, f.one = id, st
		delete(f.more, id)
		return
	}
	if f.more == nil {
		f.more = map[int64]followed{}
	}
	f.more[id] = st
}

// Seen records that the reader has every event of the conversation up to
// and including seq, and nothing delivered after it.
func (f *Follower) Seen(conversationID, seq int64) { f.set(conversationID, followed{seq, seq}) }

// Last returns the last sequence number delivered for a conversation and
// whether the Follower knows the conversation.
func (f *Follower) Last(conversationID int64) (int64, bool) {
	st, ok := f.get(conversationID)
	return st.last, ok
}

// Forget stops following a conversation.
func (f *Follower) Forget(conversationID int64) {
	if conversationID == f.oneID {
		f.oneID, f.one = 0, followed{}
		return
	}
	delete(f.more, conversationID)
}

// Next takes one received event and returns the events to deliver, in
// order: none if it was seen already, it alone if it is the next one, or
// everything missing up to it. A transient event (Seq 0) is delivered as
// it is and changes nothing. An event of a conversation the Follower does
// not know is delivered as it is, and the conversation is known from then
// on (a later Resume with a cursor before it is a resync). ErrResync
// means the missing events are no longer kept: the Follower goes on from
// the conversation's current sequence number, and the reader loads the
// conversation afresh.
func (f *Follower) Next(ctx context.Context, ev Event) ([]Event, error) {
	if ev.Transient() {
		return []Event{ev}, nil
	}
	st, known := f.get(ev.ConversationID)
	switch {
	case ev.Type == EventConversationDeleted:
		f.Forget(ev.ConversationID)
		return []Event{ev}, nil
	case !known:
		f.set(ev.ConversationID, followed{last: ev.Seq, floor: ev.Seq - 1})
		return []Event{ev}, nil
	case ev.Seq == st.last+1:
		f.set(ev.ConversationID, followed{last: ev.Seq, floor: st.floor})
		return []Event{ev}, nil
	case ev.Seq <= st.last:
		return nil, nil
	}
	return f.since(ctx, ev.ConversationID, st.last, st.floor)
}

// Resume takes a reader's cursor: it has every event of the conversation
// up to and including cursor. It returns the stored events after it that
// the Follower has not delivered yet, in order, and follows the
// conversation from there. A cursor before what the Follower delivered
// without a gap (it delivered events of the conversation before it knew
// the cursor), beyond the conversation's last event, or whose next events
// are pruned, is ErrResync: the Follower goes on from the conversation's
// current sequence number and the reader loads the conversation afresh.
// ErrNotFound: the conversation is gone.
func (f *Follower) Resume(ctx context.Context, conversationID, cursor int64) ([]Event, error) {
	st, known := f.get(conversationID)
	switch {
	case !known:
		return f.since(ctx, conversationID, cursor, cursor)
	case cursor < st.floor:
		// Events after cursor would come after those already delivered.
		f.set(conversationID, followed{last: st.last, floor: st.last})
		return nil, ErrResync
	}
	return f.since(ctx, conversationID, max(cursor, st.last), st.floor)
}

// sincePage is how many events Since reads at a time.
const sincePage = 500

// Since returns every stored event of the conversation after seq and
// records them as seen; the reader has everything up to seq. ErrResync
// and ErrNotFound are as for Resume.
func (f *Follower) Since(ctx context.Context, conversationID, seq int64) ([]Event, error) {
	return f.since(ctx, conversationID, seq, seq)
}

// since reads the events after seq, a page at a time, recording each page
// as delivered as soon as it is read, so that a later error leaves the
// Follower where the returned events end.
func (f *Follower) since(ctx context.Context, conversationID, seq, floor int64) ([]Event, error) {
	var out []Event
	for {
		evs, err := f.s.EventsSince(ctx, conversationID, seq, sincePage)
		switch {
		case errors.Is(err, ErrNotFound):
			f.Forget(conversationID)
			return out, err
		case errors.Is(err, ErrResync):
			f.resynced(ctx, conversationID)
			return out, err
		case err != nil:
			return out, err
		}
		if len(evs) > 0 {
			seq = evs[len(evs)-1].Seq
		}
		f.set(conversationID, followed{last: seq, floor: floor})
		out = append(out, evs...)
		if len(evs) < sincePage {
			// The last page: what comes after arrives live.
			return out, nil
		}
	}
}

// resynced moves the Follower to the conversation's current sequence
// number after a resync: the reader reloads the conversation, and the
// events committed after this read arrive live (the subscription came
// first). If the read fails, the Follower stays where it was.
func (f *Follower) resynced(ctx context.Context, conversationID int64) {
	c, err := f.s.Conversation(ctx, conversationID)
	switch {
	case err == nil:
		f.Seen(conversationID, c.Seq)
	case errors.Is(err, ErrNotFound):
		f.Forget(conversationID)
	}
}
