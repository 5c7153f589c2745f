package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microdeets/microchat/channels/email"
	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/presence"
	"github.com/microdeets/microchat/web"
	"github.com/microdeets/microchat/webhook"
)

const (
	// startupTimeout bounds connecting to the database, migrating it and
	// creating the first admin.
	startupTimeout = 10 * time.Second
	// pruneEvery is how often expired sessions and old events are deleted.
	pruneEvery = 10 * time.Minute
	// setupTokenTTL is how long the printed setup link works.
	setupTokenTTL = 24 * time.Hour
)

// Environment variables that create the first admin (see bootstrapAdmin).
const (
	envAdminEmail    = "MICROCHAT_ADMIN_EMAIL"
	envAdminPassword = "MICROCHAT_ADMIN_PASSWORD"
	// envAdminName is optional: the name customers see (default: the
	// email's local part).
	envAdminName = "MICROCHAT_ADMIN_NAME"
)

// listenHookKey carries, in the context given to run, a function called
// with the address the server listens on. Tests use it to find a server
// started on port 0.
type listenHookKey struct{}

// connStateHookKey carries, in the context given to run, the
// http.Server's ConnState hook. Tests use it to know when the server is
// reading a request.
type connStateHookKey struct{}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlagSet("serve", "microchat [serve] [--config PATH]", stderr)
	configPath := configFlag(fs)
	cfg, code, ok := parseWithConfig(fs, configPath, args, stderr)
	if !ok {
		return code
	}
	// The logger and the direct messages (setup link, fatal errors) share
	// stderr; one lock keeps their lines whole.
	stderr = &lockedWriter{w: stderr}
	return serve(ctx, cfg, configFile(*configPath), newLogger(cfg.Log, stderr), stderr)
}

// serve runs the server until ctx is cancelled, then shuts it down
// gracefully. The socket is opened first, so that it accepts connections
// (held in the kernel's backlog) while the database is opened.
func serve(ctx context.Context, cfg config.Config, cfgFile string, log *slog.Logger, stderr io.Writer) int {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fail(stderr, "listen: %v", err)
		return exitFailure
	}
	defer ln.Close()
	if cfg.PprofListen != "" {
		if _, err := servePprof(ctx, cfg.PprofListen, log); err != nil {
			fail(stderr, "pprof_listen: %v", err)
			return exitFailure
		}
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		fail(stderr, "database: %s", dbReason(err))
		return exitFailure
	}
	// Every line from here on names the node (node_id, or the id the
	// store made), as the store's own lines do: the logs of several
	// nodes are told apart, and matched with their rows and
	// notifications.
	log = log.With("node_id", store.NodeID())
	code := startAndServe(ctx, cfg, cfgFile, ln, store, log, stderr)
	// Closed last: it finishes the message writes already accepted.
	if err := store.Close(); err != nil {
		log.Error("closing the database", "err", err)
	}
	return code
}

// startAndServe makes sure an admin can exist, builds the channels and
// the web server, and serves HTTP until ctx is cancelled.
func startAndServe(ctx context.Context, cfg config.Config, cfgFile string, ln net.Listener, store *inbox.Store, log *slog.Logger, stderr io.Writer) int {
	if code := bootstrapAdmin(ctx, store, cfg, cfgFile, ln.Addr(), log, stderr); code != exitOK {
		return code
	}
	guard, err := syncWebhooks(ctx, cfg, store)
	if err != nil {
		fail(stderr, "%v", err)
		return exitUsage
	}
	chs, err := startChannels(cfg, store, log)
	if err != nil {
		fail(stderr, "%v", err)
		return exitFailure
	}
	srv, err := web.New(web.Options{Config: cfg, Store: store, Logger: log, Presence: chs.presence, Chat: chs.chat,
		Collectors: append(chs.collectors(), webhook.Collectors()...),
		// Each webhook's URL as an admin gives it; the worker checks the
		// resolved address of every attempt again.
		CheckWebhookURL: func(u string) error {
			_, err := guard.CheckURL(u)
			return err
		}})
	if err != nil {
		chs.stopEmail()
		chs.close()
		fail(stderr, "web: %v", err)
		return exitFailure
	}
	code, closed := serveHTTP(ctx, cfg, ln, srv, store, log)
	// The mail workers stop whatever the sockets did: the store closes
	// next. The outbox records the outcome of the sends in progress.
	chs.stopEmail()
	if closed {
		chs.close()
	}
	return code
}

// channels are this node's ways of reaching contacts, and the presence
// tracker that the visitors' and the agents' sockets report to.
type channels struct {
	presence *presence.Tracker
	chat     *webchat.Channel
	// email is nil without a mailbox; stopEmail ends its Run and waits.
	email     *email.Channel
	stopEmail func()
}

// collectors are the channels' own Prometheus metrics.
func (c *channels) collectors() []prometheus.Collector {
	if c.email == nil {
		return nil
	}
	return c.email.Collectors()
}

// startChannels builds the presence tracker (grace offline_after) and the
// channels on it, and hands the channels to the store, which decides each
// agent reply's channel with them (spec rule 5). Without an email channel
// no reply goes by email. A mailbox server reached with tls: none on
// another host is logged as a warning (email.ClearText).
func startChannels(cfg config.Config, store *inbox.Store, log *slog.Logger) (*channels, error) {
	c := &channels{presence: presence.New(store, presence.Options{Grace: cfg.OfflineAfter.D(), Logger: log})}
	var err error
	c.chat, err = webchat.New(webchat.Options{Store: store, Config: cfg, Logger: log, Presence: c.presence})
	if err != nil {
		c.presence.Close()
		return nil, fmt.Errorf("web chat: %w", err)
	}
	c.stopEmail = func() {}
	reach := []inbox.Channel{c.chat}
	if len(cfg.Mailboxes) > 0 {
		if c.email, err = email.New(email.Options{Store: store, Config: cfg, Logger: log}); err != nil {
			c.close()
			return nil, fmt.Errorf("email: %w", err)
		}
		reach = append(reach, c.email)
		for _, mb := range cfg.Mailboxes {
			for _, w := range email.ClearText(mb) {
				log.Warn(w.Text, "mailbox", w.Mailbox, "server", w.Server)
			}
		}
		if cfg.BaseURL == "" {
			log.Warn("base_url is not set: survey mails cannot link to the rating page and fail; set base_url to the server's public URL")
		}
	}
	if err := store.SetChannels(reach...); err != nil {
		c.close()
		return nil, err
	}
	if c.email != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.email.Run(ctx)
		}()
		c.stopEmail = sync.OnceFunc(func() {
			cancel()
			<-done
		})
		log.Info("email channel started", "mailboxes", len(cfg.Mailboxes))
	}
	return c, nil
}

// close stops the channels, then the tracker, which marks this node
// stopped: everyone it still counted keeps the grace (offline_after) to
// come back on another node before showing offline. Call it once the
// sockets are closed.
func (c *channels) close() {
	c.chat.Close()
	c.presence.Close()
}

// serveHTTP serves srv on ln, with the periodic pruning beside it, until
// ctx is cancelled or the listener fails; then it shuts both down. closed
// says whether every WebSocket closed within the shutdown timeout.
func serveHTTP(ctx context.Context, cfg config.Config, ln net.Listener, srv *web.Server, store *inbox.Store, log *slog.Logger) (code int, closed bool) {
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if hook, ok := ctx.Value(connStateHookKey{}).(func(net.Conn, http.ConnState)); ok {
		hs.ConnState = hook
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "database", store.Dialect(), "base_url", cfg.BaseURL)
	if hook, ok := ctx.Value(listenHookKey{}).(func(string)); ok {
		hook(ln.Addr().String())
	}

	pruneCtx, stopPruning := context.WithCancel(context.Background())
	var pruning sync.WaitGroup
	// One node at a time prunes (the worker lock "prune"): the deletes
	// are the same on every node, and twice is only twice the work.
	pruning.Go(func() {
		store.Lead(pruneCtx, inbox.Leader{Name: "prune"}, func(ctx context.Context) {
			pruneLoop(ctx, store, cfg.Events.Retention.D(), log)
		})
	})
	// One node at a time sends the webhooks' deliveries (the worker lock
	// "webhooks"); a slow receiver holds only its own.
	pruning.Go(func() {
		w := webhook.New(webhook.Options{Store: store, Guard: webhookGuard(cfg), Timeout: cfg.Webhooks.Timeout.D(),
			RetryFor: cfg.Webhooks.RetryFor.D(), Concurrency: cfg.Webhooks.Concurrency, Logger: log})
		store.Lead(pruneCtx, inbox.Leader{Name: "webhooks"}, w.Run)
	})
	defer func() {
		stopPruning()
		pruning.Wait()
	}()

	code = exitOK
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case err := <-served:
		log.Error("http server stopped", "err", err)
		code = exitFailure
	}
	closed = shutdown(hs, srv, cfg.ShutdownTimeout.D(), log)
	log.Info("stopped serving; closing the database")
	return code, closed
}

// openStore opens the database of cfg, migrating it, within startupTimeout.
// The store adds the node id to its own lines (inbox.Options.Logger), so
// log must not carry it yet.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*inbox.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	return inbox.Open(ctx, cfg.DatabaseURL(), &inbox.Options{
		Logger:          log,
		MaxOpenConns:    cfg.Database.MaxOpenConns,
		MaxMessageBytes: int(cfg.Limits.MaxMessageBytes),
		Mailboxes:       email.MailboxInfos(cfg.Mailboxes),
		NodeID:          cfg.NodeID,
	})
}

// dbReason is the reason of a database error, without the "database
// unavailable" that the line it goes on already says.
func dbReason(err error) string {
	return strings.TrimPrefix(err.Error(), inbox.ErrUnavailable.Error()+": ")
}

// bootstrapAdmin makes sure that someone can become admin (spec: no
// default password). An admin comes from MICROCHAT_ADMIN_EMAIL and
// MICROCHAT_ADMIN_PASSWORD when both are set, named MICROCHAT_ADMIN_NAME
// if that is set (else the email's local part); an admin who exists
// keeps their name and password. Otherwise, while no admin exists, a
// one-time setup link is printed. Nothing slow happens unless an admin
// is created (bcrypt).
func bootstrapAdmin(ctx context.Context, store *inbox.Store, cfg config.Config, cfgFile string, addr net.Addr, log *slog.Logger, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	email, password := os.Getenv(envAdminEmail), os.Getenv(envAdminPassword)
	switch {
	case email != "" && password != "":
		name := os.Getenv(envAdminName)
		created, err := store.EnsureAdmin(ctx, inbox.NewAgent{Email: email, Name: name, Password: password})
		var invalid *inbox.InvalidError
		switch {
		case errors.As(err, &invalid) && invalid.Field == "name":
			fail(stderr, "%s: %v", envAdminName, err)
			return exitUsage
		case errors.As(err, &invalid):
			fail(stderr, "%s/%s: %v", envAdminEmail, envAdminPassword, err)
			return exitUsage
		case err != nil:
			fail(stderr, "database: %s", dbReason(err))
			return exitFailure
		case created:
			log.Info("created admin", "email", email, "from", envAdminEmail)
		default:
			log.Info("admin exists; name and password unchanged", "email", email, "from", envAdminEmail)
		}
		return exitOK
	case email != "" || password != "":
		fail(stderr, "set both %s and %s to create an admin, or neither", envAdminEmail, envAdminPassword)
		return exitUsage
	}

	n, err := store.CountAgents(ctx, true)
	if err != nil {
		fail(stderr, "database: %s", dbReason(err))
		return exitFailure
	}
	if n > 0 {
		return exitOK
	}
	token, err := store.CreateSetupToken(ctx, setupTokenTTL)
	if errors.Is(err, inbox.ErrConflict) {
		return exitOK // another process created an admin meanwhile
	} else if err != nil {
		fail(stderr, "database: %s", dbReason(err))
		return exitFailure
	}
	// Every node that starts before an admin exists prints a link of its
	// own; the first one used creates the admin and ends them all.
	fmt.Fprintf(stderr, "No admin yet (node_id=%s). Create one within %d hours at: %s/setup#token=%s\n",
		store.NodeID(), int(setupTokenTTL.Hours()), baseURL(cfg, addr), token)
	// The command must reach this database: with the configuration
	// file this node read (a PostgreSQL URL in it), not the defaults'
	// SQLite file in the working directory.
	config := ""
	if cfgFile != "" {
		config = " --config " + shellQuote(cfgFile)
	}
	fmt.Fprintf(stderr, "(or run: microchat agent add%s --admin --email you@example.com --name \"Your Name\")\n", config)
	return exitOK
}

// baseURL is the public URL of the server: base_url, or else this machine
// at the port the server listens on.
func baseURL(cfg config.Config, addr net.Addr) string {
	if cfg.BaseURL != "" {
		return cfg.BaseURL
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	port := ""
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	}
	if port == "80" {
		return "http://" + host
	}
	return "http://" + net.JoinHostPort(host, port)
}

// shutdown stops accepting connections and waits, up to timeout, for the
// requests in flight while the web server closes its WebSockets with "going
// away". Whatever is still open at the deadline is closed. It returns
// whether the WebSockets closed in time.
func shutdown(hs *http.Server, srv *web.Server, timeout time.Duration, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Shutdown(ctx); err != nil {
			log.Warn("requests still running at the shutdown deadline; closing them", "err", err)
			hs.Close()
		}
	})
	var err error
	wg.Go(func() {
		if err = srv.Shutdown(ctx); err != nil {
			log.Warn("closing connections", "err", err)
		}
	})
	wg.Wait()
	return err == nil
}

// pruneLoop deletes expired sessions and, when retention is set, events
// older than it, every pruneEvery until ctx is done. Errors are logged: a
// failed pass is retried at the next one.
func pruneLoop(ctx context.Context, store *inbox.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			prune(ctx, store, retention, log)
		}
	}
}

func prune(ctx context.Context, store *inbox.Store, retention time.Duration, log *slog.Logger) {
	if err := store.PruneSessions(ctx); err != nil {
		log.Warn("pruning sessions", "err", err)
	}
	if retention <= 0 {
		return
	}
	n, err := store.PruneEvents(ctx, time.Now().Add(-retention))
	if err != nil {
		log.Warn("pruning events", "err", err)
	} else if n > 0 {
		log.Debug("pruned events", "count", n, "retention", retention.String())
	}
}

// newLogger returns the logger that cfg describes, writing to w.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// configFile is the configuration file a command reads: its --config, or
// else $MICROCHAT_CONFIG (loadConfig's rule); "" for the defaults.
func configFile(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("MICROCHAT_CONFIG")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// webhookGuard is the SSRF guard of the config's webhooks section.
func webhookGuard(cfg config.Config) webhook.Guard {
	var g webhook.Guard
	for _, n := range cfg.Webhooks.AllowNetworks {
		if p, err := config.ParseNetwork(n); err == nil { // checked by config.Load
			g.Allow = append(g.Allow, p)
		}
	}
	return g
}

// syncWebhooks makes the database's file-managed webhooks those of the
// config file (webhooks.endpoints), each URL checked by the guard, which
// it returns.
func syncWebhooks(ctx context.Context, cfg config.Config, store *inbox.Store) (webhook.Guard, error) {
	guard := webhookGuard(cfg)
	var in []inbox.NewWebhook
	for i, e := range cfg.Webhooks.Endpoints {
		if _, err := guard.CheckURL(e.URL); err != nil {
			return guard, fmt.Errorf("config: webhooks.endpoints[%d].url: %v", i, err)
		}
		in = append(in, inbox.NewWebhook{Name: e.Name, URL: e.URL, Events: e.Events, Enabled: !e.Disabled, Secret: e.Secret})
	}
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	if err := store.SyncConfigWebhooks(ctx, in); err != nil {
		return guard, fmt.Errorf("config: webhooks.endpoints: %v", err)
	}
	return guard, nil
}
