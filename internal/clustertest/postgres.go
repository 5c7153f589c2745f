package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Database returns the URL of a new, empty PostgreSQL database on the
// server that MICROCHAT_TEST_DATABASE_URL names, dropped (its connections
// ended) when the test ends. A database of its own rather than a schema:
// LISTEN/NOTIFY channels belong to a database, and two tests' nodes must
// not hear each other. Without a server the test is skipped, or fails when
// MICROCHAT_REQUIRE_POSTGRES=1 or CI is set, saying how to get one.
func Database(t testing.TB) string {
	t.Helper()
	base := os.Getenv(inboxtest.EnvURL)
	if base == "" {
		msg := inboxtest.EnvURL + " is not set: the cluster tests need PostgreSQL; run scripts/test.sh (it starts PostgreSQL), or set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("MICROCHAT_REQUIRE_POSTGRES") == "1" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", inboxtest.EnvURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (scripts/postgres.sh starts one)", inboxtest.EnvURL, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "mc_cluster_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("clustertest: CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("clustertest: dropping %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("clustertest: DROP DATABASE %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
