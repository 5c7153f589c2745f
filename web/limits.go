package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// replyLimits bound each agent's replies, over the API and the agents'
// socket alike (limits.agent_messages_per_second and agent_message_burst):
// a looping client is answered 429 and stores nothing more. One token
// bucket per agent; agents are few, so none is ever dropped. A rate of 0
// is no limit (a load test).
type replyLimits struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	now   func() time.Time // the store's clock
	m     map[int64]*rate.Limiter
}

func newReplyLimits(perSecond, burst int, now func() time.Time) *replyLimits {
	return &replyLimits{every: rate.Limit(perSecond), burst: max(burst, 1), now: now, m: map[int64]*rate.Limiter{}}
}

// allow takes one reply from the agent's budget, or says how long to wait.
func (l *replyLimits) allow(agentID int64) (time.Duration, bool) {
	if l.every <= 0 {
		return 0, true
	}
	l.mu.Lock()
	lim := l.m[agentID]
	if lim == nil {
		lim = rate.NewLimiter(l.every, l.burst)
		l.m[agentID] = lim
	}
	l.mu.Unlock()
	now := l.now()
	r := lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait, false
	}
	return 0, true
}
