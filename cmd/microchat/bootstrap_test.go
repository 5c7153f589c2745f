package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestBootstrapAdminName: the admin from MICROCHAT_ADMIN_EMAIL is named
// MICROCHAT_ADMIN_NAME when it is set, the email's local part when not;
// a later start leaves an existing admin's name alone (they may have
// renamed themselves); an invalid name is a usage error naming the
// variable.
func TestBootstrapAdminName(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		testEnv(t)
		ctx := context.Background()
		store := inboxtest.Open(t, url, nil)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
		boot := func(email, name string) (int, string) {
			t.Setenv(envAdminEmail, email)
			t.Setenv(envAdminPassword, "a long enough password")
			t.Setenv(envAdminName, name)
			var stderr bytes.Buffer
			code := bootstrapAdmin(ctx, store, config.Defaults(), "", addr, log, &stderr)
			return code, stderr.String()
		}
		nameOf := func(email string) string {
			t.Helper()
			agents, err := store.Agents(ctx)
			if err != nil {
				t.Fatalf("Agents() = %v", err)
			}
			for _, a := range agents {
				if a.Email == email {
					if !a.IsAdmin() {
						t.Fatalf("%s is %s, want admin", email, a.Role)
					}
					return a.Name
				}
			}
			t.Fatalf("no agent %s in %+v", email, agents)
			return ""
		}

		if code, stderr := boot("dana@example.com", "  Dana from Support "); code != exitOK {
			t.Fatalf("bootstrap with a name = %d %s", code, stderr)
		}
		if got := nameOf("dana@example.com"); got != "Dana from Support" {
			t.Fatalf("admin with %s = %q, want %q", envAdminName, got, "Dana from Support")
		}
		if code, stderr := boot("admin@example.com", ""); code != exitOK {
			t.Fatalf("bootstrap without a name = %d %s", code, stderr)
		}
		if got := nameOf("admin@example.com"); got != "admin" {
			t.Fatalf("admin without %s = %q, want the local part", envAdminName, got)
		}

		if _, err := store.RenameAgent(ctx, agentID(t, store, "admin@example.com"), "Ada"); err != nil {
			t.Fatalf("RenameAgent() = %v", err)
		}
		if code, stderr := boot("admin@example.com", "Someone Else"); code != exitOK {
			t.Fatalf("bootstrap again = %d %s", code, stderr)
		}
		if got := nameOf("admin@example.com"); got != "Ada" {
			t.Fatalf("after a restart the renamed admin is %q, want Ada", got)
		}

		code, stderr := boot("new@example.com", strings.Repeat("x", inbox.MaxAgentNameBytes+1))
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], envAdminName) {
			t.Fatalf("a name too long: exit %d, stderr %q; want %d and one line naming %s", code, stderr, exitUsage, envAdminName)
		}
	})
}

func agentID(t *testing.T, store *inbox.Store, email string) int64 {
	t.Helper()
	agents, err := store.Agents(context.Background())
	if err != nil {
		t.Fatalf("Agents() = %v", err)
	}
	for _, a := range agents {
		if a.Email == email {
			return a.ID
		}
	}
	t.Fatalf("no agent %s", email)
	return 0
}

// TestSetupHintNamesTheConfig: with no admin, the command the setup
// message offers reaches this node's database: it carries the node's
// configuration file (a node on PostgreSQL printed one without it, which
// made an admin in a new SQLite file in the working directory).
func TestSetupHintNamesTheConfig(t *testing.T) {
	testEnv(t)
	t.Setenv(envAdminEmail, "")
	t.Setenv(envAdminPassword, "")
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	for _, tc := range []struct{ file, want string }{
		{"/etc/microchat/node 1.yaml", `microchat agent add --config '/etc/microchat/node 1.yaml' --admin`},
		{"/etc/microchat/microchat.yaml", `microchat agent add --config /etc/microchat/microchat.yaml --admin`},
		{"", `microchat agent add --admin`},
	} {
		store := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
		var stderr bytes.Buffer
		if code := bootstrapAdmin(ctx, store, config.Defaults(), tc.file, addr, log, &stderr); code != exitOK {
			t.Fatalf("bootstrapAdmin() = %d: %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Fatalf("config %q: setup message %q lacks %q", tc.file, stderr.String(), tc.want)
		}
	}
}
