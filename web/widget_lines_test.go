package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The widget rebuilds its lines about the conversation (an agent joined
// or left, the chat ended) after a reload from the joined, left and
// closed events that /state and /messages?before= carry with their
// messages: each page has those of its range, and paging back from
// /state gets every one of them once, in order (issue 11, item 17).
func TestWidgetHistoryLines(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, nil)
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		v := e.startVisitor("Lena")
		conv := v.start.Conversation.ID
		say := func(agent *inbox.Agent, text string) {
			t.Helper()
			m := inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorContact, Text: text}
			if agent != nil {
				m.Author, m.AgentID = inbox.AuthorAgent, &agent.ID
			}
			_, _, err := e.store.AddMessage(ctx, m)
			noError(t, "AddMessage()", err)
		}
		say(nil, "hello")
		noError(t, "Join()", e.store.Join(ctx, conv, alice.ID))
		say(&alice, "hi")
		noError(t, "Join()", e.store.Join(ctx, conv, bob.ID))
		noError(t, "Leave()", e.store.Leave(ctx, conv, alice.ID))
		say(&bob, "still here")
		noError(t, "Leave()", e.store.Leave(ctx, conv, bob.ID))
		say(nil, "one more thing")
		noError(t, "Join()", e.store.Join(ctx, conv, bob.ID))
		say(&bob, "yes?")

		all, err := e.store.EventsSince(ctx, conv, 0, 1000)
		noError(t, "EventsSince()", err)
		var want []string
		for _, ev := range all {
			if ev.Type == inbox.EventJoined || ev.Type == inbox.EventLeft || ev.Type == inbox.EventClosed {
				want = append(want, fmt.Sprint(ev.Seq, ev.Type))
			}
		}
		if len(want) != 6 {
			t.Fatalf("the conversation has %d joined/left/closed events, want 6: %q", len(want), want)
		}
		lines := func(evs []inbox.Event) []string {
			var out []string
			for _, ev := range evs {
				out = append(out, fmt.Sprint(ev.Seq, ev.Type))
			}
			return out
		}

		var st stateAnswer
		v.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if got := lines(st.Events); !slices.Equal(got, want) {
			t.Fatalf("/state events = %q, want %q", got, want)
		}

		// Back one message at a time: every event once, none outside its page.
		var got []string
		before := st.Conversation.Seq + 1
		for {
			var page widgetMessagesAnswer
			v.do("GET", fmt.Sprintf("/api/v1/widget/messages?limit=1&before=%d", before), nil).want(http.StatusOK).decode(&page)
			if len(page.Messages) != 1 {
				t.Fatalf("a page of %d messages", len(page.Messages))
			}
			first := page.Messages[0].Seq
			for _, ev := range page.Events {
				if ev.Seq >= before || (page.HasBefore && ev.Seq < first) {
					t.Fatalf("the page of seqs %d to %d has event %d", first, before-1, ev.Seq)
				}
			}
			got = append(lines(page.Events), got...)
			if !page.HasBefore {
				break
			}
			before = first
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged events = %q, want %q", got, want)
		}
	})
}
