// Package web is Microchat's HTTP server: the JSON API under /api/v1, the
// agents' dashboard at /inbox, the widget script, and the health and
// metrics endpoints.
//
// The rules:
//
//   - Every route is registered in one function, routes in routes.go, with
//     its auth middleware on the same line: requireAgent (a session cookie),
//     requireAdmin (the agent is an admin), csrf (writes come from this
//     server's pages and carry the session's CSRF token) and sameSite
//     (writes without a session come from this server's pages).
//   - Pages forbid inline script, eval and plugins with a
//     Content-Security-Policy, and a browser's requests from other sites
//     are refused but on the widget's API (security.go).
//   - Handlers bind and validate the request, call inbox, and return JSON.
//     They never touch the database or a socket themselves.
//   - Errors are mapped to status codes in one place, handleError: inbox's
//     errors (ErrNotFound 404, *InvalidError 400, ErrUnavailable 503, ...),
//     echo's, and anything else is a logged 500. The agents' socket answers
//     its message frames with the same mapping of inbox's errors
//     (inboxAnswer).
//   - Request bodies are JSON, decoded strictly (bind.go): unknown fields,
//     wrong types and missing required fields are 400 naming the field.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/ratelimit"
	"github.com/microdeets/microchat/presence"
	"github.com/microdeets/microchat/sockets"
)

// Options configure a Server.
type Options struct {
	// Config is the loaded configuration; zero session and limit values
	// fall back to config.Defaults().
	Config config.Config
	// Store is the inbox the API works on. Required.
	Store *inbox.Store
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Presence is the node's presence tracker, which the agents' sockets
	// report to (and the visitors', through Chat). Chat is the web chat
	// channel whose visitor socket handler the Server mounts, built on
	// Presence. cmd/microchat builds both and closes them after Shutdown.
	// Left nil (tests), the Server builds them itself from Config
	// (Presence only when Chat is nil too) and closes them in Shutdown.
	Presence *presence.Tracker
	Chat     *webchat.Channel
	// Collectors are more Prometheus metrics served at /metrics: the
	// other channels' (email).
	Collectors []prometheus.Collector
	// SweepTick drives the checks of the expiry of the credentials that
	// sockets were opened with, agents' and visitors'; nil is every
	// second. Tests send on it, with the store's clock (inbox.Options.Now).
	SweepTick <-chan time.Time
	// CheckWebhookURL says whether webhook deliveries may go to a URL an
	// admin gives (POST and PATCH /webhooks); its error, the reason, is
	// a 400 naming url. cmd/microchat sets it to package webhook's SSRF
	// guard, which refuses private and loopback addresses; nil accepts
	// any http(s) URL (tests, whose receivers listen on loopback).
	CheckWebhookURL func(string) error
}

// Server serves Microchat's HTTP API and pages. Its Handler is mounted on
// an http.Server by the caller; Shutdown closes the WebSockets, which the
// http.Server does not track once they are hijacked.
type Server struct {
	cfg   config.Config
	store *inbox.Store
	log   *slog.Logger
	echo  *echo.Echo
	// notReady is the reason /readyz last gave ("" ready; nil: not
	// asked yet), so that it logs changes only.
	notReady atomic.Pointer[string]
	metrics  *Metrics
	// registry is this Server's own, so that several Servers (tests) do
	// not collide on the global one.
	registry *prometheus.Registry
	// trusted are the proxies whose X-Forwarded-* headers are believed.
	trusted []*net.IPNet
	// deadline is echo's ContextTimeout with apiTimeout (apiDeadline).
	deadline echo.MiddlewareFunc
	// chat is the web chat channel: the visitors' sockets and the
	// widget's rate limits. presence is the node's presence tracker.
	chat     *webchat.Channel
	presence *presence.Tracker
	// closeOwn closes the chat channel and presence tracker the Server
	// built itself (Options), after its sockets closed; nil when given.
	closeOwn func()
	// agentSockets are the agents' sockets by session: their expiry, the
	// cap per session and the revocations that close them.
	agentSockets *sockets.Registry
	stopRevoked  func()
	// replies limits each agent's replies, over the API and the agents'
	// socket alike, by agent id (limits.agent_messages_per_second after
	// limits.agent_message_burst): a looping client is answered 429 and
	// stores nothing more. Nil is no limit (a load test).
	replies *ratelimit.KeyedLimiter
	// webhookURLCheck is Options.CheckWebhookURL (checkWebhookURL).
	webhookURLCheck func(string) error

	// ctx is cancelled by Shutdown; WebSocket goroutines watch it.
	ctx      context.Context
	cancel   context.CancelFunc
	sockets  socketSet
	shutOnce sync.Once
}

// Metrics are the Server's own Prometheus metrics. The WebSockets are
// microchat_websocket_connections (label kind) and
// microchat_websocket_messages_total (labels kind, direction "in" or
// "out"), with kind "agent", counted here by the agents' sockets, or
// "contact", read from the chat channel's counts (webchat.Stats) at each
// scrape.
type Metrics struct {
	httpRequests *prometheus.CounterVec   // method, route, code
	httpDuration *prometheus.HistogramVec // method, route
	// agentConns, agentFramesIn and agentFramesOut count the agents'
	// sockets and frames.
	agentConns                    atomic.Int64
	agentFramesIn, agentFramesOut atomic.Uint64
	// chat is where the visitors' counts come from.
	chat *webchat.Channel
}

var (
	wsConnsDesc = prometheus.NewDesc("microchat_websocket_connections",
		"Open WebSocket connections, by kind (agent, contact).", []string{"kind"}, nil)
	wsMessagesDesc = prometheus.NewDesc("microchat_websocket_messages_total",
		"WebSocket messages, by kind (agent, contact) and direction (in, out).", []string{"kind", "direction"}, nil)
)

// socketCollector reports the WebSockets' metrics of both kinds.
type socketCollector struct{ m *Metrics }

func (c socketCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- wsConnsDesc
	ch <- wsMessagesDesc
}

func (c socketCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.m.chat.Stats()
	for _, g := range []struct {
		kind string
		n    int64
	}{{"agent", c.m.agentConns.Load()}, {"contact", v.Sockets}} {
		ch <- prometheus.MustNewConstMetric(wsConnsDesc, prometheus.GaugeValue, float64(g.n), g.kind)
	}
	for _, f := range []struct {
		kind, direction string
		n               uint64
	}{
		{"agent", "in", c.m.agentFramesIn.Load()}, {"agent", "out", c.m.agentFramesOut.Load()},
		{"contact", "in", v.FramesIn}, {"contact", "out", v.FramesOut},
	} {
		ch <- prometheus.MustNewConstMetric(wsMessagesDesc, prometheus.CounterValue, float64(f.n), f.kind, f.direction)
	}
}

func newMetrics() *Metrics {
	return &Metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microchat_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "microchat_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request (WebSocket upgrades excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.httpRequests, m.httpDuration, socketCollector{m}}
}

// New returns a Server with every route registered.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("web: Options.Store is required")
	}
	cfg := opts.Config
	def := config.Defaults()
	if cfg.Session.CookieName == "" {
		cfg.Session.CookieName = def.Session.CookieName
	}
	if cfg.Session.TTL <= 0 {
		cfg.Session.TTL = def.Session.TTL
	}
	if cfg.Limits.MaxBodyBytes <= 0 {
		cfg.Limits.MaxBodyBytes = def.Limits.MaxBodyBytes
	}
	if cfg.Agents.IdleAfter <= 0 {
		cfg.Agents.IdleAfter = def.Agents.IdleAfter
	}
	if cfg.Limits.LoginAttemptsPerMinute <= 0 {
		cfg.Limits.LoginAttemptsPerMinute = def.Limits.LoginAttemptsPerMinute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Chat != nil && opts.Presence == nil {
		return nil, errors.New("web: Options.Presence is required with Options.Chat")
	}
	s := &Server{
		cfg:      cfg,
		store:    opts.Store,
		log:      log.With("pkg", "web"),
		metrics:  newMetrics(),
		registry: prometheus.NewRegistry(),
		sockets:  socketSet{closers: map[uint64]func(){}},
		chat:     opts.Chat,
		presence: opts.Presence,

		webhookURLCheck: opts.CheckWebhookURL,
	}
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(s.store.DB(), "microchat"),
	}
	cs = append(cs, inbox.Collectors()...)
	cs = append(cs, s.store.Collectors()...)
	cs = append(cs, s.metrics.collectors()...)
	cs = append(cs, opts.Collectors...)
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("web: metrics: %w", err)
		}
	}

	// The static files and the OpenAPI document, compressed once
	// (static.go).
	if _, err := assets(); err != nil {
		return nil, err
	}
	if err := s.registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "microchat_presence_writes_total",
		Help: "Presence transitions of contacts and agents written to the database (rule 6: never heartbeats).",
	}, func() float64 { return float64(s.presence.Writes()) })); err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	if err := s.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "microchat_cluster_nodes",
		Help: "Nodes (processes) on this database that wrote their liveness row within the last 10 s, this one included, as this node's presence tracker last saw (every 2 s).",
	}, func() float64 { return float64(s.presence.Nodes()) })); err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	// Last of what can fail: what it builds runs until Shutdown.
	if err := s.ownChat(cfg, log); err != nil {
		return nil, err
	}
	s.metrics.chat = s.chat

	trustOpts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	s.trusted = cfg.TrustedProxyNets()
	for _, n := range s.trusted {
		trustOpts = append(trustOpts, echo.TrustIPRange(n))
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// c.RealIP() believes X-Forwarded-For only as far as the hops are
	// trusted proxies; with none configured it is the socket's peer.
	e.IPExtractor = echo.ExtractIPFromXFFHeader(trustOpts...)
	s.echo = e

	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURI: true, LogStatus: true, LogLatency: true, LogRemoteIP: true,
		LogRequestID: true, LogError: true, HandleError: true,
		LogValuesFunc: s.logRequest,
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic", "err", err, "path", c.Path(), "stack", string(stack))
			return err
		},
		DisableErrorHandler: true, // the request logger above handles it
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff: "nosniff",
		ReferrerPolicy:     "same-origin",
	}))
	// Every page and answer refuses to be framed, except the widget
	// script, which other sites embed.
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		Skipper:       func(c echo.Context) bool { return c.Path() == "/widget.js" },
		XFrameOptions: "DENY",
	}))
	// Uploads have their own limit, limits.max_upload_bytes (readUpload).
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   fmt.Sprintf("%dB", int64(cfg.Limits.MaxBodyBytes)),
		Skipper: func(c echo.Context) bool { return uploadRoutes[c.Path()] },
	}))

	s.deadline = middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{
		Timeout: apiTimeout,
		Skipper: func(c echo.Context) bool { return longRoutes[c.Path()] },
		// handleError maps the deadline to 503 with the usual body.
		ErrorHandler: func(err error, c echo.Context) error { return err },
	})

	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.agentSockets = sockets.New(sockets.Options{Kind: sockets.Agents, Now: s.store.Now, Logger: s.log,
		Limits: sockets.Limits{PerCredential: cfg.Limits.SocketsPerSession, PerPrincipal: cfg.Limits.SocketsPerAgent},
		Live:   s.store.LiveSessions})
	stopRevoked := s.store.Hub().OnRevoked(s.agentSockets.Revoked)
	// After the bus listens again, logouts missed meanwhile on other
	// nodes still close their sockets.
	stopResync := s.store.Hub().OnResync(func() { go s.agentSockets.RecheckAll(s.ctx) })
	s.stopRevoked = func() { stopRevoked(); stopResync() }
	go s.sweepSockets(opts.SweepTick)
	s.replies = ratelimit.NewKeyedRate(cfg.Limits.AgentMessagesPerSecond, cfg.Limits.AgentMessageBurst)
	s.routes()
	return s, nil
}

// ownChat builds what Options left nil, as cmd/microchat would: the
// presence tracker (grace offline_after) and the chat channel on it, and
// makes closeOwn close them.
func (s *Server) ownChat(cfg config.Config, log *slog.Logger) error {
	var closers []func()
	if s.presence == nil {
		s.presence = presence.New(s.store, presence.Options{Grace: cfg.OfflineAfter.D(), Logger: log})
		closers = append(closers, s.presence.Close)
	}
	if s.chat == nil {
		chat, err := webchat.New(webchat.Options{Store: s.store, Config: cfg, Logger: log, Presence: s.presence, JobTimeout: apiTimeout})
		if err != nil {
			for _, c := range closers {
				c()
			}
			return err
		}
		s.chat = chat
		// The channel first: the tracker then marks everyone offline.
		closers = append([]func(){chat.Close}, closers...)
	}
	if len(closers) > 0 {
		s.closeOwn = func() {
			for _, c := range closers {
				c()
			}
		}
	}
	return nil
}

// sweepSockets closes, at every tick, the sockets of both kinds whose
// credential expired (sockets.Registry.Sweep), until Shutdown.
func (s *Server) sweepSockets(tick <-chan time.Time) {
	if tick == nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick:
			s.agentSockets.Sweep(s.ctx)
			s.chat.Sockets().Sweep(s.ctx)
		}
	}
}

// apiTimeout bounds the time an API request may take (WebSocket
// excepted). A database that drops packets instead of refusing
// connections would otherwise hold requests on pooled connections for
// ever; with the deadline they answer 503. A variable for tests.
var apiTimeout = 10 * time.Second

// apiDeadline gives API requests a context with the deadline apiTimeout;
// a handler that runs out of it answers 503 through handleError.
func (s *Server) apiDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return s.deadline(next)
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.echo }

// observe counts and times every request by its route pattern (never the
// raw path, to bound the labels). It hands errors to the error handler
// itself so that it sees the final status code.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		code := c.Response().Status
		s.metrics.httpRequests.WithLabelValues(method, route, fmt.Sprint(code)).Inc()
		if !strings.EqualFold(c.Request().Header.Get(echo.HeaderUpgrade), "websocket") {
			s.metrics.httpDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}
		return nil
	}
}

func (s *Server) logRequest(c echo.Context, v middleware.RequestLoggerValues) error {
	attrs := []slog.Attr{
		slog.String("method", v.Method), slog.String("uri", v.URI), slog.Int("status", v.Status),
		slog.Duration("latency", v.Latency), slog.String("ip", v.RemoteIP), slog.String("request_id", v.RequestID),
	}
	if v.Error != nil {
		attrs = append(attrs, slog.String("err", v.Error.Error()))
	}
	s.log.LogAttrs(c.Request().Context(), slog.LevelDebug, "request", attrs...)
	return nil
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	// Field names the request field at fault, for 400s about one field.
	Field string `json:"field,omitempty"`
	// Resync tells an events reader to load the conversation afresh.
	Resync bool `json:"resync,omitempty"`
	// Code is a machine-readable reason where clients act on one
	// (rate_limited).
	Code string `json:"code,omitempty"`
	// RetryAfter is the seconds to wait after a 429, as in Retry-After.
	RetryAfter int `json:"retry_after,omitempty"`
}

// rateLimited is the error of a request over a rate limit: 429 with
// Retry-After.
type rateLimited struct {
	msg  string
	wait time.Duration
}

func (e *rateLimited) Error() string { return e.msg }

// statusClientClosed is nginx's code for a client that went away before
// the answer; nobody reads it, but logs and metrics show what happened.
const statusClientClosed = 499

// handleError is echo's HTTPErrorHandler: the one place where errors
// become status codes.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, body := s.errorAnswer(err, c)
	if c.Request().Method == http.MethodHead || code == statusClientClosed {
		c.NoContent(code)
		return
	}
	c.JSON(code, body)
}

func (s *Server) errorAnswer(err error, c echo.Context) (int, apiError) {
	var (
		he *echo.HTTPError
		rl *rateLimited
	)
	switch {
	case errors.As(err, &rl):
		secs := ratelimit.RetryAfter(rl.wait)
		c.Response().Header().Set(echo.HeaderRetryAfter, fmt.Sprint(secs))
		return http.StatusTooManyRequests, apiError{Error: rl.msg, Code: "rate_limited", RetryAfter: secs}
	case c.Request().Context().Err() != nil && errors.Is(err, context.Canceled):
		return statusClientClosed, apiError{Error: "client closed the request"}
	}
	if code, body, ok := inboxAnswer(err); ok {
		if code == http.StatusServiceUnavailable {
			s.log.Warn("database unavailable", "path", c.Path(), "err", err, "request_id", requestID(c))
		}
		return code, body
	}
	if errors.As(err, &he) {
		msg := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusNotFound:
			msg = "not found"
		case http.StatusMethodNotAllowed:
			msg = "method not allowed"
		case http.StatusRequestEntityTooLarge:
			if msg == http.StatusText(http.StatusRequestEntityTooLarge) { // the body limit's own
				msg = fmt.Sprintf("request body too large (limit %d bytes)", int64(s.cfg.Limits.MaxBodyBytes))
			}
		}
		if he.Code == http.StatusInternalServerError {
			s.log.Error("internal error", "path", c.Path(), "err", err, "request_id", requestID(c))
		}
		return he.Code, apiError{Error: msg}
	}
	s.log.Error("internal error", "path", c.Path(), "err", err, "request_id", requestID(c))
	return http.StatusInternalServerError, apiError{Error: "internal error"}
}

// inboxAnswer maps inbox's errors, and a deadline that passed, to a status
// code and body; ok is false for any other error. It is the mapping of
// both the HTTP API (errorAnswer) and the agents' socket (agentws.go),
// which log the 503s and 500s themselves.
func inboxAnswer(err error) (code int, body apiError, ok bool) {
	var (
		inv *inbox.InvalidError
		cfl *inbox.ConflictError
		fbd *inbox.ForbiddenError
	)
	switch {
	case errors.Is(err, inbox.ErrUnavailable):
		return http.StatusServiceUnavailable, apiError{Error: "database unavailable"}, true
	case errors.As(err, &inv):
		return http.StatusBadRequest, apiError{Error: inv.Error(), Field: inv.Field}, true
	case errors.Is(err, inbox.ErrNotFound):
		return http.StatusNotFound, apiError{Error: "not found"}, true
	case errors.Is(err, inbox.ErrResync):
		return http.StatusConflict, apiError{Error: "resync", Resync: true}, true
	case errors.Is(err, inbox.ErrUnauthenticated):
		return http.StatusUnauthorized, apiError{Error: "login required"}, true
	case errors.As(err, &fbd):
		return http.StatusForbidden, apiError{Error: fbd.Error(), Field: fbd.Field}, true
	case errors.Is(err, inbox.ErrForbidden):
		return http.StatusForbidden, apiError{Error: "forbidden"}, true
	case errors.As(err, &cfl):
		return http.StatusConflict, apiError{Error: cfl.Error(), Field: cfl.Field}, true
	case errors.Is(err, inbox.ErrConflict):
		return http.StatusConflict, apiError{Error: "conflict with the current state"}, true
	case errors.Is(err, context.DeadlineExceeded):
		// A deadline (apiDeadline, or the socket's) passed in a call that
		// returns ctx.Err() as it is, e.g. AddMessage waiting for its
		// commit: the database did not answer in time.
		return http.StatusServiceUnavailable, apiError{Error: "database unavailable"}, true
	}
	return 0, apiError{}, false
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// socketSet tracks the open WebSockets so that Shutdown can close them
// and wait for their goroutines.
type socketSet struct {
	mu      sync.Mutex
	closing bool
	next    uint64
	closers map[uint64]func()
	wg      sync.WaitGroup
}

// trackSocket registers an upgraded WebSocket. goingAway must start
// closing the connection with status 1001 (going away) without blocking
// for long; Shutdown calls it once. The caller calls done exactly when all
// of the connection's goroutines have ended (extra calls are harmless).
// ok is false when the server is shutting down: refuse the connection.
// The goroutines should also watch s.ctx, cancelled by Shutdown.
func (s *Server) trackSocket(goingAway func()) (done func(), ok bool) {
	ss := &s.sockets
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing {
		return func() {}, false
	}
	id := ss.next
	ss.next++
	ss.closers[id] = goingAway
	ss.wg.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			ss.mu.Lock()
			delete(ss.closers, id)
			ss.mu.Unlock()
			ss.wg.Done()
		})
	}, true
}

// Shutdown closes every WebSocket with 1001 going away and waits until
// their goroutines have ended, or ctx is done. It does not stop the
// http.Server the Handler is mounted on; call it beside that server's
// Shutdown. Calling it again only waits again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.stopRevoked()
		s.cancel()
		ss := &s.sockets
		ss.mu.Lock()
		ss.closing = true
		closers := make([]func(), 0, len(ss.closers))
		for _, f := range ss.closers {
			closers = append(closers, f)
		}
		ss.mu.Unlock()
		for _, f := range closers {
			f()
		}
	})
	waited := make(chan struct{})
	go func() {
		s.sockets.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		// The sockets are closed: store who went offline with them, if
		// the chat is this Server's own (else its owner does, now).
		if s.closeOwn != nil {
			s.closeOwn()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("web: waiting for WebSockets to close: %w", ctx.Err())
	}
}
