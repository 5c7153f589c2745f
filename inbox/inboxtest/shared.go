package inboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file is a copy of the bus branch's SharedPostgres (issue 14), for
// the presence tests before the merge: keep one of the two.

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
