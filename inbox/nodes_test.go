package inbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A node's heartbeat costs one UPDATE of its own nodes row and one SELECT
// of the nodes, whatever number of visitors it counts online: an idle
// socket costs no database write (issue 14: the peer compared spends an
// UPDATE per idle visitor every ten seconds).
func TestHeartbeatCost(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{NodeID: "a", Now: clock.Now})
		var online []inbox.ContactOnline
		for i := 0; i < 300; i++ {
			c, err := s.CreateContact(ctx, inbox.NewContact{Name: fmt.Sprint("c", i)})
			if err != nil {
				t.Fatal(err)
			}
			online = append(online, inbox.ContactOnline{ContactID: c.ID, Online: true})
		}
		if n, err := s.SetContactsOnline(ctx, online); err != nil || n != len(online) {
			t.Fatalf("SetContactsOnline() = %d, %v", n, err)
		}
		take := s.CountStatements()
		const beats = 10
		for i := 0; i < beats; i++ {
			clock.Advance(inbox.NodeHeartbeat)
			if err := s.Heartbeat(ctx); err != nil {
				t.Fatalf("Heartbeat() = %v", err)
			}
			if st, err := s.ReapNodes(ctx, inbox.NodeDeadAfter); err != nil || st.Live != 1 || len(st.Reaped) != 0 {
				t.Fatalf("ReapNodes() = %+v, %v", st, err)
			}
		}
		stmts := take()
		var updates, selects int
		for _, q := range stmts {
			switch {
			case strings.HasPrefix(q, "UPDATE nodes SET seen_at"):
				updates++
			case strings.HasPrefix(q, "SELECT id, seen_at FROM nodes"):
				selects++
			default:
				t.Errorf("a heartbeat ran %q", q)
			}
		}
		if updates != beats || selects != beats {
			t.Fatalf("%d heartbeats ran %d UPDATEs and %d SELECTs, want one each per beat (%d statements: %q)",
				beats, updates, selects, len(stmts), stmts)
		}
		c, err := s.Contact(ctx, online[0].ContactID)
		if err != nil || !c.Online {
			t.Fatalf("a contact of the beating node: online %v, %v", c.Online, err)
		}
	})
}
