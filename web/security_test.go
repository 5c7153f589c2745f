package web

import (
	"bytes"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

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
