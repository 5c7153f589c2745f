package web

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// static holds the pages and scripts: plain HTML, CSS and ES modules, no
// build step, nothing loaded from other hosts.
//
//go:embed static
var static embed.FS

var staticFS = echo.MustSubFS(static, "static")

// pageCSP keeps the dashboard and setup pages to their own scripts and
// styles: user text can never become script there.
const pageCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// demoPage is a small company website with the widget on it.
func (s *Server) demoPage(c echo.Context) error {
	return s.page(c, "index.html", false)
}

// demoPricing is a second page of the demo website, to see the chat
// follow the visitor from page to page.
func (s *Server) demoPricing(c echo.Context) error {
	return s.page(c, "pricing.html", false)
}

// inboxPage is the agents' dashboard.
func (s *Server) inboxPage(c echo.Context) error {
	return s.page(c, "inbox.html", true)
}

// setupPage creates the first admin with the token in its URL fragment.
func (s *Server) setupPage(c echo.Context) error {
	return s.page(c, "setup.html", true)
}

func (s *Server) page(c echo.Context, name string, strict bool) error {
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-cache")
	if strict {
		h.Set(echo.HeaderContentSecurityPolicy, pageCSP)
	}
	return c.HTMLBlob(http.StatusOK, b)
}

// widgetScript is the embed script; any site loads it with
// <script src="https://HOST/widget.js" async></script>.
func (s *Server) widgetScript(c echo.Context) error {
	b, err := static.ReadFile("static/widget.js")
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "public, max-age=300")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", b)
}

// staticFile serves the pages' CSS and modules under /static/.
var serveStatic = echo.StaticDirectoryHandler(staticFS, false)

func (s *Server) staticFile(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return serveStatic(c)
}
