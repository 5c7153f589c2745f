package web

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// replyTrace records the phases testHookReply reports, per client id, and
// wakes whoever waits for one.
type replyTrace struct {
	mu      sync.Mutex
	phases  map[string]map[string]bool
	changed chan struct{}
}

func newReplyTrace() *replyTrace {
	return &replyTrace{phases: map[string]map[string]bool{}, changed: make(chan struct{})}
}

func (r *replyTrace) record(clientID, phase string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.phases[clientID] == nil {
		r.phases[clientID] = map[string]bool{}
	}
	r.phases[clientID][phase] = true
	close(r.changed)
	r.changed = make(chan struct{})
}

// await waits until cond holds of the phases seen, for up to 5 s; false
// when it did not.
func (r *replyTrace) await(cond func(has func(clientID, phase string) bool) bool) bool {
	deadline := time.After(frameWait)
	for {
		r.mu.Lock()
		ok := cond(func(id, phase string) bool { return r.phases[id][phase] })
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// One connection's replies to one conversation are stored in the order
// their frames came (docs/protocol.md), however long the first takes;
// replies to another conversation are not held behind them.
func TestAgentSocketRepliesInOrder(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newWSEnv(t, url)
		e.srv.replies = nil // no limit: the order is tested here, not the rate
		a, b := e.conv.ID, e.env.conversation("Bo", "").ID
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)

		// The first reply to a is held at its store until each later
		// frame of a waits for it (or, if nothing made them wait, is
		// stored) and b's are stored.
		trace := newReplyTrace()
		held := make(chan bool, 1)
		testHookReply = func(clientID, phase string) {
			if clientID == "a0" && phase == "store" {
				held <- trace.await(func(has func(string, string) bool) bool {
					for _, id := range []string{"a1", "a2"} {
						if !has(id, "wait") && !has(id, "stored") {
							return false
						}
					}
					return has("b0", "stored") && has("b1", "stored")
				})
			}
			trace.record(clientID, phase)
		}
		t.Cleanup(func() { testHookReply = nil })
		order := [][2]any{{a, "a0"}, {b, "b0"}, {a, "a1"}, {b, "b1"}, {a, "a2"}}
		sendInOrder(t, c, order)
		if !<-held {
			t.Errorf("b's replies were not stored while a's first was held, or a's later ones neither waited nor were stored")
		}
		testHookReply = nil

		// And back to back without a hook, many rounds.
		for round := range 20 {
			var frames [][2]any
			for i := range 3 {
				frames = append(frames, [2]any{a, "r" + strconv.Itoa(round) + "a" + strconv.Itoa(i)},
					[2]any{b, "r" + strconv.Itoa(round) + "b" + strconv.Itoa(i)})
			}
			sendInOrder(t, c, frames)
		}

		// The case: a dashboard flushes three replies written
		// while it was offline; they read in the order written.
		texts := []string{"Hi", "one moment", "checking your order"}
		for i, text := range texts {
			c.send(t, messageFrame(a, "flush-"+strconv.Itoa(i), text))
		}
		for acked := 0; acked < len(texts); {
			switch f := c.next(t); f.Type {
			case "ack":
				acked++
			case "error":
				t.Fatalf("error frame %+v", f)
			}
		}
		page, err := e.store.Messages(context.Background(), a, inbox.MessageQuery{Limit: 3})
		if err != nil {
			t.Fatalf("Messages() = %v", err)
		}
		var got []string
		for _, m := range page.Messages {
			got = append(got, m.Text)
		}
		if strings.Join(got, "|") != strings.Join(texts, "|") {
			t.Fatalf("stored %q, want %q", got, texts)
		}
	})
}

// sendInOrder sends a message frame for each (conversation, client id) at
// once, waits for every answer, and checks that each conversation's acked
// sequence numbers increase in the order the frames were sent.
func sendInOrder(t *testing.T, c *wsClient, frames [][2]any) {
	t.Helper()
	for _, f := range frames {
		c.send(t, messageFrame(f[0].(int64), f[1].(string), "reply "+f[1].(string)))
	}
	seqs := map[string]int64{}
	for len(seqs) < len(frames) {
		f := c.next(t)
		switch f.Type {
		case "ack":
			seqs[f.ClientID] = f.Message.Seq
		case "error":
			t.Fatalf("error frame %+v", f)
		}
	}
	last := map[int64]int64{}
	for _, f := range frames {
		conv, id := f[0].(int64), f[1].(string)
		if seqs[id] <= last[conv] {
			t.Fatalf("frames %v stored as %v: %s not after the frame before it", frames, seqs, id)
		}
		last[conv] = seqs[id]
	}
}
