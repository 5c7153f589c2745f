package inbox_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestTakeAttemptShared: two nodes on one database spend one budget per
// key: 3 a minute between them, refilled one every 20 s; an attempt
// refused by one key takes nothing from the other.
func TestTakeAttemptShared(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		a, b := twoLockNodes(t, url)
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		take := func(node string, at time.Time, keys ...string) (time.Duration, bool) {
			t.Helper()
			s := a
			if node == "b" {
				s = b
			}
			wait, ok, err := s.TakeAttempt(ctx, at, 3, keys...)
			if err != nil {
				t.Fatalf("TakeAttempt = %v", err)
			}
			return wait, ok
		}
		for i, node := range []string{"a", "b", "a"} {
			if _, ok := take(node, now, "ip:192.0.2.1", "email:ann@example.com"); !ok {
				t.Fatalf("attempt %d on %s refused", i+1, node)
			}
		}
		if wait, ok := take("b", now, "ip:192.0.2.1", "email:ann@example.com"); ok || wait != 20*time.Second {
			t.Fatalf("4th attempt on b = %v, %v; want refused, wait 20s", wait, ok)
		}
		// The IP is spent: another email from it is refused too, and the
		// other email's budget is not touched by the refusal.
		if _, ok := take("a", now, "ip:192.0.2.1", "email:bob@example.com"); ok {
			t.Fatal("a spent IP allowed another email")
		}
		for i := range 3 {
			if _, ok := take("b", now, "ip:192.0.2.2", "email:bob@example.com"); !ok {
				t.Fatalf("bob's attempt %d from another IP refused: the refusal took from his budget", i+1)
			}
		}
		// One attempt back after 20 s, on either node.
		if wait, ok := take("a", now.Add(19*time.Second), "ip:192.0.2.1"); ok || wait != time.Second {
			t.Fatalf("after 19s = %v, %v; want refused, wait 1s", wait, ok)
		}
		if _, ok := take("b", now.Add(20*time.Second), "ip:192.0.2.1", "email:ann@example.com"); !ok {
			t.Fatal("after 20s refused")
		}
		if _, ok := take("a", now.Add(20*time.Second), "ip:192.0.2.1"); ok {
			t.Fatal("a second attempt after 20s allowed")
		}
		// No limit.
		if _, ok, err := a.TakeAttempt(ctx, now, 0, "ip:192.0.2.1"); err != nil || !ok {
			t.Fatalf("perMinute 0 = %v, %v; want allowed", ok, err)
		}
	})
}

// TestTakeAttemptConcurrent: attempts on two nodes at once never allow
// more than the budget.
func TestTakeAttemptConcurrent(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		a, b := twoLockNodes(t, url)
		now := time.Now()
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for i := range 40 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				_, ok, err := s.TakeAttempt(ctx, now, 10, "email:ann@example.com", "ip:192.0.2.1")
				if err != nil {
					t.Errorf("TakeAttempt = %v", err)
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if allowed != 10 {
			t.Fatalf("%d attempts allowed, want 10", allowed)
		}
	})
}

// BenchmarkTakeAttempt: the cost of counting one login attempt (an IP and
// an email) in the database, beside the bcrypt of the password check
// (about 50-100 ms at cost 12).
func BenchmarkTakeAttempt(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			url := inboxtest.SQLiteURL(b)
			if engine == "postgres" {
				url = inboxtest.PostgresURL(b)
			}
			s := inboxtest.Open(b, url, nil)
			now := time.Now()
			i := 0
			for b.Loop() {
				i++
				if _, _, err := s.TakeAttempt(ctx, now, 10, fmt.Sprint("ip:", i%1000), fmt.Sprint("email:", i%5000)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A key is whatever a client sent: a NUL, invalid UTF-8 or a megabyte of
// it is counted like any other key, never refused by the database (on
// PostgreSQL a NUL in a text column is an error: a login with one
// answered 500), and one key of them is spent like any other.
func TestTakeAttemptAnyBytes(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		s := inboxtest.Open(t, url, nil)
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		for _, key := range []string{"email:a\x00b@example.com", "email:\xff\xfe", "email:" + strings.Repeat("x", 1<<20)} {
			for i := range 2 {
				if _, ok, err := s.TakeAttempt(ctx, now, 2, "ip:192.0.2.9", key); err != nil || !ok {
					t.Fatalf("TakeAttempt(%.20q) %d = %v, %v; want allowed", key, i+1, ok, err)
				}
			}
			if _, ok, err := s.TakeAttempt(ctx, now, 2, "ip:192.0.2.10", key); err != nil || ok {
				t.Fatalf("TakeAttempt(%.20q) 3rd = %v, %v; want refused: its budget of 2 is spent", key, ok, err)
			}
			now = now.Add(time.Hour)
		}
	})
}
