package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// processTest skips a cluster test under the race detector: the nodes are
// separate processes built without it, so the race pass (scripts/test.sh
// step 5) would only check the clients, at twice the test's time; the
// plain pass runs them.
func processTest(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("the cluster's nodes are processes of their own: their tests run in the pass without -race")
	}
}

// isEvent matches an event frame of conversation of type typ.
func isEvent(conversation int64, typ string) func(clustertest.Frame) bool {
	return func(f clustertest.Frame) bool {
		return f.Type == "event" && f.Event != nil && f.Event.ConversationID == conversation && f.Event.Type == typ
	}
}

// isMessage matches the message_added event of a message with text.
func isMessage(conversation int64, text string) func(clustertest.Frame) bool {
	return func(f clustertest.Frame) bool {
		return isEvent(conversation, inbox.EventMessageAdded)(f) && messageOf(f.Event).Text == text
	}
}

// messageOf is the message of a message_added event.
func messageOf(ev *inbox.Event) inbox.Message {
	var d struct {
		Message inbox.Message `json:"message"`
	}
	json.Unmarshal(ev.Data, &d)
	return d.Message
}

// isAck matches the ack of the message frame with clientID.
func isAck(clientID string) func(clustertest.Frame) bool {
	return func(f clustertest.Frame) bool { return f.Type == "ack" && f.ClientID == clientID }
}

// isContactPresence matches a contact_presence frame of contact.
func isContactPresence(contact int64, online bool) func(clustertest.Frame) bool {
	return func(f clustertest.Frame) bool {
		return f.Type == "contact_presence" && f.ContactID == contact && f.Online != nil && *f.Online == online
	}
}

// contactOnline is whether node says contact is online.
func contactOnline(a *clustertest.Agent, node *clustertest.Node, contact int64) bool {
	var c inbox.Contact
	a.Get(node, fmt.Sprintf("/api/v1/contacts/%d", contact), &c)
	return c.Online
}

// allMessages returns every message of conversation, read from node,
// in seq order (paged back from the newest: after=0 is no cursor).
func allMessages(a *clustertest.Agent, node *clustertest.Node, conversation int64) []inbox.Message {
	var all []inbox.Message
	query := ""
	for {
		var page inbox.MessagePage
		a.Get(node, fmt.Sprintf("/api/v1/conversations/%d/messages?limit=200%s", conversation, query), &page)
		all = append(page.Messages, all...)
		if !page.HasBefore || len(page.Messages) == 0 {
			return all
		}
		query = fmt.Sprintf("&before=%d", page.Messages[0].Seq)
	}
}

// allConversations returns the ids of every conversation of column, read
// from node.
func allConversations(a *clustertest.Agent, node *clustertest.Node, column string) []int64 {
	var ids []int64
	cursor := ""
	for {
		var page inbox.ConversationPage
		a.Get(node, "/api/v1/conversations?limit=100&column="+column+"&cursor="+url.QueryEscape(cursor), &page)
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		cursor = page.NextCursor
	}
}

// storedEvents returns the events of conversation after seq after, as
// node's API gives them.
func storedEvents(a *clustertest.Agent, node *clustertest.Node, conversation, after int64) []inbox.Event {
	var list struct {
		Events []inbox.Event `json:"events"`
	}
	a.Get(node, fmt.Sprintf("/api/v1/conversations/%d/events?after=%d", conversation, after), &list)
	return list.Events
}

// seqs lists the events' sequence numbers.
func seqs(evs []inbox.Event) []int64 {
	var s []int64
	for _, e := range evs {
		s = append(s, e.Seq)
	}
	return s
}

// caughtUp waits until s has received conversation's event seq (the last
// one stored), so that what it received can be compared with the store.
func caughtUp(s *clustertest.Socket, conversation, seq int64) {
	s.WaitSeen(fmt.Sprintf("event %d of conversation %d", seq, conversation), func(f clustertest.Frame) bool {
		return f.Type == "event" && f.Event != nil && f.Event.ConversationID == conversation && f.Event.Seq == seq
	})
}

// checkOnce fails the test unless got is exactly want, in order: each
// stored event once, none missing, none twice.
func checkOnce(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: events with seq %v, want %v (each once, in order)", what, got, want)
	}
}

// newAgent creates an agent (role agent) as admin and logs them in.
func newAgent(t *testing.T, admin *clustertest.Agent, node *clustertest.Node, email, name string) *clustertest.Agent {
	t.Helper()
	const password = "another long password"
	admin.Post(node, "/api/v1/agents", map[string]any{"email": email, "name": name, "password": password, "role": "agent"}, nil)
	return clustertest.Login(t, node, email, password)
}

// countRows returns SELECT count(*) FROM table on the cluster's database.
func countRows(t *testing.T, db *pgx.Conn, table string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

// connect opens a connection of the test's own to the cluster's database,
// closed when the test ends.
func connect(t *testing.T, c *clustertest.Cluster) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, c.DatabaseURL)
	if err != nil {
		t.Fatalf("connecting to %s: %v", c.DatabaseURL, err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

// leaseHeld reads microchat_worker_leases_held{worker="job"} from node's
// /metrics: 1 while it holds the job's worker lock, 0 otherwise, -1 if
// the series is missing.
func leaseHeld(t *testing.T, node *clustertest.Node, job string) int {
	t.Helper()
	prefix := `microchat_worker_leases_held{worker="` + job + `"} `
	for line := range strings.Lines(node.Metrics()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", node.ID, line, err)
			}
			return int(f)
		}
	}
	return -1
}

// owners returns the running nodes that hold the client side of the
// connections from addrs (each once, in the cluster's order), and how
// many of addrs no node holds.
func owners(c *clustertest.Cluster, addrs []string) (nodes []*clustertest.Node, unknown int) {
	for _, a := range addrs {
		n := c.Owner(a)
		if n == nil {
			unknown++
		} else if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	return nodes, unknown
}

func ids(nodes []*clustertest.Node) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.ID)
	}
	return s
}
