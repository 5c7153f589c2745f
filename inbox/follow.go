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
type Follower struct {
	s *Store
	// The first conversation followed is kept outside the map, so that
	// a Follower of one conversation (a visitor's socket; there may be
	// tens of thousands) allocates no map.
	oneID, oneSeq int64
	more          map[int64]int64
}

// NewFollower returns a Follower that knows no conversation yet.
func (s *Store) NewFollower() *Follower {
	return &Follower{s: s}
}

func (f *Follower) get(id int64) (int64, bool) {
	if id != 0 && id == f.oneID {
		return f.oneSeq, true
	}
	seq, ok := f.more[id]
	return seq, ok
}

func (f *Follower) set(id, seq int64) {
	if f.oneID == 0 || f.oneID == id {
		f.oneID, f.oneSeq = id, seq
		delete(f.more, id)
		return
	}
	if f.more == nil {
		f.more = map[int64]int64{}
	}
	f.more[id] = seq
}

// Seen records that the reader has every event of the conversation up to
// and including seq.
func (f *Follower) Seen(conversationID, seq int64) { f.set(conversationID, seq) }

// Last returns the last sequence number delivered for a conversation and
// whether the Follower knows the conversation.
func (f *Follower) Last(conversationID int64) (int64, bool) { return f.get(conversationID) }

// Forget stops following a conversation.
func (f *Follower) Forget(conversationID int64) {
	if conversationID == f.oneID {
		f.oneID, f.oneSeq = 0, 0
		return
	}
	delete(f.more, conversationID)
}

// Next takes one received event and returns the events to deliver, in
// order: none if it was seen already, it alone if it is the next one, or
// everything missing up to it. A transient event (Seq 0) is delivered as
// it is and changes nothing. An event of a conversation the Follower does
// not know is delivered as it is, and the conversation is known from then
// on. ErrResync means the missing events are no longer kept: the reader
// loads the conversation afresh and calls Seen.
func (f *Follower) Next(ctx context.Context, ev Event) ([]Event, error) {
	if ev.Transient() {
		return []Event{ev}, nil
	}
	last, known := f.get(ev.ConversationID)
	switch {
	case ev.Type == EventConversationDeleted:
		f.Forget(ev.ConversationID)
		return []Event{ev}, nil
	case !known || ev.Seq == last+1:
		f.set(ev.ConversationID, ev.Seq)
		return []Event{ev}, nil
	case ev.Seq <= last:
		return nil, nil
	}
	return f.Since(ctx, ev.ConversationID, last)
}

// sincePage is how many events Since reads at a time.
const sincePage = 500

// Since returns every stored event of the conversation after seq and
// records them as seen.
func (f *Follower) Since(ctx context.Context, conversationID, seq int64) ([]Event, error) {
	var out []Event
	for {
		evs, err := f.s.EventsSince(ctx, conversationID, seq, sincePage)
		if errors.Is(err, ErrNotFound) {
			f.Forget(conversationID)
			return out, err
		}
		if err != nil {
			return out, err
		}
		if len(evs) == 0 {
			f.set(conversationID, seq)
			return out, nil
		}
		out = append(out, evs...)
		seq = evs[len(evs)-1].Seq
		if len(evs) < sincePage {
			// The last page: what comes after arrives live.
			f.set(conversationID, seq)
			return out, nil
		}
	}
}
