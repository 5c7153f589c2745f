package clustertest_test

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/clustertest"
)

// Bounds of the issue and of SCALE.md that the failover tests hold the
// cluster to.
const (
	// mailboxTakeover: another node fetches a dead holder's mailbox
	// within 30 s (issue 14, Deliver 3).
	mailboxTakeover = 30 * time.Second
	// deadNode: a node whose liveness row is older than this is dead
	// (SCALE.md; heartbeats every 2 s).
	deadNode  = 10 * time.Second
	heartbeat = 2 * time.Second
	// slack is "a few seconds" for a loaded 2-core machine.
	slack = 8 * time.Second
	// outboxTakeover bounds the resend of a mail whose sender died in
	// the middle of its SMTP transaction: the node that reaps the dead
	// one ends its outbox claims (inbox.ReapNodes, migration 0016), and
	// a live Worker claims the mail at its next tick (1 s).
	outboxTakeover = deadNode + heartbeat + 2*slack
)

// TestMailboxTakeover kills the node that holds the mailbox in the
// middle of an import: another node takes the mailbox over within 30 s,
// and every mail is imported exactly once (issue 14, Tests).
func TestMailboxTakeover(t *testing.T) {
	processTest(t)
	imapd := emailtest.StartIMAP(t, nil)
	smtpd := emailtest.StartSMTP(t, nil)
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Mailbox: &clustertest.Mailbox{IMAP: imapd, SMTP: smtpd}})
	db := connect(t, c)

	// One node, and one only, fetches the mailbox.
	holder := func() (*clustertest.Node, string) {
		nodes, unknown := owners(c, imapd.ClientAddrs())
		if len(nodes) == 1 && unknown == 0 {
			return nodes[0], ""
		}
		return nil, fmt.Sprintf("nodes %v and %d connections of no node", ids(nodes), unknown)
	}
	var first *clustertest.Node
	clustertest.Until(t, 0, "exactly one node connected to the mailbox's IMAP server", func() (bool, string) {
		var state string
		first, state = holder()
		return first != nil, state
	})
	// And it says so in /metrics, as the others say they do not.
	for _, node := range c.Nodes {
		want := 0
		if node == first {
			want = 1
		}
		if got := leaseHeld(t, node, "mailbox:support"); got != want {
			t.Errorf("%s: microchat_worker_leases_held{worker=\"mailbox:support\"} = %d, want %d", node.ID, got, want)
		}
	}

	// Enough mail that the import takes seconds: one thread from one
	// customer, each mail with a text of its own.
	const n = 2000
	for i := range n {
		thread := ""
		if i > 0 {
			thread = "In-Reply-To: <m0@customer.test>\r\nReferences: <m0@customer.test>\r\n"
		}
		imapd.Append(t, "INBOX", []byte(fmt.Sprintf("From: Carol <carol@customer.test>\r\n"+
			"To: support@example.com\r\nSubject: Order %d\r\nMessage-ID: <m%d@customer.test>\r\n%s"+
			"Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
			"mail number %d\r\n", i, i, thread, i)), time.Time{})
	}
	// Kill once a good part is stored: the holder is then in the middle
	// of its batches (one fetched, one being stored).
	var stored int
	clustertest.Eventually(t, 60*time.Second, "the import to be under way", func() bool {
		stored = countRows(t, db, "messages")
		return stored >= n/8
	})
	if stored >= n {
		t.Fatalf("all %d mails imported before the kill: make the mailbox bigger", n)
	}
	first.Kill()
	killed := time.Now()
	t.Logf("killed %s with %d of %d mails stored", first.ID, stored, n)

	var second *clustertest.Node
	took := clustertest.Until(t, mailboxTakeover, "another node to take the mailbox over", func() (bool, string) {
		var state string
		second, state = holder()
		return second != nil && second != first, state
	})
	t.Logf("%s took the mailbox over %v after the kill", second.ID, took.Round(time.Millisecond))
	clustertest.Eventually(t, 120*time.Second, fmt.Sprintf("all %d mails to be stored", n), func() bool {
		stored = countRows(t, db, "messages")
		return stored >= n
	})
	t.Logf("import done %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Exactly once: one conversation holding mail 0..n-1, each once.
	// (They thread into one conversation, but whichever they are in.)
	admin := clustertest.Admin(t, second)
	count := map[string]int{}
	for _, conv := range allConversations(admin, second, "unassigned") {
		for _, m := range allMessages(admin, second, conv) {
			count[strings.TrimSpace(m.Text)]++
		}
	}
	for i := range n {
		if k := count[fmt.Sprintf("mail number %d", i)]; k != 1 {
			t.Errorf("mail %d stored %d times, want once", i, k)
		}
	}
	if stored := countRows(t, db, "messages"); stored != n {
		t.Errorf("%d messages in the database, want %d", stored, n)
	}
	if len(count) != n {
		t.Errorf("%d different texts, want %d", len(count), n)
	}
	// Still one holder, after the import.
	if h, what := holder(); h == nil {
		t.Errorf("after the import: %s, want one node", what)
	}
}

// TestKillNodeWithSockets kills a node with live sockets: its clients
// reconnect to another node and resume from their last seq, with what
// the other side sent meanwhile arriving exactly once; its visitors and
// agents that do not come back show offline after the grace period and
// the dead-node interval (issue 14, Tests).
func TestKillNodeWithSockets(t *testing.T) {
	processTest(t)
	const grace = time.Second
	c := clustertest.Start(t, clustertest.Options{Nodes: 2, OfflineAfter: grace})
	a, b := c.Nodes[0], c.Nodes[1]

	// On A: agent X (admin), agent Z, visitors V1 and V3. On B: agent Y,
	// visitor V2.
	x := clustertest.Admin(t, b)
	y := newAgent(t, x, b, "yann@example.com", "Yann")
	z := newAgent(t, x, b, "zoe@example.com", "Zoe")
	xs := x.Dial(a, "")
	ys := y.Dial(b, "")
	zs := z.Dial(a, "")
	v1 := clustertest.StartVisitor(t, a, "Vic", "")
	v2 := clustertest.StartVisitor(t, b, "Val", "")
	v3 := clustertest.StartVisitor(t, a, "Vin", "")
	c1, c2 := v1.Conversation.ID, v2.Conversation.ID
	v1s := v1.Dial(a, v1.Conversation.Seq)
	v2s := v2.Dial(b, v2.Conversation.Seq)
	v3s := v3.Dial(a, v3.Conversation.Seq)
	ys.WaitSeen("V3 online", isContactPresence(v3.Contact.ID, true))
	ys.WaitSeen("Z online", func(f clustertest.Frame) bool {
		return f.Type == "agent_presence" && f.AgentID == z.Agent.ID && f.Presence == "online"
	})

	y.Post(b, fmt.Sprintf("/api/v1/conversations/%d/join", c1), nil, nil)
	x.Post(b, fmt.Sprintf("/api/v1/conversations/%d/join", c2), nil, nil)
	v1s.Send(map[string]any{"type": "message", "client_id": "v1-0", "text": "V1 before"})
	ys.WaitFor("V1's message on Y's socket", isMessage(c1, "V1 before"))
	ys.Send(map[string]any{"type": "message", "conversation_id": c1, "client_id": "y-0", "text": "Y before"})
	v1s.WaitFor("Y's message on V1's socket", isMessage(c1, "Y before"))
	v2s.Send(map[string]any{"type": "message", "client_id": "v2-0", "text": "V2 before"})
	xs.WaitFor("V2's message on X's socket", isMessage(c2, "V2 before"))

	// Where the clients on A stand.
	v1Last := v1s.Events(c1)[len(v1s.Events(c1))-1].Seq
	cursors := map[string]int64{}
	for _, conv := range []int64{c1, c2, v3.Conversation.ID} {
		if evs := xs.Events(conv); len(evs) > 0 {
			cursors[fmt.Sprint(conv)] = evs[len(evs)-1].Seq
		}
	}

	a.Kill()
	killed := time.Now()
	for _, s := range []*clustertest.Socket{xs, zs, v1s, v3s} {
		s.WaitClosed(clustertest.Patience, "a socket of the killed node")
	}

	// While they are away, the other side writes.
	const k = 5
	for i := range k {
		ys.Send(map[string]any{"type": "message", "conversation_id": c1, "client_id": fmt.Sprintf("y-%d", i+1), "text": fmt.Sprintf("Y during %d", i)})
		v2s.Send(map[string]any{"type": "message", "client_id": fmt.Sprintf("v2-%d", i+1), "text": fmt.Sprintf("V2 during %d", i)})
	}
	for i := range k {
		ys.WaitFor("Y's ack", isAck(fmt.Sprintf("y-%d", i+1)))
		v2s.WaitFor("V2's ack", isAck(fmt.Sprintf("v2-%d", i+1)))
	}

	// V1 and X come back on B and resume.
	v1r := v1.Dial(b, v1Last)
	xr := x.Dial(b, "resume=1")
	xr.Send(map[string]any{"type": "resume", "cursors": cursors})
	for i := range k {
		v1r.WaitFor("Y's message sent during the outage, on V1's new socket", isMessage(c1, fmt.Sprintf("Y during %d", i)))
		xr.WaitFor("V2's message sent during the outage, on X's new socket", isMessage(c2, fmt.Sprintf("V2 during %d", i)))
	}
	// One more each way after the resume, live.
	ys.Send(map[string]any{"type": "message", "conversation_id": c1, "client_id": "y-after", "text": "Y after"})
	v1r.WaitFor("Y's message after the resume", isMessage(c1, "Y after"))
	v2s.Send(map[string]any{"type": "message", "client_id": "v2-after", "text": "V2 after"})
	xr.WaitFor("V2's message after the resume", isMessage(c2, "V2 after"))
	want1 := seqs(storedEvents(y, b, c1, v1Last))
	want2 := seqs(storedEvents(y, b, c2, cursors[fmt.Sprint(c2)]))
	caughtUp(v1r, c1, want1[len(want1)-1])
	caughtUp(xr, c2, want2[len(want2)-1])
	checkOnce(t, "V1's socket after the resume", seqs(v1r.Events(c1)), want1)
	checkOnce(t, "X's socket after the resume, conversation 2", seqs(xr.Events(c2)), want2)
	for _, f := range xr.Frames() {
		if f.Type == "resync" {
			t.Errorf("X's resumed socket got %s, want the events after its cursors", f.Raw)
		}
	}

	// V3 and Z, who do not come back, go offline: the grace, then the
	// node counts as dead.
	bound := grace + deadNode + heartbeat + slack
	ys.WaitForWithin(bound, "V3 (only on the killed node) offline", isContactPresence(v3.Contact.ID, false))
	t.Logf("V3 offline %v after the kill (grace %v, dead node %v)", time.Since(killed).Round(time.Millisecond), grace, deadNode)
	ys.WaitForWithin(bound, "Z (only on the killed node) offline", func(f clustertest.Frame) bool {
		return f.Type == "agent_presence" && f.AgentID == z.Agent.ID && f.Presence == "offline"
	})
	t.Logf("Z offline %v after the kill", time.Since(killed).Round(time.Millisecond))
	if contactOnline(y, b, v3.Contact.ID) {
		t.Errorf("GET /contacts/%d: V3 online after their node died", v3.Contact.ID)
	}
	if !contactOnline(y, b, v1.Contact.ID) {
		t.Errorf("GET /contacts/%d: V1 offline, reconnected to B", v1.Contact.ID)
	}
}

// TestRollingRestart stops a node with SIGTERM and starts it again with
// its node_id, as a rolling restart does: its visitor and agent who
// reconnect to the other node within offline_after never show offline
// there, and its visitor who does not come back shows offline once
// offline_after has passed since their socket closed, not at once (the
// stopping node used to take its visitors offline 30 ms after the 1001
// close, and they came back online a second later).
func TestRollingRestart(t *testing.T) {
	processTest(t)
	const grace = 5 * time.Second
	c := clustertest.Start(t, clustertest.Options{Nodes: 2, OfflineAfter: grace})
	a, b := c.Nodes[0], c.Nodes[1]

	// Y watches from B. On A: agent X and visitor V1, who move to B, and
	// visitor V2, who leaves.
	y := clustertest.Admin(t, b)
	x := newAgent(t, y, b, "xena@example.com", "Xena")
	ys := y.Dial(b, "")
	xs := x.Dial(a, "")
	v1 := clustertest.StartVisitor(t, a, "Vic", "")
	v2 := clustertest.StartVisitor(t, a, "Val", "")
	v1s := v1.Dial(a, v1.Conversation.Seq)
	v2s := v2.Dial(a, v2.Conversation.Seq)
	xOffline := func(f clustertest.Frame) bool {
		return f.Type == "agent_presence" && f.AgentID == x.Agent.ID && f.Presence == "offline"
	}
	ys.WaitSeen("V1 online", isContactPresence(v1.Contact.ID, true))
	ys.WaitSeen("V2 online", isContactPresence(v2.Contact.ID, true))
	ys.WaitSeen("X online", func(f clustertest.Frame) bool {
		return f.Type == "agent_presence" && f.AgentID == x.Agent.ID && f.Presence == "online"
	})

	if code := a.Stop(); code != 0 {
		t.Fatalf("%s exited with %d after SIGTERM", a.ID, code)
	}
	for _, s := range []*clustertest.Socket{xs, v1s, v2s} {
		s.WaitClosed(clustertest.Patience, "a socket of the stopped node")
	}
	v1r := v1.Dial(b, v1.Conversation.Seq)
	x.Dial(b, "")
	if back := time.Since(v1s.ClosedAt()); back >= grace {
		t.Fatalf("V1 reconnected %v after their socket closed, not within offline_after %v: the machine is too slow for this test", back, grace)
	}
	// A comes back with its node_id, while its predecessor's rows wait.
	a.Start()

	bound := grace + heartbeat + slack
	f := ys.WaitForWithin(bound, "V2 (gone with the stopped node) offline", func(f clustertest.Frame) bool {
		if isContactPresence(v1.Contact.ID, false)(f) {
			t.Fatalf("V1 shown offline to Y after moving from the stopped node to B within offline_after: %s", f.Raw)
		}
		if xOffline(f) {
			t.Fatalf("X shown offline to Y after moving from the stopped node to B within offline_after: %s", f.Raw)
		}
		return isContactPresence(v2.Contact.ID, false)(f)
	})
	after := f.At.Sub(v2s.ClosedAt())
	t.Logf("V2 offline %v after their socket closed (offline_after %v)", after.Round(time.Millisecond), grace)
	if after < grace {
		t.Errorf("V2 offline %v after their socket closed, before offline_after %v", after, grace)
	}
	// The stopped node's rows are gone, V2's with V1's and X's, in one
	// transaction: V1 and X are still online, on B.
	if !contactOnline(y, b, v1.Contact.ID) {
		t.Errorf("GET /contacts/%d: V1 offline, reconnected to B", v1.Contact.ID)
	}
	var agents struct{ Agents []inbox.Agent }
	y.Get(b, "/api/v1/agents", &agents)
	for _, ag := range agents.Agents {
		if ag.ID == x.Agent.ID && ag.Presence != inbox.PresenceOnline {
			t.Errorf("GET /agents: X %s, reconnected to B", ag.Presence)
		}
	}
	for _, f := range ys.Frames() {
		if isContactPresence(v1.Contact.ID, false)(f) || xOffline(f) {
			t.Errorf("Y's socket got %s", f.Raw)
		}
	}
	v1r.Close()
}

// TestKillDuringSMTPSend kills the node sending a reply by email while the
// mail server holds its DATA: the reply goes out again from another node,
// never lost. The mail server had the whole mail when its sender died
// (the final dot, before its answer), and records it: the customer gets
// it twice, with the same Message-ID (which mail clients show once). A
// sender killed before the final dot would leave one copy.
func TestKillDuringSMTPSend(t *testing.T) {
	processTest(t)
	imapd := emailtest.StartIMAP(t, nil)
	smtpd := emailtest.StartSMTP(t, nil)
	c := clustertest.Start(t, clustertest.Options{Nodes: 2, Mailbox: &clustertest.Mailbox{IMAP: imapd, SMTP: smtpd}})
	a := c.Nodes[0]
	admin := clustertest.Admin(t, a)

	imapd.Append(t, "INBOX", []byte("From: Carol <carol@customer.test>\r\nTo: support@example.com\r\n"+
		"Subject: Printer on fire\r\nMessage-ID: <fire@customer.test>\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nIt smokes.\r\n"), time.Time{})
	var conv inbox.ConversationItem
	clustertest.Eventually(t, 60*time.Second, "the mail to become a conversation", func() bool {
		var page inbox.ConversationPage
		admin.Get(a, "/api/v1/conversations?column=unassigned", &page)
		if len(page.Items) == 1 {
			conv = page.Items[0]
			return true
		}
		return false
	})

	smtpd.Hold()
	admin.Post(a, fmt.Sprintf("/api/v1/conversations/%d/join", conv.ID), nil, nil)
	var ans struct {
		Message inbox.Message `json:"message"`
		Channel string        `json:"channel"`
	}
	admin.Post(a, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID),
		map[string]any{"text": "Unplug it.", "channel": "email", "client_id": "r1"}, &ans)
	if ans.Channel != inbox.ChannelEmail {
		t.Fatalf("reply went by %q, want email", ans.Channel)
	}
	var from []string
	clustertest.Eventually(t, 60*time.Second, "the reply's DATA held by the mail server", func() bool {
		from = smtpd.HeldFrom()
		return len(from) == 1
	})
	sender := c.Owner(from[0])
	if sender == nil {
		t.Fatalf("no node holds the SMTP connection from %s", from[0])
	}
	sender.Kill()
	killed := time.Now()
	t.Logf("killed %s in the middle of its SMTP send", sender.ID)
	smtpd.Release()
	var survivor *clustertest.Node
	for _, n := range c.Nodes {
		if n != sender {
			survivor = n
		}
	}

	// The reply is recorded sent only by a node that had the server's
	// 250: the survivor, sending it again.
	clustertest.Until(t, outboxTakeover, "the reply to be sent again and recorded sent", func() (bool, string) {
		for _, m := range allMessages(admin, survivor, conv.ID) {
			if m.ID == ans.Message.ID {
				return m.State == inbox.StateSent, fmt.Sprintf("state %s, %d copies received", m.State, len(smtpd.Mails()))
			}
		}
		return false, "no reply"
	})
	mails := smtpd.Mails()
	t.Logf("recorded sent %v after the kill, %d copies received", time.Since(killed).Round(time.Millisecond), len(mails))
	if len(mails) == 0 || len(mails) > 2 {
		t.Fatalf("%d copies of the reply received, want 1 or 2", len(mails))
	}
	var msgIDs []string
	for _, m := range mails {
		parsed, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("a sent mail: %v", err)
		}
		msgIDs = append(msgIDs, parsed.Header.Get("Message-Id"))
		if !strings.Contains(string(m.Raw), "Unplug it.") {
			t.Errorf("a sent mail is not the reply:\n%s", m.Raw)
		}
	}
	if msgIDs[0] == "" || msgIDs[0] != msgIDs[len(msgIDs)-1] {
		t.Errorf("the copies' Message-IDs = %q, want one", msgIDs)
	}
}
