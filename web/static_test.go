package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/web/widget"
)

// fetch sends a request with these headers, never letting the transport
// add or undo an encoding, and reads the answer whole.
func fetch(t *testing.T, e *env, method, path string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	return resp, b
}

// TestStaticCompression: the widget script, the pages, the static files
// and the OpenAPI document are gzipped when the client accepts it (and
// only then), with a strong ETag per encoding that If-None-Match turns
// into a 304, and HEAD answers like GET without the body.
func TestStaticCompression(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	for _, tc := range []struct{ path, cacheControl string }{
		{"/widget.js", "public, max-age=300"},
		{"/", "no-cache"},
		{"/inbox", "no-cache"},
		{"/static/app.css", "no-cache"},
		{"/static/inbox/main.js", "no-cache"},
		{"/static/shared/socket.js", "no-cache"},
		{"/api/v1/openapi.yaml", "no-cache"},
		{"/api/v1/openapi.json", "no-cache"},
	} {
		plainResp, plain := fetch(t, e, "GET", tc.path, map[string]string{"Accept-Encoding": "identity"})
		gzResp, gz := fetch(t, e, "GET", tc.path, map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"})
		for _, r := range []*http.Response{plainResp, gzResp} {
			if r.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", tc.path, r.StatusCode)
			}
			if !strings.Contains(r.Header.Get("Vary"), "Accept-Encoding") || r.Header.Get("Cache-Control") != tc.cacheControl ||
				r.Header.Get("Last-Modified") != "" {
				t.Fatalf("GET %s: Vary %q, Cache-Control %q, Last-Modified %q; want Accept-Encoding, %q and none",
					tc.path, r.Header.Get("Vary"), r.Header.Get("Cache-Control"), r.Header.Get("Last-Modified"), tc.cacheControl)
			}
			if etag := r.Header.Get("ETag"); !strings.HasPrefix(etag, `"`) {
				t.Fatalf("GET %s: ETag %q, want a strong one", tc.path, etag)
			}
		}
		if enc := plainResp.Header.Get("Content-Encoding"); enc != "" {
			t.Fatalf("GET %s with identity: Content-Encoding %q", tc.path, enc)
		}
		if enc := gzResp.Header.Get("Content-Encoding"); enc != "gzip" {
			t.Fatalf("GET %s with gzip: Content-Encoding %q, want gzip", tc.path, enc)
		}
		if plainResp.Header.Get("ETag") == gzResp.Header.Get("ETag") {
			t.Fatalf("GET %s: one ETag %s for both encodings", tc.path, gzResp.Header.Get("ETag"))
		}
		if plainResp.Header.Get("Content-Type") != gzResp.Header.Get("Content-Type") {
			t.Fatalf("GET %s: Content-Type %q and %q", tc.path, plainResp.Header.Get("Content-Type"), gzResp.Header.Get("Content-Type"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("GET %s: gzip.NewReader() = %v", tc.path, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, plain) || len(plain) == 0 {
			t.Fatalf("GET %s: the gzipped body (%d bytes, %v) is not the plain one (%d bytes)", tc.path, len(unzipped), err, len(plain))
		}
		if len(gz) >= len(plain) {
			t.Fatalf("GET %s: gzipped %d bytes, plain %d", tc.path, len(gz), len(plain))
		}
		if tc.path == "/widget.js" {
			t.Logf("GET /widget.js: %d bytes plain, %d gzipped", len(plain), len(gz))
		}

		// Revalidation: the ETag of the representation asked for.
		r, body := fetch(t, e, "GET", tc.path, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gzResp.Header.Get("ETag")})
		if r.StatusCode != http.StatusNotModified || len(body) != 0 || r.Header.Get("ETag") != gzResp.Header.Get("ETag") {
			t.Fatalf("GET %s If-None-Match gzip's ETag = %d, %d bytes, ETag %q; want 304, none, the same", tc.path, r.StatusCode, len(body), r.Header.Get("ETag"))
		}
		r, _ = fetch(t, e, "GET", tc.path, map[string]string{"If-None-Match": `"x", ` + plainResp.Header.Get("ETag")})
		if r.StatusCode != http.StatusNotModified {
			t.Fatalf("GET %s If-None-Match the plain ETag, no Accept-Encoding = %d, want 304", tc.path, r.StatusCode)
		}
		if r, _ := fetch(t, e, "GET", tc.path, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": plainResp.Header.Get("ETag")}); r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s gzip, If-None-Match the plain ETag = %d, want 200", tc.path, r.StatusCode)
		}
	}

	// HEAD: the headers of GET, no body.
	for _, p := range []string{"/widget.js", "/", "/inbox", "/setup", "/static/app.css"} {
		get, body := fetch(t, e, "GET", p, map[string]string{"Accept-Encoding": "gzip"})
		head, none := fetch(t, e, "HEAD", p, map[string]string{"Accept-Encoding": "gzip"})
		if head.StatusCode != http.StatusOK || len(none) != 0 || head.Header.Get("ETag") != get.Header.Get("ETag") ||
			head.Header.Get("Content-Encoding") != "gzip" || head.ContentLength != int64(len(body)) {
			t.Fatalf("HEAD %s = %d, %d bytes, %v; want 200, no body, GET's headers (%v)", p, head.StatusCode, len(none), head.Header, get.Header)
		}
	}
	if r, _ := fetch(t, e, "GET", "/static/nope.js", map[string]string{"Accept-Encoding": "gzip"}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /static/nope.js = %d, want 404", r.StatusCode)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"identity"}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"gzip, deflate, br, zstd"}, true},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"*;q=0, gzip;q=0.5"}, true},
		{[]string{"br", "gzip"}, true},
		{[]string{"deflate, br"}, false},
		{[]string{"gzip;q=bad"}, false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// The dashboard gets the widget's shared modules (socket, ordering, DOM)
// byte for byte as the widget's bundle is made from them, and nothing
// else of the widget's sources.
func TestSharedModules(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	for _, name := range widget.SharedModules {
		want, ok := widget.Shared(name)
		if !ok {
			t.Fatalf("widget.Shared(%q) = false", name)
		}
		resp, got := fetch(t, e, "GET", "/static/shared/"+name, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("GET /static/shared/%s = %d %q, %d bytes; want the widget's source", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
	}
	for _, name := range []string{"app.js", "main.js", "widget.css", "widget.go", "internal/bundle/main.go"} {
		if resp, _ := fetch(t, e, "GET", "/static/shared/"+name, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /static/shared/%s = %d, want 404", name, resp.StatusCode)
		}
	}
	if _, ok := widget.Shared("app.js"); ok {
		t.Fatalf("widget.Shared(app.js) = true")
	}
}
