package config

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// writeConfig writes a config file into a fresh temporary directory and
// returns its path.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "microchat.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads text (or no file if text is "") with environ and fails
// the test on error.
func mustLoad(t *testing.T, text string, environ ...string) Config {
	t.Helper()
	path := ""
	if text != "" {
		path = writeConfig(t, text)
	}
	c, err := LoadEnv(path, environ)
	if err != nil {
		t.Fatalf("LoadEnv() = %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c, err := LoadEnv("", nil)
	if err != nil {
		t.Fatalf("LoadEnv() = %v", err)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Fatalf("LoadEnv(\"\") = %+v, want Defaults() %+v", c, Defaults())
	}
	if c.Listen != ":8080" || c.DataDir != "./data" || len(c.Mailboxes) != 0 {
		t.Fatalf("Defaults() = %+v, want :8080, ./data, no mailbox", c)
	}
	if got, want := c.DatabaseURL(), "sqlite:"+filepath.Join("data", "microchat.db"); got != want {
		t.Fatalf("DatabaseURL() = %q, want %q", got, want)
	}
	if c.Postgres() || c.SecureCookies() {
		t.Fatalf("Postgres() or SecureCookies() true for defaults")
	}
	// Empty files and comment-only files are no config at all.
	for _, text := range []string{"\n", "# nothing\n", "---\n", "~\n"} {
		if c := mustLoad(t, text); !reflect.DeepEqual(c, Defaults()) {
			t.Fatalf("LoadEnv(%q) = %+v, want defaults", text, c)
		}
	}
}

func TestLoadFile(t *testing.T) {
	c, err := LoadEnv("testdata/full.yaml", nil)
	if err != nil {
		t.Fatalf("LoadEnv() = %v", err)
	}
	want := Config{
		Listen:  "127.0.0.1:9000",
		DataDir: "/var/lib/microchat",
		BaseURL: "https://chat.example.com",
		Database: Database{
			URL:          "postgres://microchat:secret@db.example.com:5432/microchat?sslmode=require",
			MaxOpenConns: 5,
		},
		Log:            Log{Level: "debug", Format: "json"},
		Session:        Session{TTL: Duration(12 * time.Hour), CookieName: "mc"},
		Agents:         Agents{IdleAfter: Duration(90 * time.Second)},
		TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8", "::1"},
		Limits: Limits{
			MaxBodyBytes:           2_000_000,
			MaxMessageBytes:        65536,
			MaxUploadBytes:         25 << 20,
			LoginAttemptsPerMinute: 3,
			SocketsPerSession:      5,
			SocketsPerAgent:        12,
			SocketsPerIP:           50,
			VisitorSockets:         1000,
			AgentMessagesPerSecond: 2,
			AgentMessageBurst:      4,
		},
		OfflineAfter:     Duration(time.Minute),
		EmailAfterUnread: Duration(10 * time.Minute),
		Events:           Events{Retention: 0},
		Widget: Widget{
			SessionTTL:     Duration(24 * time.Hour),
			AllowedOrigins: []string{"https://www.example.com", "http://localhost:3000"},
			RateLimits:     WidgetRateLimits{StartsPerMinutePerIP: 1, MessagesPerMinute: 0, MessagesPerMinutePerIP: 2, UploadsPerMinute: 3, UploadsPerMinutePerIP: 4},
		},
		ShutdownTimeout: Duration(90 * time.Second),
		PprofListen:     "127.0.0.1:6060",
		Webhooks: Webhooks{
			AllowNetworks: []string{"10.20.0.0/16", "127.0.0.1"},
			Timeout:       Duration(5 * time.Second),
			RetryFor:      Duration(48 * time.Hour),
			Concurrency:   4,
			Endpoints: []WebhookEndpoint{
				{Name: "crm", URL: "https://crm.example.com/hooks", Events: []string{"conversation.created", "message.created"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
				{Name: "tracker", URL: "http://10.20.0.5:8080/in", Events: []string{"conversation.closed"}, Disabled: true,
					Secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SecretFile: "testdata/webhook-secret"},
			},
		},
		Mailboxes: []Mailbox{
			{
				Name:           "support",
				Address:        "support@example.com",
				DisplayName:    "Example Support",
				IMAP:           IMAP{Host: "imap.example.com", Port: 993, TLS: TLSImplicit, Username: "u", Password: "ya29.token", PasswordFile: "testdata/imap-token", Auth: AuthXOAuth2, Folder: "INBOX"},
				SMTP:           SMTP{Host: "smtp.example.com", Port: 465, TLS: TLSImplicit, Username: "u", Password: "smtp secret ", PasswordFile: "testdata/smtp-password", Auth: AuthOAuthBearer},
				PlusAddressing: true,
				ImportSince:    LookbackAll,
				PollInterval:   Duration(5 * time.Minute),
			},
			{
				Name:         "sales",
				Address:      "sales@example.com",
				IMAP:         IMAP{Host: "localhost", Port: 143, TLS: TLSNone, Username: "sales", Password: "1234", Auth: AuthPassword, Folder: "Support"},
				SMTP:         SMTP{Host: "localhost", Port: 587, TLS: TLSStartTLS, Auth: AuthPassword},
				ImportSince:  LookbackOf(0),
				PollInterval: Duration(time.Minute),
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("LoadEnv(full.yaml) =\n%+v\nwant\n%+v", c, want)
	}
	if !c.Postgres() || !c.SecureCookies() {
		t.Fatalf("Postgres(), SecureCookies() = %v, %v, want true, true", c.Postgres(), c.SecureCookies())
	}
	if _, ok := c.SQLiteDSN(); ok {
		t.Fatalf("SQLiteDSN() ok for a postgres URL")
	}
	if got := c.Log.SlogLevel().String(); got != "DEBUG" {
		t.Fatalf("SlogLevel() = %v", got)
	}
	if got := c.Mailboxes[1].IMAPAddr(); got != "localhost:143" {
		t.Fatalf("IMAPAddr() = %q", got)
	}
	nets := c.TrustedProxyNets()
	if len(nets) != 3 || nets[0].String() != "127.0.0.1/32" || nets[1].String() != "10.0.0.0/8" || nets[2].String() != "::1/128" {
		t.Fatalf("TrustedProxyNets() = %v", nets)
	}
}

func TestEnv(t *testing.T) {
	const file = `
listen: ":9000"
trusted_proxies: [10.0.0.1]
mailboxes:
  - name: support
    address: support@example.com
    imap: {host: imap.example.com, username: u, password: from-file}
    smtp: {host: smtp.example.com}
`
	tests := []struct {
		name    string
		environ []string
		check   func(c Config) bool
	}{
		{"top level", []string{"MICROCHAT_LISTEN=:7000"}, func(c Config) bool { return c.Listen == ":7000" }},
		{"nested", []string{"MICROCHAT_DATABASE_URL=postgres://db/x", "MICROCHAT_DATABASE_MAX_OPEN_CONNS=3"}, func(c Config) bool {
			return c.Database.URL == "postgres://db/x" && c.Database.MaxOpenConns == 3
		}},
		{"underscores in key", []string{"MICROCHAT_OFFLINE_AFTER=1m", "MICROCHAT_LIMITS_MAX_UPLOAD_BYTES=1KB", "MICROCHAT_WIDGET_SESSION_TTL=1h"}, func(c Config) bool {
			return c.OfflineAfter == Duration(time.Minute) && c.Limits.MaxUploadBytes == 1000 && c.Widget.SessionTTL == Duration(time.Hour)
		}},
		{"agents", []string{"MICROCHAT_AGENTS_IDLE_AFTER=2m"}, func(c Config) bool { return c.Agents.IdleAfter == Duration(2*time.Minute) }},
		{"list", []string{"MICROCHAT_TRUSTED_PROXIES=10.0.0.0/8, ::1,"}, func(c Config) bool {
			return slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8", "::1"})
		}},
		{"empty list", []string{"MICROCHAT_TRUSTED_PROXIES="}, func(c Config) bool { return c.TrustedProxies == nil }},
		{"mailbox by index", []string{"MICROCHAT_MAILBOXES_0_IMAP_PASSWORD=from-env", "MICROCHAT_MAILBOXES_0_SMTP_TLS=starttls"}, func(c Config) bool {
			m := c.Mailboxes[0]
			return len(c.Mailboxes) == 1 && m.IMAP.Password == "from-env" && m.IMAP.Username == "u" && m.SMTP.TLS == TLSStartTLS && m.SMTP.Port == 587
		}},
		{"new mailboxes in order", []string{
			"MICROCHAT_MAILBOXES_2_NAME=b", "MICROCHAT_MAILBOXES_2_ADDRESS=b@example.com", "MICROCHAT_MAILBOXES_2_IMAP_HOST=h", "MICROCHAT_MAILBOXES_2_IMAP_USERNAME=u", "MICROCHAT_MAILBOXES_2_IMAP_PASSWORD=p", "MICROCHAT_MAILBOXES_2_SMTP_HOST=h",
			"MICROCHAT_MAILBOXES_1_NAME=a", "MICROCHAT_MAILBOXES_1_ADDRESS=a@example.com", "MICROCHAT_MAILBOXES_1_IMAP_HOST=h", "MICROCHAT_MAILBOXES_1_IMAP_USERNAME=u", "MICROCHAT_MAILBOXES_1_IMAP_PASSWORD=p", "MICROCHAT_MAILBOXES_1_SMTP_HOST=h",
		}, func(c Config) bool {
			return len(c.Mailboxes) == 3 && c.Mailboxes[1].Name == "a" && c.Mailboxes[2].Name == "b" && c.Mailboxes[2].IMAP.Port == 993 && c.Mailboxes[2].IMAP.Folder == "INBOX"
		}},
		{"first duplicate wins", []string{"MICROCHAT_LISTEN=:1", "MICROCHAT_LISTEN=:2"}, func(c Config) bool { return c.Listen == ":1" }},
		{"other variables ignored", []string{
			"MICROCHAT_CONFIG=/nonexistent", "MICROCHAT_ADMIN_EMAIL=a@b", "MICROCHAT_ADMIN_PASSWORD=x", "MICROCHAT_TEST_DATABASE_URL=junk",
			"MICROCHAT_REQUIRE_POSTGRES=1", "MICROCHAT_MAILBOXES_0_NOPE=x", "MICROCHAT_MAILBOXES_X_NAME=x", "MICROCHAT_=x", "MICROCHAT", "LISTEN=:1", "microchat_listen=:1",
		}, func(c Config) bool { return c.Listen == ":9000" && len(c.Mailboxes) == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, file, tt.environ...)
			if !tt.check(c) {
				t.Fatalf("LoadEnv(%q) = %+v", tt.environ, c)
			}
		})
	}
	// Without a file, the environment alone configures everything.
	c := mustLoad(t, "", "MICROCHAT_LISTEN=:7000", "MICROCHAT_DATA_DIR=/tmp/x")
	if c.Listen != ":7000" || c.DatabaseURL() != "sqlite:/tmp/x/microchat.db" {
		t.Fatalf("LoadEnv(\"\", env) = %+v", c)
	}
}

// TestEnvNames checks that every key has a variable, derived from its path.
func TestEnvNames(t *testing.T) {
	want := []string{"LISTEN", "DATA_DIR", "BASE_URL", "NODE_ID", "DATABASE_URL", "DATABASE_MAX_OPEN_CONNS", "LOG_LEVEL", "LOG_FORMAT",
		"SESSION_TTL", "SESSION_COOKIE_NAME", "AGENTS_IDLE_AFTER", "TRUSTED_PROXIES", "LIMITS_MAX_BODY_BYTES", "LIMITS_MAX_MESSAGE_BYTES",
		"LIMITS_MAX_UPLOAD_BYTES", "LIMITS_LOGIN_ATTEMPTS_PER_MINUTE",
		"LIMITS_SOCKETS_PER_SESSION", "LIMITS_SOCKETS_PER_IP", "LIMITS_VISITOR_SOCKETS", "LIMITS_AGENT_MESSAGES_PER_SECOND",
		"LIMITS_AGENT_MESSAGE_BURST", "OFFLINE_AFTER", "EMAIL_AFTER_UNREAD",
		"EVENTS_RETENTION", "WIDGET_SESSION_TTL", "WIDGET_ALLOWED_ORIGINS", "SHUTDOWN_TIMEOUT", "PPROF_LISTEN",
		"WIDGET_RATE_LIMITS_STARTS_PER_MINUTE_PER_IP", "WIDGET_RATE_LIMITS_MESSAGES_PER_MINUTE", "WIDGET_RATE_LIMITS_MESSAGES_PER_MINUTE_PER_IP",
		"WIDGET_RATE_LIMITS_UPLOADS_PER_MINUTE", "WIDGET_RATE_LIMITS_UPLOADS_PER_MINUTE_PER_IP",
		"MAILBOXES_0_NAME", "MAILBOXES_0_ADDRESS", "MAILBOXES_0_DISPLAY_NAME", "MAILBOXES_0_IMAP_HOST", "MAILBOXES_0_IMAP_PORT",
		"MAILBOXES_0_IMAP_TLS", "MAILBOXES_0_IMAP_USERNAME", "MAILBOXES_0_IMAP_PASSWORD", "MAILBOXES_0_IMAP_FOLDER",
		"MAILBOXES_7_SMTP_HOST", "MAILBOXES_0_SMTP_PORT", "MAILBOXES_0_SMTP_TLS", "MAILBOXES_0_SMTP_USERNAME", "MAILBOXES_0_SMTP_PASSWORD",
		"WEBHOOKS_ALLOW_NETWORKS", "WEBHOOKS_TIMEOUT", "WEBHOOKS_RETRY_FOR", "WEBHOOKS_CONCURRENCY",
		"WEBHOOKS_ENDPOINTS_0_URL", "WEBHOOKS_ENDPOINTS_0_SECRET", "WEBHOOKS_ENDPOINTS_0_EVENTS"}
	for _, name := range want {
		if !configEnv.has(name) {
			t.Errorf("no key for MICROCHAT_%s", name)
		}
	}
	if n := len(configEnv.leaves); n != 38 {
		t.Errorf("%d top-level variables, want 38: update this test and the sample config", n)
	}
	if got := EnvName("mailboxes[0].imap.password"); got != "MICROCHAT_MAILBOXES_0_IMAP_PASSWORD" {
		t.Errorf("EnvName() = %q", got)
	}
}

func TestErrors(t *testing.T) {
	const mailbox = "mailboxes:\n  - name: support\n    address: support@example.com\n    imap: {host: imap.example.com, username: u, password: p}\n    smtp: {host: smtp.example.com}\n"
	tests := []struct {
		name    string
		text    string   // file contents; "" for no file
		environ []string // MICROCHAT_ variables
		want    string   // the whole error, FILE standing for the file's path
	}{
		{"unknown key", "listen: ':1'\n\nlisen: ':2'\n", nil, `config: FILE:3: unknown key "lisen" (did you mean "listen"?)`},
		{"unknown nested key", "database:\n  ur: x\n", nil, `config: FILE:2: unknown key "database.ur" (did you mean "database.url"?)`},
		{"key at wrong level", "url: x\n", nil, `config: FILE:1: unknown key "url" (did you mean "database.url" or "webhooks.endpoints[0].url"?)`},
		{"unknown key no hint", "frobnicate: 1\n", nil, `config: FILE:1: unknown key "frobnicate"`},
		{"unknown mailbox key", mailbox + "    smtp2: {}\n", nil, `config: FILE:6: unknown key "mailboxes[0].smtp2" (did you mean "mailboxes[0].smtp"?)`},
		{"duplicate key", "listen: ':1'\nlisten: ':2'\n", nil, `config: FILE:2: key "listen" appears twice (first on line 1)`},
		{"bad duration", "# c\noffline_after: 30 seconds\n", nil, `config: FILE:2: offline_after: "30 seconds" is not a duration (use e.g. 30s, 5m or 720h)`},
		{"bad nested duration", "session:\n  ttl: forever\n", nil, `config: FILE:2: session.ttl: "forever" is not a duration (use e.g. 30s, 5m or 720h)`},
		{"negative duration", "offline_after: -1s\n", nil, `config: FILE:1: offline_after: must not be negative`},
		{"zero idle_after", "agents:\n  idle_after: 0s\n", nil, `config: FILE:2: agents.idle_after: must be at least 1s (e.g. 5m)`},
		{"zero ttl", "widget:\n  session_ttl: 0s\n", nil, `config: FILE:2: widget.session_ttl: must be more than 0 (e.g. 720h)`},
		{"negative rate", "widget:\n  rate_limits:\n    messages_per_minute: -1\n", nil, `config: FILE:3: widget.rate_limits.messages_per_minute: must not be negative (0 turns the limit off)`},
		{"bad size", "limits:\n  max_upload_bytes: ten\n", nil, `config: FILE:2: limits.max_upload_bytes: "ten" is not a size (use e.g. 10MiB)`},
		{"negative size", "limits:\n  max_upload_bytes: -5\n", nil, `config: FILE:2: limits.max_upload_bytes: "-5" is not a size (use e.g. 10MiB)`},
		{"zero size", "limits:\n  max_body_bytes: 0\n", nil, `config: FILE:2: limits.max_body_bytes: must be more than 0`},
		{"message over body", "limits:\n  max_message_bytes: 2MiB\n", nil, `config: FILE:2: limits.max_message_bytes: 2MiB is more than limits.max_body_bytes (1MiB), the request body a message arrives in`},
		{"negative socket cap", "limits:\n  sockets_per_ip: -1\n", nil, `config: FILE:2: limits.sockets_per_ip: must not be negative (0 turns the limit off)`},
		{"zero reply burst", "limits:\n  agent_message_burst: 0\n", nil, `config: FILE:2: limits.agent_message_burst: must be at least 1`},
		{"negative visitor cap", "limits:\n  visitor_sockets: -3\n", nil, `config: FILE:2: limits.visitor_sockets: must not be negative (0 derives it from the open-file limit)`},
		{"bad int", "database:\n  max_open_conns: many\n", nil, `config: FILE:2: database.max_open_conns: "many" is not a whole number`},
		{"zero int", "database:\n  max_open_conns: 0\n", nil, `config: FILE:2: database.max_open_conns: must be at least 1`},
		{"bad tls", strings.Replace(mailbox, "username: u,", "tls: ssl, username: u,", 1), nil, `config: FILE:4: mailboxes[0].imap.tls: "ssl" is not a TLS mode (use implicit, starttls or none)`},
		{"bad port", strings.Replace(mailbox, "{host: smtp.example.com}", "\n      host: smtp.example.com\n      port: 70000", 1), nil, `config: FILE:7: mailboxes[0].smtp.port: 70000 is not a port (use 1 to 65535)`},
		{"port not a number", strings.Replace(mailbox, "{host: smtp.example.com}", "{host: h, port: smtp}", 1), nil, `config: FILE:5: mailboxes[0].smtp.port: "smtp" is not a whole number`},
		{"missing host", strings.Replace(mailbox, "{host: smtp.example.com}", "{port: 25}", 1), nil, `config: FILE:5: mailboxes[0].smtp.host: required (e.g. mail.example.com)`},
		{"missing password", strings.Replace(mailbox, ", password: p", "", 1), nil, `config: FILE:4: mailboxes[0].imap.password: required (set it here, in MICROCHAT_MAILBOXES_0_IMAP_PASSWORD, or put it in a file named by password_file)`},
		{"password and password file", strings.Replace(mailbox, "password: p", "password: p, password_file: pw.txt", 1), nil, `config: FILE:4: mailboxes[0].imap.password_file: password is set too, on line 4: set one of password and password_file`},
		{"env password and password file", strings.Replace(mailbox, "password: p", "password_file: pw.txt", 1), []string{"MICROCHAT_MAILBOXES_0_IMAP_PASSWORD=x"}, `config: FILE:4: mailboxes[0].imap.password_file: password is set too, in MICROCHAT_MAILBOXES_0_IMAP_PASSWORD: set one of password and password_file`},
		{"missing password file", strings.Replace(mailbox, "password: p", "password_file: /nonexistent/pw", 1), nil, `config: FILE:4: mailboxes[0].imap.password_file: open /nonexistent/pw: no such file or directory`},
		{"smtp password file without user", strings.Replace(mailbox, "{host: smtp.example.com}", "{host: h, password_file: testdata/smtp-password}", 1), nil, `config: FILE:5: mailboxes[0].smtp.username: required with smtp.password_file`},
		{"bad auth", strings.Replace(mailbox, "password: p", "password: p, auth: oauth", 1), nil, `config: FILE:4: mailboxes[0].imap.auth: "oauth" is not a login method (use password, xoauth2 or oauthbearer)`},
		{"bad import_since", mailbox + "    import_since: forever\n", nil, `config: FILE:6: mailboxes[0].import_since: "forever" is not a duration or "all" (use e.g. 336h for 14 days, 0s for only new mail, or all)`},
		{"negative import_since", mailbox + "    import_since: -24h\n", nil, `config: FILE:6: mailboxes[0].import_since: "-24h" is not a duration or "all" (use e.g. 336h for 14 days, 0s for only new mail, or all)`},
		{"short poll_interval", mailbox + "    poll_interval: 500ms\n", nil, `config: FILE:6: mailboxes[0].poll_interval: 500ms: must be at least 1s (e.g. 60s)`},
		{"negative poll_interval", "", []string{"MICROCHAT_MAILBOXES_0_NAME=x", "MICROCHAT_MAILBOXES_0_ADDRESS=x@example.com", "MICROCHAT_MAILBOXES_0_IMAP_HOST=h", "MICROCHAT_MAILBOXES_0_IMAP_USERNAME=u", "MICROCHAT_MAILBOXES_0_IMAP_PASSWORD=p", "MICROCHAT_MAILBOXES_0_SMTP_HOST=h", "MICROCHAT_MAILBOXES_0_POLL_INTERVAL=-1m"}, `config: MICROCHAT_MAILBOXES_0_POLL_INTERVAL: -1m: must be at least 1s (e.g. 60s)`},
		{"bad address", strings.Replace(mailbox, "support@example.com", "support at example", 1), nil, `config: FILE:3: mailboxes[0].address: "support at example" is not an email address`},
		{"address with name", strings.Replace(mailbox, "support@example.com", "Support <support@example.com>", 1), nil, `config: FILE:3: mailboxes[0].address: "Support <support@example.com>" is not a bare address: use "support@example.com", and put a name in display_name`},
		{"duplicate mailbox", mailbox + strings.TrimPrefix(mailbox, "mailboxes:\n"), nil, `config: FILE:6: mailboxes[1].name: "support" is also the name of mailboxes[0]; names must be unique`},
		{"mailbox without name", "mailboxes:\n  - address: a@example.com\n    imap: {host: h, username: u, password: p}\n    smtp: {host: h}\n", nil, `config: FILE:2: mailboxes[0].name: required (e.g. support)`},
		{"bad url", "base_url: chat.example.com\n", nil, `config: FILE:1: base_url: "chat.example.com" is not an absolute http(s) URL (use e.g. https://chat.example.com)`},
		{"bad database url", "database:\n  url: mysql://u:secret@h/db\n", nil, `config: FILE:2: database.url: unsupported database "mysql" (use sqlite:PATH or postgres://USER:PASSWORD@HOST/DATABASE)`},
		{"bad cidr", "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n", nil, `config: FILE:3: trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR prefix (use e.g. 10.0.0.0/8 or 127.0.0.1)`},
		{"bad origin", "widget:\n  allowed_origins: [https://example.com/page]\n", nil, `config: FILE:2: widget.allowed_origins[0]: "https://example.com/page" is not an origin (use e.g. https://www.example.com, without a path)`},
		{"bad listen", "listen: 8080\n", nil, `config: FILE:1: listen: "8080" is not host:port (use e.g. ":8080" or "127.0.0.1:8080")`},
		{"bad pprof_listen", "pprof_listen: localhost\n", nil, `config: FILE:1: pprof_listen: "localhost" is not host:port (use e.g. "127.0.0.1:6060")`},
		{"bad log level", "log: {level: verbose}\n", nil, `config: FILE:1: log.level: "verbose" is not a log level (use debug, info, warn or error)`},
		{"list for a value", "listen: [a, b]\n", nil, `config: FILE:1: listen: expected a single value, not a list`},
		{"value for a list", "trusted_proxies: 10.0.0.1\n", nil, `config: FILE:1: trusted_proxies: expected a list, not the value "10.0.0.1"`},
		{"value for a mapping", "database: sqlite:x.db\n", nil, `config: FILE:1: database: expected keys and values, not the value "sqlite:x.db"`},
		{"not a mapping", "- listen\n", nil, `config: FILE:1: expected keys and values such as listen: ":8080", not a list`},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n", nil, `config: FILE:2: a config file holds one YAML document; remove the second "---"`},
		{"syntax error", "listen: ':1'\ndatabase:\n  url: x\n bad\n", nil, `config: FILE:3: did not find expected key`},
		{"tab indent", "listen: ':1'\n\tdata_dir: x\n", nil, `config: FILE:2: found character that cannot start any token`},
		{"two problems", "listen: x\nlog: {format: xml}\n", nil, "config: FILE:1: listen: \"x\" is not host:port (use e.g. \":8080\" or \"127.0.0.1:8080\")\nconfig: FILE:2: log.format: \"xml\" is not a log format (use text or json)"},

		{"env bad value", "", []string{"MICROCHAT_LISTEN=nope"}, `config: MICROCHAT_LISTEN: "nope" is not host:port (use e.g. ":8080" or "127.0.0.1:8080")`},
		{"env bad size", "", []string{"MICROCHAT_LIMITS_MAX_UPLOAD_BYTES=10 megs"}, `config: MICROCHAT_LIMITS_MAX_UPLOAD_BYTES: "10 megs" is not a size (use e.g. 10MiB)`},
		{"env bad duration", "", []string{"MICROCHAT_OFFLINE_AFTER=30"}, `config: MICROCHAT_OFFLINE_AFTER: "30" is not a duration (use e.g. 30s, 5m or 720h)`},
		{"env bad cidr", "trusted_proxies: [10.0.0.1]\n", []string{"MICROCHAT_TRUSTED_PROXIES=10.0.0.1,bogus"}, `config: MICROCHAT_TRUSTED_PROXIES: trusted_proxies[1]: "bogus" is not an IP address or CIDR prefix (use e.g. 10.0.0.0/8 or 127.0.0.1)`},
		{"env overrides bad file value", "listen: nope\n", []string{"MICROCHAT_LISTEN=:1"}, ``},
		{"env bad mailbox tls", mailbox, []string{"MICROCHAT_MAILBOXES_0_SMTP_TLS=tls"}, `config: MICROCHAT_MAILBOXES_0_SMTP_TLS: "tls" is not a TLS mode (use implicit, starttls or none)`},
		{"env mailbox gap", "", []string{"MICROCHAT_MAILBOXES_1_NAME=x"}, `config: MICROCHAT_MAILBOXES_1_NAME: there is no entry 1 in mailboxes (0 configured); entries are numbered from 0, and the variables may add only the next one, 0`},
		{"env incomplete mailbox", "", []string{"MICROCHAT_MAILBOXES_0_NAME=x", "MICROCHAT_MAILBOXES_0_ADDRESS=x@example.com", "MICROCHAT_MAILBOXES_0_IMAP_HOST=h", "MICROCHAT_MAILBOXES_0_IMAP_USERNAME=u", "MICROCHAT_MAILBOXES_0_IMAP_PASSWORD=p"}, `config: MICROCHAT_MAILBOXES_0_ADDRESS: mailboxes[0].smtp.host: required (e.g. mail.example.com)`},
		{"env whole list", "", []string{"MICROCHAT_MAILBOXES=x"}, `config: MICROCHAT_MAILBOXES: set each field of an entry by its index instead, e.g. MICROCHAT_MAILBOXES_0_NAME`},
		{"env database url", "", []string{"MICROCHAT_DATABASE_URL=mysql://x"}, `config: MICROCHAT_DATABASE_URL: unsupported database "mysql" (use sqlite:PATH or postgres://USER:PASSWORD@HOST/DATABASE)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.text != "" {
				path = writeConfig(t, tt.text)
			}
			_, err := LoadEnv(path, tt.environ)
			want := strings.ReplaceAll(tt.want, "FILE", path)
			switch {
			case want == "" && err != nil:
				t.Fatalf("LoadEnv() = %v, want no error", err)
			case want != "" && err == nil:
				t.Fatalf("LoadEnv() = nil, want %s", want)
			case want != "" && err.Error() != want:
				t.Fatalf("LoadEnv() = %v\nwant          %s", err, want)
			}
		})
	}
}

// TestPasswordFile checks that password_file is read by Load without its
// trailing newline, from the file or the environment, and read again by
// Secret, so that a refreshed token is used at the next login.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	imapFile, smtpFile := filepath.Join(dir, "imap"), filepath.Join(dir, "smtp")
	for name, text := range map[string]string{imapFile: "s3cret pass\r\n\n", smtpFile: "token-1\n"} {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := mustLoad(t, `
mailboxes:
  - name: support
    address: support@example.com
    imap: {host: h, username: u, password_file: `+imapFile+`}
    smtp: {host: h, username: u, auth: xoauth2}
`, "MICROCHAT_MAILBOXES_0_SMTP_PASSWORD_FILE="+smtpFile)
	m := c.Mailboxes[0]
	if m.IMAP.Password != "s3cret pass" || m.SMTP.Password != "token-1" || m.SMTP.PasswordFile != smtpFile || m.SMTP.Auth != AuthXOAuth2 || m.IMAP.Auth != AuthPassword {
		t.Fatalf("LoadEnv() mailbox = %+v", m)
	}
	if r := c.Redacted().Mailboxes[0]; r.IMAP.Password != "[redacted]" || r.SMTP.Password != "[redacted]" {
		t.Fatalf("Redacted() = %+v", r)
	}
	if err := os.WriteFile(smtpFile, []byte("token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := m.SMTP.Secret(); err != nil || s != "token-2" {
		t.Fatalf("SMTP.Secret() after the file changed = %q, %v; want token-2", s, err)
	}
	if s, err := (IMAP{Password: "p"}).Secret(); err != nil || s != "p" {
		t.Fatalf("IMAP.Secret() without a file = %q, %v", s, err)
	}

	if err := os.WriteFile(imapFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "mailboxes:\n  - name: s\n    address: s@example.com\n    imap: {host: h, username: u, password_file: "+imapFile+"}\n    smtp: {host: h}\n")
	_, err := LoadEnv(path, nil)
	if want := "config: " + path + ":4: mailboxes[0].imap.password_file: " + imapFile + " is empty"; err == nil || err.Error() != want {
		t.Fatalf("LoadEnv(empty password file) = %v, want %s", err, want)
	}
}

// TestImportSince checks the defaults and forms of import_since and
// poll_interval, and what a Lookback reaches.
func TestImportSince(t *testing.T) {
	const base = "mailboxes:\n  - name: s\n    address: s@example.com\n    imap: {host: h, username: u, password: p}\n    smtp: {host: h}\n"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		line    string
		environ []string
		want    Lookback
		cutoff  time.Time // zero for all
	}{
		{"", nil, LookbackOf(336 * time.Hour), now.AddDate(0, 0, -14)},
		{"    import_since: 72h\n", nil, LookbackOf(72 * time.Hour), now.AddDate(0, 0, -3)},
		{"    import_since: 0s\n", nil, LookbackOf(0), now},
		{"    import_since: ALL\n", nil, LookbackAll, time.Time{}},
		{"    import_since: 0s\n", []string{"MICROCHAT_MAILBOXES_0_IMPORT_SINCE=all"}, LookbackAll, time.Time{}},
	}
	for _, tt := range tests {
		c := mustLoad(t, base+tt.line, tt.environ...)
		m := c.Mailboxes[0]
		if m.ImportSince != tt.want || m.PollInterval != Duration(time.Minute) {
			t.Errorf("%q %q: import_since %v, poll_interval %v; want %v, 1m", tt.line, tt.environ, m.ImportSince, m.PollInterval, tt.want)
		}
		cutoff, ok := m.ImportSince.Cutoff(now)
		if ok != !tt.cutoff.IsZero() || !cutoff.Equal(tt.cutoff) {
			t.Errorf("%q: Cutoff() = %v, %v; want %v", tt.line, cutoff, ok, tt.cutoff)
		}
		if text, _ := m.ImportSince.MarshalText(); string(text) != strings.ToLower(strings.TrimSpace(strings.TrimPrefix(tt.line, "    import_since:"))) && tt.line != "" && tt.environ == nil {
			t.Errorf("MarshalText() = %q for %q", text, tt.line)
		}
	}
	// An unset Lookback (a Config built in code) reaches back the default.
	if cutoff, ok := (Lookback{}).Cutoff(now); !ok || !cutoff.Equal(now.Add(-DefaultImportSince)) || (Lookback{}).IsSet() {
		t.Errorf("Lookback{}.Cutoff() = %v, %v", cutoff, ok)
	}
	c := mustLoad(t, base+"    poll_interval: 5s\n")
	if c.Mailboxes[0].PollInterval != Duration(5*time.Second) {
		t.Errorf("poll_interval = %v, want 5s", c.Mailboxes[0].PollInterval)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := LoadEnv(filepath.Join(t.TempDir(), "none.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("LoadEnv(missing) = %v, want a config: error matching fs.ErrNotExist", err)
	}
}

func TestAliasesAndMerge(t *testing.T) {
	c := mustLoad(t, `
mailboxes:
  - name: a
    address: a@example.com
    imap: &server {host: mail.example.com, username: u, password: p}
    smtp:
      <<: *server
      port: 2525
  - name: b
    address: b@example.com
    imap: *server
    smtp: {host: relay}
`)
	a, b := c.Mailboxes[0], c.Mailboxes[1]
	if a.SMTP.Host != "mail.example.com" || a.SMTP.Port != 2525 || a.SMTP.Username != "u" || b.IMAP.Host != "mail.example.com" || b.IMAP.Password != "p" {
		t.Fatalf("LoadEnv() = %+v", c.Mailboxes)
	}
}

// TestAliasBomb checks that aliases expanding exponentially are stopped
// ("billion laughs").
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("database:\n  <<:\n    - &l0 {url: x}\n")
	for i := 1; i < 8; i++ {
		b.WriteString(fmt.Sprintf("    - &l%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ")))
	}
	_, err := LoadEnv(writeConfig(t, b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), "too many values") {
		t.Fatalf("LoadEnv(alias bomb) = %v, want too many values", err)
	}
}

func TestSampleConfigLoads(t *testing.T) {
	const sample = "../microchat.sample.yaml"
	c, err := LoadEnv(sample, nil)
	if err != nil {
		t.Fatalf("LoadEnv(%s) = %v", sample, err)
	}
	// The sample shows every default and no mailbox.
	if !reflect.DeepEqual(c, Defaults()) {
		t.Fatalf("LoadEnv(%s) =\n%+v\nwant Defaults()\n%+v", sample, c, Defaults())
	}

	// Its commented-out mailbox works once uncommented, and shows every
	// key, with the defaults it claims.
	text := uncommentMailbox(t, sample)
	path := writeConfig(t, text)
	c, err = LoadEnv(path, nil)
	if err != nil {
		t.Fatalf("LoadEnv(sample with mailbox) = %v", err)
	}
	want := Mailbox{
		Name:         "support",
		Address:      "support@example.com",
		DisplayName:  "Example Support",
		IMAP:         IMAP{Host: "imap.example.com", Port: 993, TLS: TLSImplicit, Username: "support@example.com", Password: "change-me", Auth: AuthPassword, Folder: "INBOX"},
		SMTP:         SMTP{Host: "smtp.example.com", Port: 465, TLS: TLSImplicit, Username: "support@example.com", Password: "change-me", Auth: AuthPassword},
		ImportSince:  LookbackOf(DefaultImportSince),
		PollInterval: Duration(time.Minute),
	}
	if len(c.Mailboxes) != 1 || c.Mailboxes[0] != want {
		t.Fatalf("sample mailbox = %+v, want %+v", c.Mailboxes, want)
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	var shown []string
	collectKeys(root.Content[0], "", &shown)
	for _, key := range allKeys() {
		if !slices.Contains(shown, key) {
			t.Errorf("the sample config does not show %s", key)
		}
	}
}

// uncommentMailbox returns the sample config with its example mailbox in
// effect: "mailboxes: []" becomes "mailboxes:" and the commented lines
// after it lose their "#".
func uncommentMailbox(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// The example webhook endpoint too: its keys are shown the same way.
	for _, list := range []string{"mailboxes: []", "  endpoints: []"} {
		i := slices.Index(lines, list)
		if i < 0 {
			t.Fatalf("%s has no line %q", path, list)
		}
		lines[i] = strings.TrimSuffix(list, " []")
		for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "#"); j++ {
			lines[j] = lines[j][1:]
		}
	}
	return strings.Join(lines, "\n")
}

// collectKeys appends the key paths of a YAML mapping, entries of lists as
// [0].
func collectKeys(n *yaml.Node, prefix string, keys *[]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := joinKey(prefix, n.Content[i].Value)
			*keys = append(*keys, key)
			collectKeys(n.Content[i+1], key, keys)
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			collectKeys(e, prefix+"[0]", keys)
		}
	}
}

// TestFieldsDocumented checks that every field of every type in config.go
// has a doc comment, as the package promises.
func TestFieldsDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		if st, ok := ts.Type.(*ast.StructType); ok && ts.Name.IsExported() {
			for _, field := range st.Fields.List {
				if field.Doc == nil {
					t.Errorf("field %s.%s has no doc comment", ts.Name, field.Names[0])
				}
			}
		}
		return false
	})
}

// FuzzLoad feeds arbitrary files to LoadEnv: it must return a config or
// errors that each fit on one "config: " line, never panic.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"../microchat.sample.yaml", "testdata/full.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"listen: ':1'\nlisen: x\n",
		"a: &a [*a]\n",
		"database: &d {<<: *d}\n",
		"mailboxes: [{name: x, imap: {port: -1}}]\n",
		"limits: {max_body_bytes: 99999999999999999999GiB}\n",
		"--- !!map\n? [a]\n: b\n",
		"a: &a {<<: [*a, *a]}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadEnv(path, nil)
		if err != nil {
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: ") {
					t.Fatalf("LoadEnv() = %q: a line without \"config: \"", err)
				}
			}
			return
		}
		_ = c.Redacted()
		_ = c.DatabaseURL()
	})
}
