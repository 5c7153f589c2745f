package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

func TestHealth(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		c := e.client()
		if r := c.do("GET", "/healthz", nil).want(http.StatusOK); string(r.body) != `{"status":"ok"}`+"\n" {
			t.Fatalf("healthz = %q", r.body)
		}
		c.do("GET", "/readyz", nil).want(http.StatusOK)
		c.do("GET", "/api/v1/conversations", nil).want(http.StatusUnauthorized) // to count

		r := c.do("GET", "/metrics", nil).want(http.StatusOK)
		for _, want := range []string{
			`microchat_http_requests_total{code="200",method="GET",route="/readyz"} 1`,
			`microchat_http_requests_total{code="401",method="GET",route="/api/v1/conversations"} 1`,
			"microchat_http_request_duration_seconds_bucket",
			"go_goroutines",
			"process_",
			`go_sql_open_connections{db_name="microchat"}`,
			"microchat_append_batch_size",
		} {
			if !strings.Contains(string(r.body), want) {
				t.Fatalf("metrics lack %q:\n%s", want, r.body)
			}
		}

		// A database that is gone makes the node unready, not dead.
		e.store.Close()
		r = c.do("GET", "/readyz", nil).want(http.StatusServiceUnavailable)
		var h healthAnswer
		r.decode(&h)
		if h.Status != "unavailable" || h.Error == "" {
			t.Fatalf("readyz = %s", r.body)
		}
		c.do("GET", "/healthz", nil).want(http.StatusOK)
	})
}

// The WebSockets' metrics count both kinds: the agents' from web, the
// visitors' from the chat channel (webchat.Stats), in one family each.
func TestSocketMetrics(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	e.agentSock(e.agent("alice@example.com", inbox.RoleAgent)) // hello read
	e.startVisitor("Vera").connect(1)                          // auth sent, hello read
	r := e.client().do("GET", "/metrics", nil).want(http.StatusOK)
	for _, want := range []string{
		`microchat_websocket_connections{kind="agent"} 1`,
		`microchat_websocket_connections{kind="contact"} 1`,
		`microchat_websocket_messages_total{direction="in",kind="contact"} 1`,
		`microchat_websocket_messages_total{direction="out",kind="agent"}`,
		`microchat_websocket_messages_total{direction="out",kind="contact"}`,
		`microchat_presence_writes_total`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, r.body)
		}
	}
	// The presence tracker's first heartbeat, at its start, counts this
	// node.
	inboxtest.Eventually(t, "microchat_cluster_nodes 1", func() bool {
		r := e.client().do("GET", "/metrics", nil).want(http.StatusOK)
		return strings.Contains(string(r.body), "\nmicrochat_cluster_nodes 1\n")
	})
}

func TestPages(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	c := e.client()
	for _, tc := range []struct {
		path, contentType, contains string
		frameable                   bool
	}{
		{"/", "text/html", `<script src="/widget.js" async></script>`, false},
		{"/widget.js", "text/javascript", "Live Chat", true},
		{"/inbox", "text/html", `id="view-conversations"`, false},
		{"/setup", "text/html", "Password", false},
		{"/static/inbox/main.js", "javascript", "textContent", false},
		{"/static/inbox/apitokens.js", "javascript", "textContent", false},
		{"/static/inbox/webhooks.js", "javascript", "textContent", false},
		{"/static/inbox/secret.js", "javascript", "textContent", false},
		{"/static/shared/socket.js", "javascript", "export function createSocket", false},
		{"/static/shared/ordering.js", "javascript", "export function createOrdering", false},
		{"/static/shared/dom.js", "javascript", "export function h(", false},
		{"/static/setup.js", "javascript", "location.hash", false},
		{"/static/app.css", "text/css", "--accent", false},
		{"/static/site.css", "text/css", "--accent", false},
	} {
		r := c.do("GET", tc.path, nil).want(http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) {
			t.Fatalf("GET %s: Content-Type = %q, want %q", tc.path, ct, tc.contentType)
		}
		if !strings.Contains(string(r.body), tc.contains) {
			t.Fatalf("GET %s lacks %q", tc.path, tc.contains)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %s: no nosniff", tc.path)
		}
		if xfo := r.header.Get("X-Frame-Options"); (xfo == "") != tc.frameable {
			t.Fatalf("GET %s: X-Frame-Options = %q", tc.path, xfo)
		}
		if strings.Contains(string(r.body), "innerHTML") {
			t.Fatalf("GET %s uses innerHTML", tc.path)
		}
		if strings.HasPrefix(tc.contentType, "text/html") && regexp.MustCompile(`(src|href)="(https?:)?//`).Match(r.body) {
			t.Fatalf("GET %s loads something from another host", tc.path)
		}
	}
	c.do("GET", "/static/../openapi.yaml", nil).want(http.StatusNotFound)
	c.do("GET", "/static/nope.js", nil).want(http.StatusNotFound)
}

// TestOpenAPI checks that every API route is documented with its method,
// and every documented one exists.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatalf("ReadFile() = %v", err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	// 3.1 for its top-level webhooks (the deliveries of webhooks.go).
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}

	param := regexp.MustCompile(`:(\w+)`)
	routed := map[string]bool{}
	var missing []string
	for _, r := range e.srv.echo.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/api/v1")
		if r.Method == "echo_route_not_found" {
			continue
		}
		p = param.ReplaceAllString(p, "{$1}")
		if !ok && (!rootServed(doc.Paths[p]) || r.Method == http.MethodHead) {
			// A page outside the API, not documented there (the rating
			// page is, with its own server "/"); HEAD is GET's.
			continue
		}
		m := strings.ToLower(r.Method)
		routed[m+" "+p] = true
		op, ok := doc.Paths[p][m].(map[string]any)
		if !ok {
			missing = append(missing, r.Method+" /api/v1"+p)
			continue
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("%s %s has no responses", r.Method, p)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("routes missing from openapi.yaml:\n%s", strings.Join(missing, "\n"))
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options"}
	for p, ops := range doc.Paths {
		for m := range ops {
			if slices.Contains(methods, m) && !routed[m+" "+p] {
				t.Errorf("openapi.yaml documents %s %s, which is not routed", strings.ToUpper(m), p)
			}
		}
	}

	c := e.client()
	if r := c.do("GET", "/api/v1/openapi.yaml", nil).want(http.StatusOK); !bytes.Equal(r.body, spec) {
		t.Fatalf("served openapi.yaml differs from the file")
	}
	var asJSON map[string]any
	if err := json.Unmarshal(c.do("GET", "/api/v1/openapi.json", nil).want(http.StatusOK).body, &asJSON); err != nil || asJSON["paths"] == nil {
		t.Fatalf("openapi.json: %v", err)
	}
}

// rootServed reports whether an OpenAPI path item is served at the
// server's root (its own servers: [{url: /}]) rather than under /api/v1.
func rootServed(item map[string]any) bool {
	servers, _ := item["servers"].([]any)
	if len(servers) != 1 {
		return false
	}
	s, _ := servers[0].(map[string]any)
	return s["url"] == "/"
}

// TestErrorMapping covers the error handler on the errors handlers do
// not produce in other tests.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), nil)
	for _, tc := range []struct {
		err  error
		code int
		body string
	}{
		{inbox.ErrForbidden, 403, `{"error":"forbidden"}`},
		{inbox.ErrConflict, 409, `{"error":"conflict with the current state"}`},
		{inbox.ErrUnauthenticated, 401, `{"error":"login required"}`},
		{inbox.ErrUnavailable, 503, `{"error":"database unavailable"}`},
		{os.ErrInvalid, 500, `{"error":"internal error"}`},
	} {
		rec := newRecorder(e, tc.err)
		if rec.Code != tc.code || strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Fatalf("error %v = %d %s, want %d %s", tc.err, rec.Code, rec.Body, tc.code, tc.body)
		}
	}
}

func newRecorder(e *env, err error) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.srv.handleError(err, e.srv.echo.NewContext(httptest.NewRequest("GET", "/x", nil), rec))
	return rec
}

// A balancer asking /readyz every second of an outage gets a 503 each
// time, and the log one line when the node turns unready and one when it
// is ready again (a tester counted 306 "not ready" lines in 80 s).
func TestReadyzLogsChangesOnly(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) { testReadyzLogsChangesOnly(t, url) })
}

func testReadyzLogsChangesOnly(t *testing.T, url string) {
	buf := &inboxtest.Buffer{}
	store := inboxtest.Open(t, url, nil)
	cfg := config.Defaults()
	srv, err := New(Options{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	e := newEnvServer(t, store, srv, cfg)
	c := e.client()
	for range 3 {
		c.do("GET", "/readyz", nil).want(http.StatusOK)
	}
	store.Close()
	for range 5 {
		c.do("GET", "/readyz", nil).want(http.StatusServiceUnavailable)
	}
	if n := strings.Count(buf.String(), "not ready"); n != 1 {
		t.Fatalf("%d \"not ready\" lines for 5 unready answers, want 1:\n%s", n, buf.String())
	}
	if strings.Contains(buf.String(), "ready again") {
		t.Fatalf("\"ready again\" logged while unready:\n%s", buf.String())
	}
}
