// Package inboxtest gives tests a fresh database on each engine: a new
// SQLite file, and a new PostgreSQL schema when MICROCHAT_TEST_DATABASE_URL
// names a server. scripts/test.sh sets it (starting PostgreSQL if needed).
package inboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/microdeets/microchat/inbox"
	"golang.org/x/crypto/bcrypt"
)

func init() { inbox.BcryptCost = bcrypt.MinCost }

// EnvURL is the environment variable naming the test PostgreSQL server.
const EnvURL = "MICROCHAT_TEST_DATABASE_URL"

// Run runs fn as two subtests, "sqlite" and "postgres", each with the URL
// of a fresh, empty database.
func Run(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresURL(t)) })
}

// SQLiteURL returns the URL of a new SQLite file in the test's temporary
// directory.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "microchat.db")
}

// PostgresURL returns the URL of a new, empty schema on the test server,
// dropped when the test ends. Without a server the test is skipped, or
// fails when MICROCHAT_REQUIRE_POSTGRES=1 or CI is set, saying how to get
// one.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		msg := EnvURL + " is not set: run scripts/test.sh (it starts PostgreSQL), or set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("MICROCHAT_REQUIRE_POSTGRES") == "1" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (scripts/postgres.sh starts one)", EnvURL, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SharedPostgres returns the URL of a new, empty PostgreSQL database on
// the test server, for several Stores (nodes) of one test that share it:
// a database of their own, so that nothing else on the server hears
// their notifications (LISTEN/NOTIFY reaches a whole database). It is
// dropped when the test ends, after the Stores opened with Open closed
// (cleanups run last-registered first). Without a server the test is
// skipped, or fails when MICROCHAT_REQUIRE_POSTGRES=1 or CI is set,
// saying how to get one.
func SharedPostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		msg := EnvURL + " is not set: run scripts/test.sh (it starts PostgreSQL), or set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("MICROCHAT_REQUIRE_POSTGRES") == "1" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (scripts/postgres.sh starts one)", EnvURL, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			// WITH (FORCE) ends what a failed test left connected.
			if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Logf("drop database %s: %v", name, err)
			}
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open opens a Store on url, closed when the test ends.
func Open(t testing.TB, url string, opts *inbox.Options) *inbox.Store {
	t.Helper()
	s, err := inbox.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("inbox.Open(%s) = %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Patience is how long Eventually and Receive wait before they fail: a
// bound for what never happens, not a timing a test relies on, so it is
// generous for a loaded 2-core machine running -race.
const Patience = 20 * time.Second

// Eventually polls cond every 20 ms for up to Patience and fails the test
// with what if it never holds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(Patience); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%v)", what, Patience)
		}
	}
}

// Receive returns the next value from c, or fails the test with what if
// none comes within Patience or c is closed: a missing event fails at once
// instead of hanging until the test binary's time limit.
func Receive[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Patience)
	defer timer.Stop()
	select {
	case v, ok := <-c:
		if !ok {
			t.Fatalf("waiting for %s: channel closed", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s (%v)", what, Patience)
	}
	panic("unreachable")
}
