package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// cspWatch records a document's Content-Security-Policy violations in
// window.__violations ("<directive> <blocked URI>"), from before the
// page's own scripts run.
const cspWatch = `window.__violations = [];
addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.effectiveDirective + " " + e.blockedURI), true);`

// watchCSP makes every document of the page record its violations.
// Scripts added through DevTools are not subject to the page's policy.
func (p *page) watchCSP() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		p.t.Fatalf("watching CSP violations: %v", err)
	}
}

// injection is what an injected string could try in the page: an inline
// <script>, an event handler attribute, eval, new Function, and a
// plugin. It answers the errors that eval and new Function threw. It
// runs in a task of the page's own: DevTools' evaluation is exempt from
// the policy (eval works in it).
const injection = `new Promise((resolve) => setTimeout(() => {
	const s = document.createElement("script");
	s.textContent = "window.__flag = 'inline script'";
	document.head.append(s);
	const b = document.createElement("button");
	b.setAttribute("onclick", "window.__flag = 'event handler'");
	document.body.append(b);
	b.click();
	b.remove();
	const errs = [];
	try { eval("window.__flag = 'eval'"); } catch (e) { errs.push(e.name); }
	try { new Function("window.__flag = 'Function'")(); } catch (e) { errs.push(e.name); }
	const o = document.createElement("object");
	o.data = "/static/app.css";
	o.type = "text/css";
	document.body.append(o);
	resolve(errs.join(","));
}))`

// injectedViolations are the violations that the injection causes, in the
// order they are reported.
var injectedViolations = []string{"script-src-elem inline", "script-src-attr inline", "script-src eval", "script-src eval"}

// wantInjectionBlocked runs the injection and checks that none of it ran,
// that the policy reported each attempt, and that nothing else had been
// reported: violations are reported in order, so those of the page's own
// code would have come first.
func (p *page) wantInjectionBlocked(where string) {
	p.t.Helper()
	if errs := eval[string](p, injection); errs != "EvalError,EvalError" {
		p.t.Fatalf("%s: eval and new Function threw %q, want EvalError twice", where, errs)
	}
	p.waitJS("the violation of the <object> on "+where, `window.__violations.some((v) => v.startsWith("object-src "))`)
	if flag := eval[string](p, `String(window.__flag)`); flag != "undefined" {
		p.t.Fatalf("%s: window.__flag = %q: injected script ran", where, flag)
	}
	got := eval[[]string](p, `window.__violations`)
	if len(got) != len(injectedViolations)+1 || !slices.Equal(got[:len(injectedViolations)], injectedViolations) {
		p.t.Fatalf("%s: violations %q, want only the injection's %q and the object's", where, got, injectedViolations)
	}
	p.noScriptRan()
}

// The dashboard's Content-Security-Policy blocks script injected into
// /inbox (inline, handler attribute, eval) and plugins, while the
// dashboard itself runs without a violation and a sandboxed email frame
// shows remote images; the demo page's widget opens and chats under the
// demo page's policy, without a violation either.
func TestContentSecurityPolicy(t *testing.T) {
	browser := newBrowser(t)
	s := newServer(t, nil)
	ada := s.agent("ada@example.com", "Ada")

	// The dashboard, logged in by its own page's request (same origin,
	// so not refused as cross-site).
	d := visitor(t, browser)
	d.watchCSP()
	d.do("open the dashboard", chromedp.Navigate(s.URL+"/inbox"))
	login := `fetch("/api/v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({email: "ada@example.com", password: ` + jsString(password) + `})}).then((r) => r.status)`
	if code := eval[int](d, login); code != http.StatusOK {
		t.Fatalf("login from the dashboard's page = %d", code)
	}
	d.do("reload the dashboard", chromedp.Reload())
	// Logged in: the list shows (the first dashboard), or the shell does.
	d.waitJS("the logged-in dashboard", `document.body.innerText.includes("Unassigned") || document.getElementById("app")?.hidden === false`)
	d.wantInjectionBlocked("/inbox")

	// An email's HTML in a sandboxed frame: its style attribute applies,
	// its remote image loads (once the dashboard sets its src), its
	// script does not run.
	var hits atomic.Int32
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngBytes(t))
	}))
	t.Cleanup(images.Close)
	eval[bool](d, `(() => {
		const f = document.createElement("iframe");
		f.className = "email-html";
		f.sandbox = "";
		f.srcdoc = '<p style="color: rgb(1, 2, 3)">Hello</p><img src="`+images.URL+`/remote.png" alt="remote"><script>parent.__flag = "email script"<\/script>';
		document.body.append(f);
		return true;
	})()`)
	for deadline := time.Now().Add(inboxtest.Patience); hits.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the email frame's remote image was not requested within %v", inboxtest.Patience)
		}
	}
	d.noScriptRan()
	if flag := eval[string](d, `String(window.__flag)`); flag != "undefined" {
		t.Fatalf("window.__flag = %q after the email frame", flag)
	}

	// The demo page: the widget is styled in its Shadow DOM, opens and
	// chats, with nothing blocked but the injection.
	v := visitor(t, browser)
	v.watchCSP()
	v.chatUnderPolicy(s.URL+"/", ada, "Dana Demo", "hello under the demo page's CSP")
	v.wantInjectionBlocked("the demo page")
	if got := eval[string](v, `document.title`); !strings.Contains(got, "Fernwood") {
		t.Fatalf("demo page title %q", got)
	}
}

// chatUnderPolicy opens the page at url, whose Content-Security-Policy
// must let the widget work: its styles apply in its Shadow DOM, and a
// chat starts as name and sends text, which agent a receives.
func (p *page) chatUnderPolicy(url string, a *agent, name, text string) {
	p.t.Helper()
	p.navigate(url)
	if got := eval[string](p, `getComputedStyle(`+root+`.querySelector(".launcher")).borderRadius`); got != "999px" {
		p.t.Fatalf("the launcher on %s has border-radius %q: the widget's styles were blocked", url, got)
	}
	startChat(p, name, "", "")
	p.send(text)
	a.next("event", func(f agentFrame) bool {
		var m inbox.MessageAdded
		return f.Event.Type == inbox.EventMessageAdded && f.Event.Decode(&m) == nil && m.Message.Text == text
	})
	p.waitText("Sent")
}
