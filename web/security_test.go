package web

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// parseCSP splits a Content-Security-Policy into its directives' sources.
func parseCSP(policy string) map[string][]string {
	d := map[string][]string{}
	for _, part := range strings.Split(policy, ";") {
		f := strings.Fields(part)
		if len(f) > 0 {
			d[f[0]] = f[1:]
		}
	}
	return d
}

// sources returns the sources that apply to a fetch directive: its own,
// or else default-src's.
func sources(csp map[string][]string, directive string) []string {
	if s, ok := csp[directive]; ok {
		return s
	}
	return csp["default-src"]
}

// wantStrictPolicy fails unless policy allows script only from the
// server's files (no inline script, no eval), no plugins, no <base> and
// no framing.
func wantStrictPolicy(t *testing.T, what, policy string) map[string][]string {
	t.Helper()
	csp := parseCSP(policy)
	if s := sources(csp, "script-src"); !slices.Equal(s, []string{"'self'"}) && !slices.Equal(s, []string{"'none'"}) {
		t.Errorf("%s: script-src %q, want only 'self' (no inline, no eval) in %q", what, s, policy)
	}
	if s := sources(csp, "object-src"); !slices.Equal(s, []string{"'none'"}) {
		t.Errorf("%s: object-src %q, want 'none' in %q", what, s, policy)
	}
	for _, d := range []string{"base-uri", "frame-ancestors"} {
		if !slices.Equal(csp[d], []string{"'none'"}) {
			t.Errorf("%s: %s %q, want 'none' in %q", what, d, csp[d], policy)
		}
	}
	return csp
}

// Every HTML page, wherever it is served from, carries a policy that
// forbids inline script, eval and plugins, beside the headers every
// answer has; the dashboard's lets the email frame show remote images.
func TestPageSecurityHeaders(t *testing.T) {
	store := inboxtest.Open(t, inboxtest.SQLiteURL(t), &inbox.Options{Mailboxes: []inbox.MailboxInfo{{Name: "support", Address: "support@example.com"}}})
	e := newEnvStore(t, store, nil)
	tokens, _ := e.surveyLinks()
	c := e.client()
	paths := []string{"/", "/demo/pricing", "/inbox", "/setup", "/rate/" + tokens[3]}
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".html") {
			paths = append(paths, "/"+p)
		}
		return err
	})
	for _, p := range paths {
		for _, method := range []string{"GET", "HEAD"} {
			r := c.do(method, p, nil).want(http.StatusOK)
			h := r.header
			what := method + " " + p
			csp := wantStrictPolicy(t, what, h.Get("Content-Security-Policy"))
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", what, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
			}
			if rp := h.Get("Referrer-Policy"); rp != "same-origin" && rp != "no-referrer" {
				t.Errorf("%s: Referrer-Policy %q", what, rp)
			}
			if p == "/inbox" || p == "/static/inbox.html" {
				img := sources(csp, "img-src")
				for _, want := range []string{"'self'", "data:", "blob:", "https:", "http:"} {
					if !slices.Contains(img, want) {
						t.Errorf("%s: img-src %q lacks %s", what, img, want)
					}
				}
				if f := sources(csp, "frame-src"); !slices.Contains(f, "about:") || slices.Contains(f, "*") {
					t.Errorf("%s: frame-src %q, want about: for the email frame", what, f)
				}
			} else if img := sources(csp, "img-src"); slices.Contains(img, "https:") || slices.Contains(img, "http:") {
				t.Errorf("%s: img-src %q allows remote images", what, img)
			}
		}
	}
}

// The pages have no inline script or event handler attribute to move
// out: the policy would block them.
func TestPagesHaveNoInlineScript(t *testing.T) {
	files := map[string][]byte{"rate.html": []byte(rateHTML)}
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".html") {
			files[p], err = static.ReadFile(p)
		}
		return err
	})
	for name, b := range files {
		z := html.NewTokenizer(bytes.NewReader(b))
		for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			hasSrc := false
			for _, a := range tok.Attr {
				hasSrc = hasSrc || a.Key == "src"
				if strings.HasPrefix(a.Key, "on") || strings.Contains(strings.ToLower(a.Val), "javascript:") {
					t.Errorf("%s: <%s %s=%q>: inline script", name, tok.Data, a.Key, a.Val)
				}
			}
			if tok.Data == "script" && !hasSrc {
				t.Errorf("%s: an inline <script>", name)
			}
		}
	}
}

// errCrossSiteText is errCrossSite's message.
var errCrossSiteText = errCrossSite.Message.(string)

// crossSiteHeaders are what browsers send from another site's page: an
// Origin, or Sec-Fetch-Site alone.
var crossSiteHeaders = []http.Header{
	{"Origin": {"https://evil.example"}},
	{"Origin": {"null"}}, // a sandboxed frame, or after a cross-site redirect
	{"Sec-Fetch-Site": {"cross-site"}},
	{"Sec-Fetch-Site": {"same-site"}},
}

// routePath is a route's pattern with a number for each parameter.
func routePath(pattern string) string {
	return regexp.MustCompile(`:[a-z]+|\*`).ReplaceAllString(pattern, "999999")
}

// Every cookie-authenticated write under /api/v1 (every one but the
// widget's CORS routes), the login and the setup, sent from another
// site's page, is refused 403 before its handler runs, even with the
// right CSRF token. The walk covers a route added later.
func TestCrossSiteWrites(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		c := e.login("admin@example.com")
		var checked []string
		for _, rt := range e.srv.echo.Routes() {
			if !isWrite(rt.Method) || !strings.HasPrefix(rt.Path, "/api/v1/") || strings.HasPrefix(rt.Path, "/api/v1/widget/") {
				continue
			}
			checked = append(checked, rt.Method+" "+rt.Path)
			for _, h := range crossSiteHeaders {
				c.header = h
				r := c.do(rt.Method, routePath(rt.Path), "{}").want(http.StatusForbidden)
				if got := r.apiErr().Error; got != errCrossSiteText {
					t.Fatalf("%s with %v: error %q, want %q", rt.Path, h, got, errCrossSiteText)
				}
				if r.header.Get("Set-Cookie") != "" {
					t.Fatalf("%s with %v: a cookie was set", rt.Path, h)
				}
			}
		}
		for _, want := range []string{"POST /api/v1/auth/login", "POST /api/v1/setup", "POST /api/v1/auth/logout",
			"POST /api/v1/conversations/:id/messages", "POST /api/v1/conversations/:id/attachments", "DELETE /api/v1/agents/:id"} {
			if !slices.Contains(checked, want) {
				t.Fatalf("the walk missed %s: %v", want, checked)
			}
		}

		// The session is untouched by all that, and the same requests
		// from the server's own page go through.
		for _, h := range []http.Header{{"Origin": {e.ts.URL}, "Sec-Fetch-Site": {"same-origin"}}, {"Sec-Fetch-Site": {"none"}}} {
			c.header = h
			c.do("PATCH", "/api/v1/agents/me", map[string]string{"name": "Ada"}).want(http.StatusOK)
			login := e.client()
			login.header = h
			login.do("POST", "/api/v1/auth/login", map[string]string{"email": "admin@example.com", "password": testPassword}).want(http.StatusOK)
		}
	})
}

// The base URL names the server too, when a proxy sends another Host;
// its scheme must match.
func TestCrossSiteBaseURL(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) { c.BaseURL = "https://chat.example.com" })
	e.agent("a@example.com", inbox.RoleAgent)
	creds := map[string]string{"email": "a@example.com", "password": testPassword}
	c := e.client()
	c.header.Set("Origin", "https://chat.example.com")
	c.do("POST", "/api/v1/auth/login", creds).want(http.StatusOK)
	for _, origin := range []string{"http://chat.example.com", "https://chat.example.com.evil.example", "https://evil.example"} {
		c := e.client()
		c.header.Set("Origin", origin)
		if got := c.do("POST", "/api/v1/auth/login", creds).want(http.StatusForbidden).apiErr().Error; got != errCrossSiteText {
			t.Fatalf("login from %s: %q", origin, got)
		}
	}
}

// adminHandlers returns the handlers of the routes that routes.go marks
// requireAdmin, by method: those with s.requireAdmin among their
// middleware, or registered on a group that has it.
func adminHandlers(t *testing.T) map[string][]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "routes.go", nil, 0)
	if err != nil {
		t.Fatalf("parsing routes.go: %v", err)
	}
	isAdmin := func(args []ast.Expr) bool {
		return slices.ContainsFunc(args, func(a ast.Expr) bool {
			sel, ok := a.(*ast.SelectorExpr)
			return ok && sel.Sel.Name == "requireAdmin"
		})
	}
	adminGroups := map[string]bool{}
	found := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
			if call, ok := as.Rhs[0].(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Group" {
					recv, _ := sel.X.(*ast.Ident)
					name := as.Lhs[0].(*ast.Ident).Name
					adminGroups[name] = isAdmin(call.Args) || (recv != nil && adminGroups[recv.Name])
				}
			}
		}
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		method, args := sel.Sel.Name, call.Args
		if method != strings.ToUpper(method) && method != "Match" {
			return true
		}
		if method == "Match" {
			method, args = "GET", args[1:] // Match(getHead, ...)
		}
		if len(args) < 2 || !(isAdmin(args[2:]) || adminGroups[recv.Name]) {
			return true
		}
		h, ok := args[1].(*ast.SelectorExpr)
		if !ok {
			t.Fatalf("routes.go: a handler that is not s.name: %#v", args[1])
		}
		found[method] = append(found[method], h.Sel.Name)
		return true
	})
	return found
}

// An agent who is not an admin is refused 403 on every route that
// routes.go marks requireAdmin, and an admin is not: the test reads the
// marks and walks echo's routes, so that it covers a route added later.
func TestAdminRoutesRefused(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("admin@example.com", inbox.RoleAdmin)
		e.agent("agent@example.com", inbox.RoleAgent)
		admin, agent := e.login("admin@example.com"), e.login("agent@example.com")
		handlers := adminHandlers(t)
		var walked []string
		for _, rt := range e.srv.echo.Routes() {
			name := rt.Name[strings.LastIndex(rt.Name, ".")+1:]
			name = strings.TrimSuffix(name, "-fm")
			if !slices.Contains(handlers[rt.Method], name) {
				continue
			}
			walked = append(walked, rt.Method+" "+name)
			var body any
			if isWrite(rt.Method) {
				body = "{}"
			}
			path := routePath(rt.Path)
			if got := agent.do(rt.Method, path, body).want(http.StatusForbidden).apiErr().Error; got != "only an admin may do this" {
				t.Fatalf("%s %s as an agent: %q", rt.Method, rt.Path, got)
			}
			if r := admin.do(rt.Method, path, body); r.code == http.StatusForbidden || r.code == http.StatusUnauthorized || r.code >= 500 {
				t.Fatalf("%s %s as an admin = %d %s", rt.Method, rt.Path, r.code, r.body)
			}
		}
		for m, hs := range handlers {
			for _, h := range hs {
				if !slices.Contains(walked, m+" "+h) {
					t.Fatalf("routes.go marks %s %s admin, but echo has no such route", m, h)
				}
			}
		}
		for _, want := range []string{"DELETE deleteConversation", "DELETE eraseContact", "POST createAgent", "GET listQuarantine"} {
			if !slices.Contains(walked, want) {
				t.Fatalf("the walk missed %s: %v", want, walked)
			}
		}
		t.Logf("%d admin routes refused to an agent: %s", len(walked), strconv.Quote(strings.Join(walked, ", ")))
	})
}
