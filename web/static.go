package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/web/widget"
)

// static holds the pages and scripts: plain HTML, CSS and ES modules, no
// build step, nothing loaded from other hosts.
//
//go:embed static
var static embed.FS

// Static files, the widget script, the pages and the OpenAPI document
// are served from memory, compressed once when the process first needs
// them (never per request):
//
//   - gzip when the request's Accept-Encoding allows it (RFC 9110
//     section 12.5.3: "gzip" or "x-gzip" or "*" with a q above 0), the
//     bytes as they are otherwise; always Vary: Accept-Encoding;
//   - a strong ETag per representation (the gzipped one ends in "-gz"),
//     and no Last-Modified: an embedded file has no meaningful date.
//     If-None-Match answers 304; HEAD answers GET's headers. No ranges:
//     the files are small;
//   - Cache-Control: the widget script, whose URL carries no version,
//     may be reused for widgetMaxAge, then is revalidated; everything
//     else is revalidated on each use (no-cache), which costs a 304.

// asset is one file as served: its bytes and their gzip, each with its
// strong ETag.
type asset struct {
	contentType  string
	plain, gz    []byte // gz is nil when gzip would not make it smaller
	etag, gzETag string
}

// newAsset compresses data with gzip at its best compression.
func newAsset(contentType string, data []byte) (*asset, error) {
	sum := sha256.Sum256(data)
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	a := &asset{contentType: contentType, plain: data, etag: `"` + tag + `"`}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if b.Len() < len(data) {
		a.gz, a.gzETag = b.Bytes(), `"`+tag+`-gz"`
	}
	return a, nil
}

// assetSet is every asset: the files under static/ by their name there,
// the widget's shared modules as "shared/<name>" (widget.Shared), and the
// OpenAPI document in both forms.
type assetSet struct {
	files                    map[string]*asset
	openapiYAML, openapiJSON *asset
}

// contentTypes are the types of the files under static/, fixed here
// rather than taken from the system's MIME table, which varies.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
}

// assets are made once per process, at the first New.
var assets = sync.OnceValues(func() (*assetSet, error) {
	set := &assetSet{files: map[string]*asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		set.files[strings.TrimPrefix(p, "static/")], err = newAsset(ct, data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	for _, name := range widget.SharedModules {
		src, ok := widget.Shared(name)
		if !ok {
			return nil, fmt.Errorf("web: shared module %s is missing", name)
		}
		if set.files["shared/"+name], err = newAsset(contentTypes[".js"], src); err != nil {
			return nil, err
		}
	}
	js, err := openapiAsJSON()
	if err != nil {
		return nil, err
	}
	if set.openapiYAML, err = newAsset("application/yaml", openapiSpec); err != nil {
		return nil, err
	}
	if set.openapiJSON, err = newAsset(echo.MIMEApplicationJSON, js); err != nil {
		return nil, err
	}
	return set, nil
})

// Cache-Control of the assets: the widget script may be reused for five
// minutes (an update reaches every site within that time), then it is
// revalidated with If-None-Match; everything else is revalidated on
// each use.
const (
	cacheWidgetScript = "public, max-age=300"
	cacheRevalidate   = "no-cache"
)

// staticAsset returns the file under static/ with this name, or nil.
func staticAsset(name string) (*asset, error) {
	set, err := assets()
	if err != nil {
		return nil, err
	}
	return set.files[name], nil
}

// serveAsset answers with the named asset, gzipped if the client accepts
// it, under the rules above.
func serveAsset(c echo.Context, a *asset, cacheControl string) error {
	if a == nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	h.Set(echo.HeaderCacheControl, cacheControl)
	h.Set(echo.HeaderContentType, a.contentType)
	body, etag := a.plain, a.etag
	if a.gz != nil && acceptsGzip(c.Request().Header.Values(echo.HeaderAcceptEncoding)) {
		body, etag = a.gz, a.gzETag
		h.Set(echo.HeaderContentEncoding, "gzip")
	}
	h.Set("ETag", etag)
	if noneMatch := c.Request().Header.Get("If-None-Match"); noneMatch != "" && etagListed(noneMatch, etag) {
		// A 304 carries the validators and caching headers of the
		// representation, not its content headers (RFC 9110 15.4.5).
		h.Del(echo.HeaderContentType)
		h.Del(echo.HeaderContentEncoding)
		return c.NoContent(http.StatusNotModified)
	}
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	c.Response().WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(body)
	return err
}

// etagListed reports whether an If-None-Match header lists etag, or is
// "*" (RFC 9110 section 13.1.2, with the weak comparison it asks for).
func etagListed(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for _, tag := range strings.Split(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == etag {
			return true
		}
	}
	return false
}

// serveStatic answers with the file under static/ with this name, or
// 404.
func serveStatic(c echo.Context, name, cacheControl string) error {
	a, err := staticAsset(name)
	if err != nil {
		return err
	}
	return serveAsset(c, a, cacheControl)
}

// acceptsGzip reports whether Accept-Encoding header values allow gzip
// (RFC 9110 section 12.5.3): the q of "gzip" (or its alias "x-gzip") if
// listed, else that of "*", else not; q=0 means "not acceptable". No
// header means no preference, but we send the bytes as they are then,
// as servers do. Hand-written: the negotiation libraries at hand parse
// media types, not codings.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// pageCSP keeps the dashboard and setup pages to their own scripts: user
// text can never become script there. Images may come from anywhere and
// inline styles are allowed for the emails shown in the dashboard's
// sandboxed frames, which inherit this policy under their own stricter
// one (docs/dashboard.md): a mail's styles apply, and its remote images
// load once the agent asks for them.
const pageCSP = "default-src 'self'; img-src 'self' data: blob: https: http:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

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
	if strict {
		c.Response().Header().Set(echo.HeaderContentSecurityPolicy, pageCSP)
	}
	return serveStatic(c, name, cacheRevalidate)
}

// widgetScript is the embed script; any site loads it with
// <script src="https://HOST/widget.js" async></script>.
func (s *Server) widgetScript(c echo.Context) error {
	c.Response().Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	return serveStatic(c, "widget.js", cacheWidgetScript)
}

// staticFile serves the pages' CSS and modules under /static/, and the
// widget's modules that the dashboard shares under /static/shared/.
func (s *Server) staticFile(c echo.Context) error {
	return serveStatic(c, c.Param("*"), cacheRevalidate)
}
