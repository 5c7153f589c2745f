package web

import (
	"bytes"
	"context"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

func TestNotFound(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		c := e.login("admin@example.com")
		var first *result
		for _, p := range []string{
			"/api/v1/conversations/999999", "/api/v1/conversations/abc", "/api/v1/conversations/-1",
			"/api/v1/conversations/0", "/api/v1/conversations/99999999999999999999",
			"/api/v1/conversations/999999/messages", "/api/v1/conversations/abc/events",
			"/api/v1/conversations/999999/reply-channel", "/api/v1/contacts/999999", "/api/v1/contacts/x",
		} {
			r := c.do("GET", p, nil).want(http.StatusNotFound)
			if first == nil {
				first = r
			}
			if !bytes.Equal(r.body, first.body) {
				t.Fatalf("GET %s = %s, want the same as %s: %s", p, r.body, first.req, first.body)
			}
		}
		for _, p := range []string{"/api/v1/conversations/999999/join", "/api/v1/conversations/abc/leave", "/api/v1/conversations/999999/read"} {
			c.do("POST", p, nil).want(http.StatusNotFound)
		}
		c.do("POST", "/api/v1/conversations/999999/messages", map[string]string{"text": "hi"}).want(http.StatusNotFound)
		c.do("DELETE", "/api/v1/conversations/999999", nil).want(http.StatusNotFound)
		c.do("DELETE", "/api/v1/contacts/999999", nil).want(http.StatusNotFound)
		c.do("GET", "/api/v1/no-such-thing", nil).want(http.StatusNotFound)
	})
}

func TestListConversations(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		var convs []inbox.Conversation
		for _, name := range []string{"Ann", "Bob", "Cem", "Dee", "Eve"} {
			convs = append(convs, e.conversation(name, ""))
		}
		chatty := convs[1]
		e.contactSays(chatty.ID, "hello?")
		e.contactSays(chatty.ID, "anyone there?")

		seen := map[int64]bool{}
		cursor := ""
		pages := 0
		for {
			var l conversationList
			c.do("GET", "/api/v1/conversations?column=unassigned&limit=2&cursor="+cursor, nil).want(http.StatusOK).decode(&l)
			pages++
			if pages == 1 && (len(l.Items) != 2 || l.Items[0].ID != chatty.ID) {
				t.Fatalf("first page = %+v, want 2 items, the most recently active (%d) first", l.Items, chatty.ID)
			}
			if l.Counts["unassigned"] != 5 || l.Counts["open"] != 5 || l.Counts["mine"] != 0 || l.Counts["closed"] != 0 {
				t.Fatalf("counts = %v", l.Counts)
			}
			for _, it := range l.Items {
				if seen[it.ID] {
					t.Fatalf("conversation %d on two pages", it.ID)
				}
				seen[it.ID] = true
				want := int64(0)
				if it.ID == chatty.ID {
					want = 2
					if it.LastMessage == nil || it.LastMessage.Text != "anyone there?" {
						t.Fatalf("last message = %+v", it.LastMessage)
					}
				}
				if it.Unread != want {
					t.Fatalf("conversation %d unread = %d, want %d", it.ID, it.Unread, want)
				}
			}
			if l.NextCursor == "" {
				break
			}
			cursor = l.NextCursor
		}
		if pages != 3 || len(seen) != 5 {
			t.Fatalf("%d pages with %d conversations, want 3 with 5", pages, len(seen))
		}

		// Reading clears the unread count, for this agent.
		c.do("POST", "/api/v1/conversations/"+itoa64(chatty.ID)+"/read", map[string]int64{"up_to": 0}).want(http.StatusNoContent)
		var item inbox.ConversationItem
		c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID), nil).want(http.StatusOK).decode(&item)
		if item.Unread != 0 {
			t.Fatalf("unread after read = %d", item.Unread)
		}
		e.contactSays(chatty.ID, "one more")
		c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID), nil).want(http.StatusOK).decode(&item)
		if item.Unread != 1 {
			t.Fatalf("unread after a new message = %d, want 1", item.Unread)
		}
		c.do("POST", "/api/v1/conversations/"+itoa64(chatty.ID)+"/read", nil).want(http.StatusNoContent)
		c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID), nil).want(http.StatusOK).decode(&item)
		if item.Unread != 0 {
			t.Fatalf("unread after read without a body = %d", item.Unread)
		}

		// Messages and events of the conversation.
		var page inbox.MessagePage
		c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID)+"/messages?limit=2", nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 2 || !page.HasBefore || page.Messages[1].Text != "one more" {
			t.Fatalf("messages = %+v", page)
		}
		var evs eventList
		c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID)+"/events?after=1", nil).want(http.StatusOK).decode(&evs)
		if len(evs.Events) == 0 || evs.Events[0].Seq != 2 {
			t.Fatalf("events after 1 = %+v", evs.Events)
		}
		last := evs.Events[len(evs.Events)-1].Seq
		r := c.do("GET", "/api/v1/conversations/"+itoa64(chatty.ID)+"/events?after="+itoa64(last), nil).want(http.StatusOK)
		if !strings.Contains(string(r.body), `"events":[]`) {
			t.Fatalf("events after the last = %s", r.body)
		}
	})
}

// GET /conversations?q= finds conversations by contact and by message
// text, in every column or one, paged, with the message that matched.
func TestSearchConversations(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		printer := e.conversation("Ann", "ann@example.com")
		m := e.contactSays(printer.ID, "My PRINTER is broken")
		muller := e.conversation("Jürgen Müller", "")
		e.contactSays(muller.ID, "hello")
		e.conversation("Bob", "")

		var l conversationList
		r := c.do("GET", "/api/v1/conversations?q=prin", nil).want(http.StatusOK)
		r.decode(&l)
		if len(l.Items) != 1 || l.Items[0].ID != printer.ID || l.Items[0].Match == nil || l.Items[0].Match.MessageID != m.ID ||
			l.Items[0].Match.Text != "My PRINTER is broken" || l.Counts["open"] != 3 {
			t.Fatalf("search prin = %s", r.body)
		}
		r = c.do("GET", "/api/v1/conversations?q="+neturl.QueryEscape("MÜLLER"), nil).want(http.StatusOK)
		r.decode(&l)
		if len(l.Items) != 1 || l.Items[0].ID != muller.ID || strings.Contains(string(r.body), `"match"`) {
			t.Fatalf("search MÜLLER = %s, want the conversation, without match (the contact matched)", r.body)
		}
		c.do("GET", "/api/v1/conversations?column=closed&q=prin", nil).want(http.StatusOK).decode(&l)
		if len(l.Items) != 0 {
			t.Fatalf("search prin in closed = %+v", l.Items)
		}
		c.do("GET", "/api/v1/conversations?q=ann+example&limit=1", nil).want(http.StatusOK).decode(&l)
		if len(l.Items) != 1 || l.NextCursor != "" {
			t.Fatalf("search ann example = %+v, next %q", l.Items, l.NextCursor)
		}
		c.do("GET", "/api/v1/conversations?q=%21%3F", nil).wantField("q")
		c.do("GET", "/api/v1/conversations?q=x&column=nope", nil).wantField("column")
	})
}

func TestEventsResync(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		conv := e.conversation("Ann", "")
		e.contactSays(conv.ID, "hi")
		if _, err := e.store.PruneEvents(context.Background(), conv.CreatedAt.AddDate(1, 0, 0)); err != nil {
			t.Fatalf("PruneEvents() = %v", err)
		}
		r := c.do("GET", "/api/v1/conversations/"+itoa64(conv.ID)+"/events?after=0", nil).want(http.StatusConflict)
		if e := r.apiErr(); !e.Resync || e.Error != "resync" {
			t.Fatalf("events after pruning = %s", r.body)
		}
	})
}

func TestJoinLeave(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		ann := e.agent("ann@example.com", inbox.RoleAgent)
		bob := e.agent("bob@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		a, b := e.login("ann@example.com"), e.login("bob@example.com")
		base := "/api/v1/conversations/" + itoa64(conv.ID)

		column := func(c *client, col string) []int64 {
			t.Helper()
			var l conversationList
			c.do("GET", "/api/v1/conversations?column="+col, nil).want(http.StatusOK).decode(&l)
			var ids []int64
			for _, it := range l.Items {
				ids = append(ids, it.ID)
			}
			return ids
		}
		if got := column(b, "unassigned"); len(got) != 1 || got[0] != conv.ID {
			t.Fatalf("unassigned before joining = %v", got)
		}

		var item inbox.ConversationItem
		a.do("POST", base+"/join", nil).want(http.StatusOK).decode(&item)
		if len(item.Participants) != 1 || item.Participants[0].AgentID != ann.ID || !item.Participants[0].Responsible {
			t.Fatalf("after Ann joins: participants = %+v", item.Participants)
		}
		if got := column(b, "unassigned"); len(got) != 0 {
			t.Fatalf("unassigned after joining = %v, want none (for everyone)", got)
		}
		if got := column(a, "mine"); len(got) != 1 || got[0] != conv.ID {
			t.Fatalf("Ann's mine = %v", got)
		}
		if got := column(b, "mine"); len(got) != 0 {
			t.Fatalf("Bob's mine = %v", got)
		}

		b.do("POST", base+"/join", nil).want(http.StatusOK).decode(&item)
		if len(item.Participants) != 2 || item.Participants[0].AgentID != ann.ID || !item.Participants[0].Responsible ||
			item.Participants[1].AgentID != bob.ID || item.Participants[1].Responsible {
			t.Fatalf("after Bob joins: participants = %+v, want Ann (responsible) and Bob", item.Participants)
		}

		a.do("POST", base+"/leave", nil).want(http.StatusOK).decode(&item)
		if item.Status != inbox.StatusOpen || len(item.Participants) != 1 {
			t.Fatalf("after Ann leaves: %s with %+v", item.Status, item.Participants)
		}
		a.do("POST", base+"/leave", nil).want(http.StatusConflict)
		b.do("POST", base+"/leave", nil).want(http.StatusOK).decode(&item)
		if item.Status != inbox.StatusClosed || len(item.Participants) != 0 || item.ClosedAt == nil {
			t.Fatalf("after the last leaves: %+v", item)
		}
		if got := column(a, "closed"); len(got) != 1 || got[0] != conv.ID {
			t.Fatalf("closed = %v", got)
		}
	})
}

func TestReply(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		ctx := context.Background()

		online := e.conversation("Olga", "olga@example.com")
		if err := e.store.SetContactOnline(ctx, online.ContactID, true); err != nil {
			t.Fatalf("SetContactOnline() = %v", err)
		}
		offline := e.conversation("Omar", "omar@example.com")
		nobody := e.conversation("Nils", "")

		type want struct {
			channel, state, reason string
		}
		for _, tc := range []struct {
			name    string
			conv    inbox.Conversation
			channel string
			want    want
		}{
			{"online auto", online, "", want{"chat", "sent", "the contact is online"}},
			{"online auto explicit", online, "auto", want{"chat", "sent", "the contact is online"}},
			{"offline with email, no mailbox", offline, "auto", want{"chat", "queued", "no mailbox is configured"}},
			{"offline without email", nobody, "auto", want{"chat", "queued", "no email address"}},
			{"chat chosen", offline, "chat", want{"chat", "queued", "chat chosen by the agent"}},
		} {
			path := "/api/v1/conversations/" + itoa64(tc.conv.ID)
			var d inbox.ReplyDecision
			c.do("GET", path+"/reply-channel?channel="+tc.channel, nil).want(http.StatusOK).decode(&d)
			if d.Channel != tc.want.channel || d.State != tc.want.state || !strings.Contains(d.Reason, tc.want.reason) {
				t.Fatalf("%s: reply-channel = %+v, want %+v", tc.name, d, tc.want)
			}
			body := map[string]string{"text": "Hello from support"}
			if tc.channel != "" {
				body["channel"] = tc.channel
			}
			var ans replyAnswer
			c.do("POST", path+"/messages", body).want(http.StatusCreated).decode(&ans)
			if ans.Channel != tc.want.channel || !strings.Contains(ans.Reason, tc.want.reason) ||
				ans.Message.Channel != tc.want.channel || ans.Message.State != tc.want.state ||
				ans.Message.Author != inbox.AuthorAgent || ans.Message.Text != "Hello from support" {
				t.Fatalf("%s: reply = %+v, want %+v", tc.name, ans, tc.want)
			}
		}

		// Email without a mailbox is refused, naming the channel.
		c.do("GET", "/api/v1/conversations/"+itoa64(offline.ID)+"/reply-channel?channel=email", nil).wantField("channel")
		c.do("POST", "/api/v1/conversations/"+itoa64(offline.ID)+"/messages", map[string]string{"text": "x", "channel": "email"}).
			wantField("channel")
	})
}

func TestReplyByEmail(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnvStore(t, inboxtest.Open(t, url, &inbox.Options{Channels: []inbox.Channel{emailChannel{}}}), nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		conv := e.conversation("Omar", "omar@example.com")
		var ans replyAnswer
		c.do("POST", "/api/v1/conversations/"+itoa64(conv.ID)+"/messages", map[string]string{"text": "See you by mail"}).
			want(http.StatusCreated).decode(&ans)
		if ans.Channel != inbox.ChannelEmail || ans.Message.State != inbox.StateQueued || !strings.Contains(ans.Reason, "offline") {
			t.Fatalf("reply to an offline contact with an address = %+v", ans)
		}
		var item inbox.ConversationItem
		c.do("GET", "/api/v1/conversations/"+itoa64(conv.ID), nil).want(http.StatusOK).decode(&item)
		if !item.HasEmail {
			t.Fatalf("conversation after an email reply: has_email = false")
		}
	})
}

// emailChannel stands in for the email channel (channels/email): it
// reaches a contact with an address and has nothing to deliver here.
type emailChannel struct{}

func (emailChannel) Name() string                                 { return inbox.ChannelEmail }
func (emailChannel) Reaches(c inbox.Contact) bool                 { return c.Email != "" }
func (emailChannel) Deliver(context.Context, inbox.Message) error { return nil }

func TestReplyRetry(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		c := e.login("a@example.com")
		conv := e.conversation("Olga", "")
		path := "/api/v1/conversations/" + itoa64(conv.ID) + "/messages"
		body := map[string]string{"text": "Only once", "client_id": "c-42"}

		var first, second replyAnswer
		c.do("POST", path, body).want(http.StatusCreated).decode(&first)
		c.do("POST", path, body).want(http.StatusOK).decode(&second)
		if first.Message.ID == 0 || second.Message.ID != first.Message.ID || second.Message.Text != "Only once" {
			t.Fatalf("retry = %+v, first = %+v", second.Message, first.Message)
		}
		var page inbox.MessagePage
		c.do("GET", path, nil).want(http.StatusOK).decode(&page)
		if len(page.Messages) != 1 {
			t.Fatalf("messages = %+v, want one", page.Messages)
		}
	})
}

func TestDeleteConversation(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		c := e.login("admin@example.com")
		conv := e.conversation("Dora", "")
		e.contactSays(conv.ID, "please forget me")
		path := "/api/v1/conversations/" + itoa64(conv.ID)
		c.do("GET", path, nil).want(http.StatusOK)
		c.do("DELETE", path, nil).want(http.StatusNoContent)
		c.do("GET", path, nil).want(http.StatusNotFound)
		c.do("GET", path+"/messages", nil).want(http.StatusNotFound)
		c.do("DELETE", path, nil).want(http.StatusNotFound)
		// The contact stays; only the conversation went.
		c.do("GET", "/api/v1/contacts/"+itoa64(conv.ContactID), nil).want(http.StatusOK)
	})
}
