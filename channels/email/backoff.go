package email

import "time"

// doubled is the nominal wait after n+1 failures in a row (n is 0 for the
// first): first, doubled n times, at most limit. The IMAP reconnects and
// the outbox's retries both grow so, each with its own jitter.
func doubled(first, limit time.Duration, n int) time.Duration {
	d := first
	for ; n > 0 && d < limit; n-- {
		d *= 2
	}
	return min(d, limit)
}
