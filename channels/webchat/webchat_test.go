package webchat

import (
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/internal/ratelimit"
)

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
	if ok || ratelimit.RetryAfter(wait) < 1 {
		t.Fatalf("AllowMessage over the IP's budget = %v, %v", wait, ok)
	}
	// 0 is off.
	for range 100 {
		if _, ok := l.AllowUpload(1, "1.2.3.4"); !ok {
			t.Fatalf("upload refused without a limit")
		}
	}
}
