// Package config reads Microchat's configuration: one YAML file, then
// environment variables on top of it, then built-in defaults for whatever
// neither of them set.
//
// The rules:
//
//   - With no file at all ([Load] with path "") the server runs on
//     [Defaults]: listen on :8080, SQLite under ./data, no mailbox.
//   - An unknown key is an error reported with its file and line, never
//     ignored: a typo must not silently fall back to a default.
//   - Every key can be overridden by an environment variable named
//     MICROCHAT_ + the key path in upper case with "_" between the parts:
//     listen is MICROCHAT_LISTEN, database.url is MICROCHAT_DATABASE_URL,
//     a list of strings is comma-separated (MICROCHAT_TRUSTED_PROXIES=
//     "10.0.0.0/8,::1"), and a mailbox field is addressed by its index
//     (MICROCHAT_MAILBOXES_0_IMAP_PASSWORD). The names are derived from the
//     yaml tags of [Config], so a new key gets its variable for free.
//     Other MICROCHAT_ variables (MICROCHAT_CONFIG, MICROCHAT_ADMIN_EMAIL,
//     ...) are left to whoever uses them.
//   - Durations are Go duration strings ("30s", "5m", "720h"), see
//     [Duration]; byte sizes are integers with an optional unit ("512KiB",
//     "10MiB", "1MB"), see [Size].
//   - Load validates everything and fills in derived defaults (mailbox
//     ports, IMAP folder, import_since, poll_interval, auth) and reads the
//     mailboxes' password files into their Password, so the rest of the
//     program can trust the Config it is given. Every error is one line naming the file and line, or the
//     environment variable, that holds the bad value.
package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one Microchat process. Several
// processes sharing one PostgreSQL database should be given the same
// configuration, apart from listen and data_dir.
type Config struct {
	// Listen is the TCP address the HTTP server listens on, host:port;
	// ":8080" listens on every interface.
	Listen string `yaml:"listen"`

	// DataDir is the directory for local state: the SQLite database when no
	// database URL is set. Created on start if missing.
	DataDir string `yaml:"data_dir"`

	// BaseURL is the public URL of the server as browsers see it, e.g.
	// "https://chat.example.com", without a trailing slash. It is used in the
	// links Microchat prints or mails (setup link, widget snippet) and, when
	// it starts with https, to mark cookies Secure. Empty means unknown:
	// links are built from the request and cookies are not Secure.
	BaseURL string `yaml:"base_url"`

	// NodeID names this process among the Microchat processes (nodes)
	// that share one PostgreSQL database: its liveness row and the
	// presence it counts are stored under it, and logs name it. Empty
	// means a new one at each start (host name, "-", 8 random hex
	// digits). A restart leaves the presence its predecessor counted the
	// grace period (offline_after) either way: with the same id the new
	// process sets the old rows aside under a retired id (inbox/nodes.go).
	// Two running nodes must not share one.
	NodeID string `yaml:"node_id"`

	// Database selects and tunes the database.
	Database Database `yaml:"database"`

	// Log sets what is logged and how.
	Log Log `yaml:"log"`

	// Session configures the agents' login sessions on the dashboard.
	Session Session `yaml:"session"`

	// Agents configures how the dashboard treats its agents.
	Agents Agents `yaml:"agents"`

	// TrustedProxies lists the reverse proxies, as IP addresses or CIDR
	// prefixes, whose X-Forwarded-For header is believed when finding a
	// client's IP address (rate limits, visitor location). Empty means the
	// header is ignored and the peer address of the TCP connection is used.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// Limits bound what one request or user may cost.
	Limits Limits `yaml:"limits"`

	// OfflineAfter is the grace period after a contact's last widget
	// connection closes before the contact counts as offline (spec rule 6),
	// so that moving between pages of a site does not flip them offline.
	OfflineAfter Duration `yaml:"offline_after"`

	// EmailAfterUnread is how long an agent's chat message may stay unread
	// by an offline contact before the unread messages of the conversation
	// are sent to the contact's email address (spec rule 7).
	EmailAfterUnread Duration `yaml:"email_after_unread"`

	// Events configures the per-conversation event log that clients resume
	// from after a reconnect.
	Events Events `yaml:"events"`

	// Widget configures the chat widget embedded in customers' websites.
	Widget Widget `yaml:"widget"`

	// Mailboxes are the support addresses whose mail becomes conversations.
	// Empty means chat only.
	Mailboxes []Mailbox `yaml:"mailboxes"`

	// Webhooks configures outgoing webhooks (docs/webhooks.md): how they
	// are sent, and those this file manages.
	Webhooks Webhooks `yaml:"webhooks"`

	// ShutdownTimeout is how long a graceful shutdown waits for requests and
	// connections to finish before closing them.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// PprofListen is a host:port where Go's profiler (net/http/pprof) is
	// served, for profiling under load; empty, the default, serves none.
	// It has no authentication: keep it on a loopback address.
	PprofListen string `yaml:"pprof_listen"`
}

// Webhooks configures outgoing webhooks (issue 15).
type Webhooks struct {
	// AllowNetworks are networks (CIDR, e.g. "10.20.0.0/16", or one
	// address) that webhooks may reach although they are refused by
	// default: loopback, private, link-local, unique-local and multicast
	// addresses (no SSRF). Empty, the default: none.
	AllowNetworks []string `yaml:"allow_networks"`
	// Timeout bounds one delivery attempt, from the dial to the end of
	// the answer. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// RetryFor is how long a delivery that fails is tried again, with
	// exponential backoff and jitter, before it is given up and shown to
	// admins to replay. Default 24h, at least 1h.
	RetryFor Duration `yaml:"retry_for"`
	// Concurrency is how many conversations' deliveries are in flight
	// at once to each webhook. Default 16.
	Concurrency int `yaml:"concurrency"`
	// Endpoints are webhooks managed by this file (the API cannot change
	// them); those made through the API live in the database.
	Endpoints []WebhookEndpoint `yaml:"endpoints"`
}

// WebhookEndpoint is one webhook of the config file.
type WebhookEndpoint struct {
	// Name is unique among webhooks; a webhook made through the API with
	// this name is taken over by the file.
	Name string `yaml:"name"`
	// URL is the absolute http or https URL deliveries are POSTed to.
	URL string `yaml:"url"`
	// Events are the event types it receives (docs/webhooks.md), e.g.
	// [conversation.created, message.created].
	Events []string `yaml:"events"`
	// Disabled keeps it without sending it anything.
	Disabled bool `yaml:"disabled"`
	// Secret signs the deliveries: "whsec_" and the base64 of 24 to 64
	// random bytes (Standard Webhooks), e.g. from
	// "echo whsec_$(head -c 32 /dev/urandom | base64)". Better in
	// MICROCHAT_WEBHOOKS_ENDPOINTS_<i>_SECRET or SecretFile.
	Secret string `yaml:"secret"`
	// SecretFile names a file holding the secret. Exclusive with Secret.
	SecretFile string `yaml:"secret_file"`
}

// Database selects the database. SQLite serves one process; PostgreSQL lets
// several processes share one inbox.
type Database struct {
	// URL is the database to use: "sqlite:PATH", "sqlite://PATH" or
	// "file:PATH" (a SQLite file), or "postgres://..." / "postgresql://..."
	// (PostgreSQL, in the form pgx accepts). Empty means the SQLite file
	// <data_dir>/microchat.db; see [Config.DatabaseURL].
	URL string `yaml:"url"`

	// MaxOpenConns is the size of the PostgreSQL connection pool of this
	// process. Ignored for SQLite.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Log sets what is logged and how; logs go to standard error.
type Log struct {
	// Level is the least severe level logged: "debug", "info", "warn" or
	// "error". See [Log.SlogLevel].
	Level string `yaml:"level"`

	// Format is "text" (key=value lines for people) or "json" (one JSON
	// object per line for log collectors).
	Format string `yaml:"format"`
}

// Session configures the agents' login sessions.
type Session struct {
	// TTL is how long an agent stays logged in after logging in.
	TTL Duration `yaml:"ttl"`

	// CookieName is the name of the cookie holding the session token.
	// Change it to run two instances on one domain.
	CookieName string `yaml:"cookie_name"`
}

// Agents configures how the dashboard treats its agents.
type Agents struct {
	// IdleAfter is how long a dashboard may go without the agent's
	// activity (keys, pointer, focus) before it reports the agent idle
	// (issue 13, item 8); the dashboard reads it from GET
	// /api/v1/auth/session as idle_after_seconds.
	IdleAfter Duration `yaml:"idle_after"`
}

// Limits bound what one request or one client may cost the server.
type Limits struct {
	// MaxBodyBytes is the largest JSON request body accepted by the API.
	MaxBodyBytes Size `yaml:"max_body_bytes"`

	// MaxMessageBytes is the largest text of one message, chat or email
	// (attachments not counted). Must not exceed MaxBodyBytes.
	MaxMessageBytes Size `yaml:"max_message_bytes"`

	// MaxUploadBytes is the largest attachment accepted, from the widget,
	// the dashboard or an incoming email.
	MaxUploadBytes Size `yaml:"max_upload_bytes"`

	// LoginAttemptsPerMinute is how many agent login attempts are allowed
	// per minute, counted separately per client IP address and per email
	// address, to slow down password guessing.
	LoginAttemptsPerMinute int `yaml:"login_attempts_per_minute"`

	// SocketsPerSession is the most WebSockets open at once with one agent
	// session or one visitor token; the next is closed with code 4429. 0
	// turns this limit off, as the next two (e.g. for a load test).
	SocketsPerSession int `yaml:"sockets_per_session"`

	// SocketsPerAgent is the most agents' WebSockets open at once of one
	// agent, over all their sessions; the next is closed with 4429.
	SocketsPerAgent int `yaml:"sockets_per_agent"`

	// SocketsPerIP is the most visitor WebSockets open at once from one
	// client address (see trusted_proxies); the next is closed with 4429.
	SocketsPerIP int `yaml:"sockets_per_ip"`

	// VisitorSockets is the most visitor WebSockets this node keeps open;
	// the next is closed with 4429. 0 derives it from the process's
	// open-file limit (RLIMIT_NOFILE) less a reserve of a fifth of it (at
	// least 256), so that agents, health checks and the database are still
	// served when visitors reach it.
	VisitorSockets int `yaml:"visitor_sockets"`

	// AgentMessagesPerSecond is how many replies one agent may send per
	// second, over the API or the agents' WebSocket, after a burst of
	// AgentMessageBurst; over it the answer is 429 with a retry time. 0
	// turns it off.
	AgentMessagesPerSecond int `yaml:"agent_messages_per_second"`

	// AgentMessageBurst is how many replies an agent may send at once
	// (queued replies flushed after a reconnect).
	AgentMessageBurst int `yaml:"agent_message_burst"`
}

// Events configures the per-conversation event log.
type Events struct {
	// Retention is how long conversation events are kept so that a client
	// that was away can resume where it left off; older events are deleted
	// and such a client reloads instead. 0 keeps them forever.
	Retention Duration `yaml:"retention"`
}

// Widget configures the chat widget on customers' websites.
type Widget struct {
	// SessionTTL is how long a visitor's widget session lives after its last
	// use: within it, the widget reopened on any page shows the same
	// conversation (spec rule 10).
	SessionTTL Duration `yaml:"session_ttl"`

	// AllowedOrigins are the origins ("https://www.example.com", scheme,
	// host and port, no path) whose pages may embed the widget and open its
	// connections. Empty allows any origin.
	AllowedOrigins []string `yaml:"allowed_origins"`

	// RateLimits bound what one visitor, or one IP address, may do per
	// minute; over a limit the answer is 429 with Retry-After, or an error
	// frame with retry_after on the WebSocket.
	RateLimits WidgetRateLimits `yaml:"rate_limits"`
}

// WidgetRateLimits are the widget's rate limits, each a number per minute
// that may also be used at once (the burst); 0 turns a limit off (e.g. for
// a load test). Per-visitor limits count by contact, per-IP limits by the
// client address (see trusted_proxies), so that many visitors behind one
// NAT share the larger per-IP budget.
type WidgetRateLimits struct {
	// StartsPerMinutePerIP is how many conversations may be started (Start
	// Chat) per minute from one IP address.
	StartsPerMinutePerIP int `yaml:"starts_per_minute_per_ip"`

	// MessagesPerMinute is how many messages one visitor may send per
	// minute.
	MessagesPerMinute int `yaml:"messages_per_minute"`

	// MessagesPerMinutePerIP is how many messages all visitors at one IP
	// address may send per minute.
	MessagesPerMinutePerIP int `yaml:"messages_per_minute_per_ip"`

	// UploadsPerMinute is how many files one visitor may upload per minute.
	UploadsPerMinute int `yaml:"uploads_per_minute"`

	// UploadsPerMinutePerIP is how many files all visitors at one IP
	// address may upload per minute.
	UploadsPerMinutePerIP int `yaml:"uploads_per_minute_per_ip"`
}

// Mailbox is one support address: incoming mail is fetched from its IMAP
// account and replies are sent through its SMTP account.
type Mailbox struct {
	// Name identifies the mailbox in the dashboard, logs and the CLI; it
	// must be unique and should not change, since stored mail refers to it.
	Name string `yaml:"name"`

	// Address is the bare email address of the mailbox, e.g.
	// "support@example.com": the From of replies, and the address incoming
	// mail was sent to.
	Address string `yaml:"address"`

	// DisplayName is the name shown in the From header of mail sent from
	// this mailbox, e.g. "Example Support". Empty means none.
	DisplayName string `yaml:"display_name"`

	// IMAP is the account incoming mail is read from.
	IMAP IMAP `yaml:"imap"`

	// SMTP is the account replies are sent through.
	SMTP SMTP `yaml:"smtp"`

	// PlusAddressing says that mail to the address with a "+tag" after the
	// local part (support+c42-x@example.com, subaddressing, RFC 5233)
	// reaches this mailbox, so that replies can carry the conversation's
	// token in the address they are sent to (spec rule 9).
	PlusAddressing bool `yaml:"plus_addressing"`

	// ImportSince is how far back the first sync of the IMAP folder
	// reaches, by the date the server received each mail (INTERNALDATE):
	// a duration ("336h", the default: 14 days), "all" for the whole
	// folder, or "0s" for none of the mail already there (only mail that
	// arrives later). A first sync happens on the first start and when
	// the folder's UIDVALIDITY changes; mail imported before is never
	// imported twice.
	ImportSince Lookback `yaml:"import_since"`

	// PollInterval is how often the folder is checked for new mail when
	// the server does not offer IDLE (RFC 2177); with IDLE new mail is
	// fetched as soon as the server announces it, and the IDLE is renewed
	// this often (at most every 25 minutes), which finds a mail whose
	// announcement the server dropped.
	PollInterval Duration `yaml:"poll_interval"`
}

// IMAP is the account a mailbox's incoming mail is read from.
type IMAP struct {
	// Host is the IMAP server's host name or IP address. Required.
	Host string `yaml:"host"`

	// Port is the IMAP server's TCP port; 0 means 993 with TLS implicit,
	// else 143.
	Port int `yaml:"port"`

	// TLS is how the connection is secured; empty means implicit.
	TLS TLSMode `yaml:"tls"`

	// Username is the login name. Required.
	Username string `yaml:"username"`

	// Password is the login password, or the OAuth 2.0 bearer token when
	// Auth is xoauth2 or oauthbearer. Required, here, in the environment
	// (MICROCHAT_MAILBOXES_<i>_IMAP_PASSWORD) or in PasswordFile.
	Password string `yaml:"password"`

	// PasswordFile names a file holding the password (or token), read by
	// Load, which sets Password to its contents without the trailing
	// newline; the IMAP and SMTP clients read it again at each login, so
	// that a token refreshed in the file by another program is used. A
	// relative path is relative to the working directory. Exclusive with
	// Password.
	PasswordFile string `yaml:"password_file"`

	// Auth is how to log in: "password" (the default: AUTHENTICATE PLAIN
	// when the server offers it, else LOGIN), "xoauth2" (Gmail, Microsoft
	// 365) or "oauthbearer" (RFC 7628); for the last two Password holds
	// the bearer token.
	Auth AuthMethod `yaml:"auth"`

	// Folder is the IMAP folder watched for new mail; empty means "INBOX".
	Folder string `yaml:"folder"`
}

// SMTP is the account a mailbox's outgoing mail is sent through.
type SMTP struct {
	// Host is the SMTP submission server's host name or IP address.
	// Required.
	Host string `yaml:"host"`

	// Port is the SMTP server's TCP port; 0 means 465 with TLS implicit, 587
	// with starttls and 25 with none.
	Port int `yaml:"port"`

	// TLS is how the connection is secured; empty means implicit.
	TLS TLSMode `yaml:"tls"`

	// Username is the login name; empty sends without authenticating (a
	// relay on the same host). Set together with Password.
	Username string `yaml:"username"`

	// Password is the login password, or the OAuth 2.0 bearer token when
	// Auth is xoauth2 or oauthbearer; best set from the environment
	// (MICROCHAT_MAILBOXES_<i>_SMTP_PASSWORD) or PasswordFile.
	Password string `yaml:"password"`

	// PasswordFile names a file holding the password (or token), as
	// IMAP.PasswordFile. Exclusive with Password.
	PasswordFile string `yaml:"password_file"`

	// Auth is how to log in: "password" (the default: AUTH PLAIN, or
	// LOGIN when the server offers only that), "xoauth2" or
	// "oauthbearer" (RFC 7628); for the last two Password holds the
	// bearer token.
	Auth AuthMethod `yaml:"auth"`
}

// AuthMethod says how Microchat logs in to a mail server.
type AuthMethod string

// The ways of logging in to a mail server.
const (
	// AuthPassword logs in with a user name and password (SASL PLAIN, RFC
	// 4616, or the protocol's own LOGIN).
	AuthPassword AuthMethod = "password"
	// AuthXOAuth2 sends an OAuth 2.0 bearer token with SASL XOAUTH2, the
	// mechanism of Gmail and Microsoft 365.
	AuthXOAuth2 AuthMethod = "xoauth2"
	// AuthOAuthBearer sends an OAuth 2.0 bearer token with SASL
	// OAUTHBEARER (RFC 7628).
	AuthOAuthBearer AuthMethod = "oauthbearer"
)

// UnmarshalText accepts "password", "xoauth2" or "oauthbearer".
func (a *AuthMethod) UnmarshalText(b []byte) error {
	return oneOf(a, b, "a login method", AuthPassword, AuthXOAuth2, AuthOAuthBearer)
}

// oneOf sets *v to b, in lower case, if it is one of the words allowed,
// else says that b is not what.
func oneOf[T ~string](v *T, b []byte, what string, allowed ...T) error {
	s := T(strings.ToLower(strings.TrimSpace(string(b))))
	if slices.Contains(allowed, s) {
		*v = s
		return nil
	}
	words := make([]string, len(allowed))
	for i, w := range allowed {
		words[i] = string(w)
	}
	return fmt.Errorf("%q is not %s (use %s or %s)", b, what, strings.Join(words[:len(words)-1], ", "), words[len(words)-1])
}

// Bearer reports whether the password is an OAuth 2.0 bearer token.
func (a AuthMethod) Bearer() bool {
	return a == AuthXOAuth2 || a == AuthOAuthBearer
}

// DefaultImportSince is how far back a first sync reaches when
// import_since is not set: 14 days.
const DefaultImportSince = 14 * 24 * time.Hour

// Lookback is how far back in time the first sync of a folder reaches: a
// Go duration ("336h"; "0s" reaches none of the mail already there), or
// "all" for no limit. The zero Lookback is unset, and Load replaces it by
// DefaultImportSince; code that builds a Config itself gets the default
// too from [Lookback.Cutoff].
type Lookback struct {
	// d is the duration, when not all.
	d time.Duration
	// all means no limit.
	all bool
	// set tells "0s" from unset.
	set bool
}

// LookbackOf returns a Lookback of d, which must not be negative.
func LookbackOf(d time.Duration) Lookback { return Lookback{d: max(d, 0), set: true} }

// LookbackAll reaches the whole folder.
var LookbackAll = Lookback{all: true, set: true}

// IsSet reports whether l was given, in the file, the environment or by
// LookbackOf / LookbackAll.
func (l Lookback) IsSet() bool { return l.set }

// All reports whether l has no limit.
func (l Lookback) All() bool { return l.all }

// Cutoff returns the earliest INTERNALDATE a first sync at now imports;
// ok is false when everything is (all). An unset l is
// DefaultImportSince.
func (l Lookback) Cutoff(now time.Time) (cutoff time.Time, ok bool) {
	switch {
	case l.all:
		return time.Time{}, false
	case !l.set:
		return now.Add(-DefaultImportSince), true
	}
	return now.Add(-l.d), true
}

// String writes l as it is written in the config: "all", "336h", "0s";
// an unset l is "".
func (l Lookback) String() string {
	switch {
	case l.all:
		return "all"
	case !l.set:
		return ""
	case l.d == 0:
		return "0s"
	}
	return Duration(l.d).String()
}

// MarshalText writes l as String does.
func (l Lookback) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses "all" or a Go duration that is not negative.
func (l *Lookback) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.EqualFold(s, "all") {
		*l = LookbackAll
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration or \"all\" (use e.g. 336h for 14 days, 0s for only new mail, or all)", b)
	}
	*l = LookbackOf(d)
	return nil
}

// TLSMode says how a connection to a mail server is secured.
type TLSMode string

// The TLS modes of a mail server connection.
const (
	// TLSImplicit speaks TLS from the first byte (IMAP 993, SMTP 465).
	TLSImplicit TLSMode = "implicit"
	// TLSStartTLS connects in plain text and upgrades with STARTTLS before
	// logging in (IMAP 143, SMTP 587); the upgrade is required.
	TLSStartTLS TLSMode = "starttls"
	// TLSNone never encrypts: only for a server on the same host.
	TLSNone TLSMode = "none"
)

// UnmarshalText accepts "implicit", "starttls" or "none".
func (m *TLSMode) UnmarshalText(b []byte) error {
	return oneOf(m, b, "a TLS mode", TLSImplicit, TLSStartTLS, TLSNone)
}

// Defaults returns the configuration used for every key that neither the
// file nor the environment sets: one process with SQLite under ./data on
// port 8080, and no mailbox.
func Defaults() Config {
	return Config{
		Listen:  ":8080",
		DataDir: "./data",
		Database: Database{
			MaxOpenConns: 20,
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Session: Session{
			TTL:        Duration(720 * time.Hour),
			CookieName: "microchat_session",
		},
		Agents: Agents{
			IdleAfter: Duration(5 * time.Minute),
		},
		Limits: Limits{
			MaxBodyBytes:           1 << 20,
			MaxMessageBytes:        16 << 10,
			MaxUploadBytes:         10 << 20,
			LoginAttemptsPerMinute: 10,
			SocketsPerSession:      10,
			SocketsPerAgent:        30,
			SocketsPerIP:           300,
			AgentMessagesPerSecond: 10,
			AgentMessageBurst:      30,
		},
		OfflineAfter:     Duration(30 * time.Second),
		EmailAfterUnread: Duration(5 * time.Minute),
		Events: Events{
			Retention: Duration(720 * time.Hour),
		},
		Widget: Widget{
			SessionTTL: Duration(720 * time.Hour),
			RateLimits: WidgetRateLimits{
				StartsPerMinutePerIP:   10,
				MessagesPerMinute:      60,
				MessagesPerMinutePerIP: 600,
				UploadsPerMinute:       10,
				UploadsPerMinutePerIP:  60,
			},
		},
		Webhooks: Webhooks{
			Timeout:     Duration(10 * time.Second),
			RetryFor:    Duration(24 * time.Hour),
			Concurrency: 16,
		},
		ShutdownTimeout: Duration(15 * time.Second),
	}
}

// DatabaseURL returns the database URL in effect: Database.URL, or
// "sqlite:" + <data_dir>/microchat.db when it is empty.
func (c Config) DatabaseURL() string {
	if c.Database.URL != "" {
		return c.Database.URL
	}
	return "sqlite:" + filepath.Join(c.DataDir, "microchat.db")
}

// Postgres reports whether the database in effect is PostgreSQL.
func (c Config) Postgres() bool {
	return isPostgresURL(c.DatabaseURL())
}

// SQLiteDSN returns what to hand to the SQLite driver for the database in
// effect: the file name of "sqlite:PATH" and "sqlite://PATH", or the whole
// "file:..." URI, which SQLite drivers accept as is. ok is false for
// PostgreSQL.
func (c Config) SQLiteDSN() (dsn string, ok bool) {
	u := c.DatabaseURL()
	switch {
	case strings.HasPrefix(u, "sqlite://"):
		return strings.TrimPrefix(u, "sqlite://"), true
	case strings.HasPrefix(u, "sqlite:"):
		return strings.TrimPrefix(u, "sqlite:"), true
	case strings.HasPrefix(u, "file:"):
		return u, true
	}
	return "", false
}

// SecureCookies reports whether cookies should be marked Secure: when the
// public URL is https.
func (c Config) SecureCookies() bool {
	return strings.HasPrefix(c.BaseURL, "https://")
}

// TrustedProxyNets returns TrustedProxies as networks, a single address
// becoming a /32 or /128, in the form echo's TrustIPRange takes. Entries
// that do not parse, which Load rejects, are skipped.
func (c Config) TrustedProxyNets() []*net.IPNet {
	var nets []*net.IPNet
	for _, s := range c.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			continue
		}
		nets = append(nets, &net.IPNet{
			IP:   net.IP(p.Addr().AsSlice()),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		})
	}
	return nets
}

// parsePrefix parses a CIDR prefix or a single IP address, which becomes a
// prefix of all its bits.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// SlogLevel returns Level as a slog.Level; an unknown level, which Load
// rejects, is Info.
func (l Log) SlogLevel() slog.Level {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lvl
}

// IMAPAddr returns the host:port to dial for the mailbox's IMAP account.
func (m Mailbox) IMAPAddr() string {
	return net.JoinHostPort(m.IMAP.Host, strconv.Itoa(m.IMAP.Port))
}

// SMTPAddr returns the host:port to dial for the mailbox's SMTP account.
func (m Mailbox) SMTPAddr() string {
	return net.JoinHostPort(m.SMTP.Host, strconv.Itoa(m.SMTP.Port))
}

// Secret returns the password (or bearer token) to log in with: the
// contents of PasswordFile read now, when it is set, so that a token
// another program refreshes in the file is picked up at the next login;
// else Password.
func (im IMAP) Secret() (string, error) {
	return secret(im.Password, im.PasswordFile)
}

// Secret returns the password (or bearer token) to log in with, as
// [IMAP.Secret].
func (s SMTP) Secret() (string, error) {
	return secret(s.Password, s.PasswordFile)
}

func secret(password, file string) (string, error) {
	if file == "" {
		return password, nil
	}
	return ReadSecretFile(file)
}

// ReadSecretFile returns the contents of the password or token file at
// path without its trailing newlines (LF or CRLF, as "echo secret > file"
// leaves them). An empty file is an error.
func ReadSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// redacted replaces a secret that is set, so that a log still shows
// whether it is.
const redacted = "[redacted]"

// Redacted returns a copy of c fit for logging: mailbox passwords are
// replaced by "[redacted]" (empty ones stay empty) and a password in the
// database URL by "xxxxx". c itself is not changed.
func (c Config) Redacted() Config {
	r := c
	if isPostgresURL(c.Database.URL) {
		if u, err := url.Parse(c.Database.URL); err == nil {
			_, hasPassword := u.User.Password()
			if q := u.Query(); q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
				hasPassword = true
			}
			if hasPassword {
				r.Database.URL = u.Redacted()
			}
		}
	}
	r.TrustedProxies = append([]string(nil), c.TrustedProxies...)
	r.Widget.AllowedOrigins = append([]string(nil), c.Widget.AllowedOrigins...)
	r.Mailboxes = append([]Mailbox(nil), c.Mailboxes...)
	for i := range r.Mailboxes {
		m := &r.Mailboxes[i]
		if m.IMAP.Password != "" {
			m.IMAP.Password = redacted
		}
		if m.SMTP.Password != "" {
			m.SMTP.Password = redacted
		}
	}
	return r
}

// Duration is a time.Duration written as a Go duration string: "30s",
// "5m", "720h", "1h30m". A plain "0" is zero.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does, without the zero units at the
// end: "720h", "5m", "1h30m", "1.5s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText writes d as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 30s, 5m or 720h)", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a scalar node with UnmarshalText, for code that
// decodes a Duration with yaml.v3 directly.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a single value", n.Line)
	}
	return d.UnmarshalText([]byte(n.Value))
}

// Size is a number of bytes, written as an integer with an optional unit:
// "100B", "1MB" and "2GB" count in thousands, "512KiB", "10MiB" and "1GiB"
// in 1024s; "1048576" is bytes. Units are case-insensitive; negative,
// fractional and overflowing sizes are rejected.
type Size int64

// sizeUnits are the units Size accepts, largest first for String.
var sizeUnits = []struct {
	name string
	n    int64
}{
	{"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
	{"B", 1},
}

// String writes s in the largest unit that divides it exactly, preferring
// the 1024-based ones: "10MiB", "16KiB", "1MB", "0", "100B".
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range sizeUnits {
		if s > 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size such as "10MiB" or "1048576".
func (s *Size) UnmarshalText(b []byte) error {
	v, ok := parseSize(string(b))
	if !ok {
		return fmt.Errorf("%q is not a size (use e.g. 10MiB)", b)
	}
	*s = Size(v)
	return nil
}

// UnmarshalYAML parses a scalar node with UnmarshalText, for code that
// decodes a Size with yaml.v3 directly.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a single value", n.Line)
	}
	return s.UnmarshalText([]byte(n.Value))
}

func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := strings.TrimSpace(s[i:])
	if unit == "" {
		return n, true
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/u.n {
				return 0, false
			}
			return n * u.n, true
		}
	}
	return 0, false
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}
