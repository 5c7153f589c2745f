package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestDashboardFlow is the whole browser flow of issue 13 ("Browser
// tests"), in that order, as one story against a real server, on SQLite
// and on PostgreSQL: log in; a visitor on the demo page starts a chat; it
// appears in Unassigned with a notification; JOIN, and it leaves a second
// agent's Unassigned within a second; reply, and the visitor sees it and
// the agent online; typing and read state both ways; a private note the
// visitor never sees; Leave Conversation; the visitor rates and the
// rating shows in Reports > Operators; the visitor writes again and the
// conversation is back in Unassigned; an email conversation with its
// envelope and sanitized HTML; script in a visitor's name and message
// does not run; the agent's socket cut and restored leaves the list equal
// to the server's without a duplicate notification; the admin deletes the
// conversation. On the way it logs how long a visitor's message takes to
// reach the agent's screen (p50, p99 of 200), and saves the main screens
// when MICROCHAT_SCREENSHOTS names a directory (docs/screens/).
func TestDashboardFlow(t *testing.T) {
	browser := newBrowser(t)
	inboxtest.Run(t, func(t *testing.T, url string) { testDashboardFlow(t, browser, url) })
}

// flowDashboard opens /inbox for an agent in a browser context of their
// own, notifications recorded (window.__notes) and permitted through the
// driver, the socket cuttable (window.__cut, __restore), the page
// focused as a person's would be; shot saves the login page first.
func (s *server) flowDashboard(browser context.Context, acct inbox.Agent, shot string) *dash {
	s.t.Helper()
	p := openRecorded(s.t, browser, s, "")
	p.do("stamp the socket's frames", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: frameClock})
		return err
	}), chromedp.Reload())
	p.textJS = `document.body.innerText`
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		s.t.Fatalf("focus emulation: %v", err)
	}
	if shot != "" {
		p.waitJS("the login form", `!document.getElementById("login").hidden`)
		p.screens(shot)
	}
	p.login(acct.Email)
	d := &dash{page: p, s: s, acct: acct}
	d.waitJSWithin(40*time.Second, "the dashboard live", `window.microchat?.ctx.status() === "open" && !window.microchat.ctx.conn.catchingUp() && !!document.querySelector("#thread.thread-view")`)
	return d
}

// frameClock stamps, before the page's own handlers run, when each frame
// of its sockets carrying a message "lat N" (flowLatency) arrived:
// window.__wsAt[N], in performance.timeOrigin + performance.now() ms.
const frameClock = `(() => {
	window.__wsAt = {};
	const W = window.WebSocket;
	window.WebSocket = class extends W {
		constructor(url, protocols) {
			super(url, protocols);
			this.addEventListener("message", (e) => {
				const m = typeof e.data === "string" && /"text":"lat (\d+)"/.exec(e.data);
				if (m && !(m[1] in window.__wsAt)) window.__wsAt[m[1]] = performance.timeOrigin + performance.now();
			});
		}
	};
})()`

// screens saves the viewport at the two sizes the dashboard is made for
// as NAME-1440x900.png and NAME-1280x720.png in $MICROCHAT_SCREENSHOTS,
// and does nothing without it (so that a test run rewrites no committed
// picture). The viewport is 1440x900 afterwards.
func (p *page) screens(name string) {
	p.t.Helper()
	dir := os.Getenv("MICROCHAT_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatalf("screenshots: %v", err)
	}
	for _, sz := range [][2]int64{{1280, 720}, {1440, 900}} {
		p.do("resize", chromedp.EmulateViewport(sz[0], sz[1]))
		// Two frames: the layout of the new size, painted.
		eval[bool](p, `new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))`)
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			p.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, sz[0], sz[1])), b, 0o644); err != nil {
			p.t.Fatalf("screenshot %s: %v", name, err)
		}
	}
}

// rowNamed is JavaScript: the list's row whose contact name is name.
func rowNamed(name string) string {
	return `[...document.querySelectorAll("#list li[data-id]")].find((li) => li.querySelector(".conv-name")?.textContent === ` + jsString(name) + `)`
}

// column shows a column of the list and waits until it is loaded.
func (d *dash) column(label, key string) {
	d.t.Helper()
	d.click(label, pageButton("#list", label))
	d.waitJS(label+" shown", `window.microchat.list.state().column === `+jsString(key))
}

// nav follows a link of the topbar and waits for its view.
func (d *dash) nav(name, view string) {
	d.t.Helper()
	d.click(name, `[...document.querySelectorAll(".topbar .nav a")].find((a) => a.textContent.trim() === `+jsString(name)+`)`)
	d.waitJS(name+" shown", `!document.getElementById(`+jsString(view)+`).hidden`)
}

func testDashboardFlow(t *testing.T, browser context.Context, url string) {
	ctx := context.Background()
	s := newServerAt(t, url, nil, func(c *config.Config) {
		// The latency run sends 200 messages in a few seconds.
		c.Widget.RateLimits.MessagesPerMinute = 0
		c.Widget.RateLimits.MessagesPerMinutePerIP = 0
	})
	aliceAcct := s.newAgentAccount("alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	bobAcct := s.newAgentAccount("bob@example.com", "Bob Martin", inbox.RoleAgent)
	// A team's day: a few conversations already there.
	background := []int64{
		s.conversation("Liam Chen", "Is the Cedar Two tent in stock in green?"),
		s.conversation("Sofia Rossi", "My order #4410 has not shipped yet"),
		s.conversation("Noah Williams", "Do you rent kayaks for a weekend?"),
	}

	// Log in: two agents, Alice (an admin) and Bob.
	alice := s.flowDashboard(browser, aliceAcct, "login")
	bob := s.flowDashboard(browser, bobAcct, "")
	for _, d := range []*dash{alice, bob} {
		d.waitJS("the list", rowShown(background[0]))
		// One list query at boot: the socket's first hello loads it.
		if n := eval[int](d.page, `performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/v1/conversations?")).length`); n != 1 {
			t.Fatalf("%d list requests at boot, want 1", n)
		}
	}

	// A visitor on the demo page starts a chat: it appears in
	// Unassigned, with a notification.
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	const name = "Vera Visitor"
	startChat(v, name, "", "")
	alice.waitJS("the visitor in Unassigned with JOIN", `window.microchat.list.state().column === "unassigned" && !!(`+rowNamed(name)+`)?.querySelector("button.join")`)
	conv := eval[int64](alice.page, `Number((`+rowNamed(name)+`).dataset.id)`)
	alice.waitJS("the notification", `window.__notes.some((n) => n.title === "New conversation" && n.body === `+jsString(name)+`)`)
	hello := "Hello, the pole of my tent snapped. Can you fix it?"
	v.send(hello)
	alice.waitJS("the message in the row", fmt.Sprintf(`%s?.textContent.includes(%s)`, q(fmt.Sprintf(`#list li[data-id="%d"]`, conv)), jsString(hello)))

	// JOIN: the row leaves Bob's Unassigned within a second (the time,
	// from the click in Alice's page to the row's removal in Bob's, is
	// logged).
	bob.waitJS("the visitor in Bob's Unassigned", rowShown(conv))
	bob.do("watch Bob's list", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		window.__goneAt = 0;
		const o = new MutationObserver(() => {
			if (!document.querySelector('#list li[data-id="%d"]')) { window.__goneAt = performance.timeOrigin + performance.now(); o.disconnect(); }
		});
		o.observe(document.getElementById("list"), {childList: true, subtree: true});
	})()`, conv)))
	join := fmt.Sprintf(`%s.querySelector("button.join")`, q(fmt.Sprintf(`#list li[data-id="%d"]`, conv)))
	alice.do("stamp the click", chromedp.Evaluate[chromedp.Void](join+`.addEventListener("click", () => { window.__joinAt = performance.timeOrigin + performance.now(); }, {capture: true, once: true})`))
	alice.click("JOIN", join)
	bob.waitJSWithin(time.Second, "the row gone from Bob's Unassigned within a second", `!(`+rowShown(conv)+`)`)
	t.Logf("JOIN in Alice's page to the row leaving Bob's Unassigned: %.0f ms (bound 1 s)", eval[float64](bob.page, `window.__goneAt`)-eval[float64](alice.page, `window.__joinAt`))
	alice.waitJS("the conversation open", fmt.Sprintf(`(() => { const t = document.getElementById("thread"); return t.dataset.id === "%d" && t.dataset.state === "ready"; })()`, conv))
	alice.waitJS("the visitor's message", msgWith(hello)+`?.classList.contains("author-contact")`)
	alice.waitJS("Leave Conversation", `!!(`+pageButton("#thread", "Leave Conversation")+`)`)
	// Next to the visitor's name, on its line, in a 1280 px window.
	alice.do("1280x720", chromedp.EmulateViewport(1280, 720))
	if dy := eval[float64](alice.page, `(() => {
		const name = document.querySelector("#thread .contact-name").getBoundingClientRect();
		const leave = (`+pageButton("#thread", "Leave Conversation")+`).getBoundingClientRect();
		return Math.abs((leave.top + leave.bottom) - (name.top + name.bottom)) / 2;
	})()`); dy > 8 {
		t.Fatalf("Leave Conversation is %v px off the name's line at 1280x720", dy)
	}
	alice.do("1440x900", chromedp.EmulateViewport(1440, 900))

	// Reply: the visitor sees it, with the agent's name, online.
	reply := "Hi Vera, I am sorry to hear that. Which tent is it?"
	alice.write(reply)
	v.waitText(reply)
	v.waitJS("the agent's name", root+`.querySelector(".agent-name")?.textContent === "Alice Moreau"`)
	v.waitJS("the agent online", root+`.querySelector(".presence")?.textContent.includes("online")`)

	// Read state both ways: the visitor's open chat reads the reply, and
	// Alice's open conversation reads the visitor's message.
	alice.waitJS("the reply read", msgWith(reply)+`?.querySelector(".state-text")?.textContent === "Read"`)
	v.waitText("Seen")

	// Typing both ways.
	v.typeIn("#mc-text", "A Cedar Two")
	alice.waitJS("the visitor typing", `(() => { const t = document.querySelector("#thread .typing"); return !!t && !t.hidden && t.textContent === `+jsString(name+" is typing…")+`; })()`)
	v.enter()
	alice.waitJS("the visitor's second message", msgWith("A Cedar Two")+` !== undefined`)
	alice.waitJS("the typing gone", `document.querySelector("#thread .typing").hidden`)
	alice.keys(composer, "Bring it in, we fix it today.")
	v.waitText("Alice Moreau is typing...")
	alice.enter()
	v.waitText("Bring it in, we fix it today.")
	v.waitJS("the agent's typing gone", `!`+root+`.querySelector(".mc").innerText.includes("is typing")`)
	alice.waitJS("the second reply read", msgWith("Bring it in, we fix it today.")+`?.querySelector(".state-text")?.textContent === "Read"`)

	// A private note, which the visitor never sees, not even after the
	// next reply or a reload.
	const noteText = "Loyal customer: repair for free"
	alice.channel("note")
	alice.write(noteText)
	alice.waitJS("the note", `(() => { const m = `+msgWith(noteText)+`; return !!m && m.classList.contains("note") && !!m.dataset.messageId; })()`)
	alice.channel("auto")
	alice.write("The repair is on us.")
	v.waitText("The repair is on us.")
	v.do("reload the visitor's page", chromedp.Reload())
	v.waitText("The repair is on us.")
	if strings.Contains(v.text(), noteText) {
		t.Fatalf("the widget shows the private note:\n%s", v.text())
	}

	// The inbox as an agent sees it all day: the list, the conversation,
	// the visitor panel.
	alice.waitJS("the visitor panel", `document.getElementById("visitor").dataset.contact !== undefined && !!document.querySelector("#visitor .vp-pages")`)
	alice.screens("inbox")

	// Speed: 200 visitor messages, each timed from the visitor's Enter to
	// its line in Alice's thread (in the DOM, and the next frame).
	flowLatency(t, alice, v)

	// Leave Conversation: the visitor is asked to rate, and rates.
	alice.click("Leave Conversation", pageButton("#thread", "Leave Conversation"))
	alice.waitJS("the conversation closed", `document.getElementById("thread").innerText.includes("The conversation was closed")`)
	v.waitText("How would you rate this chat?")
	v.click("5 stars", in("label[for=mc-score-5]"))
	v.typeIn("#mc-comment", "Fixed in a day, thank you!")
	v.click("Send rating", button("Send rating"))
	v.waitText("Thank you for your feedback!")

	// The rating shows in Reports > Operators.
	alice.nav("Reports", "view-reports")
	row := fmt.Sprintf(`#view-reports tr[data-agent="%d"]`, aliceAcct.ID)
	alice.waitJS("the rating in Reports > Operators", pageButton("#view-reports", "Operators")+` !== undefined && `+q(row+" td.ratings")+`?.textContent === "1" && `+q(row+" td.average")+`?.textContent === "5.00"`)
	alice.waitJS("the chart", `document.querySelectorAll("#view-reports svg.chart rect").length > 0`)
	alice.screens("reports")
	alice.nav("Admin", "view-admin")
	alice.waitJS("the agents", q("#view-admin table.agents")+` !== null && document.getElementById("view-admin").innerText.includes("Bob Martin")`)
	// Each cell a table cell: no other module's style reshapes them.
	if d := eval[[]string](alice.page, `[...document.querySelectorAll("#view-admin table.agents td")].map((td) => getComputedStyle(td).display).filter((d) => d !== "table-cell")`); len(d) != 0 {
		t.Fatalf("admin table cells displayed as %v", d)
	}
	alice.screens("admin")

	// The visitor writes again, while Alice is on Admin: back in
	// Unassigned for both agents, with the new message, unread (Alice's
	// conversation was still the one shown, but she did not see it).
	again := "One more thing: do you rent stoves?"
	v.send(again)
	v.waitText("Waiting for support staff...")
	bob.waitJS("the message in Bob's list", fmt.Sprintf(`%s?.textContent.includes(%s)`, q(fmt.Sprintf(`#list li[data-id="%d"]`, conv)), jsString(again)))
	alice.nav("Conversations", "view-conversations")
	alice.column("Unassigned", "unassigned")
	for _, d := range []*dash{alice, bob} {
		d.waitJS("the conversation back in Unassigned", q(fmt.Sprintf(`#list li[data-id="%d"] button.join`, conv))+` !== null`)
		d.waitJS("the new message in the row", fmt.Sprintf(`%s?.textContent === %s`, q(fmt.Sprintf(`#list li[data-id="%d"] .conv-preview`, conv)), jsString(again)))
	}
	alice.waitJS("one unread for Alice", q(fmt.Sprintf(`#list li[data-id="%d"] .unread`, conv))+`?.textContent === "1"`)

	// An email conversation: the envelope in the list and on the
	// message, its HTML sanitized in a sandboxed frame.
	html := `<p>The zip of my <b>sleeping bag</b> broke.</p><script>top.__pwned = 1</script><img src="x" onerror="top.__pwned = 1"><a href="javascript:top.__pwned=1">link</a>`
	raw := []byte("From: Ann Customer <ann@customer.test>\r\nTo: support@example.com\r\nSubject: Broken zip\r\nMessage-ID: <zip1@customer.test>\r\n\r\nThe zip of my sleeping bag broke.\r\n")
	mail, err := s.store.IngestEmail(ctx, inbox.IncomingEmail{
		Mailbox: "support", Folder: "INBOX", MessageID: "zip1@customer.test", RawHash: fmt.Sprintf("%x", raw[:16]),
		From: inbox.Address{Name: "Ann Customer", Addr: "ann@customer.test"}, To: []inbox.Address{{Addr: "support@example.com"}},
		Recipients: []string{"support@example.com"}, Subject: "Broken zip", Date: time.Now(),
		Text: "The zip of my sleeping bag broke.", FullText: "The zip of my sleeping bag broke.", HTML: html, FullHTML: html, Raw: raw,
	})
	if err != nil {
		t.Fatalf("IngestEmail() = %v", err)
	}
	alice.waitJS("the envelope in the list", q(fmt.Sprintf(`#list li[data-id="%d"] .envelope[aria-label="Email"]`, mail.ConversationID))+` !== null`)
	alice.click("the email conversation", q(fmt.Sprintf(`#list li[data-id="%d"] .conv-link`, mail.ConversationID)))
	msg := fmt.Sprintf(`document.querySelector('#thread [data-message-id="%d"]')`, mail.MessageID)
	frame := msg + `?.querySelector("iframe.email-html[sandbox]")`
	alice.waitJS("the email with its envelope", msg+`?.classList.contains("email") && !!`+msg+`.querySelector(".envelope[aria-label=Email]") && `+msg+`.querySelector(".subject")?.textContent === "Broken zip"`)
	alice.waitJS("the sanitized HTML in its frame", frame+`?.srcdoc.includes("<b>sleeping bag</b>")`)
	doc := eval[string](alice.page, frame+`.srcdoc`)
	for _, bad := range []string{"<script", "onerror", "javascript:"} {
		if strings.Contains(doc, bad) {
			t.Fatalf("the email's frame holds %q:\n%s", bad, doc)
		}
	}
	// Its frame holds all of it: a paragraph and a line after it are
	// 10+14+21+14+21+10 = 90 px in the frame's style (emailview.js).
	if h := eval[float64](alice.page, frame+`.getBoundingClientRect().height`); h < 90 {
		t.Fatalf("the email's frame is %v px high, its text 90", h)
	}
	alice.screens("email")
	if sandbox := eval[string](alice.page, frame+`.getAttribute("sandbox")`); strings.Contains(sandbox, "allow-scripts") || strings.Contains(sandbox, "allow-same-origin") {
		t.Fatalf("the email frame's sandbox is %q", sandbox)
	}

	// Script in a visitor's name and message is text, in both agents'
	// pages and in the visitor's.
	const xssName = `Eve <img src=x onerror="window.__pwned=1">`
	const xssText = `Hi <script>window.__pwned=2</script><img src=x onerror="window.__pwned=3"> there`
	eve := visitor(t, browser)
	eve.navigate(s.URL + "/")
	startChat(eve, xssName, "", "")
	eve.send(xssText)
	alice.waitJS("Eve's row, her name as text", `(`+rowNamed(xssName)+`)?.textContent.includes(`+jsString(xssText)+`)`)
	bob.waitJS("Eve's row in Bob's list", `!!(`+rowNamed(xssName)+`)`)
	eveConv := eval[int64](alice.page, `Number((`+rowNamed(xssName)+`).dataset.id)`)
	alice.open(eveConv)
	alice.waitJS("Eve's message as text", msgWith(xssText)+` !== undefined && document.querySelector("#thread .contact-name")?.textContent === `+jsString(xssName))
	alice.waitJS("Eve in the visitor panel", q("#visitor .vp-name")+`?.textContent === `+jsString(xssName))
	for _, p := range []*page{alice.page, bob.page, v, eve} {
		if n := eval[int](p, `document.querySelectorAll('img[src="x"], img[src$="/x"]').length`); n != 0 {
			t.Fatalf("%d images made of user text", n)
		}
		p.noScriptRan()
	}

	// The socket cut and restored: meanwhile a conversation starts,
	// another gets a message and one is joined; afterwards the list is the
	// server's, and what happened meanwhile notified nothing.
	notes := len(alice.notes())
	alice.do("cut the socket", chromedp.Evaluate[chromedp.Void](`window.__cut()`))
	alice.waitJS("reconnecting", `window.microchat.ctx.status() === "reconnecting"`)
	fresh := s.conversation("Mia Novak", "Are your stoves gas or alcohol?")
	s.contactSays(background[1], "Any news on my order?")
	if err := s.store.Join(ctx, background[2], bobAcct.ID); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	alice.do("restore the socket", chromedp.Evaluate[chromedp.Void](`window.__restore()`))
	alice.waitJS("live again", `window.microchat.ctx.status() === "open" && !window.microchat.ctx.conn.catchingUp()`)
	alice.waitJS("the new conversation listed", rowShown(fresh))
	alice.waitJS("the joined one gone from Unassigned", `!(`+rowShown(background[2])+`)`)
	for _, col := range [][2]string{{"Unassigned", "unassigned"}, {"All open", "open"}, {"Closed", "closed"}, {"Mine", "mine"}} {
		alice.column(col[0], col[1])
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			want, got := alice.serverList(col[1]), alice.list()
			if fmt.Sprint(got.IDs) == fmt.Sprint(want.IDs) && fmt.Sprint(got.Counts) == fmt.Sprint(want.Counts) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the reconnect = %+v, the server's = %+v", col[0], got, want)
			}
		}
	}
	if n := alice.notes(); len(n) != notes {
		t.Fatalf("notifications of the catch-up: %+v", n[notes:])
	}
	alice.column("Unassigned", "unassigned")
	next := s.conversation("Paul Durand", "")
	alice.waitJS("a live one notified once", fmt.Sprintf(`window.__notes.length === %d`, notes+1))
	alice.waitJS("the live one listed", rowShown(next))
	seen := map[note]bool{}
	for _, n := range alice.notes() {
		if seen[n] {
			t.Fatalf("notification %+v shown twice", n)
		}
		seen[n] = true
	}

	// The admin deletes the conversation, after confirming.
	alice.open(conv)
	alice.click("Delete conversation", pageButton("#thread", "Delete conversation"))
	alice.waitJS("the confirmation", `!!document.querySelector("#thread dialog.confirm")?.open`)
	alice.click("Delete", pageButton("#thread dialog.confirm", "Delete"))
	alice.waitJS("the conversation gone", `document.getElementById("thread").innerText.includes("This conversation was deleted.") && !(`+rowShown(conv)+`)`)
	bob.waitJS("gone from Bob's list", `!(`+rowShown(conv)+`)`)
	if _, err := s.store.Conversation(ctx, conv); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("Conversation() after Delete = %v, want ErrNotFound", err)
	}
	for _, p := range []*page{alice.page, bob.page, v, eve} {
		p.noScriptRan()
	}
}

// flowLatency sends 200 messages from the visitor's widget, 30 ms apart,
// and logs how long each took from the visitor's Enter to its line in the
// agent's open thread: when the line was added to the DOM, and the frame
// after (on screen). Both pages stamp performance.timeOrigin +
// performance.now(), one clock on one machine. Logged, not asserted (the
// issue's target: 100 ms at p99).
func flowLatency(t *testing.T, d *dash, v *page) {
	t.Helper()
	const n = 200
	d.do("watch the thread", chromedp.Evaluate[chromedp.Void](`(() => {
		window.__inDOM = {}; window.__onScreen = {};
		const stamp = () => performance.timeOrigin + performance.now();
		const o = new MutationObserver((muts) => {
			const at = stamp();
			for (const m of muts) for (const node of m.addedNodes) {
				if (node.nodeType !== 1) continue;
				for (const el of node.matches(".msg") ? [node] : node.querySelectorAll(".msg")) {
					const k = /^lat (\d+)$/.exec(el.querySelector(".text")?.textContent || "");
					if (!k || k[1] in window.__inDOM) continue;
					window.__inDOM[k[1]] = at;
					requestAnimationFrame(() => { window.__onScreen[k[1]] = stamp(); });
				}
			}
		});
		o.observe(document.getElementById("thread"), {childList: true, subtree: true});
	})()`))
	v.do("send 200 messages", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(async () => {
		const ta = %s;
		window.__sent = {};
		for (let i = 0; i < %d; i++) {
			ta.value = "lat " + i;
			ta.dispatchEvent(new Event("input", {bubbles: true}));
			window.__sent[i] = performance.timeOrigin + performance.now();
			ta.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true, cancelable: true}));
			await new Promise((ok) => setTimeout(ok, 30));
		}
		window.__sentAll = true;
	})(); void 0`, in("#mc-text"), n)))
	v.waitJSWithin(inboxtest.Patience, "the messages sent", `window.__sentAll === true`)
	d.waitJSWithin(inboxtest.Patience, "every message on the agent's screen", fmt.Sprintf(`Object.keys(window.__onScreen).length === %d`, n))
	sent := eval[map[string]float64](v, `window.__sent`)
	atSocket := eval[map[string]float64](d.page, `window.__wsAt`)
	inDOM := eval[map[string]float64](d.page, `window.__inDOM`)
	onScreen := eval[map[string]float64](d.page, `window.__onScreen`)
	var socket, dom, screen []float64
	for k, at := range sent {
		socket = append(socket, atSocket[k]-at)
		dom = append(dom, inDOM[k]-at)
		screen = append(screen, onScreen[k]-at)
	}
	pct := func(xs []float64, p float64) float64 {
		ys := slices.Clone(xs)
		sort.Float64s(ys)
		return ys[min(len(ys)-1, int(float64(len(ys))*p))]
	}
	t.Logf("visitor's Enter to the agent's page, %d messages 30 ms apart (target p99 100 ms on screen):", n)
	for _, m := range []struct {
		what string
		ms   []float64
	}{{"frame at the agent's socket", socket}, {"line in the thread's DOM", dom}, {"on screen (the next frame)", screen}} {
		t.Logf("  %-28s p50 %5.1f ms  p99 %5.1f ms  max %5.1f ms", m.what, pct(m.ms, 0.5), pct(m.ms, 0.99), pct(m.ms, 1))
	}
}
