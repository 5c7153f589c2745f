package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

func testConfig() config.Config { return config.Defaults() }

func writePassword(t *testing.T, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentAdd(t *testing.T) {
	dir := testEnv(t)
	file := writePassword(t, "correct horse battery")

	code, stdout, stderr := runCmd(t, "agent", "add", "--email", "Ann@Example.com", "--name", "Ann", "--password-file", file)
	if code != 0 || stdout != "created agent ann@example.com (id 1)\n" {
		t.Fatalf("agent add: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "agent", "add", "--email", "boss@example.com", "--name", "Boss", "--admin", "--password-file", file)
	if code != 0 || stdout != "created admin boss@example.com (id 2)\n" {
		t.Fatalf("agent add --admin: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	store, err := inbox.Open(context.Background(), "sqlite:"+filepath.Join(dir, "microchat.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Authenticate(context.Background(), "ann@example.com", "correct horse battery")
	if err != nil || a.Name != "Ann" || a.Role != inbox.RoleAgent {
		t.Fatalf("Authenticate() = %+v, %v", a, err)
	}
	// A disabled agent is listed as such.
	if err := store.RemoveAgent(context.Background(), a.ID); err != nil {
		t.Fatalf("RemoveAgent() = %v", err)
	}
	store.Close()

	code, stdout, _ = runCmd(t, "agent", "list")
	if code != 0 || !strings.Contains(stdout, "ann@example.com") || !strings.Contains(stdout, "admin") || !strings.HasPrefix(stdout, "ID ") ||
		!regexp.MustCompile(`(?m)^1 +ann@example.com +Ann +agent +disabled$`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^2 +boss@example.com +Boss +admin +enabled$`).MatchString(stdout) {
		t.Errorf("agent list: exit %d, stdout:\n%s", code, stdout)
	}

	// An admin exists now: no setup link.
	s := startServe(t)
	if out := s.stderr.String(); strings.Contains(out, "setup#token=") {
		t.Errorf("setup link printed although an admin exists:\n%s", out)
	}
}

func TestAgentAddInvalid(t *testing.T) {
	testEnv(t)
	good := writePassword(t, "correct horse battery")
	if code, _, stderr := runCmd(t, "agent", "add", "--email", "ann@example.com", "--name", "Ann", "--password-file", good); code != 0 {
		t.Fatalf("agent add: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"short password", []string{"--email", "bob@example.com", "--name", "Bob", "--password-file", writePassword(t, "short")}, exitFailure, "password"},
		{"bad email", []string{"--email", "bob", "--name", "Bob", "--password-file", good}, exitFailure, "email"},
		{"duplicate", []string{"--email", "ann@example.com", "--name", "Ann 2", "--password-file", good}, exitFailure, "email"},
		{"missing file", []string{"--email", "bob@example.com", "--name", "Bob", "--password-file", "/nonexistent"}, exitFailure, "password"},
		{"no name", []string{"--email", "bob@example.com", "--password-file", good}, exitUsage, "--name"},
	} {
		code, stdout, stderr := runCmd(t, append([]string{"agent", "add"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != tc.code || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "microchat: ") || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s: exit %d (want %d), stdout %q, stderr %q (want one line naming %s)", tc.name, code, tc.code, stdout, stderr, tc.want)
		}
	}
}

func TestAgentAddStdin(t *testing.T) {
	testEnv(t)
	stdin = strings.NewReader("from a pipe 1234\r\n")
	t.Cleanup(func() { stdin = os.Stdin })
	code, stdout, stderr := runCmd(t, "agent", "add", "--email", "cat@example.com", "--name", "Cat")
	if code != 0 || !strings.HasPrefix(stdout, "created agent cat@example.com") {
		t.Fatalf("agent add (stdin): exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestMailboxCheck(t *testing.T) {
	dir := testEnv(t)
	code, stdout, _ := runCmd(t, "mailbox", "check")
	if code != 0 || !strings.HasPrefix(stdout, "no mailbox configured") {
		t.Errorf("mailbox check without mailboxes: exit %d, stdout %q", code, stdout)
	}

	// A working IMAP account and an SMTP server that is not there.
	srv := emailtest.StartIMAP(t, &emailtest.IMAPOptions{NoIdle: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	path := filepath.Join(dir, "microchat.yaml")
	yaml := fmt.Sprintf(`mailboxes:
  - name: support
    address: support@example.com
    imap: {host: 127.0.0.1, port: %d, tls: none, username: %s, password: %s}
    smtp: {host: 127.0.0.1, port: %d, tls: none, username: u, password: p}
`, srv.Port, srv.Username, srv.Password, smtpPort)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "mailbox", "check", "--config", path)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{
		"support: IMAP 127.0.0.1:%d (no TLS): ok: logged in as support@example.com (PLAIN)",
		"support: IMAP 127.0.0.1:%d (no TLS): ok: folder INBOX: 0 mails, UIDVALIDITY 1",
		"support: IMAP 127.0.0.1:%d (no TLS): warning: no IDLE: the server does not offer IDLE (RFC 2177); new mail will be found by polling every 1m (poll_interval)",
		"support: SMTP 127.0.0.1:%d (no TLS): FAILED: unreachable: dial tcp 127.0.0.1:%[1]d: connect: connection refused",
	}
	if code != exitFailure || len(lines) != len(want) || stderr != "microchat: mailbox check: 1 failed; see the FAILED lines\n" {
		t.Fatalf("mailbox check: exit %d, stdout\n%s\nstderr %q", code, stdout, stderr)
	}
	for i, w := range want {
		port := srv.Port
		if i == 3 {
			port = smtpPort
		}
		if w = fmt.Sprintf(w, port); lines[i] != w {
			t.Errorf("line %d = %q\nwant     %q", i+1, lines[i], w)
		}
	}
}
