package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// What a browser may do with the server's pages, and which requests it
// may send with an agent's cookie (docs/security.md):
//
//   - Every HTML page carries a Content-Security-Policy that allows
//     script only from this server's files: no inline script, no eval, no
//     plugins (object-src 'none'), no <base>, no framing by any site.
//     The dashboard's also lets the email frame show the remote images
//     the agent asked for. Beside it, on every answer (server.go):
//     X-Content-Type-Options: nosniff, Referrer-Policy: same-origin, and
//     X-Frame-Options: DENY (for browsers without frame-ancestors) but
//     on the widget script, which other sites embed.
//   - A cookie-authenticated write (csrf), the login and the first-run
//     setup (sameSite) are refused 403 when the browser says they come
//     from another site, besides the CSRF token the writes carry; the
//     agents' WebSocket from another site is 403 too (agentws.go), and
//     so is a rating posted from another site (rate.go). The widget's
//     API is not: it is called from customers' sites, without cookies,
//     under CORS (widget.go).

// The Content-Security-Policies of the pages. style-src allows inline
// styles: the widget's Shadow DOM falls back to a <style> where
// constructed style sheets are missing, and sanitized email HTML keeps
// its style attributes. Scripts never: whatever reaches the DOM from a
// user stays inert.
const (
	// cspBase is the part every page of the server shares.
	cspBase = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'; style-src 'self' 'unsafe-inline'"
	// pageCSP is the policy of the demo site's pages and of setup: images
	// from here, data: URLs and blob: URLs (the widget shows image
	// attachments from blobs it downloaded with the visitor's token).
	pageCSP = cspBase + "; img-src 'self' data: blob:"
	// dashboardCSP is the policy of /inbox. An email's sanitized HTML is
	// shown in a sandboxed iframe (srcdoc, no allow-scripts), which
	// inherits this policy: its images may come from any http(s) host,
	// but only once the agent asks, because the sanitizer leaves remote
	// images in data-remote-src (inbox.SanitizeEmailHTML) and the
	// dashboard copies them to src on request. frame-src covers that
	// frame (about:srcdoc) and blob: previews.
	dashboardCSP = cspBase + "; img-src 'self' data: blob: https: http:; media-src 'self' data: blob:; frame-src 'self' blob: about:"
	// rateCSP is the rating page's: no script at all, its stylesheet,
	// and its form posting only to itself.
	rateCSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// pagePolicies are the policies of the HTML files under static/ by name,
// whether served as a page or under /static/; an HTML file not listed
// gets pageCSP.
var pagePolicies = map[string]string{
	"inbox.html": dashboardCSP,
}

// pagePolicy returns the Content-Security-Policy of the HTML file under
// static/ with this name.
func pagePolicy(name string) string {
	if p, ok := pagePolicies[name]; ok {
		return p
	}
	return pageCSP
}

// isWrite reports whether an HTTP method changes something: the methods
// that need the CSRF token, a JSON body and a request from this site.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// errCrossSite is the answer to a request that a browser sent from
// another site's page.
var errCrossSite = echo.NewHTTPError(http.StatusForbidden,
	"cross-site request refused: it must come from this server's own pages")

// sameOrigin reports whether a request comes from this server's own pages,
// or not from a browser at all, as far as the browser says:
//
//   - an Origin header must name this server, the Host the request was
//     sent to or the configured base URL ("null", sent by sandboxed
//     frames and after cross-site redirects, names none);
//   - a Sec-Fetch-Site header must be "same-origin" or "none" (typed by
//     the user); "same-site" and "cross-site" are other sites.
//
// A request with neither header is not from a browser that protects its
// users (curl, the tests), and passes. Browsers send Origin with every
// POST, PUT, PATCH and DELETE and with every WebSocket handshake, and
// Sec-Fetch-Site with every request since 2020-2023, so each check
// stands alone. Hand-written: echo's CSRF middleware checks a
// double-submit cookie, not the Origin.
func (s *Server) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if b, err := url.Parse(s.cfg.BaseURL); err == nil && s.cfg.BaseURL != "" {
		return strings.EqualFold(u.Host, b.Host) && u.Scheme == b.Scheme
	}
	return false
}

// sameSite refuses writes that come from another site's page (403,
// errCrossSite): the routes without a session that a page on another
// site could still use against its visitor, logging them in to an
// account of the attacker's (login) or racing the admin to the setup
// link. The routes with a session check the same in csrf.
func (s *Server) sameSite(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isWrite(c.Request().Method) && !s.sameOrigin(c.Request()) {
			return errCrossSite
		}
		return next(c)
	}
}
