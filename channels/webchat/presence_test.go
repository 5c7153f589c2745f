package webchat

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

var waitFor = inboxtest.Eventually

// Presence writes transitions only: reconnects within the grace and
// extra sockets cost nothing; Close marks everyone offline.
func TestPresence(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := inboxtest.Open(t, url, nil)
		c, err := s.CreateContact(ctx, inbox.NewContact{Name: "Cy"})
		if err != nil {
			t.Fatalf("CreateContact() = %v", err)
		}
		a, err := s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "A", Password: "0123456789"})
		if err != nil {
			t.Fatalf("CreateAgent() = %v", err)
		}
		p := NewPresence(s, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		online := func() bool { ct, _ := s.Contact(ctx, c.ID); return ct.Online }
		presence := func() string { ag, _ := s.Agent(ctx, a.ID); return ag.Presence }

		p.ContactConnected(c.ID, false)
		p.ContactConnected(c.ID, false) // a second tab
		waitFor(t, "online", online)
		p.ContactDisconnected(c.ID)
		p.ContactDisconnected(c.ID)
		p.ContactConnected(c.ID, true) // the next page, within the grace
		time.Sleep(300 * time.Millisecond)
		if !online() || p.Writes() != 1 {
			t.Fatalf("online %v after %d writes; want online after 1", online(), p.Writes())
		}
		p.ContactDisconnected(c.ID)
		waitFor(t, "offline", func() bool { return !online() })

		p.AgentConnected(a.ID, inbox.PresenceOffline)
		waitFor(t, "agent online", func() bool { return presence() == inbox.PresenceOnline })
		p.AgentIdle(a.ID, true)
		waitFor(t, "agent idle", func() bool { return presence() == inbox.PresenceIdle })
		p.ContactConnected(c.ID, false)
		waitFor(t, "online again", online)
		p.Close()
		if online() || presence() != inbox.PresenceOffline {
			t.Fatalf("after Close: contact online %v, agent %s; want both offline", online(), presence())
		}
	})
}

func TestFactsOf(t *testing.T) {
	f := FactsOf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "8.8.8.8")
	if f.Browser != "Safari" || f.BrowserVersion != "17.5" || f.OS != "macOS" || f.Country != "US" || f.IP != "8.8.8.8" {
		t.Fatalf("FactsOf() = %+v", f)
	}
	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "::1", "not an ip"} {
		if f := FactsOf("", ip); f.Country != "" {
			t.Fatalf("FactsOf(%s) country = %q, want none", ip, f.Country)
		}
	}
}

func TestLimits(t *testing.T) {
	l := NewLimits(config.WidgetRateLimits{MessagesPerMinute: 2, MessagesPerMinutePerIP: 3})
	for i, want := range []bool{true, true, false} {
		if _, ok := l.AllowMessage(1, "1.2.3.4"); ok != want {
			t.Fatalf("message %d allowed %v, want %v", i, ok, want)
		}
	}
	// Visitor 2 at the same IP has the IP's last token left.
	if _, ok := l.AllowMessage(2, "1.2.3.4"); !ok {
		t.Fatalf("visitor 2 refused")
	}
	wait, ok := l.AllowMessage(3, "1.2.3.4")
	if ok || RetryAfter(wait) < 1 {
		t.Fatalf("AllowMessage over the IP's budget = %v, %v", wait, ok)
	}
	// 0 is off.
	for range 100 {
		if _, ok := l.AllowUpload(1, "1.2.3.4"); !ok {
			t.Fatalf("upload refused without a limit")
		}
	}
}
