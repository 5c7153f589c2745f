package web

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/presence"
)

// A contact is online while a socket is open and for offline_after after
// the last one closed; moving between pages within it writes nothing.
// Replies queued while they were away are delivered when they come back.
// The test drives the grace period's clock and the presence writer, and
// waits for the server to have counted each socket: nothing depends on
// how fast the machine is.
func TestWidgetOnlineOffline(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		const grace = 30 * time.Second
		clock := inboxtest.NewClock()
		e := newEnvPresence(t, inboxtest.Open(t, url, nil), nil,
			presence.Options{Grace: grace, Manual: true, AfterFunc: clock.AfterFunc})
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		dash := e.agentSock(alice)
		v := e.startVisitor("Olga")
		id := v.start.Contact.ID
		tracker := e.srv.presence
		flush := func() {
			t.Helper()
			noError(t, "Tracker.Flush()", tracker.Flush())
		}
		contact := func() inbox.Contact {
			c, err := e.store.Contact(ctx, id)
			noError(t, "Contact()", err)
			return c
		}
		// counted waits until the server counts n sockets of the
		// contact, and the grace period runs or not.
		counted := func(what string, n int, inGrace bool) {
			t.Helper()
			waitFor(t, what, func() bool { got, g := tracker.Sockets(id); return got == n && g == inGrace })
		}
		flush()
		if contact().Online {
			t.Fatalf("online before any socket")
		}

		s, _ := v.connect(1)
		counted("the socket counted", 1, false)
		flush()
		if !contact().Online {
			t.Fatalf("offline with a socket open")
		}
		if f := agentNext(t, dash, "contact_presence", nil); f.ContactID != id || f.Online == nil || !*f.Online {
			t.Fatalf("contact_presence = %+v", f)
		}
		seen := contact().LastSeenAt
		writes := tracker.Writes()

		// Moving to another page: close, reopen within the grace.
		s.conn.WriteClose(1000, nil)
		counted("the socket uncounted", 0, true)
		clock.Advance(grace / 2)
		flush()
		s2, _ := v.connect(1)
		counted("the next page's socket counted", 1, false)
		clock.Advance(2 * grace)
		flush()
		c := contact()
		if !c.Online || !c.LastSeenAt.Equal(*seen) || tracker.Writes() != writes {
			t.Fatalf("after a page change: online %v, last seen %v (was %v), %d writes (was %d); want no write",
				c.Online, c.LastSeenAt, seen, tracker.Writes(), writes)
		}
		// Pings cost no write either.
		for range 3 {
			s2.send(t, map[string]any{"type": "ping"})
			s2.find(t, "pong")
		}
		flush()
		if tracker.Writes() != writes {
			t.Fatalf("pings wrote presence")
		}

		// Leaving the site: offline when the grace ends, not before.
		s2.conn.WriteClose(1000, nil)
		counted("the last socket uncounted", 0, true)
		clock.Advance(grace - time.Millisecond)
		flush()
		if !contact().Online {
			t.Fatalf("offline before the grace of %v ended", grace)
		}
		clock.Advance(time.Millisecond)
		flush()
		if contact().Online || tracker.Writes() != writes+1 {
			t.Fatalf("after the grace: online %v after %d writes (was %d); want offline after one more", contact().Online, tracker.Writes(), writes)
		}
		if f := agentNext(t, dash, "contact_presence", nil); f.Online == nil || *f.Online {
			t.Fatalf("contact_presence = %+v, want offline", f)
		}

		// A reply while offline (no email) is queued, and sent when they
		// come back.
		ac := e.login(alice.Email)
		conv := v.start.Conversation.ID
		var rep replyAnswer
		ac.do("POST", "/api/v1/conversations/"+itoa64(conv)+"/messages", map[string]any{"text": "Still there?"}).want(http.StatusCreated).decode(&rep)
		if rep.Message.State != inbox.StateQueued {
			t.Fatalf("reply to an offline contact = %+v", rep.Message)
		}
		s3, _ := v.connect(rep.Message.Seq)
		counted("the returning socket counted", 1, false)
		flush()
		var st inbox.MessageState
		if ev := s3.event(t, inbox.EventMessageState); ev.Decode(&st) != nil || st.State != inbox.StateSent || fmtIDs(st.MessageIDs) != fmtIDs([]int64{rep.Message.ID}) {
			t.Fatalf("message_state = %s", ev.Data)
		}
	})
}

// Agents are online while their dashboard is open, idle when it says so;
// the widget sees it.
func TestAgentPresenceInWidget(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, func(c *config.Config) { c.OfflineAfter = config.Duration(100 * time.Millisecond) })
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		v := e.startVisitor("Pia")
		noError(t, "Join()", e.store.Join(ctx, v.start.Conversation.ID, alice.ID))
		s, hello := v.connect(2)
		if len(hello.Agents) != 1 || hello.Agents[0].Presence != inbox.PresenceOffline {
			t.Fatalf("hello agents = %+v", hello.Agents)
		}
		dash := e.agentSock(alice)
		if f := s.nextOf(t, "presence"); f.AgentID != alice.ID || f.Presence != inbox.PresenceOnline || f.Name != "alice" {
			t.Fatalf("presence = %s", f)
		}
		dash.send(t, map[string]any{"type": "presence", "presence": "idle"})
		if f := s.nextOf(t, "presence"); f.Presence != inbox.PresenceIdle {
			t.Fatalf("presence = %s, want idle", f)
		}
		dash.send(t, map[string]any{"type": "presence", "presence": "away"})
		if f := agentNext(t, dash, "error", nil); f.Error == "" {
			t.Fatalf("bad presence = %+v", f)
		}
		dash.conn.WriteClose(1000, nil)
		if f := s.nextOf(t, "presence"); f.Presence != inbox.PresenceOffline {
			t.Fatalf("presence = %s, want offline", f)
		}
	})
}

// The facts of a visitor come from the User-Agent and the client address,
// X-Forwarded-For believed from a trusted proxy; agents see them with the
// pages viewed.
func TestVisitorFacts(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
		c := e.client()
		c.header.Set("User-Agent", chromeUA)
		c.header.Set("X-Forwarded-For", "8.8.8.8")
		var start startAnswer
		c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Finn", "pages": []map[string]string{
			{"url": "https://shop.example/", "title": "Home"}, {"url": "https://shop.example/pricing", "title": "Pricing", "referrer": "https://search.example/?q=chat"},
		}}).want(http.StatusCreated).decode(&start)
		if start.Contact.Browser != "Chrome" || start.Contact.OS != "Windows" || start.Contact.IP != "8.8.8.8" || start.Contact.Country != "US" {
			t.Fatalf("contact = %+v", start.Contact)
		}
		admin := e.agent("admin@example.com", inbox.RoleAdmin)
		ac := e.login(admin.Email)
		var d inbox.ContactDetail
		ac.do("GET", "/api/v1/contacts/"+itoa64(start.Contact.ID), nil).want(http.StatusOK).decode(&d)
		if d.BrowserVersion != "131.0.0.0" || len(d.PageViews) != 2 || d.PageViews[0].Title != "Pricing" || d.PageViews[0].Referrer == "" {
			t.Fatalf("contact detail = %+v", d)
		}

		// The socket records a page view and the facts of its own request.
		s, _, err := e.dialWidget(http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}, "X-Forwarded-For": {"1.1.1.1"}})
		noError(t, "dial", err)
		s.send(t, map[string]any{"type": "auth", "token": start.Token, "last_seq": 1})
		if h := s.next(t); h.Type != "hello" || h.Contact.Browser != "Firefox" || h.Contact.IP != "1.1.1.1" {
			t.Fatalf("hello = %s", h)
		}
		s.send(t, map[string]any{"type": "page_view", "url": "https://shop.example/checkout", "title": "Checkout"})
		s.send(t, map[string]any{"type": "page_view", "url": "javascript:alert(1)"})
		if f := s.find(t, "error"); f.Code != "invalid" {
			t.Fatalf("bad page view = %s", f)
		}
		ac.do("GET", "/api/v1/contacts/"+itoa64(start.Contact.ID), nil).want(http.StatusOK).decode(&d)
		if d.Browser != "Firefox" || d.OS != "Linux" || d.IP != "1.1.1.1" || len(d.PageViews) != 3 || d.PageViews[0].Title != "Checkout" {
			t.Fatalf("contact detail after the socket = %+v", d)
		}

		// Without a trusted proxy, X-Forwarded-For is ignored.
		e2 := newEnv(t, url, nil)
		c2 := e2.client()
		c2.header.Set("X-Forwarded-For", "8.8.8.8")
		var start2 startAnswer
		c2.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Gil"}).want(http.StatusCreated).decode(&start2)
		if start2.Contact.IP != "127.0.0.1" || start2.Contact.Country != "" {
			t.Fatalf("contact without trusted proxy = %+v", start2.Contact)
		}
	})
}
