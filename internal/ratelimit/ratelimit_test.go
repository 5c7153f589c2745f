package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestKeyedLimiter(t *testing.T) {
	l := NewKeyedLimiter(2) // 2 a minute, burst 2
	for i, want := range []bool{true, true, false} {
		if _, ok := l.Allow("a", t0); ok != want {
			t.Fatalf("request %d of a allowed %v, want %v", i, ok, want)
		}
	}
	if wait, ok := l.Allow("a", t0); ok || wait != 30*time.Second {
		t.Fatalf("over the budget: Allow() = %v, %v; want a wait of 30s", wait, ok)
	}
	if _, ok := l.Allow("b", t0); !ok {
		t.Fatalf("another key refused")
	}
	if _, ok := l.Allow("a", t0.Add(30*time.Second)); !ok {
		t.Fatalf("refused once a token refilled")
	}
}

func TestKeyedRate(t *testing.T) {
	l := NewKeyedRate(10, 3) // 10 a second after a burst of 3
	for i := range 3 {
		if _, ok := l.Allow("agent", t0); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	if wait, ok := l.Allow("agent", t0); ok || wait != 100*time.Millisecond {
		t.Fatalf("after the burst: Allow() = %v, %v; want a wait of 100ms", wait, ok)
	}
}

// A limit of 0 is none: the nil limiter allows everything, alone or
// with another.
func TestNoLimit(t *testing.T) {
	for _, l := range []*KeyedLimiter{NewKeyedLimiter(0), NewKeyedRate(0, 5)} {
		if l != nil {
			t.Fatalf("a limit of 0 = %p, want nil", l)
		}
		for range 1000 {
			if _, ok := l.Allow("k", t0); !ok {
				t.Fatalf("the nil limiter refused")
			}
		}
	}
}

// AllowBoth takes from both or from neither: a request refused for one
// key costs the other nothing.
func TestAllowBoth(t *testing.T) {
	ip, email := NewKeyedLimiter(1), NewKeyedLimiter(2)
	if _, ok := AllowBoth(t0, ip, "1.2.3.4", email, "x@example.com"); !ok {
		t.Fatalf("first request refused")
	}
	if wait, ok := AllowBoth(t0, ip, "1.2.3.4", email, "x@example.com"); ok || wait != time.Minute {
		t.Fatalf("second request from the spent IP = %v, %v; want a wait of 1m", wait, ok)
	}
	// The refused request took nothing from the email's budget: its
	// second token is still there.
	if _, ok := email.Allow("x@example.com", t0); !ok {
		t.Fatalf("the email's token was spent by a refused request")
	}
	if _, ok := AllowBoth(t0, nil, "", email, "x@example.com"); ok {
		t.Fatalf("allowed past the spent email")
	}
}

// Keys idle for as long as a bucket takes to fill are dropped, so that
// many keys do not grow the limiter for ever.
func TestKeyedLimiterForgets(t *testing.T) {
	l := NewKeyedLimiter(60)
	for i := range 100 {
		l.Allow(fmt.Sprint("ip", i), t0)
	}
	if n := l.keys(); n != 100 {
		t.Fatalf("%d keys, want 100", n)
	}
	l.Allow("late", t0.Add(time.Minute+time.Second))
	if n := l.keys(); n != 1 {
		t.Fatalf("after a minute idle: %d keys, want 1", n)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1200 * time.Millisecond, 2}, {30 * time.Second, 30}} {
		if got := RetryAfter(tc.wait); got != tc.want {
			t.Fatalf("RetryAfter(%v) = %d, want %d", tc.wait, got, tc.want)
		}
	}
}
