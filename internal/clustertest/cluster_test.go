package clustertest_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/clustertest"
)

// TestHarness checks the harness itself: two nodes over one database
// answer for one session, a node stopped with SIGTERM exits 0 and comes
// back on its address, one killed with SIGKILL comes back too.
func TestHarness(t *testing.T) {
	processTest(t)
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Nodes[0], c.Nodes[1]
	admin := clustertest.Admin(t, a)
	var sess struct {
		Agent inbox.Agent `json:"agent"`
	}
	admin.Get(b, "/api/v1/auth/session", &sess)
	if sess.Agent.Email != clustertest.AdminEmail {
		t.Fatalf("session on %s = %+v, want the admin logged in on %s", b.ID, sess, a.ID)
	}
	url := a.URL
	a.Restart()
	if a.URL != url {
		t.Errorf("after a restart %s is at %s, want %s", a.ID, a.URL, url)
	}
	a.Kill()
	if a.Running() {
		t.Fatalf("%s still running after Kill", a.ID)
	}
	a.Start()
	admin.Get(a, "/api/v1/auth/session", &sess)
}

// TestChatAcrossNodes: a visitor on node A and an agent on node B chat
// both ways, with typing, read state and presence (issue 14, Tests).
func TestChatAcrossNodes(t *testing.T) {
	processTest(t)
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Nodes[0], c.Nodes[1]
	admin := clustertest.Admin(t, b)
	as := admin.Dial(b, "")

	v := clustertest.StartVisitor(t, a, "Vera", "")
	conv, contact := v.Conversation.ID, v.Contact.ID
	as.WaitFor("the conversation started on A, on B's agent socket", isEvent(conv, inbox.EventConversationCreated))

	// Presence: the visitor's socket on A makes them online for B.
	vs := v.Dial(a, v.Conversation.Seq)
	as.WaitFor("the visitor (socket on A) online on B's agent socket", isContactPresence(contact, true))
	if !contactOnline(admin, b, contact) {
		t.Errorf("GET /contacts/%d on B: offline, want online", contact)
	}

	admin.Post(b, fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, nil)
	vs.WaitFor("the agent's join (on B) on the visitor's socket on A", isEvent(conv, inbox.EventJoined))

	// Chat both ways.
	vs.Send(map[string]any{"type": "message", "client_id": "v1", "text": "Hello from A"})
	vs.WaitFor("the ack of the visitor's message", isAck("v1"))
	as.WaitFor("the visitor's message (A) on the agent's socket (B)", isMessage(conv, "Hello from A"))
	as.Send(map[string]any{"type": "message", "conversation_id": conv, "client_id": "a1", "text": "Hi from B"})
	ack := as.WaitFor("the ack of the agent's message", isAck("a1"))
	if ack.Message == nil || ack.Channel != inbox.ChannelChat {
		t.Fatalf("agent's ack = %s, want a message sent by chat", ack.Raw)
	}
	got := vs.WaitFor("the agent's message (B) on the visitor's socket (A)", isMessage(conv, "Hi from B"))

	// Typing both ways.
	vs.Send(map[string]any{"type": "typing", "typing": true})
	as.WaitFor("the visitor typing, on B", func(f clustertest.Frame) bool {
		return f.Type == "typing" && f.ConversationID == conv && f.ContactID == contact && f.Typing != nil && *f.Typing
	})
	vs.Send(map[string]any{"type": "typing", "typing": false})
	as.WaitFor("the visitor's typing: false, on B", func(f clustertest.Frame) bool {
		return f.Type == "typing" && f.ConversationID == conv && f.Typing != nil && !*f.Typing
	})
	as.Send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	vs.WaitFor("the agent typing, on A", func(f clustertest.Frame) bool {
		return f.Type == "typing" && f.AgentID == admin.Agent.ID && f.Typing != nil && *f.Typing
	})
	as.Send(map[string]any{"type": "typing", "conversation_id": conv, "typing": false})
	vs.WaitFor("the agent's typing: false, on A", func(f clustertest.Frame) bool {
		return f.Type == "typing" && f.AgentID == admin.Agent.ID && f.Typing != nil && !*f.Typing
	})

	// Read state both ways.
	vs.Send(map[string]any{"type": "read", "up_to": got.Event.Seq})
	as.WaitFor("the visitor's read (A) on B", func(f clustertest.Frame) bool {
		var r inbox.MessagesRead
		return isEvent(conv, inbox.EventMessagesRead)(f) && f.Event.Decode(&r) == nil && r.Reader == "contact" && r.UpTo >= got.Event.Seq
	})
	admin.Post(b, fmt.Sprintf("/api/v1/conversations/%d/read", conv), map[string]any{"up_to": got.Event.Seq}, nil)
	vs.WaitFor("the agent's read (B) on A", func(f clustertest.Frame) bool {
		var r inbox.MessagesRead
		return isEvent(conv, inbox.EventMessagesRead)(f) && f.Event.Decode(&r) == nil && r.Reader == "agent"
	})

	// Every stored event reached both sockets once, in order: the
	// agent's from the conversation's start, the visitor's after the
	// seq it connected with.
	all := seqs(storedEvents(admin, a, conv, 0))
	caughtUp(as, conv, all[len(all)-1])
	caughtUp(vs, conv, all[len(all)-1])
	checkOnce(t, "agent socket on B", seqs(as.Events(conv)), all)
	checkOnce(t, "visitor socket on A", seqs(vs.Events(conv)), seqs(storedEvents(admin, a, conv, v.Conversation.Seq)))

	// A second tab on B. The tab on A closes, then a witness visitor's
	// only socket on A: once the witness is offline, the grace of the
	// visitor's tab on A has passed too, and the visitor, still on B,
	// must still be online.
	last := all[len(all)-1]
	vs2 := v.Dial(b, last)
	w := clustertest.StartVisitor(t, a, "Witness", "")
	ws := w.Dial(a, w.Conversation.Seq)
	as.WaitFor("the witness online", isContactPresence(w.Contact.ID, true))
	vs.Close()
	ws.Close()
	start := time.Now()
	as.WaitFor("the witness offline after the grace", func(f clustertest.Frame) bool {
		if isContactPresence(contact, false)(f) {
			t.Fatalf("the visitor went offline when their tab on A closed, with a tab on B open")
		}
		return isContactPresence(w.Contact.ID, false)(f)
	})
	t.Logf("witness offline %v after its socket closed", time.Since(start).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if !contactOnline(admin, n, contact) {
			t.Errorf("GET /contacts/%d on %s: offline with a tab on B open", contact, n.ID)
		}
	}
	// The last tab closes: offline.
	vs2.Close()
	start = time.Now()
	as.WaitFor("the visitor offline once both tabs closed", isContactPresence(contact, false))
	t.Logf("visitor offline %v after their last tab closed (offline_after 1s)", time.Since(start).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if contactOnline(admin, n, contact) {
			t.Errorf("GET /contacts/%d on %s: online after both tabs closed", contact, n.ID)
		}
	}
}

// TestLogoutClosesSocketsOnEveryNode: a logout on node A closes that
// session's agent socket on node B within a second, and erasing a contact
// on A closes their visitor socket on B (issue 14, Deliver 4).
func TestLogoutClosesSocketsOnEveryNode(t *testing.T) {
	processTest(t)
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Nodes[0], c.Nodes[1]
	// The bound, from the request's answer, which comes after the
	// commit (the request itself may take longer than that on a loaded
	// machine; the socket may close before the answer arrives).
	const within = time.Second

	admin := clustertest.Admin(t, a)
	other := clustertest.Admin(t, a) // a second session, which stays
	s := admin.Dial(b, "")
	keep := other.Dial(b, "")
	sent := time.Now()
	if st, body := admin.Do(a, http.MethodPost, "/api/v1/auth/logout", nil, nil); st != http.StatusNoContent {
		t.Fatalf("logout on A = %d %s", st, body)
	}
	answered := time.Now()
	s.WaitClosed(within, "the logged-out session's socket on B")
	if code := s.CloseCode(); code != 4401 {
		t.Errorf("the logged-out session's socket closed with %d (%v), want 4401", code, s.CloseError())
	}
	t.Logf("socket on B closed %v after the logout on A was sent, %v after its answer", s.ClosedAt().Sub(sent).Round(time.Millisecond), s.ClosedAt().Sub(answered).Round(time.Millisecond))

	v := clustertest.StartVisitor(t, b, "Erin", "erin@example.com")
	vs := v.Dial(b, v.Conversation.Seq)
	sent = time.Now()
	if st, body := other.Do(a, http.MethodDelete, fmt.Sprintf("/api/v1/contacts/%d", v.Contact.ID), nil, nil); st/100 != 2 {
		t.Fatalf("erasing the contact on A = %d %s", st, body)
	}
	answered = time.Now()
	vs.WaitClosed(within, "the erased contact's socket on B")
	if code := vs.CloseCode(); code != 4401 {
		t.Errorf("the erased contact's socket closed with %d (%v), want 4401", code, vs.CloseError())
	}
	t.Logf("visitor socket on B closed %v after the erase on A was sent, %v after its answer", vs.ClosedAt().Sub(sent).Round(time.Millisecond), vs.ClosedAt().Sub(answered).Round(time.Millisecond))

	select {
	case <-keep.Done():
		t.Errorf("the other session's socket closed too: %v", keep.CloseError())
	default:
	}
}

// TestLoginLimitShared: the login rate limit counts the attempts made on
// every node (issue 14, Deliver 4).
func TestLoginLimitShared(t *testing.T) {
	processTest(t)
	const limit = 4
	c := clustertest.Start(t, clustertest.Options{Nodes: 2, YAML: fmt.Sprintf("limits:\n  login_attempts_per_minute: %d\n", limit)})
	// An address of the test's own (trusted_proxies is 127.0.0.1).
	h := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	attempt := func(n *clustertest.Node) int {
		st, _ := clustertest.Call(t, http.DefaultClient, n, http.MethodPost, "/api/v1/auth/login", h,
			map[string]any{"email": "mallory@example.com", "password": "not the password"}, nil)
		return st
	}
	for i := range limit {
		n := c.Nodes[i%2]
		if st := attempt(n); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d (on %s) = %d, want 401", i+1, n.ID, st)
		}
	}
	for _, n := range c.Nodes {
		if st := attempt(n); st != http.StatusTooManyRequests {
			t.Errorf("attempt after %d on both nodes, on %s = %d, want 429", limit, n.ID, st)
		}
	}
}
