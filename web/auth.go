package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/internal/ratelimit"
)

// Agents log in with email and password and get a session cookie; the
// session, stored by inbox, also holds the CSRF token that every write
// must echo in the X-CSRF-Token header. The token is bound to the
// server-side session rather than to echo's double-submit cookie, so any
// node that reads the session can check it, and a logout invalidates it.
//
// Scripts use a personal API token instead (inbox/apitokens.go), sent as
// Authorization: Bearer: it acts as its agent, with the agent's role, on
// the same routes, with no session and no CSRF token. A browser never
// sends that header by itself, and another site's page cannot make it
// send one to us (it would need a CORS preflight that the agent routes
// do not answer), so there is nothing for CSRF to protect. What only a
// person at the dashboard should do (log out, change the password, open
// the agents' WebSocket, make more tokens) needs a session
// (sessionOnly).

// Context keys of the auth middleware.
const (
	ctxAgent   = "web.agent"
	ctxSession = "web.session"
	ctxToken   = "web.session_token"
	// ctxAPIToken is the *inbox.APIToken of a request authenticated by
	// one (Authorization: Bearer); such a request has no session.
	ctxAPIToken = "web.api_token"
	// ctxNotices is the agents' socket registry's Notices before the
	// session was read (agentSocket checks it).
	ctxNotices = "web.revoked_notices"
)

// headerCSRF carries the session's CSRF token on writes.
const headerCSRF = "X-CSRF-Token"

// agentOf returns the agent of a request that passed requireAgent.
func agentOf(c echo.Context) inbox.Agent {
	a, _ := c.Get(ctxAgent).(inbox.Agent)
	return a
}

// sessionOf returns the session of a request that passed requireAgent.
func sessionOf(c echo.Context) *inbox.Session {
	s, _ := c.Get(ctxSession).(*inbox.Session)
	return s
}

// apiTokenOf returns the API token of a request that passed requireAgent
// with one, or nil for a session's request.
func apiTokenOf(c echo.Context) *inbox.APIToken {
	t, _ := c.Get(ctxAPIToken).(*inbox.APIToken)
	return t
}

var (
	errLoginRequired = echo.NewHTTPError(http.StatusUnauthorized, "login required")
	errBadAPIToken   = echo.NewHTTPError(http.StatusUnauthorized, "the API token is wrong, expired or revoked")
)

// requireAgent lets a request through with a live session cookie, and
// puts the agent and the session in the context; or with a live API
// token in Authorization: Bearer (401 errBadAPIToken if it is not), and
// puts the agent and the token in the context, with no session. A
// request with both is the token's: the header is what the client chose
// to send, the cookie may be only what its jar had. The token is read
// from the database on every request, so a revoked one is refused at
// once.
func (s *Server) requireAgent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, sent := c.Request().Header[echo.HeaderAuthorization]; sent {
			// Any Authorization header, even an empty or malformed one,
			// is the client's choice of credentials: never the cookie
			// (an empty value is no token either).
			tok, agent, err := s.store.APITokenAgent(c.Request().Context(), bearer(c.Request()))
			if errors.Is(err, inbox.ErrUnauthenticated) {
				return errBadAPIToken
			}
			if err != nil {
				return err
			}
			c.Set(ctxAgent, agent)
			c.Set(ctxAPIToken, &tok)
			return next(c)
		}
		ck, err := c.Cookie(s.cfg.Session.CookieName)
		if err != nil || ck.Value == "" {
			return errLoginRequired
		}
		c.Set(ctxNotices, s.agentSockets.Notices())
		sess, agent, err := s.store.SessionAgent(c.Request().Context(), ck.Value)
		if errors.Is(err, inbox.ErrUnauthenticated) {
			return errLoginRequired
		}
		if err != nil {
			return err
		}
		c.Set(ctxAgent, agent)
		c.Set(ctxSession, &sess)
		c.Set(ctxToken, ck.Value)
		return next(c)
	}
}

// requireAdmin lets only admins through; it comes after requireAgent.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a := agentOf(c); !a.IsAdmin() {
			return echo.NewHTTPError(http.StatusForbidden, "only an admin may do this")
		}
		return next(c)
	}
}

// csrf checks that a write comes from this server's own pages: the
// browser does not say it comes from another site (sameOrigin, 403
// errCrossSite), and it carries the session's CSRF token (403). A write
// authenticated by an API token passes without either: no browser sends
// one on its own (see the top of this file). It comes after
// requireAgent.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !isWrite(c.Request().Method) || apiTokenOf(c) != nil {
			return next(c)
		}
		if !s.sameOrigin(c.Request()) {
			return errCrossSite
		}
		sess := sessionOf(c)
		got := c.Request().Header.Get(headerCSRF)
		if sess == nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "missing or wrong CSRF token")
		}
		return next(c)
	}
}

// sessionOnly refuses a request authenticated by an API token (403,
// saying why) on a route that needs a person's login session; it comes
// after requireAgent, so that sessionOf is not nil after it.
func sessionOnly(why string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if apiTokenOf(c) != nil || sessionOf(c) == nil {
				return echo.NewHTTPError(http.StatusForbidden, "this needs a login session, not an API token: "+why)
			}
			return next(c)
		}
	}
}

// sessionAnswer is the body of login and GET /auth/session: who is
// logged in, and what the dashboard needs to know before anything else.
type sessionAnswer struct {
	Agent inbox.Agent `json:"agent"`
	// CSRFToken is the session's; empty for an API token, which needs
	// none.
	CSRFToken string `json:"csrf_token"`
	// ExpiresAt is when the session ends (session.ttl after the login),
	// or the API token expires.
	ExpiresAt time.Time `json:"expires_at"`
	// IdleAfterSeconds is agents.idle_after: the dashboard reports its
	// agent idle after this long without activity.
	IdleAfterSeconds int64 `json:"idle_after_seconds"`
	// MaxUploadBytes and MaxMessageBytes are limits.max_upload_bytes and
	// limits.max_message_bytes, which the composer checks before sending.
	MaxUploadBytes  int64 `json:"max_upload_bytes"`
	MaxMessageBytes int64 `json:"max_message_bytes"`
}

// sessionAnswer returns the answer of login and GET /auth/session.
func (s *Server) sessionAnswer(a inbox.Agent, sess inbox.Session) sessionAnswer {
	return sessionAnswer{Agent: a, CSRFToken: sess.CSRFToken, ExpiresAt: sess.ExpiresAt.UTC(),
		IdleAfterSeconds: int64(s.cfg.Agents.IdleAfter.D() / time.Second),
		MaxUploadBytes:   int64(s.cfg.Limits.MaxUploadBytes), MaxMessageBytes: int64(s.cfg.Limits.MaxMessageBytes)}
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login checks the password and sets the session cookie. Attempts are
// limited per client IP and per email address.
func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	if err := required("email", req.Email); err != nil {
		return err
	}
	if err := required("password", req.Password); err != nil {
		return err
	}
	if err := s.limitLogin(c, strings.ToLower(strings.TrimSpace(req.Email)), "login"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	agent, err := s.store.Authenticate(ctx, req.Email, req.Password)
	if errors.Is(err, inbox.ErrUnauthenticated) {
		return echo.NewHTTPError(http.StatusUnauthorized, "wrong email or password")
	}
	if err != nil {
		return err
	}
	ttl := s.cfg.Session.TTL.D()
	token, sess, err := s.store.CreateSession(ctx, agent.ID, ttl)
	if err != nil {
		return err
	}
	c.SetCookie(s.sessionCookie(c, token, int(ttl/time.Second)))
	return c.JSON(http.StatusOK, s.sessionAnswer(agent, sess))
}

// logout deletes the session and expires the cookie.
func (s *Server) logout(c echo.Context) error {
	token, _ := c.Get(ctxToken).(string)
	if err := s.store.DeleteSession(c.Request().Context(), token); err != nil {
		return err
	}
	c.SetCookie(s.sessionCookie(c, "", -1))
	return c.NoContent(http.StatusNoContent)
}

// session answers who is logged in, with the CSRF token, for a page that
// was reloaded; for an API token, whose agent it is, with no CSRF token
// and the token's expiry.
func (s *Server) session(c echo.Context) error {
	if tok := apiTokenOf(c); tok != nil {
		return c.JSON(http.StatusOK, s.sessionAnswer(agentOf(c), inbox.Session{ExpiresAt: tok.ExpiresAt}))
	}
	return c.JSON(http.StatusOK, s.sessionAnswer(agentOf(c), *sessionOf(c)))
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword sets the logged-in agent's password once the current
// one is given (403 naming current_password if wrong; 400 naming
// new_password if too short or long) and ends the agent's other
// sessions, whose sockets close with 4401 at once; this session stays.
// Attempts count against the login limits of the client IP and the
// agent's email, so that a stolen session cannot guess the password.
func (s *Server) changePassword(c echo.Context) error {
	var req passwordRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	if err := required("current_password", req.CurrentPassword); err != nil {
		return err
	}
	if err := required("new_password", req.NewPassword); err != nil {
		return err
	}
	agent := agentOf(c)
	if err := s.limitLogin(c, agent.Email, "password"); err != nil {
		return err
	}
	err := s.store.ChangePassword(c.Request().Context(), agent.ID, sessionOf(c).ID, req.CurrentPassword, req.NewPassword)
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) sessionCookie(c echo.Context, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cfg.Session.CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   s.overTLS(c.Request()),
	}
}

// overTLS reports whether the browser reached us over https: directly,
// through a trusted proxy that says so, or per the configured base URL.
func (s *Server) overTLS(r *http.Request) bool {
	if r.TLS != nil || s.cfg.SecureCookies() {
		return true
	}
	return s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get(echo.HeaderXForwardedProto), "https")
}

// fromTrustedProxy reports whether the TCP peer is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range s.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

type setupRequest struct {
	Token    string `json:"token"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// setup creates the first admin with the one-time token of the setup link.
func (s *Server) setup(c echo.Context) error {
	var req setupRequest
	if err := bindJSON(c, &req, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"token", req.Token}, {"email", req.Email}, {"name", req.Name}, {"password", req.Password},
	} {
		if err := required(f.name, f.value); err != nil {
			return err
		}
	}
	agent, err := s.store.CompleteSetup(c.Request().Context(), req.Token,
		inbox.NewAgent{Email: req.Email, Name: req.Name, Password: req.Password})
	switch {
	case errors.Is(err, inbox.ErrUnauthenticated):
		return echo.NewHTTPError(http.StatusUnauthorized, "the setup link is wrong, expired or already used")
	case errors.Is(err, inbox.ErrConflict):
		return echo.NewHTTPError(http.StatusConflict, "setup is done: an admin exists")
	case err != nil:
		return err
	}
	return c.JSON(http.StatusCreated, agent)
}

// limitLogin takes one attempt at a password (what: "login" or
// "password") from the client IP's and the email's budgets, or answers
// 429 with Retry-After when either is spent. The budgets are counted in
// the database (inbox.Store.TakeAttempt), so that every node of a
// cluster counts the same attempts.
func (s *Server) limitLogin(c echo.Context, email, what string) error {
	wait, ok, err := s.allowLogin(c.Request().Context(), c.RealIP(), email)
	if err != nil {
		return err
	}
	if !ok {
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(ratelimit.RetryAfter(wait)))
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many "+what+" attempts; try again later")
	}
	return nil
}

// allowLogin takes one login attempt from both the client IP's and the
// email's budget of limits.login_attempts_per_minute, or neither when
// either is spent, and then says how long to wait.
func (s *Server) allowLogin(ctx context.Context, ip, email string) (wait time.Duration, ok bool, err error) {
	return s.store.TakeAttempt(ctx, time.Now(), s.cfg.Limits.LoginAttemptsPerMinute, "ip:"+ip, "email:"+email)
}
