package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
)

// TestWidgetOnSites puts the widget on the websites of issue 11: a site
// that must hide it or stack a modal above it, one that swaps its body,
// a single-page site, a right-to-left one, a phone held sideways, and a
// visitor whose message the server refuses or cannot store. Each subtest
// has a server of its own.
func TestWidgetOnSites(t *testing.T) {
	browser := newBrowser(t)
	t.Run("hide and stack", func(t *testing.T) { testHideAndStack(t, browser) })
	t.Run("launcher closes", func(t *testing.T) { testLauncherCloses(t, browser) })
	t.Run("body replaced", func(t *testing.T) { testBodyReplaced(t, browser) })
	t.Run("single-page site", func(t *testing.T) { testSinglePageViews(t, browser) })
	t.Run("right to left", func(t *testing.T) { testRightToLeft(t, browser) })
	t.Run("phone sideways", func(t *testing.T) { testPhoneSideways(t, browser) })
	t.Run("long message", func(t *testing.T) { testLongMessage(t, browser) })
	t.Run("chat ended, reloaded", func(t *testing.T) { testEndedReload(t, browser) })
	t.Run("refused and unavailable", func(t *testing.T) { testRefusedAndUnavailable(t, browser) })
	t.Run("typing expiry", func(t *testing.T) { testTypingExpiry(t, browser) })
	t.Run("too many connections", func(t *testing.T) { testTooManyConnections(t, browser) })
	t.Run("frame too large", func(t *testing.T) { testFrameTooLarge(t, browser) })
	t.Run("closed on a message", func(t *testing.T) { testClosedOnMessage(t, browser) })
	t.Run("refused closes back off", func(t *testing.T) { testRefusedClosesBackOff(t, browser) })
	t.Run("renamed agent, reloaded", func(t *testing.T) { testRenamedReload(t, browser) })
	t.Run("server errors as they are", func(t *testing.T) { testServerErrorText(t, browser) })
}

// widgetTag embeds the widget of server s.
func widgetTag(s *server) string {
	return `<script src="` + s.URL + `/widget.js" async></script>`
}

// shown reports, in JavaScript, whether the launcher is rendered.
const shown = `(` + root + `.querySelector(".launcher").getBoundingClientRect().width > 0)`

// testHideAndStack: a site hides the widget with the documented custom
// property and with Microchat.hide(), and stacks it under its own modal,
// while its loud CSS for every div and for the host element does not
// reach in.
func testHideAndStack(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	origin := site(t, map[string]string{"/": `<!doctype html><html><head><title>Modal</title><style>
		div, #microchat-widget { display: none !important; z-index: 0 !important; opacity: 0 !important; }
		html.modal-open #microchat-widget { --microchat-display: none; }
		html.stacked #microchat-widget { --microchat-z-index: 10; }
		</style></head><body><p>A site with a modal.</p>` + widgetTag(s) + `</body></html>`}, "")
	v := visitor(t, browser)
	v.navigate(origin + "/")
	if !eval[bool](v, shown) {
		t.Fatalf("the launcher is not shown: the page's CSS reached in")
	}
	v.do("opening the modal", chromedp.Evaluate[chromedp.Void](`document.documentElement.classList.add("modal-open")`))
	v.waitJS("the launcher hidden by --microchat-display", `!`+shown)
	v.do("closing the modal", chromedp.Evaluate[chromedp.Void](`document.documentElement.classList.remove("modal-open")`))
	v.waitJS("the launcher back", shown)

	v.do("stacking", chromedp.Evaluate[chromedp.Void](`document.documentElement.classList.add("stacked")`))
	if z := eval[string](v, `getComputedStyle(`+in(".launcher-wrap")+`).zIndex + " " + getComputedStyle(`+in(".panel")+`).zIndex`); z != "10 10" {
		t.Fatalf("z-index with --microchat-z-index: 10 = %q", z)
	}

	v.do("Microchat.hide()", chromedp.Evaluate[chromedp.Void](`Microchat.open(); Microchat.hide()`))
	v.waitJS("the widget hidden by Microchat.hide()", `!`+shown+` && `+in(".panel")+`.getBoundingClientRect().width === 0`)
	v.do("Microchat.show()", chromedp.Evaluate[chromedp.Void](`Microchat.show()`))
	v.waitJS("the widget back with its panel open", shown+` && `+in(".panel")+`.getBoundingClientRect().width > 0`)
}

// testLauncherCloses: while the panel is open on a desktop, the launcher
// is its close control, named "Close chat", and says "Live Chat" again
// once the panel is closed.
func testLauncherCloses(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	v.click("Live Chat", button("Live Chat"))
	v.waitText("Start Chat")
	names := v.axNames()["button"]
	if !contains(names, "Close chat") || contains(names, "Live Chat") {
		t.Fatalf("buttons with the panel open: %q, want Close chat and no Live Chat", names)
	}
	if txt := eval[string](v, in(".launcher")+`.innerText.trim()`); txt != "" {
		t.Fatalf("the launcher reads %q beside the open panel", txt)
	}
	v.click("Close chat", button("Close chat"))
	v.waitJS("the panel to close", in(".panel")+`.hidden && `+root+`.activeElement === `+in(".launcher"))
	if !contains(v.axNames()["button"], "Live Chat") || eval[string](v, in(".launcher")+`.innerText.trim()`) != "Live Chat" {
		t.Fatalf("the launcher does not say Live Chat again once the panel is closed")
	}
}

// testBodyReplaced: a Turbo-like site swaps document.body after the chat
// started, and runs the widget's script again: the widget is still there,
// once, with the conversation, and still sends.
func testBodyReplaced(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	origin := site(t, map[string]string{"/": `<!doctype html><html><head><title>Turbo</title></head><body><p>Page one.</p>` + widgetTag(s) + `</body></html>`}, "")
	v := visitor(t, browser)
	v.navigate(origin + "/")
	startChat(v, "Tess Turbo", "", "")
	conv := alice.event(0, inbox.EventConversationCreated).ConversationID
	v.send("before the swap")
	v.waitText("Sent")

	v.do("replacing the body", chromedp.Evaluate[chromedp.Void](`(() => { const b = document.createElement("body"); b.innerHTML = "<p>Page two.</p>"; document.body.replaceWith(b); })()`))
	v.waitJS("the widget in the new body", `document.body.contains(document.getElementById("microchat-widget"))`)
	v.waitText("before the swap")
	v.do("running the script again", chromedp.Evaluate[chromedp.Void](`(() => { const b = document.createElement("body"); document.documentElement.replaceChild(b, document.body);
		const s = document.createElement("script"); s.onload = () => (window.__rerun = true); s.src = `+jsString(s.URL+"/widget.js")+`; document.head.append(s); })()`))
	v.waitJS("the script run again", `window.__rerun === true`)
	v.waitJS("one widget in the body", `document.querySelectorAll("#microchat-widget").length === 1 && document.body.contains(document.getElementById("microchat-widget"))`)
	v.waitText("before the swap")
	v.send("after the swap")
	alice.next("event", func(f agentFrame) bool {
		var m inbox.MessageAdded
		return f.Event.Type == inbox.EventMessageAdded && f.Event.ConversationID == conv && f.Event.Decode(&m) == nil && m.Message.Text == "after the swap"
	})
}

// testSinglePageViews: a single-page site changes its URL with
// history.pushState (and sets the title after); each change is a page
// view, before Start Chat and after it.
func testSinglePageViews(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	origin := site(t, map[string]string{"/": `<!doctype html><html><head><title>Home</title></head><body><p>An app.</p>` + widgetTag(s) + `</body></html>`}, "")
	v := visitor(t, browser)
	v.navigate(origin + "/")
	go_ := func(path, title string) {
		v.do("pushState "+path, chromedp.Evaluate[chromedp.Void](`history.pushState({}, "", `+jsString(path)+`); document.title = `+jsString(title)))
	}
	go_("/before", "Before chatting")
	startChat(v, "Sam Spa", "", "")
	created := alice.event(0, inbox.EventConversationCreated)
	var cc inbox.ConversationCreated
	if err := created.Decode(&cc); err != nil {
		t.Fatal(err)
	}
	v.waitJS("the socket", in(".conn")+`.textContent === "" && `+in("#mc-text")+` !== null`)
	go_("/pricing", "Pricing")
	go_("/checkout", "Checkout")
	v.do("back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	want := []string{
		origin + "/ Home",
		origin + "/before Before chatting",
		origin + "/pricing Pricing",
		origin + "/checkout Checkout",
		origin + "/pricing Checkout", // back: the title is the page's, which the app did not change
	}
	var got []string
	eventually(t, "the page views", func() bool {
		var d struct {
			PageViews []inbox.PageView `json:"page_views"`
		}
		alice.call("GET", fmt.Sprintf("/api/v1/contacts/%d", cc.Contact.ID), nil, 200, &d)
		got = got[:0]
		for i := len(d.PageViews) - 1; i >= 0; i-- {
			got = append(got, d.PageViews[i].URL+" "+d.PageViews[i].Title)
		}
		return strings.Join(got, "|") == strings.Join(want, "|")
	})
}

// testRightToLeft: on a right-to-left page, the widget's interface stays
// left to right, and each message and the message box take the direction
// of their own text.
func testRightToLeft(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	origin := site(t, map[string]string{"/": `<!doctype html><html dir="rtl" lang="ar"><head><title>RTL</title></head><body><p>مرحبا</p>` + widgetTag(s) + `</body></html>`}, "")
	v := visitor(t, browser)
	v.navigate(origin + "/")
	startChat(v, "Rami", "", "")
	const arabic = "مرحبا، هل يمكنك المساعدة؟"
	v.do("Arabic in the message box", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = `+jsString(arabic)+`; `+in("#mc-text")+`.dispatchEvent(new Event("input"))`))
	if d := eval[string](v, `getComputedStyle(`+in("#mc-text")+`).direction`); d != "rtl" {
		t.Errorf("the message box with Arabic text is %s, want rtl", d)
	}
	v.focus(in("#mc-text"))
	v.enter()
	v.send("Hello, can you help?")
	v.waitJS("both messages", root+`.querySelectorAll("li.contact:not(.pending) .text").length === 2`)
	got := eval[[]string](v, `[...`+root+`.querySelectorAll("li.contact .text")].map((p) => p.getAttribute("dir") + " " + getComputedStyle(p).direction)`)
	if strings.Join(got, "|") != "auto rtl|auto ltr" {
		t.Errorf("the bubbles' dir and direction = %q, want auto rtl, auto ltr", got)
	}
	if d := eval[string](v, `getComputedStyle(`+in(".mc")+`).direction + " " + getComputedStyle(`+in(".title")+`).direction`); d != "ltr ltr" {
		t.Errorf("the widget's interface on a rtl page is %s, want ltr", d)
	}
	if d := eval[string](v, in("#mc-text")+`.getAttribute("dir")`); d != "auto" {
		t.Errorf("the message box has dir %q, want auto", d)
	}
}

// testPhoneSideways: a touch screen 844 px wide (an iPhone held sideways)
// gets 16 px inputs, which iOS does not zoom into.
func testPhoneSideways(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.do("landscape phone", chromedp.EmulateViewport(844, 390, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(3)))
	v.navigate(s.URL + "/")
	if !eval[bool](v, `matchMedia("(any-pointer: coarse)").matches && innerWidth === 844`) {
		t.Fatalf("the emulation is not a touch screen 844 px wide")
	}
	v.do("Microchat.open()", chromedp.Evaluate[chromedp.Void](`Microchat.open()`))
	v.waitText("Start Chat")
	sizes := `[...` + root + `.querySelectorAll("input:not([type=radio]), textarea")].filter((e) => !e.hidden && e.type !== "file").map((e) => (e.id || e.type) + " " + getComputedStyle(e).fontSize)`
	for _, sz := range eval[[]string](v, sizes) {
		if !strings.HasSuffix(sz, " 16px") {
			t.Errorf("on a touch screen 844 px wide: %s, want 16px", sz)
		}
	}
	v.do("Microchat.close()", chromedp.Evaluate[chromedp.Void](`Microchat.close()`))
	startChat(v, "Ian Phone", "", "")
	if sz := eval[string](v, `getComputedStyle(`+in("#mc-text")+`).fontSize`); sz != "16px" {
		t.Errorf("the message box on a touch screen 844 px wide: %s, want 16px", sz)
	}
}

// testLongMessage: a message over the server's limit in bytes (6,000 CJK
// characters are 18,000 bytes, over 16 KiB) stays in the message box with
// the reason, and nothing is sent.
func testLongMessage(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Chen Long", "", "")
	alice.event(0, inbox.EventConversationCreated)
	long := strings.Repeat("中", 6000)
	v.do("a long message", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = `+jsString(long)+`; `+in("#mc-text")+`.dispatchEvent(new Event("input"))`))
	v.focus(in("#mc-text"))
	v.enter()
	v.waitText("Your message is too long to send (18 KB; up to 16 KB)")
	if got := eval[string](v, in("#mc-text")+`.value`); got != long {
		t.Fatalf("the message box holds %d characters after a refused message, want the 6000 typed", len([]rune(got)))
	}
	if n := eval[int](v, root+`.querySelectorAll("li.contact").length`); n != 0 {
		t.Fatalf("%d messages shown for a message that was not sent", n)
	}
	// It was not sent: the next message is the first the agent sees.
	v.do("clearing", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = ""`))
	v.send("short")
	ev := alice.event(0, inbox.EventMessageAdded)
	var m inbox.MessageAdded
	if ev.Decode(&m) != nil || m.Message.Text != "short" {
		t.Fatalf("the agents got %s first, want the short message", ev.Data)
	}
}

// testEndedReload: the lines about the conversation (an agent joined and
// left, the chat ended) and the rating form are the same after a reload
// as they were live; and an error in the rating form does not move the
// panel.
func testEndedReload(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	bob := s.agent("bob@example.com", "Bob Berg")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Lena Lines", "", "")
	conv := alice.event(0, inbox.EventConversationCreated).ConversationID
	v.send("my order is late")
	alice.event(conv, inbox.EventMessageAdded)
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "Let me check."}, 201, nil)
	bob.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/leave", conv), nil, 200, nil)
	// Enough for the conversation to scroll.
	for i := range 12 {
		bob.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": fmt.Sprintf("Checking %d...", i)}, 201, nil)
	}
	bob.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "It ships today."}, 201, nil)
	bob.call("POST", fmt.Sprintf("/api/v1/conversations/%d/leave", conv), nil, 200, nil)
	v.waitText("How would you rate this chat?")
	v.waitText("Bob Berg left the chat")
	lines := `[...` + root + `.querySelectorAll(".msgs > li")].map((li) => li.className.replace(" pending", "") + ": " + li.innerText.replace(/\d\d:\d\d/g, "").replace(/\s+/g, " ").trim())`
	live := eval[[]string](v, lines)
	for _, want := range []string{"Alice Moreau joined the chat", "Bob Berg joined the chat", "Alice Moreau left the chat", "Bob Berg left the chat", "The chat has ended"} {
		if !strings.Contains(strings.Join(live, "|"), want) {
			t.Fatalf("live, the conversation is %q, without %q", live, want)
		}
	}

	// Send rating without a star: the error shows, and the panel keeps
	// its header and status strip where they were.
	head := `(() => { const p = ` + in(".panel") + `.getBoundingClientRect(), h = ` + in(".head") + `.getBoundingClientRect(), s = ` + in(".status") + `.getBoundingClientRect();
		return [h.top - p.top, s.top - p.top, ` + in(".panel") + `.scrollTop, ` + in(".body") + `.scrollTop, ` + in(".chat") + `.scrollTop]; })()`
	before := eval[[]float64](v, head)
	v.click("Send rating", button("Send rating"))
	v.waitText("Please choose a rating from 1 to 5 stars.")
	after := eval[[]float64](v, head)
	if fmt.Sprint(before) != fmt.Sprint(after) || after[0] != 0 {
		t.Fatalf("the header, status strip and scroll offsets moved from %v to %v after a rating error", before, after)
	}

	v.do("reload", chromedp.Reload())
	v.waitText("How would you rate this chat?")
	v.waitText("It ships today.")
	if reloaded := eval[[]string](v, lines); strings.Join(reloaded, "|") != strings.Join(live, "|") {
		t.Fatalf("after a reload the conversation is\n%q\nwas\n%q", reloaded, live)
	}
}

// fakeTime makes a page's timers and Date.now run only when the test
// advances them (__advance(ms)), and records the widget's sockets
// (__sockets, each with the frames it received in __frames) and the
// frames it sends (__sent). A message whose text
// starts with UNAVAILABLE or INVALID is not sent: the socket answers it
// with that error frame, as the server does. One that starts with TOOBIG
// closes the socket with 1009, as the server does on a frame over 64 KiB;
// one that starts with DROPPED closes it with 1006 (no close frame), as
// the browser sees the server's close on such a frame. The socket's
// waits for the server (socket.js) are out of reach: the test's clock
// runs ahead of the real server's answers, which would never come in
// time (TestHungServer tests them).
const fakeTime = `<script>
window.__microchatSocketTimes = { pong: 1e9, hello: 1e9, ack: 1e9 };
(() => {
	let now = Date.now(), next = 0;
	const timers = new Map();
	Date.now = () => now;
	const add = (fn, ms, every) => { const id = ++next; timers.set(id, {at: now + Math.max(0, +ms || 0), fn, every: every ? Math.max(1, +ms || 0) : 0}); return id; };
	window.setTimeout = (fn, ms) => add(fn, ms, false);
	window.setInterval = (fn, ms) => add(fn, ms, true);
	window.clearTimeout = window.clearInterval = (id) => timers.delete(id);
	window.__advance = (ms) => {
		const end = now + ms;
		for (;;) {
			let id = 0, t = null;
			for (const [i, x] of timers) if (x.at <= end && (!t || x.at < t.at)) { id = i; t = x; }
			if (!t) break;
			now = t.at;
			if (t.every) t.at += t.every; else timers.delete(id);
			t.fn();
		}
		now = end;
	};
	const Real = WebSocket;
	window.__sockets = [];
	window.__sent = [];
	window.WebSocket = class extends Real {
		constructor(...a) {
			super(...a);
			__sockets.push(this);
			this.__frames = [];
			this.addEventListener("message", (e) => this.__frames.push(JSON.parse(e.data)));
		}
		send(d) {
			const f = JSON.parse(d);
			__sent.push(f);
			const c = f.type === "message" && /^(TOOBIG|DROPPED)/.exec(f.text);
			if (c) {
				const h = this.onclose;
				this.onclose = null;
				super.close();
				Promise.resolve().then(() => h({code: c[1] === "TOOBIG" ? 1009 : 1006}));
				return;
			}
			const m = f.type === "message" && /^(UNAVAILABLE|INVALID)/.exec(f.text);
			if (!m) return super.send(d);
			const code = m[1].toLowerCase();
			Promise.resolve().then(() => this.onmessage({data: JSON.stringify({type: "error", code, client_id: f.client_id, error: code === "invalid" ? "text must not contain a NUL byte" : "the database is unavailable"})}));
		}
	};
})();
</script>`

// fakeTimeSite is a page with fakeTime and the widget of s.
func fakeTimeSite(t *testing.T, s *server) string {
	return site(t, map[string]string{"/": `<!doctype html><html><head><title>Clock</title>` + fakeTime + `</head><body><p>A page.</p>` + widgetTag(s) + `</body></html>`}, "")
}

// sends counts, in JavaScript, the message frames sent with text.
func sends(text string) string {
	return `__sent.filter((f) => f.type === "message" && f.text === ` + jsString(text) + `).length`
}

// testRefusedAndUnavailable: a message the server refuses (invalid) is
// shown as not sent at once, never sent again, and its text goes back to
// the message box; one it cannot store (unavailable) is sent again with
// backoff, 1, 2, 4, 8, 16 s (at least half of each, for the jitter), five
// times, and then shown as not sent with its text kept.
func testRefusedAndUnavailable(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Una Vailable", "", "")

	v.send("INVALID text")
	v.waitText("Not sent: text must not contain a NUL byte.")
	v.waitJS("the text back in the box", in("#mc-text")+`.value === "INVALID text"`)
	if n := eval[int](v, `(__advance(60000), `+sends("INVALID text")+`)`); n != 1 {
		t.Fatalf("an invalid message was sent %d times, want once", n)
	}
	v.do("clearing", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = ""`))

	const text = "UNAVAILABLE for now"
	v.send(text)
	for i := range 5 {
		base := 1000 << i
		v.waitJS(fmt.Sprintf("retry %d scheduled", i+1), sends(text)+` === `+fmt.Sprint(i+1)+` && JSON.parse(sessionStorage.getItem(`+jsString("microchat:"+s.URL+":outbox")+`))?.[0]?.tries === `+fmt.Sprint(i+1))
		if n := eval[int](v, fmt.Sprintf(`(__advance(%d), %s)`, base/2-1, sends(text))); n != i+1 {
			t.Fatalf("retry %d came before %d ms", i+1, base/2)
		}
		if n := eval[int](v, fmt.Sprintf(`(__advance(%d), %s)`, base/2+100, sends(text))); n != i+2 {
			t.Fatalf("retry %d did not come within %d ms: %d sends", i+1, base+100, n)
		}
	}
	v.waitText("Not sent: The server could not store it; please try again.")
	v.waitJS("the text back in the box", in("#mc-text")+`.value === `+jsString(text))
	if n := eval[int](v, `(__advance(60000), `+sends(text)+`)`); n != 6 {
		t.Fatalf("an unavailable message was sent %d times in all, want 6 (5 retries)", n)
	}
}

// testTypingExpiry: the widget says the visitor is typing at most every
// 5 s while they type, and drops an agent's indicator 10 s after its last
// typing: true.
func testTypingExpiry(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Tim Typing", "", "")
	conv := alice.event(0, inbox.EventConversationCreated).ConversationID
	v.waitJS("the socket's hello", `__sockets.at(-1).__frames.some((f) => f.type === "hello")`)
	typings := `__sent.filter((f) => f.type === "typing" && f.typing).length`
	v.typeIn("#mc-text", "a")
	v.waitJS("typing: true", typings+` === 1`)
	v.do("3 s", chromedp.Evaluate[chromedp.Void](`__advance(3000)`))
	v.typeIn("#mc-text", "b")
	v.do("2.1 s", chromedp.Evaluate[chromedp.Void](`__advance(2100)`))
	if n := eval[int](v, typings); n != 1 {
		t.Fatalf("%d typing: true frames within 5 s, want 1", n)
	}
	v.typeIn("#mc-text", "c")
	v.waitJS("typing: true renewed after 5 s", typings+` === 2`)

	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	v.waitText("Alice Moreau joined the chat")
	received := `__sockets.at(-1).__frames.filter((f) => f.type === "typing").length`
	alice.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	v.waitText("Alice Moreau is typing...")
	v.do("6 s", chromedp.Evaluate[chromedp.Void](`__advance(6000)`))
	alice.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	v.waitJS("the renewal", received+` === 2`)
	if !eval[bool](v, `(__advance(9900), `+root+`.querySelector(".scroll > .typing").textContent.includes("is typing"))`) {
		t.Fatalf("the agent's indicator went before 10 s after its renewal: %s", eval[string](v, `JSON.stringify(__sockets.at(-1).__frames)`))
	}
	if eval[bool](v, `(__advance(200), `+root+`.querySelector(".scroll > .typing").textContent.includes("is typing"))`) {
		t.Fatalf("the agent's indicator is still on 10 s after its last typing: true")
	}
}

// testTooManyConnections: after close 4429 the widget waits at least 30 s
// before it opens another socket, even when the browser says it is back
// online, and again after a second 4429.
func testTooManyConnections(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Cara Caps", "", "")
	v.send("hello")
	v.waitText("Sent")
	refuse := `(() => { const s = __sockets.at(-1), h = s.onclose; s.onclose = null; s.close(); h({code: 4429}); return __sockets.length; })()`
	for round := range 2 {
		n := eval[int](v, refuse)
		v.do("online", chromedp.Evaluate[chromedp.Void](`window.dispatchEvent(new Event("online"))`))
		if got := eval[int](v, `(__advance(29999), __sockets.length)`); got != n {
			t.Fatalf("round %d: %d new sockets within 30 s of close 4429", round, got-n)
		}
		if got := eval[int](v, `(__advance(30002), __sockets.length)`); got != n+1 {
			t.Fatalf("round %d: %d new sockets within 60 s of close 4429, want 1", round, got-n)
		}
		v.waitJS("the new socket open", `__sockets.at(-1).readyState === 1 && !`+root+`.querySelector(".mc").innerText.includes("Reconnecting...")`)
	}
}

// outbox is, in JavaScript, the messages the widget of s keeps to send.
func outbox(s *server) string {
	return `JSON.parse(sessionStorage.getItem(` + jsString("microchat:"+s.URL+":outbox") + `) || "[]")`
}

// testFrameTooLarge: 12,000 control characters and "hello" are 12,005
// bytes of text, under the 16 KiB limit, but 72 KB as the JSON frame that
// sends them, over the server's 64 KiB: the widget refuses it as too long
// and sends nothing; and one such message kept from before (an older
// widget's outbox) is shown as not sent after a reload, never sent.
func testFrameTooLarge(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Cora Control", "", "")
	v.waitJS("the socket's hello", `__sockets.at(-1).__frames.some((f) => f.type === "hello")`)
	text := strings.Repeat("\x01", 12000) + "hello"
	v.do("control characters in the box", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = `+jsString(text)+`; `+in("#mc-text")+`.dispatchEvent(new Event("input"))`))
	v.focus(in("#mc-text"))
	v.enter()
	v.waitText("Your message is too long to send (70 KB as sent; up to 64 KB)")
	if got := eval[string](v, in("#mc-text")+`.value`); got != text {
		t.Fatalf("the message box holds %d characters after a refused message, want the %d typed", len(got), len(text))
	}
	if n := eval[int](v, `(__advance(60000), `+sends(text)+` + `+root+`.querySelectorAll("li.contact").length + `+outbox(s)+`.length)`); n != 0 {
		t.Fatalf("a message whose frame is over 64 KiB was sent, shown or kept (%d)", n)
	}

	// An outbox from before this check: shown as not sent, text in the box.
	v.do("an old outbox", chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem(`+jsString("microchat:"+s.URL+":outbox")+`, JSON.stringify([{client_id: "0123456789abcdef0123456789abcdef", text: `+jsString(text)+`, attachments: []}])); sessionStorage.removeItem(`+jsString("microchat:"+s.URL+":draft")+`)`))
	v.do("reload", chromedp.Reload())
	v.waitText("Not sent: Your message is too long to send.")
	v.waitJS("the text back in the box", in("#mc-text")+`.value === `+jsString(text))
	v.waitJS("the socket's hello", `__sockets.at(-1)?.__frames.some((f) => f.type === "hello")`)
	if n := eval[int](v, `(__advance(60000), `+sends(text)+` + `+outbox(s)+`.length)`); n != 0 {
		t.Fatalf("the kept message was sent or kept (%d)", n)
	}
}

// testClosedOnMessage: the server closes the socket with 1009 on the
// message just sent: the widget shows it as not sent, gives its text back
// to the message box, drops it from its outbox, and does not send it
// again when it reconnects. A message the socket closes on with no close
// code (1006) is sent on 3 connections, then shown as not sent.
func testClosedOnMessage(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Tobi Big", "", "")
	v.waitJS("the socket's hello", `__sockets.at(-1).__frames.some((f) => f.type === "hello")`)
	const text = "TOOBIG for the server"
	v.send(text)
	v.waitText("Not sent: Your message is too long to send.")
	v.waitJS("the text back in the box", in("#mc-text")+`.value === `+jsString(text))
	if n := eval[int](v, outbox(s)+`.length`); n != 0 {
		t.Fatalf("the message is still in the outbox after close 1009")
	}
	// Reconnected: the message is not sent again.
	v.do("the backoff", chromedp.Evaluate[chromedp.Void](`__advance(30000)`))
	v.waitJS("a new socket's hello", `__sockets.length === 2 && __sockets[1].__frames.some((f) => f.type === "hello")`)
	if n := eval[int](v, sends(text)); n != 1 {
		t.Fatalf("the message the server closed the socket on was sent %d times, want once", n)
	}

	const dropped = "DROPPED on the way"
	v.do("clearing", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = ""`))
	v.send(dropped)
	for i := 1; i <= 3; i++ {
		v.waitJS(fmt.Sprintf("send %d", i), sends(dropped)+` === `+fmt.Sprint(i))
		if i < 3 {
			v.do("the backoff", chromedp.Evaluate[chromedp.Void](`__advance(30000)`))
		}
	}
	v.waitText("Not sent: The connection closed each time it was sent; please try again.")
	v.waitJS("the text back in the box", in("#mc-text")+`.value === `+jsString(dropped))
	n := eval[int](v, `(__advance(30000), __sockets.length)`)
	v.waitJS("a new socket's hello", `__sockets.length === `+fmt.Sprint(n)+` && __sockets.at(-1).__frames.some((f) => f.type === "hello")`)
	if n := eval[int](v, sends(dropped)+` * 10 + `+outbox(s)+`.length`); n != 30 {
		t.Fatalf("a message the socket closed on 3 times: %d sends, %d kept; want 3 and none", n/10, n%10)
	}
}

// testRefusedClosesBackOff: closes 1009 in a row, each after the server's
// hello, are followed by reconnects with a growing backoff (0.5, 1, 2 s,
// at most; Math.random is fixed at 0.99 here), not by a new socket within
// 0.5 s each time.
func testRefusedClosesBackOff(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(fakeTimeSite(t, s) + "/")
	startChat(v, "Rhea Retry", "", "")
	v.do("fixing Math.random", chromedp.Evaluate[chromedp.Void](`Math.random = () => 0.99`))
	refuse := `(() => { const s = __sockets.at(-1), h = s.onclose; s.onclose = null; s.close(); h({code: 1009}); return __sockets.length; })()`
	for round := range 3 {
		v.waitJS("the socket's hello", `__sockets.at(-1).readyState === 1 && __sockets.at(-1).__frames.some((f) => f.type === "hello")`)
		delay := 0.99 * float64(int(500)<<round)
		n := eval[int](v, refuse)
		if got := eval[int](v, fmt.Sprintf(`(__advance(%d), __sockets.length)`, int(delay)-5)); got != n {
			t.Fatalf("round %d: a new socket within %d ms of close 1009, want the backoff of %.0f ms", round, int(delay)-5, delay)
		}
		if got := eval[int](v, `(__advance(10), __sockets.length)`); got != n+1 {
			t.Fatalf("round %d: %d new sockets %.0f ms after close 1009, want 1", round, got-n, delay+5)
		}
	}
}

// testRenamedReload: an agent joins as "admin", renames themselves, and
// writes: their message carries the new name live and after a reload,
// while the line of the join keeps the name they joined with.
func testRenamedReload(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	admin := s.agent("admin@example.com", "admin")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Rita Rename", "", "")
	conv := admin.event(0, inbox.EventConversationCreated).ConversationID
	admin.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	v.waitText("admin joined the chat")
	admin.call("PATCH", "/api/v1/agents/me", map[string]any{"name": "Dana from Support"}, 200, nil)
	admin.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "new name msg"}, 201, nil)
	lines := `[...` + root + `.querySelectorAll(".msgs > li")].map((li) => li.innerText.replace(/\d\d?:\d\d( [AP]M)?/g, "").replace(/\s+/g, " ").trim()).join("|")`
	want := "admin joined the chat|Dana from Support new name msg"
	v.waitJS("the message with the new name", lines+` === `+jsString(want))
	v.do("reload", chromedp.Reload())
	v.waitText("new name msg")
	if got := eval[string](v, lines); got != want {
		t.Fatalf("after a reload the conversation is %q, want %q", got, want)
	}
}

// testServerErrorText: the server's error texts are shown as they are:
// a field's error under its field names the field once, and one that
// starts with a MIME type keeps its case.
func testServerErrorText(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	v.click("Live Chat", button("Live Chat"))
	v.waitJS("the pre-chat form", root+`.activeElement === `+in("#mc-name"))
	v.do("a name with a NUL", chromedp.Evaluate[chromedp.Void](in("#mc-name")+`.value = "Nu\u0000ll"`))
	v.click("Start Chat", button("Start Chat"))
	v.waitJS("the name's error", in("#mc-name-err")+`.textContent !== ""`)
	if got := eval[string](v, in("#mc-name-err")+`.textContent`); got != "must not contain NUL characters." {
		t.Fatalf("the name's error reads %q, want %q", got, "must not contain NUL characters.")
	}

	v.do("a name", chromedp.Evaluate[chromedp.Void](in("#mc-name")+`.value = "Elf Owner"`))
	v.click("Start Chat", button("Start Chat"))
	v.waitText("Waiting for support staff...")
	elf := writeFile(t, t.TempDir(), "tool", append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 200)...))
	v.upload(in("input[type=file]"), []string{elf})
	v.waitText("\u201ctool\u201d cannot be sent. application/x-elf: programs are not accepted")
}
