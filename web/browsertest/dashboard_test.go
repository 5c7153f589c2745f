package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The dashboard in a browser (docs/dashboard.md): its shell, the list and
// the socket behind it. The helpers below find elements of the page (no
// shadow root), and log agents in as a person would.

// q is the first element of the page matching a CSS selector, in
// JavaScript.
func q(sel string) string {
	return "document.querySelector(" + jsString(sel) + ")"
}

// pageButton is the page's button whose aria-label, or else text, is
// name.
func pageButton(scope, name string) string {
	return `[...document.querySelectorAll(` + jsString(scope+" button") + `)].find((b) => (b.getAttribute("aria-label") || b.textContent).trim() === ` + jsString(name) + `)`
}

// newAgentAccount creates an agent (or an admin) who has not logged in.
func (s *server) newAgentAccount(email, name, role string) inbox.Agent {
	s.t.Helper()
	a, err := s.store.CreateAgent(context.Background(), inbox.NewAgent{Email: email, Name: name, Role: role, Password: password})
	if err != nil {
		s.t.Fatalf("CreateAgent(%s) = %v", email, err)
	}
	return a
}

// openDashboard opens /inbox (plus hash) in a browser context of its own.
func openDashboard(t testing.TB, browser context.Context, s *server, hash string) *page {
	t.Helper()
	p := visitor(t, browser)
	logConsole(t, p)
	p.do("open the dashboard", chromedp.Navigate(s.URL+"/inbox"+hash))
	return p
}

// logConsole logs the page's console messages and uncaught exceptions in
// the test's log, for when a test fails.
func logConsole(t testing.TB, p *page) {
	logs := chromedp.Events(p.ctx, runtime.ConsoleAPICalled)
	go func() {
		for e, err := range logs {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			t.Logf("console.%s: %s", e.Type, strings.Join(parts, " "))
		}
	}()
	exceptions := chromedp.Events(p.ctx, runtime.ExceptionThrown)
	go func() {
		for e, err := range exceptions {
			if err != nil {
				return
			}
			d := e.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Logf("exception: %s %s", d.Text, desc)
		}
	}()
}

// login fills the login form and waits for the dashboard.
func (p *page) login(email string) {
	p.t.Helper()
	p.waitJS("the login form", `!document.getElementById("login").hidden`)
	p.do("clear the email", chromedp.Evaluate[chromedp.Void](`document.getElementById("email").value = ""`))
	p.keys(q("#email"), email)
	p.keys(q("#password"), password)
	p.click("Log in", pageButton("#login", "Log in"))
	ok := `document.getElementById("login").hidden && !document.getElementById("app").hidden && !document.getElementById("app").inert`
	// A refused login says why on the form: wait for either, then say it.
	p.waitJS("the dashboard or a login error", ok+` || document.getElementById("login-error").textContent !== ""`)
	if msg := eval[string](p, `document.getElementById("login-error").textContent`); msg != "" && !eval[bool](p, ok) {
		p.t.Fatalf("logging in as %s: %q", email, msg)
	}
	p.waitJS("the dashboard after logging in", ok)
}

// recorder wraps window.Notification and WebSocket before the page's
// scripts run: the notifications made are kept in window.__notes (title,
// tag, body), and the test can cut the dashboard's socket
// (window.__cut()) and keep it from reconnecting until window.__restore().
const recorder = `(() => {
	window.__notes = [];
	window.__noteObjs = [];
	const N = window.Notification;
	if (N) {
		window.Notification = class extends N {
			constructor(title, opts) {
				super(title, opts);
				window.__notes.push({ title, tag: (opts || {}).tag, body: (opts || {}).body });
				window.__noteObjs.push(this);
			}
		};
	}
	const W = window.WebSocket;
	window.__sockets = [];
	window.__offline = false;
	window.WebSocket = class extends W {
		constructor(url, protocols) {
			// Cut: the server refuses the upgrade (404).
			super(window.__offline ? String(url).replace("/api/v1/ws", "/api/v1/ws-cut") : url, protocols);
			window.__sockets.push(this);
		}
	};
	window.WebSocket.prototype.constructor = window.WebSocket;
	window.__cut = () => { window.__offline = true; for (const s of window.__sockets) s.close(); };
	window.__restore = () => { window.__offline = false; window.dispatchEvent(new Event("online")); };
})()`

// openRecorded is openDashboard with the recorder, and the notification
// permission granted to the server's origin.
func openRecorded(t testing.TB, browser context.Context, s *server, hash string) *page {
	t.Helper()
	p := visitor(t, browser)
	logConsole(t, p)
	p.do("record notifications and sockets", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: recorder})
		return err
	}))
	p.grantNotifications(s)
	p.do("open the dashboard", chromedp.Navigate(s.URL+"/inbox"+hash))
	return p
}

// grantNotifications grants the page's browser context the notification
// permission for the server, as an agent clicking "Allow" would.
func (p *page) grantNotifications(s *server) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted,
		Origin: s.URL, BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	})
	if err != nil {
		p.t.Fatalf("grant notifications: %v", err)
	}
}

// listState is what the dashboard's list shows: the column, the ids in
// order and the counts.
type listState struct {
	Column string           `json:"column"`
	IDs    []int64          `json:"ids"`
	Counts map[string]int64 `json:"counts"`
}

func (p *page) list() listState {
	p.t.Helper()
	return eval[listState](p, `window.microchat.list.state()`)
}

// serverList is the first page of a column as the server has it for the
// agent of the page (its own session).
func (p *page) serverList(column string) listState {
	p.t.Helper()
	return eval[listState](p, `window.microchat.ctx.api("GET", "/conversations?limit=50&column=`+column+`").then((r) => ({column: "`+column+`", ids: r.items.map((it) => it.id), counts: r.counts}))`)
}

// rowShown is JavaScript: the list shows conversation id.
func rowShown(id int64) string {
	return q(fmt.Sprintf(`#list li[data-id="%d"]`, id)) + " !== null"
}

// sessionCookie is the page's session cookie value.
func (p *page) sessionCookie(s *server) string {
	p.t.Helper()
	var token string
	p.do("read the session cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		cookies, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL}})
		if err != nil {
			return err
		}
		for _, c := range cookies.Cookies {
			if c.Name == s.cfg.Session.CookieName {
				token = c.Value
			}
		}
		return nil
	}))
	if token == "" {
		p.t.Fatalf("no session cookie")
	}
	return token
}

// conversation starts a chat conversation of a new contact, with a first
// message if text is not empty.
func (s *server) conversation(name, text string) int64 {
	s.t.Helper()
	ctx := context.Background()
	ct, err := s.store.CreateContact(ctx, inbox.NewContact{Name: name})
	if err != nil {
		s.t.Fatalf("CreateContact() = %v", err)
	}
	conv, err := s.store.StartConversation(ctx, ct.ID, inbox.ChannelChat, "")
	if err != nil {
		s.t.Fatalf("StartConversation() = %v", err)
	}
	if text != "" {
		s.contactSays(conv.ID, text)
	}
	return conv.ID
}

func (s *server) contactSays(id int64, text string) {
	s.t.Helper()
	if _, _, err := s.store.AddMessage(context.Background(), inbox.NewMessage{ConversationID: id, Author: inbox.AuthorContact, Text: text}); err != nil {
		s.t.Fatalf("AddMessage() = %v", err)
	}
}

// Logging in, out, and a session that ends under the agent's feet: the
// login form comes back with a message, the draft is kept, and logging in
// again lands where the agent was.
func TestDashboardSession(t *testing.T) {
	s := newServer(t, nil)
	ann := s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	s.newAgentAccount("root@example.com", "Rita Root", inbox.RoleAdmin)
	conv := s.conversation("Olga", "my printer is on fire")
	if err := s.store.Join(context.Background(), conv, ann.ID); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	browser := newBrowser(t)
	hash := fmt.Sprintf("#/c/%d", conv)

	p := openRecorded(t, browser, s, hash)
	p.login("ann@example.com")
	p.waitJS("Ann's name in the me-menu", q("#me-name")+`.textContent === "Ann Agent"`)
	p.waitJS("Ann online", q("#me-dot")+`.classList.contains("online")`)
	if eval[bool](p, `!`+q("#nav-admin")+`.hidden`) {
		t.Fatalf("an agent sees the Admin nav")
	}
	p.waitJS("the conversation current", fmt.Sprintf(`window.microchat.ctx.current() === %d`, conv))
	p.do("write a draft", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.microchat.ctx.drafts.set(%d, "half a reply")`, conv)))

	// The session ends on the server (a logout elsewhere): the socket
	// closes with 4401 and the login form comes back over the page.
	if err := s.store.DeleteSession(context.Background(), p.sessionCookie(s)); err != nil {
		t.Fatalf("DeleteSession() = %v", err)
	}
	p.waitJS("the login form after the session ended", `!document.getElementById("login").hidden && document.getElementById("login-message").textContent.includes("session has ended")`)
	if got := eval[string](p, `location.hash`); got != hash {
		t.Fatalf("hash after the session ended = %q, want %q", got, hash)
	}
	p.login("ann@example.com")
	p.waitJS("back on the conversation", fmt.Sprintf(`location.hash === %q && window.microchat.ctx.current() === %d`, hash, conv))
	if d := eval[string](p, fmt.Sprintf(`window.microchat.ctx.drafts.get(%d)`, conv)); d != "half a reply" {
		t.Fatalf("draft after logging in again = %q", d)
	}
	p.waitJS("the socket open again", `window.microchat.ctx.status() === "open"`)

	// A 401 from the API ends it too.
	if err := s.store.DeleteSession(context.Background(), p.sessionCookie(s)); err != nil {
		t.Fatalf("DeleteSession() = %v", err)
	}
	p.do("an API call", chromedp.Evaluate[chromedp.Void](`window.microchat.ctx.api("GET", "/agents").catch(() => {})`))
	p.waitJS("the login form after a 401", `!document.getElementById("login").hidden`)
	p.login("ann@example.com")

	// It ends while the socket is away: the upgrade's 401 is a plain
	// drop to the page, which asks the API.
	p.waitJS("the socket open again", `window.microchat.ctx.status() === "open" && !window.microchat.ctx.conn.catchingUp()`)
	p.do("cut the socket", chromedp.Evaluate[chromedp.Void](`window.__cut()`))
	p.waitJS("reconnecting", `window.microchat.ctx.status() === "reconnecting"`)
	if err := s.store.DeleteSession(context.Background(), p.sessionCookie(s)); err != nil {
		t.Fatalf("DeleteSession() = %v", err)
	}
	p.do("restore the socket", chromedp.Evaluate[chromedp.Void](`window.__restore()`))
	p.waitJS("the login form after a refused reconnect", `!document.getElementById("login").hidden && document.getElementById("login-message").textContent.includes("session has ended")`)
	p.login("ann@example.com")
	p.waitJS("the socket open after logging in", `window.microchat.ctx.status() === "open"`)

	// Log out from the me-menu.
	p.click("the me-menu", q("#me-button"))
	p.click("Log out", pageButton("#me-menu", "Log out"))
	p.waitJS("the login form after logging out", `!document.getElementById("login").hidden && document.getElementById("login-message").textContent === "You are logged out."`)
	if st := eval[int](p, `fetch("/api/v1/auth/session").then((r) => r.status)`); st != 401 {
		t.Fatalf("GET /auth/session after logging out = %d, want 401", st)
	}
	if d := eval[string](p, fmt.Sprintf(`window.microchat.ctx.drafts.get(%d)`, conv)); d != "half a reply" {
		t.Fatalf("draft after logging out = %q", d)
	}

	// Without the permission, a banner offers notifications until
	// dismissed.
	p.login("ann@example.com")
	p.do("reset the permission", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.ResetPermissions, cdpbrowser.ResetPermissionsParams{BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID})
		return err
	}))
	p.do("reload", chromedp.Reload())
	p.waitJS("the banner", `!document.getElementById("banner").hidden && document.getElementById("banner").textContent.includes("Enable notifications")`)
	p.click("Not now", pageButton("#banner", "Not now"))
	p.waitJS("the banner gone", `document.getElementById("banner").hidden`)
	p.do("reload", chromedp.Reload())
	p.waitJS("the dashboard again", `window.microchat?.list && window.microchat.ctx.status() === "open"`)
	if eval[bool](p, `!document.getElementById("banner").hidden`) {
		t.Fatalf("the banner is back after Not now")
	}
	if eval[bool](p, `document.querySelector("#me-items .notify-enable").hidden`) {
		t.Fatalf("no Enable notifications in the me-menu")
	}
	p.click("the me-menu", q("#me-button"))
	p.click("Log out", pageButton("#me-menu", "Log out"))
	p.waitJS("logged out", `!document.getElementById("login").hidden`)

	// An admin on the same page: the page starts afresh, with Admin.
	p.login("root@example.com")
	p.waitJS("Rita's dashboard", q("#me-name")+`.textContent === "Rita Root" && !`+q("#nav-admin")+`.hidden`)
	if d := eval[string](p, fmt.Sprintf(`window.microchat.ctx.drafts.get(%d)`, conv)); d != "" {
		t.Fatalf("Rita sees Ann's draft %q", d)
	}
}

// notes is the notifications the page made: title, tag and body.
type note struct {
	Title string `json:"title"`
	Tag   string `json:"tag"`
	Body  string `json:"body"`
}

func (p *page) notes() []note {
	p.t.Helper()
	return eval[[]note](p, `window.__notes`)
}

// A visitor's new conversation appears live in Unassigned, with one
// notification across the agent's two tabs; a JOIN takes it out of a
// colleague's Unassigned within a second; a socket cut and restored
// leaves the list equal to the server's, without notifying again what
// happened meanwhile.
func TestDashboardLive(t *testing.T) {
	s := newServer(t, nil)
	s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	s.newAgentAccount("bob@example.com", "Bob Agent", inbox.RoleAgent)
	old := s.conversation("Oscar", "an older question")
	browser := newBrowser(t)

	ann := openRecorded(t, browser, s, "")
	ann.login("ann@example.com")
	bob := openRecorded(t, browser, s, "")
	bob.login("bob@example.com")
	// Ann's second tab, opened from the first (same cookies, same Web
	// Locks); its notifications are recorded in its __notes.
	ann.do("open Ann's second tab", chromedp.Evaluate[chromedp.Void](`window.__tab2 = window.open("/inbox", "_blank"); void 0`, func(p *runtime.EvaluateParams) { yes := true; p.UserGesture = &yes }))
	ann.waitJS("Ann's second tab loaded", `!!window.__tab2?.microchat?.list && window.__tab2.microchat.ctx.status() === "open"`)
	ann.do("record the second tab's notifications", chromedp.Evaluate[chromedp.Void](`(() => {
		const w = window.__tab2;
		w.__notes = [];
		const N = w.Notification;
		w.Notification = class extends N {
			constructor(title, opts) { super(title, opts); w.__notes.push({ title, tag: (opts || {}).tag, body: (opts || {}).body }); }
		};
	})()`))
	for i, p := range []*page{ann, bob} {
		p.waitJS(fmt.Sprintf("the older conversation listed on page %d", i), rowShown(old))
		p.waitJS("the socket open and live", `window.microchat.ctx.status() === "open" && !window.microchat.ctx.conn.catchingUp()`)
	}

	// A visitor starts a chat on the website, with the real widget.
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Vera Visitor", "vera@example.com", "")
	var conv int64
	ann.waitJS("Vera's conversation in Unassigned", `[...document.querySelectorAll("#list li[data-id]")].some((li) => li.textContent.includes("Vera Visitor") && li.querySelector("button.join"))`)
	conv = eval[int64](ann, `Number([...document.querySelectorAll("#list li[data-id]")].find((li) => li.textContent.includes("Vera Visitor")).dataset.id)`)
	bob.waitJS("Vera's conversation in Bob's Unassigned", rowShown(conv))
	ann.waitJS("Unassigned counts 2", `document.querySelector('#list [role=tab][aria-label="Unassigned"] .tab-count').textContent === "2"`)
	ann.waitJS("a notification", `window.__notes.length > 0 || window.microchat && false`)
	v.send("Hello, is anyone there?")
	bob.waitJS("the preview", fmt.Sprintf(`%s.textContent.includes("Hello, is anyone there?")`, q(fmt.Sprintf(`#list li[data-id="%d"]`, conv))))
	bob.waitJS("the unread count", fmt.Sprintf(`%s?.textContent === "1"`, q(fmt.Sprintf(`#list li[data-id="%d"] .unread`, conv))))
	// One notification per event over Ann's two tabs: the conversation,
	// which its first message updated (same tag).
	ann.waitJS("the first message in the notification", `window.__notes.some((n) => n.body === "Hello, is anyone there?")`)
	annNotes := append(ann.notes(), eval[[]note](ann, `window.__tab2.__notes`)...)
	tags := map[string]int{}
	for _, n := range annNotes {
		tags[n.Tag]++
	}
	if len(annNotes) != 2 || len(tags) != 1 || annNotes[0].Title != "New conversation" {
		t.Fatalf("Ann's notifications over two tabs = %+v, want New conversation and its first message under one tag", annNotes)
	}
	// The tag names the event by conversation and seq: the live stream's
	// message events have no id, and a tag shared by every message would
	// make each notification replace another conversation's.
	if want := fmt.Sprintf("mc-ev-%d-", conv); !strings.HasPrefix(annNotes[0].Tag, want) || annNotes[0].Tag == want+"0" {
		t.Fatalf("tag = %q, want %s<seq>", annNotes[0].Tag, want)
	}
	bob.waitJS("Bob's notification", `window.__notes.some((n) => n.title === "New conversation")`)
	bob.do("click the notification", chromedp.Evaluate[chromedp.Void](`window.__noteObjs[0].onclick(); void 0`))
	bob.waitJS("the conversation open on Bob's dashboard", fmt.Sprintf(`location.hash === "#/c/%d" && window.microchat.ctx.current() === %d`, conv, conv))
	// A tab in the background takes no screenshot.
	ann.do("close the second tab", chromedp.Evaluate[chromedp.Void](`window.__tab2.close(); void 0`))
	ann.screenshot("dashboard-unassigned")

	// Ann joins: the row leaves Bob's Unassigned within a second.
	ann.click("JOIN", fmt.Sprintf(`%s.querySelector("button.join")`, q(fmt.Sprintf(`#list li[data-id="%d"]`, conv))))
	start := time.Now()
	bob.waitJS("the row gone from Bob's Unassigned", `!(`+rowShown(conv)+`)`)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the JOIN reached Bob's list after %v, want within a second", d)
	} else {
		t.Logf("JOIN click to the row gone from Bob's Unassigned: %v (including the test's polling)", d)
	}
	ann.waitJS("Ann on the conversation", fmt.Sprintf(`location.hash === "#/c/%d"`, conv))
	bob.waitJS("Bob's Unassigned counts 1", `document.querySelector('#list [role=tab][aria-label="Unassigned"] .tab-count').textContent === "1"`)
	ann.click("Mine", pageButton("#list", "Mine"))
	ann.waitJS("the conversation in Mine", rowShown(conv))

	// Bob's socket is cut. Meanwhile Vera writes again, Oscar writes in
	// Unassigned (which notifies Bob when live), a new conversation starts
	// and Oscar's is joined by Ann.
	bobNotes := len(bob.notes())
	bob.do("cut the socket", chromedp.Evaluate[chromedp.Void](`window.__cut()`))
	bob.waitJS("Bob reconnecting", `window.microchat.ctx.status() === "reconnecting"`)
	s.contactSays(conv, "while Bob was away")
	s.contactSays(old, "Oscar again, in Unassigned, while Bob was away")
	fresh := s.conversation("Nina", "a question while Bob was away")
	if err := s.store.Join(context.Background(), old, eval[int64](ann, `window.microchat.ctx.me().id`)); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	bob.do("restore the socket", chromedp.Evaluate[chromedp.Void](`window.__restore()`))
	bob.waitJS("Bob live again", `window.microchat.ctx.status() === "open" && !window.microchat.ctx.conn.catchingUp()`)
	bob.waitJS("Nina's conversation listed", rowShown(fresh))
	bob.waitJS("Oscar's gone from Unassigned", `!(`+rowShown(old)+`)`)
	want := bob.serverList("unassigned")
	got := bob.list()
	if fmt.Sprint(got.IDs) != fmt.Sprint(want.IDs) || fmt.Sprint(got.Counts) != fmt.Sprint(want.Counts) {
		t.Fatalf("Bob's list after the reconnect = %+v, the server's = %+v", got, want)
	}
	for _, col := range []string{"open", "closed", "mine"} {
		bob.click(col, `[...document.querySelectorAll("#list [role=tab]")][`+map[string]string{"mine": "1", "open": "2", "closed": "3"}[col]+`]`)
		bob.waitJS(col+" shown", `window.microchat.list.state().column === "`+col+`" && !document.querySelector("#list .list-error").textContent`)
		want, got := bob.serverList(col), bob.list()
		bob.waitJS(col+" loaded", fmt.Sprintf(`window.microchat.list.state().ids.length === %d`, len(want.IDs)))
		got = bob.list()
		if fmt.Sprint(got.IDs) != fmt.Sprint(want.IDs) || fmt.Sprint(got.Counts) != fmt.Sprint(want.Counts) {
			t.Fatalf("Bob's %s after the reconnect = %+v, the server's = %+v", col, got, want)
		}
	}
	// What happened while away is caught up, not notified.
	if n := bob.notes(); len(n) != bobNotes {
		t.Fatalf("notifications after the reconnect = %+v, want none new", n[bobNotes:])
	}
	// Live again: the next visitor notifies once.
	bob.click("Unassigned", pageButton("#list", "Unassigned"))
	next := s.conversation("Paul", "")
	bob.waitJS("Paul's conversation listed", rowShown(next))
	bob.waitJS("one notification for Paul", fmt.Sprintf(`window.__notes.length === %d`, bobNotes+1))

	// The two window sizes the dashboard is made for.
	for _, size := range [][2]int64{{1440, 900}, {1280, 720}} {
		ann.do("resize", chromedp.EmulateViewport(size[0], size[1]))
		ann.screenshot(fmt.Sprintf("dashboard-%dx%d", size[0], size[1]))
	}
}

// ordering.js, the per-conversation order the widget and the dashboard
// share, run in the browser as the pages load it: duplicates dropped,
// events after a gap held until it fills (or onGap), a resync held until
// reset, cursors for a resume.
func TestSharedOrdering(t *testing.T) {
	s := newServer(t, nil)
	p := openDashboard(t, newBrowser(t), s, "")
	p.waitJS("the login form", `!document.getElementById("login").hidden`)
	got := eval[string](p, `import("/static/shared/ordering.js").then(async ({ createOrdering }) => {
		const gaps = [];
		const o = createOrdering((id) => gaps.push(id));
		const ev = (c, seq) => ({ conversation_id: c, seq, type: "x" });
		const seqs = (evs) => evs.map((e) => e.seq).join(",");
		const out = [];
		const check = (what, got, want) => { if (String(got) !== String(want)) out.push(what + ": " + got + ", want " + want); };
		check("first event of an unknown conversation", seqs(o.take(ev(1, 10))), "10");
		check("the next", seqs(o.take(ev(1, 11))), "11");
		check("a duplicate", seqs(o.take(ev(1, 11))), "");
		check("an old one", seqs(o.take(ev(1, 3))), "");
		check("after a gap", seqs(o.take(ev(1, 13))), "");
		check("the gap filled", seqs(o.take(ev(1, 12))), "12,13");
		check("a transient event", seqs(o.take({ conversation_id: 1, seq: 0, type: "typing" })), "0");
		o.reset(2, 5);
		check("at the loaded seq", seqs(o.take(ev(2, 5))), "");
		check("after the loaded seq", seqs(o.take(ev(2, 6))), "6");
		o.resync(2);
		check("held during a resync", seqs(o.take(ev(2, 7)).concat(o.take(ev(2, 8)))), "");
		check("cursors leave out a resync", JSON.stringify(o.cursors()), JSON.stringify({ 1: 13 }));
		check("reset releases what follows the load", seqs(o.reset(2, 7)), "8");
		check("cursors", JSON.stringify(o.cursors()), JSON.stringify({ 1: 13, 2: 8 }));
		o.forget(2);
		check("a forgotten conversation starts afresh", seqs(o.take(ev(2, 1))), "1");
		check("a gap that stays", seqs(o.take(ev(1, 20))), "");
		const t0 = Date.now();
		while (!gaps.length && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
		check("onGap", gaps.join(","), "1");
		check("held after the gap's report", seqs(o.take(ev(1, 21))), "");
		check("reset after the reload", seqs(o.reset(1, 19)), "20,21");
		o.clear();
		check("clear", JSON.stringify(o.cursors()), "{}");
		// The widget's stream skips the seq of private notes: nothing waits.
		const w = createOrdering(() => gaps.push(-1), { gaps: true });
		check("gaps: first", seqs(w.take(ev(5, 3))), "3");
		check("gaps: after a skip", seqs(w.take(ev(5, 6))), "6");
		check("gaps: an older one", seqs(w.take(ev(5, 4))), "");
		check("gaps: cursor", JSON.stringify(w.cursors()), JSON.stringify({ 5: 6 }));
		return out.join("; ");
	})`)
	if got != "" {
		t.Fatalf("ordering.js: %s", got)
	}
}

// shortIdle makes the session answers say idle_after_seconds: 1, as a
// server configured with agents.idle_after: 1s would.
const shortIdle = `(() => {
	const f = window.fetch;
	window.fetch = async (url, opts) => {
		const r = await f(url, opts);
		if (!/\/api\/v1\/auth\/(session|login)$/.test(String(url)) || !r.ok) return r;
		const body = await r.json();
		return new Response(JSON.stringify({ ...body, idle_after_seconds: 1 }), { status: r.status, headers: r.headers });
	};
})()`

// An agent with no activity for idle_after_seconds becomes idle, and
// online again at the next mouse move; another tab in use keeps them
// online.
func TestDashboardIdle(t *testing.T) {
	s := newServer(t, nil)
	acct := s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	p := visitor(t, newBrowser(t))
	logConsole(t, p)
	p.do("short idle time", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: shortIdle})
		return err
	}))
	p.do("open the dashboard", chromedp.Navigate(s.URL+"/inbox"))
	p.login("ann@example.com")
	presence := func() string {
		a, err := s.store.Agent(context.Background(), acct.ID)
		if err != nil {
			t.Fatalf("Agent() = %v", err)
		}
		return a.Presence
	}
	inboxtest.Eventually(t, "Ann idle", func() bool { return presence() == inbox.PresenceIdle })
	p.waitJS("the idle dot", q("#me-dot")+`.classList.contains("idle")`)
	p.do("move the mouse", chromedp.MouseClickXY(600, 400))
	inboxtest.Eventually(t, "Ann online again", func() bool { return presence() == inbox.PresenceOnline })
	p.waitJS("the online dot", q("#me-dot")+`.classList.contains("online")`)

	// A second tab in use keeps her online: this one hears of it.
	p.do("open a second tab", chromedp.Evaluate[chromedp.Void](`window.__tab2 = window.open("/inbox", "_blank"); void 0`, func(p *runtime.EvaluateParams) { yes := true; p.UserGesture = &yes }))
	p.waitJS("the second tab live", `window.__tab2?.microchat?.ctx.status() === "open"`)
	p.do("the second tab's short idle time", chromedp.Evaluate[chromedp.Void](`(() => {
		const ctx = window.__tab2.microchat.ctx, session = ctx.session;
		ctx.session = () => ({ ...session(), idle_after_seconds: 1 });
		window.__tab2.dispatchEvent(new Event("keydown"));
	})()`))
	inboxtest.Eventually(t, "Ann online with the second tab", func() bool { return presence() == inbox.PresenceOnline })
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		p.do("activity in the second tab", chromedp.Evaluate[chromedp.Void](`window.__tab2.dispatchEvent(new Event("keydown")); void 0`))
		if got := presence(); got != inbox.PresenceOnline {
			t.Fatalf("presence while the second tab is in use = %q", got)
		}
	}
	p.do("close the second tab", chromedp.Evaluate[chromedp.Void](`window.__tab2.close(); void 0`))
	inboxtest.Eventually(t, "Ann idle without the second tab", func() bool { return presence() == inbox.PresenceIdle })
}

// The list pages as it scrolls, and the keyboard moves through it: j/k,
// Enter, "/" for the search, "?" for the help; keys typed in a text field
// are text, not shortcuts.
func TestDashboardKeyboardAndPaging(t *testing.T) {
	s := newServer(t, nil)
	s.newAgentAccount("ann@example.com", "Ann Agent", inbox.RoleAgent)
	var ids []int64
	for i := range 60 {
		ids = append(ids, s.conversation(fmt.Sprintf("Visitor %02d", i), fmt.Sprintf("question %d", i)))
	}
	p := openDashboard(t, newBrowser(t), s, "")
	p.login("ann@example.com")
	p.waitJS("the first page", `document.querySelectorAll("#list li[data-id]").length === 50`)
	if n := eval[string](p, `document.querySelector('#list [role=tab][aria-label="Unassigned"] .tab-count').textContent`); n != "60" {
		t.Fatalf("Unassigned count = %s, want 60", n)
	}
	p.do("scroll to the end", chromedp.Evaluate[chromedp.Void](`document.querySelector("#list .list-scroll").scrollTop = 1e6`))
	p.waitJS("the second page", `document.querySelectorAll("#list li[data-id]").length === 60`)
	if got, want := eval[[]int64](p, `window.microchat.list.state().ids`), p.serverIDs("unassigned", 100); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list = %v, server = %v", got, want)
	}

	p.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	for _, k := range "jjkj" {
		p.press(string(k))
	}
	second := ids[len(ids)-2] // newest first
	p.waitJS("the second row focused", fmt.Sprintf(`document.activeElement.closest("li")?.dataset.id === "%d"`, second))
	p.enter()
	p.waitJS("the second conversation open", fmt.Sprintf(`location.hash === "#/c/%d" && window.microchat.ctx.current() === %d`, second, second))

	// A key typed as a driver types it (keyDown with its text): the
	// shortcut moves the focus, and its own character lands nowhere.
	p.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.do("typing /", chromedp.KeyEvent("/"))
	p.waitJS("the search focused", `document.activeElement === document.querySelector('input[aria-label="Search"]')`)
	if v := eval[string](p, `document.querySelector('input[aria-label="Search"]').value`); v != "" {
		t.Fatalf("search box = %q after the / shortcut, want it empty", v)
	}
	p.do("type j in the search", chromedp.KeyEvent("jk"))
	if v := eval[string](p, `document.querySelector('input[aria-label="Search"]').value`); v != "jk" {
		t.Fatalf("search box = %q, want the keys as text", v)
	}
	p.do("Escape", chromedp.KeyEvent(kb.Escape))

	// Search: the contact's name and a message's words, through the
	// server's index; Escape gives the column back.
	searchFor := func(text string) {
		p.do("search "+text, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector('input[aria-label="Search"]'); s.value = %q; s.dispatchEvent(new Event("input")); })()`, text)))
	}
	searchFor("visitor 07")
	p.waitJS("one result by name", `(() => { const r = [...document.querySelectorAll("#list li[data-id]")]; return r.length === 1 && r[0].textContent.includes("Visitor 07"); })()`)
	searchFor("question 59")
	p.waitJS("one result by message text", `(() => { const r = [...document.querySelectorAll("#list li[data-id]")]; return r.length === 1 && r[0].textContent.includes("Visitor 59") && r[0].textContent.includes("question 59"); })()`)
	searchFor("nothingmatcheszzz")
	p.waitJS("no result", `document.querySelectorAll("#list li[data-id]").length === 0 && document.querySelector("#list").textContent.includes("No conversation matches")`)
	p.do("Escape", chromedp.Evaluate[chromedp.Void](`document.querySelector('input[aria-label="Search"]').dispatchEvent(new KeyboardEvent("keydown", {key: "Escape"}))`))
	p.waitJS("the column again", `document.querySelectorAll("#list li[data-id]").length >= 50`)

	// r from a focused message: the message box gets the focus, not the r.
	p.do("focus a row", chromedp.Evaluate[chromedp.Void](`document.querySelector("#list li[data-id] a").focus()`))
	p.do("typing r", chromedp.KeyEvent("r"))
	p.waitJS("the message box focused", `document.activeElement === document.querySelector('#thread textarea[aria-label="Message"]')`)
	if v := eval[string](p, `document.querySelector('#thread textarea[aria-label="Message"]').value`); v != "" {
		t.Fatalf("message box = %q after the r shortcut, want it empty", v)
	}
	p.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.press("?")
	p.waitJS("the shortcut help", `document.querySelector("dialog.shortcut-help").open`)
	p.do("Escape", chromedp.KeyEvent(kb.Escape))
	p.waitJS("the help closed", `!document.querySelector("dialog.shortcut-help").open`)
	p.press("2")
	p.waitJS("Mine shown", `window.microchat.list.state().column === "mine"`)
}

// serverIDs is the ids of a column on the server, newest first.
func (p *page) serverIDs(column string, limit int) []int64 {
	p.t.Helper()
	return eval[[]int64](p, fmt.Sprintf(`window.microchat.ctx.api("GET", "/conversations?limit=%d&column=%s").then((r) => r.items.map((it) => it.id))`, limit, column))
}

// press presses a key whose keydown the page handles, as a browser does
// then: a keydown without the character event that would type it.
func (p *page) press(key string) {
	p.t.Helper()
	p.do("pressing "+key, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: key}); err != nil {
				return err
			}
		}
		return nil
	}))
}
