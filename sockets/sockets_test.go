package sockets

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// ended counts the end calls of each socket.
type ended map[string]int

func (e ended) fn(name string) func() { return func() { e[name]++ } }

func TestCaps(t *testing.T) {
	r := New(Options{Kind: Visitors, Limits: Limits{PerCredential: 2, PerIP: 3, Total: 4}})
	exp := time.Now().Add(time.Hour)
	var socks []*Socket
	for i := range 3 {
		s, err := r.Admit("10.0.0.1")
		if err != nil {
			t.Fatalf("Admit %d = %v", i, err)
		}
		socks = append(socks, s)
	}
	if _, err := r.Admit("10.0.0.1"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("4th Admit from one IP = %v, want ErrTooMany", err)
	}
	s4, err := r.Admit("10.0.0.2")
	if err != nil {
		t.Fatalf("Admit from another IP = %v", err)
	}
	if _, err := r.Admit("10.0.0.3"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("5th Admit = %v, want ErrTooMany (Total)", err)
	}
	for i, s := range socks[:2] {
		if err := s.Bind("tok", 1, exp, nil); err != nil {
			t.Fatalf("Bind %d = %v", i, err)
		}
	}
	if err := socks[2].Bind("tok", 1, exp, nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("3rd Bind of a credential = %v, want ErrTooMany", err)
	}
	socks[0].Remove()
	socks[0].Remove() // twice is harmless
	if err := socks[2].Bind("tok", 1, exp, nil); err != nil {
		t.Fatalf("Bind after a Remove = %v", err)
	}
	if _, err := r.Admit("10.0.0.1"); err != nil {
		t.Fatalf("Admit after a Remove = %v", err)
	}
	s4.Remove()
	if n := r.Len(); n != 3 {
		t.Fatalf("Len() = %d, want 3", n)
	}
}

func TestRevokedAndSweep(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	stored := map[string]time.Time{} // the database's expiries
	reads := 0
	r := New(Options{Kind: Visitors, Now: clk.now, Recheck: func(_ context.Context, cred string) (time.Time, error) {
		reads++
		if exp, ok := stored[cred]; ok && clk.t.Before(exp) {
			return exp, nil
		}
		return time.Time{}, fmt.Errorf("gone: %w", inbox.ErrUnauthenticated)
	}})
	e := ended{}
	bind := func(name, cred string, contact int64, exp time.Time) *Socket {
		s, err := r.Admit("")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Bind(cred, contact, exp, e.fn(name)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t0 := clk.t
	stored["a"], stored["b"], stored["c"] = t0.Add(time.Minute), t0.Add(time.Minute), t0.Add(time.Minute)
	a1, a2 := bind("a1", "a", 1, t0.Add(time.Minute)), bind("a2", "a", 1, t0.Add(time.Minute))
	b := bind("b", "b", 2, t0.Add(time.Minute))
	c := bind("c", "c", 3, t0.Add(time.Minute))

	// Notices of the other kind are ignored; a token's or a contact's end
	// their sockets once.
	r.Revoked(inbox.Revoked{SessionID: "a", AgentID: 1})
	if len(e) != 0 {
		t.Fatalf("an agents' notice ended visitor sockets: %v", e)
	}
	r.Revoked(inbox.Revoked{ContactID: 2})
	r.Revoked(inbox.Revoked{VisitorSessionID: "b"})
	if e["b"] != 1 || b.Valid() {
		t.Fatalf("after the contact's erase: ended %v, Valid %v", e, b.Valid())
	}

	// Before the expiry nothing is read; after it, a renewed token (a)
	// lives on with one read for its two sockets, an expired one (c) ends.
	r.Sweep(context.Background())
	if reads != 0 || !a1.Valid() {
		t.Fatalf("sweep before the expiry: %d reads, a1 valid %v", reads, a1.Valid())
	}
	stored["a"] = t0.Add(3 * time.Minute)
	clk.t = t0.Add(2 * time.Minute)
	if a1.Valid() {
		t.Fatalf("a1 valid past its known expiry")
	}
	r.Sweep(context.Background())
	if reads != 2 || !a1.Valid() || !a2.Valid() || e["a1"]+e["a2"] != 0 {
		t.Fatalf("after the sweep: %d reads (want 2: a once, c once), a valid %v %v, ended %v", reads, a1.Valid(), a2.Valid(), e)
	}
	if e["c"] != 1 || c.Valid() {
		t.Fatalf("expired c: ended %v", e)
	}
	clk.t = t0.Add(4 * time.Minute)
	if ok, err := a1.Check(context.Background()); ok || err != nil || e["a1"] != 1 {
		t.Fatalf("Check() past the renewed expiry = %v, %v; ended %v", ok, err, e)
	}
}

// A notice that came between a credential's read and Bind is reported by
// Missed, so that the owner reads the credential again.
func TestMissed(t *testing.T) {
	r := New(Options{Kind: Visitors})
	seen := r.Notices()
	r.Revoked(inbox.Revoked{SessionID: "x"}) // an agents' notice: not counted
	s, _ := r.Admit("")
	if err := s.Bind("tok", 1, time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if s.Missed(seen) {
		t.Fatalf("Missed() after another kind's notice")
	}
	seen = r.Notices()
	r.Revoked(inbox.Revoked{ContactID: 9})
	s2, _ := r.Admit("")
	if err := s2.Bind("tok2", 9, time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if !s2.Missed(seen) {
		t.Fatalf("Missed() = false after an erase between the read and Bind")
	}
}

// RecheckAll reads every credential once, in one call, ends the sockets
// of those that ended and tells the others their expiry; a database error
// ends nothing.
func TestRecheckAll(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	t0 := clk.t
	live := map[string]time.Time{"a": t0.Add(time.Hour)}
	var calls [][]string
	var fail error
	r := New(Options{Kind: Agents, Now: clk.now, Live: func(_ context.Context, creds []string) (map[string]time.Time, error) {
		calls = append(calls, creds)
		return live, fail
	}})
	e := ended{}
	bind := func(name, cred string, agent int64) *Socket {
		s, err := r.Admit("")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Bind(cred, agent, t0.Add(time.Minute), e.fn(name)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a1, a2, b := bind("a1", "a", 1), bind("a2", "a", 1), bind("b", "b", 2)

	fail = errors.New("database down")
	if err := r.RecheckAll(context.Background()); err == nil || len(e) != 0 {
		t.Fatalf("RecheckAll() with the database down = %v, ended %v", err, e)
	}
	fail = nil
	calls = nil
	if err := r.RecheckAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("Live called with %v, want once with both credentials", calls)
	}
	if e["b"] != 1 || b.Valid() || e["a1"]+e["a2"] != 0 {
		t.Fatalf("ended %v, want b alone", e)
	}
	clk.t = t0.Add(30 * time.Minute) // past the known expiry, before the one read
	if !a1.Valid() || !a2.Valid() {
		t.Fatalf("a's sockets did not learn a's expiry")
	}
}
