package inbox_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func startVisitor(t *testing.T, s *inbox.Store, name string) inbox.VisitorStart {
	t.Helper()
	v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: name, Pages: []inbox.NewPageView{{URL: "https://shop.example/"}}}, time.Hour)
	if err != nil {
		t.Fatalf("StartVisitor() = %v", err)
	}
	return v
}

func TestVisitorTokens(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clk := &clock{t: time.Now().UTC()}
		s := inboxtest.Open(t, url, &inbox.Options{Now: clk.now})
		sub := s.Hub().Subscribe(0, 10)
		defer sub.Close()
		v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: " Vera ", Email: "Vera@Example.com", Phone: "+1 (555) 010-99",
			Facts: inbox.Facts{Browser: "Firefox", BrowserVersion: "140.0", OS: "Linux", IP: "8.8.8.8", Country: "US"},
			Pages: []inbox.NewPageView{{URL: "https://shop.example/a", Title: "A\u202e page\r\n", Referrer: "javascript:alert(1)"}, {URL: "https://shop.example/b"}},
		}, time.Hour)
		if err != nil {
			t.Fatalf("StartVisitor() = %v", err)
		}
		if len(v.Token) != 43 || v.Contact.Name != "Vera" || v.Contact.Email != "vera@example.com" || v.Contact.Country != "US" ||
			v.Conversation.Status != inbox.StatusOpen || v.Conversation.ContactID != v.Contact.ID || v.Conversation.Seq != 1 {
			t.Fatalf("StartVisitor() = %+v", v)
		}
		if ev := inboxtest.Receive(t, sub.C, "conversation_created"); ev.Type != inbox.EventConversationCreated || ev.ConversationID != v.Conversation.ID {
			t.Fatalf("event = %+v, want conversation_created", ev)
		}
		views, err := s.PageViews(ctx, v.Contact.ID, 0)
		if err != nil || len(views) != 2 || views[0].URL != "https://shop.example/b" || views[1].Title != "A page" || views[1].Referrer != "" {
			t.Fatalf("PageViews() = %+v, %v", views, err)
		}

		c, err := s.VisitorContact(ctx, v.Token, time.Hour)
		if err != nil || c.ID != v.Contact.ID {
			t.Fatalf("VisitorContact() = %+v, %v", c, err)
		}
		for _, bad := range []string{"", "nope", v.Token + "x", strings.Repeat("a", 500)} {
			if _, err := s.VisitorContact(ctx, bad, time.Hour); !errors.Is(err, inbox.ErrUnauthenticated) {
				t.Fatalf("VisitorContact(%q) = %v, want ErrUnauthenticated", bad, err)
			}
		}
		// Sliding expiry: used at 50 minutes, it lives an hour from then.
		clk.add(50 * time.Minute)
		if _, err := s.VisitorContact(ctx, v.Token, time.Hour); err != nil {
			t.Fatalf("VisitorContact(after 50m) = %v", err)
		}
		clk.add(50 * time.Minute)
		if _, err := s.VisitorContact(ctx, v.Token, time.Hour); err != nil {
			t.Fatalf("VisitorContact(100m, used at 50m) = %v", err)
		}
		clk.add(61 * time.Minute)
		if _, err := s.VisitorContact(ctx, v.Token, time.Hour); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorContact(expired) = %v, want ErrUnauthenticated", err)
		}
		if err := s.PruneSessions(ctx); err != nil {
			t.Fatalf("PruneSessions() = %v", err)
		}

		// A short ttl slides too: a token of 20 s used every 15 s lives on
		// (its use is recorded once a tenth of the ttl has passed, not
		// once a minute).
		short, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: "Sam"}, 20*time.Second)
		if err != nil {
			t.Fatalf("StartVisitor(20 s ttl) = %v", err)
		}
		for i := range 4 {
			clk.add(15 * time.Second)
			if _, err := s.VisitorContact(ctx, short.Token, 20*time.Second); err != nil {
				t.Fatalf("VisitorContact(20 s ttl, use %d after 15 s) = %v", i+1, err)
			}
		}
		clk.add(21 * time.Second)
		if _, err := s.VisitorContact(ctx, short.Token, 20*time.Second); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorContact(20 s ttl, unused for 21 s) = %v, want ErrUnauthenticated", err)
		}

		w := startVisitor(t, s, "Walt")
		if err := s.RevokeVisitorToken(ctx, w.Token); err != nil {
			t.Fatalf("RevokeVisitorToken() = %v", err)
		}
		if _, err := s.VisitorContact(ctx, w.Token, time.Hour); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorContact(revoked) = %v", err)
		}

		var inv *inbox.InvalidError
		for _, in := range []inbox.NewVisitor{
			{Name: ""},
			{Name: "X", Email: "not an address"},
			{Name: "X", Phone: "call me"},
			{Name: "X", Phone: "1234"},
			{Name: "X", Phone: strings.Repeat("1", 21)},
			{Name: "X", Pages: []inbox.NewPageView{{URL: "javascript:alert(1)"}}},
		} {
			if _, err := s.StartVisitor(ctx, in, time.Hour); !errors.As(err, &inv) {
				t.Fatalf("StartVisitor(%+v) = %v, want invalid", in, err)
			}
		}
	})
}

// Uses of many old tokens at once are written together (group commit:
// a reconnect storm after a restart is a few writes), and every use is
// stored before its caller returns.
func TestVisitorTokenUsesGrouped(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clk := &clock{t: time.Now().UTC()}
		s := inboxtest.Open(t, url, &inbox.Options{Now: clk.now})
		const n = 20
		var tokens []string
		for i := range n {
			v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: fmt.Sprint("V", i)}, time.Hour)
			if err != nil {
				t.Fatalf("StartVisitor() = %v", err)
			}
			tokens = append(tokens, v.Token)
		}
		clk.add(50 * time.Minute) // past renewAfter: each use is written

		// The first write is held until every other use has queued
		// behind it; then the rest must go in one write.
		var mu sync.Mutex
		var writes []int
		release := make(chan struct{})
		s.SetBeforeUses(func(k int) {
			mu.Lock()
			writes = append(writes, k)
			first := len(writes) == 1
			mu.Unlock()
			if first {
				<-release
			}
		})
		errs := make(chan error, n)
		go func() {
			_, err := s.VisitorContact(ctx, tokens[0], time.Hour)
			errs <- err
		}()
		inboxtest.Eventually(t, "the first use's write", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(writes) == 1
		})
		for _, tok := range tokens[1:] {
			go func() {
				_, err := s.VisitorContact(ctx, tok, time.Hour)
				errs <- err
			}()
		}
		inboxtest.Eventually(t, "the other uses queued", func() bool { return s.QueuedUses() == n-1 })
		close(release)
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("VisitorContact() = %v", err)
			}
		}
		mu.Lock()
		if len(writes) != 2 || writes[0] != 1 || writes[1] != n-1 {
			t.Fatalf("writes of %v uses, want [1 %d]", writes, n-1)
		}
		mu.Unlock()
		// Every use is stored: each token now lives an hour from now.
		want := clk.now().Add(time.Hour).Truncate(time.Millisecond) // stored to the microsecond
		for i, tok := range tokens {
			exp, err := s.VisitorSessionExpiry(ctx, inbox.SessionID(tok))
			if err != nil || exp.Before(want) {
				t.Fatalf("token %d expires %v, %v; want at or after %v", i, exp, err, want)
			}
		}
		// A use within renewAfter writes nothing.
		if _, err := s.VisitorContact(ctx, tokens[0], time.Hour); err != nil {
			t.Fatalf("VisitorContact() = %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(writes) != 2 {
			t.Fatalf("a fresh use wrote: writes of %v uses", writes)
		}
	})
}

func TestVisitorConversations(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		s := f.s
		v := startVisitor(t, s, "Vic")
		cur, err := s.CurrentConversation(ctx, v.Contact.ID)
		if err != nil || cur.ID != v.Conversation.ID {
			t.Fatalf("CurrentConversation() = %+v, %v", cur, err)
		}
		again, created, err := s.StartVisitorConversation(ctx, v.Contact.ID, nil)
		if err != nil || created || again.ID != v.Conversation.ID {
			t.Fatalf("StartVisitorConversation(has one) = %+v, %v, %v", again, created, err)
		}
		if err := s.DeleteConversation(ctx, v.Conversation.ID); err != nil {
			t.Fatalf("DeleteConversation() = %v", err)
		}
		if _, err := s.CurrentConversation(ctx, v.Contact.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("CurrentConversation(none) = %v", err)
		}
		fresh, created, err := s.StartVisitorConversation(ctx, v.Contact.ID, []inbox.NewPageView{{URL: "http://x.example/"}})
		if err != nil || !created || fresh.ID == v.Conversation.ID || fresh.Status != inbox.StatusOpen {
			t.Fatalf("StartVisitorConversation(none) = %+v, %v, %v", fresh, created, err)
		}
		if _, _, err := s.StartVisitorConversation(ctx, 999999, nil); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("StartVisitorConversation(unknown) = %v", err)
		}

		// Attachments are reachable only through their contact.
		att, err := s.AddAttachment(ctx, fresh.ID, contactUpload, "a.txt", "text/plain; charset=utf-8", []byte("hi"))
		if err != nil {
			t.Fatalf("AddAttachment() = %v", err)
		}
		if a, err := s.OpenContactAttachment(ctx, v.Contact.ID, att.ID); err != nil || string(a.Data) != "hi" {
			t.Fatalf("OpenContactAttachment(own) = %+v, %v", a, err)
		}
		other := startVisitor(t, s, "Other")
		if _, err := s.OpenContactAttachment(ctx, other.Contact.ID, att.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("OpenContactAttachment(other's) = %v, want ErrNotFound", err)
		}

		// Erasing the contact forgets their token and pages.
		if err := s.EraseContact(ctx, v.Contact.ID); err != nil {
			t.Fatalf("EraseContact() = %v", err)
		}
		if _, err := s.VisitorContact(ctx, v.Token, time.Hour); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorContact(erased) = %v", err)
		}
		if views, _ := s.PageViews(ctx, v.Contact.ID, 0); len(views) != 0 {
			t.Fatalf("page views of an erased contact: %+v", views)
		}
	})
}

func TestPageViewsAndFacts(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		v := startVisitor(t, s, "Pat")
		for i := range 205 {
			if err := s.AddPageView(ctx, v.Contact.ID, inbox.NewPageView{URL: fmt.Sprintf("https://shop.example/%d", i), Title: strings.Repeat("t", 400)}); err != nil {
				t.Fatalf("AddPageView(%d) = %v", i, err)
			}
		}
		views, err := s.PageViews(ctx, v.Contact.ID, 0)
		if err != nil || len(views) != 200 || views[0].URL != "https://shop.example/204" || len(views[0].Title) != 300 {
			t.Fatalf("PageViews() = %d views, first %+v, %v", len(views), views[0], err)
		}
		if err := s.AddPageView(ctx, v.Contact.ID, inbox.NewPageView{URL: "/relative"}); err == nil {
			t.Fatalf("AddPageView(relative URL) accepted")
		}
		if err := s.AddPageView(ctx, 999999, inbox.NewPageView{URL: "https://x.example/"}); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("AddPageView(unknown contact) = %v", err)
		}
		facts := inbox.Facts{Browser: "Chrome", BrowserVersion: "131.0", OS: "Windows", IP: "8.8.8.8", Country: "US"}
		for i, want := range []bool{true, false} {
			if changed, err := s.SetContactFacts(ctx, v.Contact.ID, facts); err != nil || changed != want {
				t.Fatalf("SetContactFacts() #%d = %v, %v; want %v", i, changed, err, want)
			}
		}
		d, err := s.ContactDetail(ctx, v.Contact.ID)
		if err != nil || d.Browser != "Chrome" || d.OS != "Windows" || d.IP != "8.8.8.8" || d.Country != "US" || len(d.PageViews) != 100 {
			t.Fatalf("ContactDetail() = %+v, %v", d.Contact, err)
		}
	})
}

// A contact who comes online gets their queued chat replies: they turn
// sent. Transitions are announced by transient events.
func TestContactOnlineDeliversQueued(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixtureOpts(t, url, &inbox.Options{Channels: []inbox.Channel{emailChannel()}})
		s := f.s
		v, err := s.StartVisitor(ctx, inbox.NewVisitor{Name: "Quinn", Email: "quinn@example.com"}, time.Hour)
		noErr(t, "StartVisitor()", err)
		conv := v.Conversation
		agentID := f.alice.ID
		// Offline: a chat reply is kept (rule 5).
		queued, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &agentID, Channel: inbox.ChannelChat, Text: "are you there?"})
		if err != nil || queued.State != inbox.StateQueued {
			t.Fatalf("AddMessage(chat) = %+v, %v; want it queued", queued, err)
		}
		email, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &agentID, Text: "by mail"})
		if err != nil || email.Channel != inbox.ChannelEmail || email.State != inbox.StateQueued {
			t.Fatalf("AddMessage(auto) = %+v, %v; want it by email, queued", email, err)
		}
		sub := s.Hub().Subscribe(0, 10)
		defer sub.Close()
		n, err := s.SetContactsOnline(ctx, []inbox.ContactOnline{{ContactID: v.Contact.ID, Online: true}, {ContactID: 999999, Online: true}})
		if err != nil || n != 1 {
			t.Fatalf("SetContactsOnline() = %d, %v", n, err)
		}
		var got []inbox.Event
		for len(got) < 2 {
			select {
			case ev := <-sub.C:
				got = append(got, ev)
			case <-time.After(5 * time.Second):
				t.Fatalf("events = %v, want message_state and contact_presence", types(got))
			}
		}
		var st inbox.MessageState
		if got[0].Type != inbox.EventMessageState || got[0].Decode(&st) != nil || fmt.Sprint(st.MessageIDs) != fmt.Sprint([]int64{queued.ID}) || st.State != inbox.StateSent {
			t.Fatalf("first event = %s %s, want message_state of the queued chat reply", got[0].Type, got[0].Data)
		}
		var cp inbox.ContactPresence
		if got[1].Type != inbox.EventContactPresence || got[1].Seq != 0 || got[1].ConversationID != conv.ID || got[1].Decode(&cp) != nil || !cp.Online || cp.ContactID != v.Contact.ID {
			t.Fatalf("second event = %+v %s, want a transient contact_presence", got[1], got[1].Data)
		}
		page, err := s.Messages(ctx, conv.ID, inbox.MessageQuery{})
		noErr(t, "Messages()", err)
		if len(page.Messages) != 2 {
			t.Fatalf("%d messages, want the two replies", len(page.Messages))
		}
		for _, m := range page.Messages {
			if m.ID == email.ID && m.State != inbox.StateQueued {
				t.Fatalf("email reply changed to %s; only chat replies are delivered", m.State)
			}
		}
		events(t, s, conv.ID) // stored sequence still without gaps
		c, err := s.Contact(ctx, v.Contact.ID)
		noErr(t, "Contact()", err)
		if !c.Online || c.LastSeenAt == nil {
			t.Fatalf("contact = %+v, want online", c)
		}
		if err := s.SetContactOnline(ctx, 999999, false); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("SetContactOnline(unknown) = %v", err)
		}
	})
}

func TestAgentPresence(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		s := f.s
		if f.alice.Presence != inbox.PresenceOffline {
			t.Fatalf("new agent presence = %q", f.alice.Presence)
		}
		c1, c2 := f.start(t), f.start(t)
		noErr(t, "Join()", s.Join(ctx, c1.ID, f.alice.ID))
		noErr(t, "Join()", s.Join(ctx, c2.ID, f.alice.ID))
		noErr(t, "Join()", s.Join(ctx, c2.ID, f.bob.ID))
		noErr(t, "Leave()", s.Leave(ctx, c2.ID, f.alice.ID))
		sub := s.Hub().Subscribe(0, 10)
		defer sub.Close()
		for i, want := range []bool{true, false} {
			if changed, err := s.SetAgentPresence(ctx, f.alice.ID, inbox.PresenceIdle); err != nil || changed != want {
				t.Fatalf("SetAgentPresence() #%d = %v, %v; want %v", i, changed, err, want)
			}
		}
		ev := inboxtest.Receive(t, sub.C, "presence")
		var p inbox.AgentPresence
		if ev.Type != inbox.EventPresence || !ev.Transient() || ev.ConversationID != c1.ID || ev.Decode(&p) != nil || p.Presence != "idle" || p.Name != "Alice" {
			t.Fatalf("event = %+v %s, want presence in the one conversation Alice is in", ev, ev.Data)
		}
		// Then once without a conversation, for the agents' dashboards.
		ev = inboxtest.Receive(t, sub.C, "presence for the dashboards")
		p = inbox.AgentPresence{}
		if ev.Type != inbox.EventPresence || !ev.Transient() || ev.ConversationID != 0 || ev.Decode(&p) != nil || p.Presence != "idle" || p.AgentID != f.alice.ID {
			t.Fatalf("event = %+v %s, want presence without a conversation", ev, ev.Data)
		}
		// The unchanged presence published nothing: the next event is
		// one published after it (the hub delivers in order).
		s.PublishTyping(c1.ID, inbox.Typing{Author: inbox.AuthorContact, ContactID: f.contact.ID, Typing: true})
		if ev := inboxtest.Receive(t, sub.C, "the typing marker"); ev.Type != inbox.EventTyping {
			t.Fatalf("unexpected event %+v %s, want the typing marker", ev, ev.Data)
		}
		parts, err := s.Participants(ctx, c1.ID)
		noErr(t, "Participants()", err)
		if len(parts) != 1 || parts[0].Presence != "idle" {
			t.Fatalf("Participants() = %+v, want Alice idle", parts)
		}
		if _, err := s.SetAgentPresence(ctx, f.alice.ID, "away"); err == nil {
			t.Fatalf("SetAgentPresence(away) accepted")
		}
	})
}

// Transient events pass through the Follower untouched and do not move
// its position.
func TestFollowerPassesTransient(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		c := f.start(t)
		sub := f.s.Hub().Subscribe(c.ID, 10)
		defer sub.Close()
		f.s.PublishTyping(c.ID, inbox.Typing{Author: inbox.AuthorContact, ContactID: f.contact.ID, Typing: true})
		ev := inboxtest.Receive(t, sub.C, "typing")
		if ev.Type != inbox.EventTyping || ev.Seq != 0 {
			t.Fatalf("published %+v", ev)
		}
		fl := f.s.NewFollower()
		fl.Seen(c.ID, 1)
		out, err := fl.Next(ctx, ev)
		if err != nil || len(out) != 1 || string(out[0].Data) != string(ev.Data) || out[0].Seq != 0 {
			t.Fatalf("Next(transient) = %+v, %v", out, err)
		}
		if last, _ := fl.Last(c.ID); last != 1 {
			t.Fatalf("Last() after a transient event = %d, want 1", last)
		}
		if _, err := f.s.EventsSince(ctx, c.ID, 0, 10); err != nil {
			t.Fatalf("EventsSince() = %v", err)
		}
		if evs := events(t, f.s, c.ID); len(evs) != 1 {
			t.Fatalf("stored %v; typing must not be stored", types(evs))
		}
		// A Follower of several conversations.
		c2 := f.start(t)
		fl.Seen(c2.ID, 0)
		m := f.say(t, c2.ID, inbox.AuthorContact, "x")
		out, err = fl.Next(ctx, inbox.Event{ConversationID: c2.ID, Seq: m.Seq, Type: inbox.EventMessageAdded})
		if err != nil || len(out) != 2 {
			t.Fatalf("Next(gap in the second conversation) = %v, %v; want 2 events", types(out), err)
		}
		if l1, _ := fl.Last(c.ID); l1 != 1 {
			t.Fatalf("first conversation moved to %d", l1)
		}
	})
}

func TestSubscribeFunc(t *testing.T) {
	h := inbox.NewHub()
	var got []int64
	s := h.SubscribeFunc(7, func(ev inbox.Event) { got = append(got, ev.Seq) })
	other := h.SubscribeFunc(8, func(inbox.Event) { t.Errorf("event of another conversation") })
	h.Publish([]inbox.Event{{ConversationID: 7, Seq: 1}, {ConversationID: 7, Seq: 2}})
	if fmt.Sprint(got) != "[1 2]" || h.Subscribers() != 2 {
		t.Fatalf("got %v, %d subscribers", got, h.Subscribers())
	}
	s.Close()
	s.Close()
	other.Close()
	h.Publish([]inbox.Event{{ConversationID: 7, Seq: 3}})
	if len(got) != 2 || h.Subscribers() != 0 {
		t.Fatalf("after Close: got %v, %d subscribers", got, h.Subscribers())
	}
}

// With the conversation the widget resumes, the token's read also reads
// that conversation and its agents, as ConversationStart does, when it is
// the visitor's current one; another's conversation, an older or a
// deleted one is not read, and a bad token is refused either way.
func TestVisitorAuthStart(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		s := f.s
		v := startVisitor(t, s, "Vic")
		id := v.Conversation.ID
		check := func(hint, wantID int64, wantStarted bool) {
			t.Helper()
			got, err := s.VisitorAuthConversation(ctx, v.Token, time.Hour, hint)
			if err != nil || got.Contact.ID != v.Contact.ID || got.ConversationID != wantID || got.Started != wantStarted {
				t.Fatalf("VisitorAuthConversation(hint %d) = contact %d, conversation %d, started %v, %v; want %d, %d, %v",
					hint, got.Contact.ID, got.ConversationID, got.Started, err, v.Contact.ID, wantID, wantStarted)
			}
			if !wantStarted {
				if got.Conversation.ID != 0 || got.Agents != nil {
					t.Fatalf("VisitorAuthConversation(hint %d) read %+v, %+v; want nothing", hint, got.Conversation, got.Agents)
				}
				return
			}
			conv, parts, err := s.ConversationStart(ctx, id)
			if err != nil {
				t.Fatalf("ConversationStart() = %v", err)
			}
			if got.Conversation.ID != conv.ID || got.Conversation.Seq != conv.Seq || got.Conversation.Status != conv.Status ||
				got.Conversation.ContactID != conv.ContactID || !got.Conversation.CreatedAt.Equal(conv.CreatedAt) || len(got.Agents) != len(parts) {
				t.Fatalf("VisitorAuthConversation(hint %d) = %+v, %+v; want ConversationStart's %+v, %+v", hint, got.Conversation, got.Agents, conv, parts)
			}
			for i := range parts {
				if got.Agents[i] != parts[i] {
					t.Fatalf("agent %d = %+v, want %+v", i, got.Agents[i], parts[i])
				}
			}
		}
		check(0, id, false)
		check(id, id, true)
		for _, a := range []int64{f.bob.ID, f.alice.ID} {
			if err := s.Join(ctx, id, a); err != nil {
				t.Fatalf("Join() = %v", err)
			}
			check(id, id, true)
		}
		other := startVisitor(t, s, "Other")
		check(other.Conversation.ID, id, false)
		check(999999, id, false)
		if _, err := s.VisitorAuthConversation(ctx, "no such token", time.Hour, id); !errors.Is(err, inbox.ErrUnauthenticated) {
			t.Fatalf("VisitorAuthConversation(bad token, hint) = %v, want ErrUnauthenticated", err)
		}
		// A newer conversation is the current one: the older is not read.
		if err := s.DeleteConversation(ctx, id); err != nil {
			t.Fatalf("DeleteConversation() = %v", err)
		}
		fresh, _, err := s.StartVisitorConversation(ctx, v.Contact.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(id, fresh.ID, false)
		email := f.start(t) // Carol's email conversation: not Vic's
		check(email.ID, fresh.ID, false)
		id = fresh.ID
		check(fresh.ID, fresh.ID, true)
	})
}
