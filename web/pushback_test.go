package web

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Past what the store takes, both sockets push back instead of closing
// (issue 14): with the appender held, a visitor who sends more messages
// than its socket queues is no longer read, and an agent who sends more
// replies than its connection stores at once likewise; once the store
// moves again, every message is acknowledged once and stored once, and
// neither socket was closed (no 1008).
func TestSocketsPushBackWhenTheStoreIsSlow(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		var (
			hold    atomic.Bool
			held    = make(chan struct{}, 1)
			release = make(chan struct{})
			waiting = make(chan struct{}, 1)
			mu      sync.Mutex
			started = map[string]bool{} // client ids of the replies started
			free    sync.Once
		)
		// Set before the store opens and unset after it closed (the
		// cleanups run last first).
		inbox.TestHookAppendBatch = func(int) {
			if hold.Load() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
			}
		}
		webchat.TestHookReadWait = func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
		testHookReply = func(clientID, _ string) {
			mu.Lock()
			started[clientID] = true
			mu.Unlock()
		}
		t.Cleanup(func() { inbox.TestHookAppendBatch, webchat.TestHookReadWait, testHookReply = nil, nil, nil })
		unhold := func() {
			free.Do(func() {
				hold.Store(false)
				close(release)
			})
		}
		e := newEnv(t, url, func(c *config.Config) {
			c.Widget.RateLimits.MessagesPerMinute = 0
			c.Widget.RateLimits.MessagesPerMinutePerIP = 0
		})
		t.Cleanup(unhold)   // before the store closes, should the test fail
		e.srv.replies = nil // the agent's rate is not tested here
		v := e.startVisitor("Flo")
		vs, _ := v.connect(0)
		a := e.agent("pb@example.com", inbox.RoleAgent)
		as := e.agentSock(a)
		// The agent replies elsewhere: the visitor's socket carries only
		// its own messages.
		var convs []int64
		for i := range 8 {
			convs = append(convs, e.conversation("Other "+strconv.Itoa(i), "").ID)
		}

		hold.Store(true)
		const visitorN = 200
		const agentN = agentMaxReplies + 100
		sent := make(chan error, 2)
		go func() {
			for i := range visitorN {
				vs.trySend(map[string]any{"type": "message", "client_id": "v-" + strconv.Itoa(i), "text": "visitor " + strconv.Itoa(i)})
			}
			sent <- nil
		}()
		go func() {
			for i := range agentN {
				as.send(t, messageFrame(convs[i%len(convs)], "a-"+strconv.Itoa(i), "agent "+strconv.Itoa(i)))
			}
			sent <- nil
		}()
		// The store is held with messages behind it, the visitor's read
		// loop waits for room, and every reply slot of the agent's
		// connection is taken.
		deadline := time.After(inboxtest.Patience)
		for got := 0; got < 2; {
			select {
			case <-held:
				got++
			case <-waiting:
				got++
			case <-deadline:
				t.Fatalf("store held and the visitor's socket not read: not both within %v", inboxtest.Patience)
			}
		}
		waitFor(t, "every reply slot taken", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(started) >= agentMaxReplies
		})
		unhold()

		vAcks, aAcks := map[string]int64{}, map[string]int64{}
		for len(vAcks) < visitorN || len(aAcks) < agentN {
			select {
			case f := <-vs.frames:
				switch f.Type {
				case "ack":
					if _, dup := vAcks[f.ClientID]; dup {
						t.Fatalf("visitor ack %s twice", f)
					}
					vAcks[f.ClientID] = f.Message.ID
				case "event", "presence":
				default:
					t.Fatalf("visitor frame %s, want acks", f)
				}
			case err := <-vs.closed:
				t.Fatalf("visitor socket closed after %d acks: %v", len(vAcks), err)
			case f := <-as.frames:
				switch f.Type {
				case "ack":
					if _, dup := aAcks[f.ClientID]; dup {
						t.Fatalf("agent ack %+v twice", f)
					}
					aAcks[f.ClientID] = f.Message.ID
				case "event", "agent_presence", "contact_presence", "typing":
				default:
					t.Fatalf("agent frame %+v, want acks", f)
				}
			case err := <-as.closed:
				t.Fatalf("agent socket closed after %d acks: %v", len(aAcks), err)
			case <-time.After(frameWait):
				t.Fatalf("%d of %d visitor and %d of %d agent acks within %v", len(vAcks), visitorN, len(aAcks), agentN, frameWait)
			}
		}
		<-sent
		<-sent
		// Both sockets still serve.
		vs.send(t, map[string]any{"type": "ping"})
		for f := vs.next(t); f.Type != "pong"; f = vs.next(t) {
			if f.Type != "event" && f.Type != "presence" {
				t.Fatalf("visitor frame %s, want its events, then the pong", f)
			}
		}
		as.send(t, agentCommand{Type: "ping"})
		agentNext(t, as, "pong", nil)
		// Stored once each, in the visitor's order.
		var texts []string // newest page first, then the ones before it
		for q := (inbox.MessageQuery{Limit: 200}); ; {
			page, err := e.store.Messages(context.Background(), v.start.Conversation.ID, q)
			if err != nil {
				t.Fatalf("Messages() = %v", err)
			}
			var these []string
			for _, m := range page.Messages {
				if m.Author == inbox.AuthorContact {
					these = append(these, m.Text)
				}
			}
			texts = append(these, texts...)
			if !page.HasBefore || len(page.Messages) == 0 {
				break
			}
			q.Before = page.Messages[0].Seq
		}
		if len(texts) != visitorN {
			t.Fatalf("%d visitor messages stored, want %d", len(texts), visitorN)
		}
		for i, text := range texts {
			if text != "visitor "+strconv.Itoa(i) {
				t.Fatalf("stored message %d = %q, want visitor %d", i, text, i)
			}
		}
	})
}
