package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/web"
)

// chromiumPath is Debian's chromium, which scripts/test-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

const password = "correct horse battery"

// newBrowser starts one headless Chromium for the test; each visitor gets
// a browser context of their own in it (visitor). Without Chromium the
// test fails: the browser tests are part of every run.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run scripts/test-deps.sh (or apt-get install chromium) to run the browser tests", chromiumPath)
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(alloc)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// page is one visitor's tab, in a browser context of its own: its own
// localStorage, sessionStorage and cookies.
type page struct {
	t       testing.TB
	ctx     context.Context
	dialogs chan string
	// textJS is the JavaScript of the text that text() returns; the
	// widget's when empty.
	textJS string
}

func visitor(t testing.TB, browser context.Context) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	p := &page{t: t, ctx: ctx, dialogs: make(chan string, 10)}
	// A dialog means script from a user ran: record it, and close it so
	// that the page goes on.
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			p.dialogs <- ev.Message
			chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return p
}

// do runs actions, failing the test with what on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) navigate(url string) {
	p.t.Helper()
	p.do("navigate to "+url, chromedp.Navigate(url))
	p.waitJS("the widget on "+url, `!!document.getElementById("microchat-widget")?.shadowRoot?.querySelector(".launcher")`)
}

// root is the widget's shadow root, in JavaScript.
const root = `document.getElementById("microchat-widget").shadowRoot`

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// in is the first element of the widget that matches a CSS selector, in
// JavaScript.
func in(sel string) string {
	return root + ".querySelector(" + jsString(sel) + ")"
}

// button is the widget's button whose aria-label, or else text, is name.
func button(name string) string {
	return `[...` + root + `.querySelectorAll("button")].find((b) => (b.getAttribute("aria-label") || b.textContent).trim() === ` + jsString(name) + `)`
}

// eval evaluates a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true, through page loads
// (an error, such as an expression evaluated while the page changes, is
// a false).
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	p.waitJSWithin(10*time.Second, what, expr)
}

// waitJSWithin is waitJS with another bound than 10 s.
func (p *page) waitJSWithin(bound time.Duration, what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(bound)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("waiting for %s: not within %v (last error: %v)\npage text: %q", what, bound, err, p.text())
}

// text is the widget's visible text (or textJS's).
func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	expr := p.textJS
	if expr == "" {
		expr = root + `.querySelector(".mc").innerText`
	}
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	return s
}

// waitText waits until the widget shows s.
func (p *page) waitText(s string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("the widget to show %q", s), root+`.querySelector(".mc").innerText.includes(`+jsString(s)+`)`)
}

// count returns how often the conversation shows s.
func (p *page) count(s string) int {
	p.t.Helper()
	return eval[int](p, root+`.querySelector(".msgs").innerText.split(`+jsString(s)+`).length - 1`)
}

// The actions below find elements with JavaScript (chromedp's node
// queries do not follow shadow roots reliably) and then act as a person
// would: real key events to the focused element, real mouse clicks at the
// element's center.

// focus focuses the element of a JavaScript expression.
func (p *page) focus(el string) {
	p.t.Helper()
	if !eval[bool](p, `(() => { const el = `+el+`; if (!el) return false; el.focus(); return true; })()`) {
		p.t.Fatalf("no element %s to focus", el)
	}
}

// keys sends key events to the element of a JavaScript expression.
func (p *page) keys(el, keys string) {
	p.t.Helper()
	p.focus(el)
	p.do("typing "+keys, chromedp.KeyEvent(keys))
}

// enter presses Enter in the focused element as a browser does when the
// page handles the keydown: kb's "\n" would add a char event, which
// Chrome turns into a line break even though the keydown was cancelled.
func (p *page) enter() {
	p.t.Helper()
	p.do("Enter", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// typeIn types text into an element of the widget.
func (p *page) typeIn(sel, text string) {
	p.t.Helper()
	p.keys(in(sel), text)
}

// click clicks el at its centre, as a person does: once el is visible
// and the point at its centre is el's (in its document or shadow root;
// or its label's), so that a layout still settling (a frame growing, a
// banner coming) does not send it elsewhere. The layout can still move
// between that check and the click (an image that loads scrolls the
// thread): a guard set in the page with the point sees where the press
// and the click land, stops them before anything in the page sees them
// when they miss el (a click in a frame never reaches the guard: a miss
// too), and the click is made again.
func (p *page) click(what, el string) {
	p.t.Helper()
	const isEl = `const isEl = (n) => n === el || (n instanceof HTMLLabelElement && (n.control === el || n.contains(el)));`
	for try := 1; ; try++ {
		p.waitJS(what+" to be visible and uncovered", `(() => {
			const el = `+el+`; if (!el) return false; `+isEl+`
			el.scrollIntoView({block: "nearest"});
			const r = el.getBoundingClientRect(); if (r.width <= 0 || r.height <= 0) return false;
			const root = el.getRootNode(), at = root.elementFromPoint ? root : document;
			const hit = at.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
			if (!hit) return false;
			return el.contains(hit) || isEl(hit.closest && hit.closest("label")); // a click on its label is a click on it
		})()`)
		xy := eval[[]float64](p, `(() => {
			window.__clickGuard?.(); // one left by a click the page did not answer
			const el = `+el+`; `+isEl+`
			// The click is el's when its click event is; a press or a
			// click elsewhere (the layout moved before the press, or
			// between the press and the release) is stopped, with what it
			// landed on. What follows el's click is the page's (a label's
			// click makes one on its control).
			let hit = false, missed = "";
			const guard = (e) => {
				if (hit) return;
				const path = e.composedPath(), on = path.some(isEl);
				if (e.type === "click" && on && !missed) hit = true;
				else if (!on && !missed && ["pointerdown", "mousedown", "click"].includes(e.type)) missed = (path[0].outerHTML || path[0].nodeName || "?").slice(0, 120);
				if (missed) {
					e.stopImmediatePropagation();
					e.preventDefault();
				}
			};
			const types = ["pointerdown", "mousedown", "pointerup", "mouseup", "click"];
			for (const t of types) window.addEventListener(t, guard, true);
			window.__clickGuard = () => {
				for (const t of types) window.removeEventListener(t, guard, true);
				delete window.__clickGuard;
				return hit ? "" : missed || "nothing in the page (a frame?)";
			};
			const r = el.getBoundingClientRect();
			return [r.x + r.width / 2, r.y + r.height / 2];
		})()`)
		p.do("clicking "+what, chromedp.MouseClickXY(xy[0], xy[1]))
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		missed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__clickGuard?.() ?? ""`))
		cancel()
		if err != nil || missed == "" {
			// On el, or the page went away: the click did what it does.
			return
		}
		if try == 5 {
			p.t.Fatalf("clicking %s: %d tries landed elsewhere, the last on %s", what, try, missed)
		}
		p.t.Logf("clicking %s: the page moved under the point, the click landed on %s; again", what, missed)
	}
}

// upload sets the files of a file input, as a person picking them would.
func (p *page) upload(el string, files []string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	obj, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](el))
	if err == nil {
		_, err = chromedp.Call(ctx, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: files, ObjectID: obj.ObjectID})
	}
	if err != nil {
		p.t.Fatalf("picking %v: %v", files, err)
	}
}

// noScriptRan fails the test if script from a user ran on the page.
func (p *page) noScriptRan() {
	p.t.Helper()
	select {
	case m := <-p.dialogs:
		p.t.Fatalf("a dialog opened (%q): script from a user ran", m)
	default:
	}
	if eval[bool](p, `window.__pwned !== undefined`) {
		p.t.Fatalf("window.__pwned is set: script from a user ran")
	}
}

// screenshot saves the viewport as name.png in the artifacts directory:
// $MICROCHAT_ARTIFACTS, or web/testdata/screenshots (git-ignored).
func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("MICROCHAT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatalf("screenshots: %v", err)
	}
	// Let the last frame paint (and the spinner be somewhere).
	time.Sleep(150 * time.Millisecond)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
}

// axNames returns the accessible names of the page's nodes, by role.
func (p *page) axNames() map[string][]string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		p.t.Fatalf("accessibility tree: %v", err)
	}
	out := map[string][]string{}
	for _, n := range res.Nodes {
		if n.Ignored || n.Role == nil || n.Name == nil {
			continue
		}
		var role, name string
		json.Unmarshal(n.Role.Value, &role)
		json.Unmarshal(n.Name.Value, &name)
		if name != "" {
			out[role] = append(out[role], name)
		}
	}
	return out
}

// server is a real Microchat server on a real SQLite database, on a
// listener of its own so that it can be stopped and started again on the
// same address (restart).
type server struct {
	t     testing.TB
	store *inbox.Store
	cfg   config.Config
	srv   *web.Server
	hs    *http.Server
	URL   string
	addr  string
}

func newServer(t testing.TB, edit func(*config.Config)) *server {
	t.Helper()
	return newServerAt(t, inboxtest.SQLiteURL(t), nil, edit)
}

// newServerAt is newServer on the database at url (inboxtest's SQLite or
// PostgreSQL), its store opened with opts.
func newServerAt(t testing.TB, url string, opts *inbox.Options, edit func(*config.Config)) *server {
	t.Helper()
	cfg := config.Defaults()
	cfg.Limits.MaxUploadBytes = 200 << 10
	// The dashboard tests log in again and again from 127.0.0.1 (after
	// each session end, as each agent): the login limit is not what they
	// test, and a slow run must not meet it (web's tests cover it).
	cfg.Limits.LoginAttemptsPerMinute = 1000
	if edit != nil {
		edit(&cfg)
	}
	s := &server{t: t, store: inboxtest.Open(t, url, opts), cfg: cfg}
	s.start("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *server) start(addr string) {
	s.t.Helper()
	var w io.Writer = io.Discard
	if os.Getenv("MICROCHAT_TEST_LOG") != "" {
		w = os.Stderr
	}
	srv, err := web.New(web.Options{Config: s.cfg, Store: s.store, Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		s.t.Fatalf("web.New() = %v", err)
	}
	var l net.Listener
	for i := 0; ; i++ {
		l, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old listener's port is being released
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	s.srv, s.addr, s.URL = srv, l.Addr().String(), "http://"+l.Addr().String()
	s.hs = &http.Server{Handler: srv.Handler()}
	go s.hs.Serve(l)
}

func (s *server) stop() {
	if s.hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	s.hs.Shutdown(ctx)
	s.hs = nil
}

// restart stops the server and starts it again on the same address and
// database after pause.
func (s *server) restart(pause func()) {
	s.t.Helper()
	s.stop()
	pause()
	s.start(s.addr)
}

// agent is an agent at the dashboard: a logged-in HTTP client and the
// agents' WebSocket.
type agent struct {
	t      testing.TB
	s      *server
	acct   inbox.Agent
	hc     *http.Client
	csrf   string
	conn   *gws.Conn
	mu     sync.Mutex
	frames []agentFrame
	more   chan struct{}
}

// agentFrame is a frame of the agents' WebSocket (docs/protocol.md).
type agentFrame struct {
	Type           string       `json:"type"`
	Event          *inbox.Event `json:"event"`
	ConversationID int64        `json:"conversation_id"`
	ContactID      int64        `json:"contact_id"`
	Typing         *bool        `json:"typing"`
	raw            string
}

func (s *server) agent(email, name string) *agent {
	s.t.Helper()
	ctx := context.Background()
	acct, err := s.store.CreateAgent(ctx, inbox.NewAgent{Email: email, Name: name, Role: inbox.RoleAgent, Password: password})
	if err != nil {
		s.t.Fatalf("CreateAgent(%s) = %v", email, err)
	}
	jar, _ := cookiejar.New(nil)
	a := &agent{t: s.t, s: s, acct: acct, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}, more: make(chan struct{}, 1)}
	var login struct {
		CSRFToken string `json:"csrf_token"`
	}
	a.call("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK, &login)
	a.csrf = login.CSRFToken

	var cookie string
	for _, c := range jar.Cookies(mustURL(s.URL)) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	conn, _, err := gws.NewClient(agentEvents{a}, &gws.ClientOption{
		Addr:          "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/ws",
		RequestHeader: http.Header{"Cookie": {cookie}},
	})
	if err != nil {
		s.t.Fatalf("agent socket: %v", err)
	}
	a.conn = conn
	go conn.ReadLoop()
	s.t.Cleanup(func() { conn.WriteClose(1000, nil) })
	a.next("hello", nil)
	return a
}

// call makes an API request as the agent and decodes the answer into out.
func (a *agent) call(method, path string, body any, want int, out any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.s.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func (a *agent) send(frame any) {
	a.t.Helper()
	b, _ := json.Marshal(frame)
	if err := a.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		a.t.Fatalf("agent socket: %v", err)
	}
}

// next returns the next frame of type typ that match accepts (nil: any),
// skipping the others, within 10 s.
func (a *agent) next(typ string, match func(agentFrame) bool) agentFrame {
	a.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		a.mu.Lock()
		for i, f := range a.frames {
			if f.Type == typ && (match == nil || match(f)) {
				a.frames = append(a.frames[:0:0], a.frames[i+1:]...)
				a.mu.Unlock()
				return f
			}
		}
		a.mu.Unlock()
		select {
		case <-a.more:
		case <-deadline:
			a.t.Fatalf("agent socket: no %q frame within 10 s", typ)
		}
	}
}

// event returns the next event of a type in a conversation.
func (a *agent) event(conv int64, typ string) inbox.Event {
	a.t.Helper()
	f := a.next("event", func(f agentFrame) bool {
		return f.Event != nil && f.Event.Type == typ && (conv == 0 || f.Event.ConversationID == conv)
	})
	return *f.Event
}

type agentEvents struct{ a *agent }

func (agentEvents) OnOpen(*gws.Conn)             {}
func (agentEvents) OnClose(*gws.Conn, error)     {}
func (agentEvents) OnPing(c *gws.Conn, b []byte) { c.WritePong(b) }
func (agentEvents) OnPong(*gws.Conn, []byte)     {}
func (e agentEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var f agentFrame
	if json.Unmarshal(m.Bytes(), &f) != nil {
		return
	}
	f.raw = string(m.Bytes())
	e.a.mu.Lock()
	e.a.frames = append(e.a.frames, f)
	e.a.mu.Unlock()
	select {
	case e.a.more <- struct{}{}:
	default:
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// site is a customer's website on another origin than the server, with
// the widget embedded from the server; csp, if set, is the pages'
// Content-Security-Policy.
func site(t *testing.T, pages map[string]string, csp string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}
