package inbox

import (
	"context"
	"errors"
)

// Follower turns the events a subscription receives into, per
// conversation, a stream in sequence order without gaps or duplicates.
// Published events can arrive out of order (two transactions commit, then
// publish, concurrently) or be missed (a lagging subscription, a
// reconnect); the Follower reads what is missing from the database. One
// Follower belongs to one goroutine.
type Follower struct {
	s    *Store
	last map[int64]int64
}

// NewFollower returns a Follower that knows no conversation yet.
func (s *Store) NewFollower() *Follower {
	return &Follower{s: s, last: map[int64]int64{}}
}

// Seen records that the reader has every event of the conversation up to
// and including seq.
func (f *Follower) Seen(conversationID, seq int64) { f.last[conversationID] = seq }

// Last returns the last sequence number delivered for a conversation and
// whether the Follower knows the conversation.
func (f *Follower) Last(conversationID int64) (int64, bool) {
	seq, ok := f.last[conversationID]
	return seq, ok
}

// Forget stops following a conversation.
func (f *Follower) Forget(conversationID int64) { delete(f.last, conversationID) }

// Next takes one received event and returns the events to deliver, in
// order: none if it was seen already, it alone if it is the next one, or
// everything missing up to it. An event of a conversation the Follower does
// not know is delivered as it is, and the conversation is known from then
// on. ErrResync means the missing events are no longer kept: the reader
// loads the conversation afresh and calls Seen.
func (f *Follower) Next(ctx context.Context, ev Event) ([]Event, error) {
	last, known := f.last[ev.ConversationID]
	switch {
	case ev.Type == EventConversationDeleted:
		delete(f.last, ev.ConversationID)
		return []Event{ev}, nil
	case !known || ev.Seq == last+1:
		f.last[ev.ConversationID] = ev.Seq
		return []Event{ev}, nil
	case ev.Seq <= last:
		return nil, nil
	}
	return f.Since(ctx, ev.ConversationID, last)
}

// Since returns every stored event of the conversation after seq and
// records them as seen.
func (f *Follower) Since(ctx context.Context, conversationID, seq int64) ([]Event, error) {
	var out []Event
	for {
		evs, err := f.s.EventsSince(ctx, conversationID, seq, 500)
		if errors.Is(err, ErrNotFound) {
			delete(f.last, conversationID)
			return out, err
		}
		if err != nil {
			return out, err
		}
		if len(evs) == 0 {
			f.last[conversationID] = seq
			return out, nil
		}
		out = append(out, evs...)
		seq = evs[len(evs)-1].Seq
	}
}
