package web

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A resume cursor beyond the conversation is a resync, over the socket
// and over HTTP (409), and the events that follow still come.
func TestAgentResumeCursorAhead(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newWSEnv(t, url)
		for range 3 {
			e.env.contactSays(e.conv.ID, "hello?")
		}
		conv, err := e.store.Conversation(ctx, e.conv.ID)
		noError(t, "Conversation()", err)
		cl := e.env.login(e.agent.Email)
		path := "/api/v1/conversations/" + itoa64(conv.ID) + "/events?after="
		if r := cl.do("GET", path+itoa64(conv.Seq+50), nil).want(http.StatusConflict); !r.apiErr().Resync {
			t.Fatalf("events after a cursor ahead = %s, want resync", r.body)
		}
		cl.do("GET", path+itoa64(conv.Seq), nil).want(http.StatusOK)

		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(conv.ID): conv.Seq + 50}})
		if f := c.next(t); f.Type != "resync" || f.ConversationID != conv.ID {
			t.Fatalf("answer to a cursor ahead = %+v, want resync of %d", f, conv.ID)
		}
		for i := range int64(3) {
			e.env.contactSays(conv.ID, "still there?")
			if f := c.next(t); f.Type != "event" || f.Event.Seq != conv.Seq+1+i {
				t.Fatalf("after the resync: %+v, want event %d", f, conv.Seq+1+i)
			}
		}
		// A cursor that names no conversation is an error, never the
		// resync without a conversation that means "reload everything".
		for _, key := range []string{"0", "-3", "x"} {
			c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{key: 0}})
			if f := c.next(t); f.Type != "error" {
				t.Fatalf("answer to cursor %q = %+v, want error", key, f)
			}
		}
	})
}

// An event committed between the hello and the resume, and sent live
// before the resume is read, is not sent again, and the events before it
// are not sent after it: the conversation is resynced instead.
func TestAgentResumeAfterLiveEvent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newWSEnv(t, url)
		for range 4 {
			e.env.contactSays(e.conv.ID, "hello?")
		}
		c, _, err := e.dial(t, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		live := e.env.contactSays(e.conv.ID, "anyone?")
		if f := c.next(t); f.Type != "event" || f.Event.Seq != live.Seq {
			t.Fatalf("live frame = %+v, want event %d", f, live.Seq)
		}
		c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): 2}})
		if f := c.next(t); f.Type != "resync" || f.ConversationID != e.conv.ID {
			t.Fatalf("answer to a cursor before the live event = %+v, want resync", f)
		}
		// The client reloads and resumes from what it loaded: nothing is
		// sent twice, and the next event comes once.
		conv, err := e.store.Conversation(ctx, e.conv.ID)
		noError(t, "Conversation()", err)
		c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): conv.Seq}})
		c.send(t, agentCommand{Type: "ping"})
		if f := c.next(t); f.Type != "pong" {
			t.Fatalf("after resuming from the reload: %+v, want nothing before the pong", f)
		}
		next := e.env.contactSays(e.conv.ID, "ok")
		if f := c.next(t); f.Type != "event" || f.Event.Seq != next.Seq {
			t.Fatalf("next frame = %+v, want event %d", f, next.Seq)
		}
		// A cursor at or after what was delivered sends nothing again.
		c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): live.Seq}})
		c.send(t, agentCommand{Type: "ping"})
		if f := c.next(t); f.Type != "pong" {
			t.Fatalf("after resuming from a delivered seq: %+v, want nothing before the pong", f)
		}
	})
}

// A client that says it will resume (?resume=1) gets no event before its
// resume: an event committed between the hello and the resume comes once,
// after the ones before it, and no resync is needed.
func TestAgentResumeHeld(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newWSEnv(t, url)
		for range 4 {
			e.env.contactSays(e.conv.ID, "hello?")
		}
		c, _, err := e.dialPath(t, nil, "/api/v1/ws?resume=1")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.hello(t)
		live := e.env.contactSays(e.conv.ID, "anyone?")
		// Answered before any event: the event waits for the resume.
		c.send(t, agentCommand{Type: "ping"})
		if f := c.next(t); f.Type != "pong" {
			t.Fatalf("frame before the resume = %+v, want the pong", f)
		}
		c.send(t, agentCommand{Type: "resume", Cursors: map[string]int64{itoa(e.conv.ID): 2}})
		for want := int64(3); want <= live.Seq; want++ {
			if f := c.next(t); f.Type != "event" || f.Event.Seq != want {
				t.Fatalf("frame = %+v, want event %d", f, want)
			}
		}
		next := e.env.contactSays(e.conv.ID, "ok")
		if f := c.next(t); f.Type != "event" || f.Event.Seq != next.Seq {
			t.Fatalf("next frame = %+v, want event %d", f, next.Seq)
		}
	})
}

// The visitor's socket subscribes before it reads where the conversation
// stands: an event committed between its first read and its subscription
// (a widget that does not name its conversation), or between its
// subscription and its one read (a widget that does), reaches it once.
func TestVisitorSocketSubscribesFirst(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "unnamed", true: "named"}[named], func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) {
				e := newEnv(t, url, nil)
				v := e.startVisitor("Sam")
				conv := v.start.Conversation
				type added struct {
					m   inbox.Message
					err error
				}
				committed := make(chan added, 1)
				var once sync.Once
				hook := func(id int64) {
					once.Do(func() {
						m, _, err := e.store.AddMessage(context.Background(), inbox.NewMessage{ConversationID: id, Author: inbox.AuthorContact, Text: "from another tab"})
						committed <- added{m, err}
					})
				}
				var s *vsock
				if named {
					webchat.TestHookAfterHintSubscribe = hook
					t.Cleanup(func() { webchat.TestHookAfterHintSubscribe = nil })
					s, _ = v.connect(conv.Seq)
				} else {
					webchat.TestHookBeforeSubscribe = hook
					t.Cleanup(func() { webchat.TestHookBeforeSubscribe = nil })
					s, _ = v.connectUnnamed(conv.Seq)
				}
				var m inbox.Message
				select {
				case a := <-committed:
					noError(t, "AddMessage()", a.err)
					m = a.m
				case <-time.After(frameWait):
					t.Fatalf("the hook did not run within %v", frameWait)
				}
				if got := addedMessage(t, s.event(t, inbox.EventMessageAdded)); got.ID != m.ID {
					t.Fatalf("event = %+v, want message %d", got, m.ID)
				}
				next := e.contactSays(conv.ID, "and then")
				if got := addedMessage(t, s.event(t, inbox.EventMessageAdded)); got.ID != next.ID {
					t.Fatalf("event = %+v, want the next message %d, once each", got, next.ID)
				}
			})
		})
	}
}
