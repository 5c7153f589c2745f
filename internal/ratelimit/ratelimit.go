// Package ratelimit is a token bucket per key (an IP address, an email,
// an agent or a visitor), on golang.org/x/time/rate, for the limits that
// the web API and the widget's channel keep per node: agent replies, the
// widget's starts, messages and uploads (login attempts are counted in
// the database, inbox.Store.TakeAttempt, so that every node counts the
// same). Counters are in memory and lost on restart
// (docs/architecture.md).
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RetryAfter rounds a wait up to whole seconds, at least 1, as
// Retry-After (RFC 9110, section 10.2.3) and retry_after say it.
func RetryAfter(wait time.Duration) int { return max(1, int(math.Ceil(wait.Seconds()))) }

// AllowBoth takes one token from key ka of a and key kb of b, or from
// neither when either is spent, and says how long to wait then. A visitor
// and their IP, or a login's IP and its email, share a request this way.
// A nil limiter allows everything.
func AllowBoth(now time.Time, a *KeyedLimiter, ka string, b *KeyedLimiter, kb string) (time.Duration, bool) {
	ra, rb := a.Reserve(ka, now), b.Reserve(kb, now)
	wait := max(ra.DelayFrom(now), rb.DelayFrom(now))
	if wait == 0 {
		return 0, true
	}
	ra.CancelAt(now)
	rb.CancelAt(now)
	return wait, false
}

// KeyedLimiter is a token bucket per key, n per minute with a burst of n
// (NewKeyedLimiter) or n per second after a burst (NewKeyedRate). Entries
// idle for as long as an empty bucket takes to fill (a minute for n per
// minute) are dropped at most that often, so that many keys cannot grow
// it for ever. A nil KeyedLimiter (limit 0) allows everything.
type KeyedLimiter struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	// refill is how long an empty bucket takes to fill: an entry idle for
	// that long is as good as a new one.
	refill    time.Duration
	m         map[string]*keyedEntry
	lastSweep time.Time
}

type keyedEntry struct {
	lim  *rate.Limiter
	used time.Time
}

// NewKeyedLimiter returns a limiter of perMinute per key; nil (no limit)
// when perMinute is 0 or less.
func NewKeyedLimiter(perMinute int) *KeyedLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &KeyedLimiter{every: rate.Every(time.Minute / time.Duration(perMinute)), burst: perMinute, refill: time.Minute, m: map[string]*keyedEntry{}}
}

// NewKeyedRate returns a limiter of perSecond per key after a burst of
// burst (at least 1); nil (no limit) when perSecond is 0 or less.
func NewKeyedRate(perSecond, burst int) *KeyedLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &KeyedLimiter{every: rate.Limit(perSecond), burst: burst,
		refill: time.Duration(burst) * time.Second / time.Duration(perSecond), m: map[string]*keyedEntry{}}
}

// Allow takes one token of key at now, or says how long to wait.
func (l *KeyedLimiter) Allow(key string, now time.Time) (time.Duration, bool) {
	return AllowBoth(now, l, key, nil, "")
}

// unlimited is the reservation of a nil limiter: no delay, nothing to
// cancel.
var unlimited = rate.NewLimiter(rate.Inf, 1)

// Reserve takes a token of key at now; the caller cancels the
// reservation if it does not go ahead.
func (l *KeyedLimiter) Reserve(key string, now time.Time) *rate.Reservation {
	if l == nil {
		return unlimited.ReserveN(now, 0)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.refill {
		for k, e := range l.m {
			if now.Sub(e.used) > l.refill {
				delete(l.m, k)
			}
		}
		l.lastSweep = now
	}
	e := l.m[key]
	if e == nil {
		e = &keyedEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.m[key] = e
	}
	e.used = now
	return e.lim.ReserveN(now, 1)
}

// keys returns how many keys the limiter holds, for tests.
func (l *KeyedLimiter) keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
