package inbox_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Every PostgreSQL connection of a node names microchat (or the URL's own
// application_name) and the node in pg_stat_activity: the pool's, the
// bus's listener and the worker locks'.
func TestApplicationNames(t *testing.T) {
	base := inboxtest.PostgresURL(t)
	long := strings.Repeat("n", 70)
	for _, tc := range []struct {
		name, appName, node string
		pool, listen, lock  string
	}{
		{"default", "", "node-a", "microchat node-a", "microchat node-a listen", "microchat node-a lock timers"},
		{"set in the url", "billing-chat", "node-b", "billing-chat node-b", "billing-chat node-b listen", "billing-chat node-b lock timers"},
		// PostgreSQL keeps 63 bytes: the role stays whole.
		{"long node id", "", long, ("microchat " + long)[:63], ("microchat " + long)[:56] + " listen", ("microchat " + long)[:51] + " lock timers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			if tc.appName != "" {
				q := u.Query()
				q.Set("application_name", tc.appName)
				u.RawQuery = q.Encode()
			}
			s := inboxtest.Open(t, u.String(), &inbox.Options{NodeID: tc.node})
			var pool string
			if err := s.Gorm().Raw(`SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&pool).Error; err != nil {
				t.Fatal(err)
			}
			if pool != tc.pool {
				t.Errorf("pool connection: application_name %q, want %q", pool, tc.pool)
			}
			var listen string
			inboxtest.Eventually(t, "the bus listening", func() bool { return s.BusListenerPID() != 0 })
			if err := s.Gorm().Raw(`SELECT application_name FROM pg_stat_activity WHERE pid = ?`, s.BusListenerPID()).Scan(&listen).Error; err != nil {
				t.Fatal(err)
			}
			if listen != tc.listen {
				t.Errorf("listening connection: application_name %q, want %q", listen, tc.listen)
			}
			lock, held, err := s.TryLock(ctx, "timers")
			if err != nil || !held {
				t.Fatalf("TryLock() = %v, %v", held, err)
			}
			defer lock.Release()
			var locked string
			if err := s.Gorm().Raw(`SELECT application_name FROM pg_stat_activity WHERE pid = ?`, lock.PID()).Scan(&locked).Error; err != nil {
				t.Fatal(err)
			}
			if locked != tc.lock {
				t.Errorf("lock connection: application_name %q, want %q", locked, tc.lock)
			}
		})
	}
}
