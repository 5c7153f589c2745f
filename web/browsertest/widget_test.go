package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestWidget runs the customer guide in Chromium: each subtest is a
// visitor (or two) in a browser context of their own, against a server
// of its own. They run one after the other: two inbox.Stores open at once
// in one process share gorm's configuration (inbox/store.go), and so
// their connections.
func TestWidget(t *testing.T) {
	browser := newBrowser(t)
	t.Run("conversation", func(t *testing.T) { testConversation(t, browser) })
	t.Run("hostile page", func(t *testing.T) { testHostilePage(t, browser) })
	t.Run("keyboard and phone", func(t *testing.T) { testKeyboardAndPhone(t, browser) })
	t.Run("offline and limits", func(t *testing.T) { testOfflineAndLimits(t, browser) })
}

// startChat opens the widget on the current page, fills the pre-chat form
// and presses Start Chat.
func startChat(p *page, name, email, phone string) {
	p.t.Helper()
	p.click("Live Chat", button("Live Chat"))
	p.waitJS("the pre-chat form", root+`.activeElement === `+root+`.querySelector("#mc-name")`)
	p.typeIn("#mc-name", name)
	if email != "" {
		p.typeIn("#mc-email", email)
	}
	if phone != "" {
		p.typeIn("#mc-phone", phone)
	}
	p.click("Start Chat", button("Start Chat"))
	p.waitText("Waiting for support staff...")
}

// send types a message and presses Enter.
func (p *page) send(text string) {
	p.t.Helper()
	p.typeIn("#mc-text", text)
	p.enter()
}

func testConversation(t *testing.T, browser context.Context) {
	ctx := context.Background()
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	v.do("listening to messages", chromedp.Evaluate[chromedp.Void](`window.__got = []; Microchat.on("message", (m) => __got.push(m.text))`))
	v.screenshot("01-demo-page")

	// The pre-chat form, checked before it is sent.
	v.click("Live Chat", button("Live Chat"))
	v.waitText("Start Chat")
	v.typeIn("#mc-email", "not-an-address")
	v.click("Start Chat", button("Start Chat"))
	v.waitText("Please enter your name.")
	v.waitText("Please enter a valid email address")
	if !eval[bool](v, root+`.activeElement.id === "mc-name"`) {
		t.Fatalf("the focus is not on Name after a refused form")
	}
	v.screenshot("02-form-errors")
	v.do("clearing Email", chromedp.Evaluate[chromedp.Void](in("#mc-email")+`.value = ""`))
	v.click("Minimize chat", button("Minimize chat"))

	// Start Chat: waiting for support staff.
	startChat(v, "Vera Visitor", "vera@example.com", "+1 555 0100")
	v.waitText("Status: Connecting...")
	v.screenshot("03-waiting")
	created := alice.event(0, inbox.EventConversationCreated)
	conv := created.ConversationID
	var cc inbox.ConversationCreated
	if created.Decode(&cc) != nil || cc.Contact.Name != "Vera Visitor" || cc.Contact.Email != "vera@example.com" || cc.Contact.Phone != "+1 555 0100" {
		t.Fatalf("conversation_created = %s", created.Data)
	}
	views, err := s.store.PageViews(ctx, cc.Contact.ID, 10)
	if err != nil || len(views) == 0 || views[0].URL != s.URL+"/" || !strings.Contains(views[0].Title, "Fernwood") {
		t.Fatalf("PageViews() = %+v, %v; want the demo page", views, err)
	}

	// The visitor types (the agents see it) and writes.
	v.typeIn("#mc-text", "Hello")
	if f := alice.next("typing", nil); f.ConversationID != conv || f.Typing == nil || !*f.Typing {
		t.Fatalf("agent's typing frame = %s", f.raw)
	}
	v.send(", my tent pole snapped. Can you fix it?")
	ev := alice.event(conv, inbox.EventMessageAdded)
	var added inbox.MessageAdded
	if ev.Decode(&added) != nil || added.Message.Text != "Hello, my tent pole snapped. Can you fix it?" {
		t.Fatalf("message_added = %s", ev.Data)
	}
	v.waitText("Sent")

	// An agent joins: the widget shows their name and presence.
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	v.waitJS("the agent's name", root+`.querySelector(".agent-name")?.textContent === "Alice Moreau"`)
	v.waitJS("the agent's presence", root+`.querySelector(".presence")?.textContent.includes("online")`)
	v.waitText("Alice Moreau joined the chat")

	// The agent types, reads and answers.
	alice.send(map[string]any{"type": "typing", "conversation_id": conv, "typing": true})
	v.waitText("Alice Moreau is typing...")
	v.waitJS("presence typing", root+`.querySelector(".presence")?.textContent.includes("typing")`)
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/read", conv), map[string]any{"up_to": 0}, 204, nil)
	v.waitText("Seen")
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv),
		map[string]any{"text": "Hi Vera! Bring it in, or read https://example.com/repairs first."}, 201, nil)
	v.waitText("Hi Vera! Bring it in")
	v.waitJS("the typing indicator to go", `!`+root+`.querySelector(".mc").innerText.includes("is typing")`)
	link := eval[map[string]string](v, `(() => { const a = `+root+`.querySelector(".agent .text a"); return {href: a.href, target: a.target, rel: a.rel, text: a.textContent}; })()`)
	if link["href"] != "https://example.com/repairs" || link["target"] != "_blank" || !strings.Contains(link["rel"], "noopener") || link["text"] != "https://example.com/repairs" {
		t.Fatalf("link = %v", link)
	}
	// The visitor saw it: a read frame, which the agents see.
	alice.next("event", func(f agentFrame) bool {
		var r inbox.MessagesRead
		return f.Event.Type == inbox.EventMessagesRead && f.Event.Decode(&r) == nil && r.Reader == inbox.AuthorContact
	})
	if got := eval[[]string](v, `window.__got`); len(got) != 1 || !strings.HasPrefix(got[0], "Hi Vera!") {
		t.Fatalf(`Microchat.on("message") got %q`, got)
	}

	// The agent goes idle, and comes back.
	alice.send(map[string]any{"type": "presence", "presence": "idle"})
	v.waitJS("presence idle", root+`.querySelector(".presence")?.textContent.includes("idle")`)
	alice.send(map[string]any{"type": "presence", "presence": "online"})
	v.waitJS("presence online", root+`.querySelector(".presence")?.textContent.includes("online")`)

	// Minimized, the widget counts what arrives; opened, it is read.
	v.click("Minimize chat", button("Minimize chat"))
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "Are you still there?"}, 201, nil)
	v.waitJS("the unread badge", root+`.querySelector(".badge")?.textContent === "1" && `+root+`.querySelector("#mc-unread").textContent === "1 unread message"`)
	v.do("Microchat.open()", chromedp.Evaluate[chromedp.Void](`Microchat.open()`))
	v.waitJS("the badge to go", root+`.querySelector(".badge").hidden`)
	alice.next("event", func(f agentFrame) bool { return f.Event.Type == inbox.EventMessagesRead })

	// Files: an image (previewed), a document (a link), one too large and
	// one of a refused type (clear errors).
	dir := t.TempDir()
	shot := writeFile(t, dir, "broken-pole.png", pngBytes(t))
	notes := writeFile(t, dir, "receipt.txt", []byte("Cedar Two, bought 2024-05-01\n"))
	big := writeFile(t, dir, "video-of-the-pole.txt", bytes.Repeat([]byte("a"), 300<<10))
	exe := writeFile(t, dir, "setup.exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), make([]byte, 200)...))
	v.upload(in("input[type=file]"), []string{shot})
	v.waitJS("the image preview", root+`.querySelector(".att-img img")?.src.startsWith("blob:") && `+root+`.querySelector(".att-img img").naturalWidth === 64`)
	alice.event(conv, inbox.EventMessageAdded)
	v.upload(in("input[type=file]"), []string{notes})
	v.waitJS("the document's link", root+`.querySelector(".att-file span")?.textContent.startsWith("receipt.txt")`)
	ev = alice.event(conv, inbox.EventMessageAdded)
	if ev.Decode(&added) != nil || len(added.Message.Attachments) != 1 || added.Message.Attachments[0].Name != "receipt.txt" {
		t.Fatalf("message_added of the document = %s", ev.Data)
	}
	// A pasted screenshot and a dropped file are sent too.
	v.do("paste and drop", chromedp.Evaluate[chromedp.Void](`(async () => {
		const c = document.createElement("canvas"); c.width = c.height = 64;
		const g = c.getContext("2d"); g.fillStyle = "#c0392b"; g.fillRect(0, 0, 64, 64);
		const png = await new Promise((ok) => c.toBlob(ok, "image/png"));
		const paste = new DataTransfer(); paste.items.add(new File([png], "pasted.png", {type: "image/png"}));
		`+in("#mc-text")+`.dispatchEvent(new ClipboardEvent("paste", {clipboardData: paste, bubbles: true, composed: true}));
		const drop = new DataTransfer(); drop.items.add(new File(["order 1234"], "order.txt", {type: "text/plain"}));
		for (const type of ["dragenter", "dragover", "drop"]) `+in(".chat")+`.dispatchEvent(new DragEvent(type, {dataTransfer: drop, bubbles: true, cancelable: true}));
	})()`, chromedp.EvalAwaitPromise))
	v.waitJS("the pasted image", root+`.querySelectorAll(".att-img img").length === 2 && [...`+root+`.querySelectorAll(".att-img img")].every((i) => i.naturalWidth === 64)`)
	v.waitJS("the dropped file", `[...`+root+`.querySelectorAll(".att-file span")].some((s) => s.textContent.startsWith("order.txt"))`)
	for range 2 {
		alice.event(conv, inbox.EventMessageAdded)
	}
	v.screenshot("04-chatting")
	v.upload(in("input[type=file]"), []string{big})
	// /state carries the limit, so the widget refuses before uploading.
	v.waitText("files up to 200 KB can be sent")
	v.upload(in("input[type=file]"), []string{exe})
	v.waitText("\u201csetup.exe\u201d cannot be sent")
	v.screenshot("05-upload-refused")

	// Reload, then another page of the site: everything is still there,
	// the panel still open, and the draft still in the message box.
	v.typeIn("#mc-text", "half a thought")
	v.do("reload", chromedp.Reload())
	v.waitJS("the draft", root+`.querySelector("#mc-text")?.value === "half a thought"`)
	v.do("clearing the draft", chromedp.Evaluate[chromedp.Void](in("#mc-text")+`.value = ""; `+in("#mc-text")+`.dispatchEvent(new Event("input"))`))
	v.waitText("Hi Vera! Bring it in")
	v.waitText("Hello, my tent pole snapped")
	v.waitJS("the image after reload", root+`.querySelector(".att-img img")?.naturalWidth === 64`)
	v.waitJS("the agent after reload", root+`.querySelector(".agent-name")?.textContent === "Alice Moreau"`)
	v.click("Rentals & repairs", `document.querySelector("a[href='/demo/pricing']")`)
	v.waitJS("the pricing page", `location.pathname === "/demo/pricing" && !!document.getElementById("microchat-widget")`)
	v.waitText("Hi Vera! Bring it in")
	v.waitText("Seen")
	eventually(t, "the pricing page's view", func() bool {
		views, _ = s.store.PageViews(ctx, cc.Contact.ID, 10)
		return len(views) == 3 && views[0].URL == s.URL+"/demo/pricing" && views[0].Title == "Rentals & repairs — Fernwood Outdoor Supply" && views[0].Referrer == s.URL+"/"
	})

	// Another visitor, in another browser context, sees nothing of Vera's.
	w := visitor(t, browser)
	w.navigate(s.URL + "/")
	w.click("Live Chat", button("Live Chat"))
	w.waitText("Start Chat")
	if txt := w.text(); strings.Contains(txt, "Vera") || strings.Contains(txt, "tent pole") || strings.Contains(txt, "Alice") {
		t.Fatalf("the second visitor sees %q", txt)
	}

	// The agent leaves: the chat ends and the widget asks for a rating.
	alice.call("POST", fmt.Sprintf("/api/v1/conversations/%d/leave", conv), nil, 200, nil)
	v.waitText("How would you rate this chat?")
	v.waitText("This chat has ended")
	v.screenshot("06-rating")
	v.click("Send rating", button("Send rating"))
	v.waitText("Please choose a rating from 1 to 5 stars.")
	v.click("4 stars", in("label[for=mc-score-4]"))
	v.typeIn("#mc-comment", "Quick and helpful")
	v.click("Send rating", button("Send rating"))
	v.waitText("Thank you for your feedback!")
	r, err := s.store.Rating(ctx, conv)
	if err != nil || r == nil || r.Score != 4 || r.Comment != "Quick and helpful" {
		t.Fatalf("Rating() = %+v, %v", r, err)
	}
	v.screenshot("07-rated")
	// A reload after she left still names her above her messages.
	v.do("reload after the end", chromedp.Reload())
	v.waitText("Hi Vera! Bring it in")
	v.waitJS("her name on her messages after she left", `[...`+root+`.querySelectorAll(".who")].some((p) => p.textContent === "Alice Moreau") && ![...`+root+`.querySelectorAll(".who")].some((p) => p.textContent === "Support")`)

	// Writing again reopens the conversation into Unassigned (rule 4).
	v.send("One more thing: do you rent stoves?")
	v.waitText("Waiting for support staff...")
	ev = alice.event(conv, inbox.EventMessageAdded)
	if ev.Decode(&added) != nil || !added.Reopened {
		t.Fatalf("message_added after the end = %s, want reopened", ev.Data)
	}
	v.noScriptRan()
}

// testHostilePage embeds the widget on another origin's page whose CSS
// tries to restyle everything, and sends script in every text a person
// controls: a name, a message, an agent's name, a file name.
func testHostilePage(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	mallory := s.agent("mallory@example.com", `Mallory <img src=x onerror="window.__pwned=1;alert(1)">`)
	origin := site(t, map[string]string{"/": `<!doctype html><html><head><title>Hostile</title><style>
		* { font: 30px serif !important; color: red !important; letter-spacing: 4px !important; }
		div { display: none !important; } button { background: yellow !important; border-radius: 0 !important; }
		</style></head><body><p>A page with loud CSS.</p><button class="launcher" id="own">The page's own button</button>
		<script src="` + s.URL + `/widget.js" data-position="left" data-color="#ffcc00" data-title="Ask us" async></script></body></html>`}, "")
	v := visitor(t, browser)
	v.navigate(origin + "/")

	// The page's CSS does not reach in.
	st := eval[map[string]string](v, `(() => { const b = `+root+`.querySelector(".launcher"), c = getComputedStyle(b), r = b.getBoundingClientRect();
		return {size: c.fontSize, family: c.fontFamily, color: c.color, bg: c.backgroundColor, radius: c.borderRadius, spacing: c.letterSpacing, left: String(r.left), width: String(r.width)}; })()`)
	if st["size"] != "15px" || strings.HasPrefix(st["family"], "serif") || st["color"] != "rgb(17, 17, 17)" || st["bg"] != "rgb(255, 204, 0)" ||
		st["radius"] != "999px" || st["spacing"] != "normal" || st["width"] == "0" || st["left"] != "20" {
		t.Fatalf("the launcher's computed style on a hostile page = %v", st)
	}
	// Nor does the widget's reach out.
	own := eval[map[string]string](v, `(() => { const c = getComputedStyle(document.getElementById("own")); return {position: c.position, size: c.fontSize}; })()`)
	if own["position"] != "static" || own["size"] != "30px" {
		t.Fatalf("the page's own .launcher button = %v: the widget's CSS leaked out", own)
	}

	// Script in the visitor's name, an agent's name, messages and a file
	// name is shown as text.
	const evil = `<img src=x onerror="window.__pwned=1;alert(1)">`
	startChat(v, "Eve "+evil, "", "")
	if got := eval[string](v, root+`.querySelector(".title").textContent`); got != "Ask us" {
		t.Fatalf("title = %q, want data-title", got)
	}
	conv := mallory.event(0, inbox.EventConversationCreated).ConversationID
	v.send("hi " + evil + " javascript:alert(1) <script>window.__pwned=1</script>")
	mallory.call("POST", fmt.Sprintf("/api/v1/conversations/%d/join", conv), nil, 200, nil)
	mallory.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "hello " + evil + " [x](javascript:alert(1))"}, 201, nil)
	v.waitText("hello " + evil)
	v.waitText("Mallory " + evil)
	v.waitText("hi " + evil + " javascript:alert(1) <script>")
	dir := t.TempDir()
	name := `<img src=x onerror=alert(1)>.png`
	v.upload(in("input[type=file]"), []string{writeFile(t, dir, name, pngBytes(t))})
	v.waitJS("the image", root+`.querySelector(".att-img img")?.naturalWidth === 64`)
	if alt := eval[string](v, root+`.querySelector(".att-img img").alt`); alt != name {
		t.Fatalf("image alt = %q, want the file name as text", alt)
	}
	if n := eval[int](v, root+`.querySelectorAll(".bubble img:not(.att-img img), script, a[href^='javascript']").length`); n != 0 {
		t.Fatalf("%d elements made from user text", n)
	}
	v.screenshot("08-hostile-page")
	// No element was made from the name (checked above), so no onerror
	// can run later; and none ran so far.
	v.noScriptRan()

	// A page with a strict Content-Security-Policy that allows the
	// server's script and connections, and nothing inline: the widget is
	// styled, and chats.
	strict := site(t, map[string]string{"/": `<!doctype html><html><head><title>Strict</title></head><body><p>Strict.</p>
		<script src="` + s.URL + `/widget.js" async></script></body></html>`},
		"default-src 'none'; script-src "+s.URL+"; connect-src "+s.URL+" ws"+strings.TrimPrefix(s.URL, "http")+"; img-src blob:; style-src 'self'")
	visitor(t, browser).chatUnderPolicy(strict+"/", mallory, "Carl Strict", "hello from a strict page")
}

// testKeyboardAndPhone uses the widget with the keyboard on a phone-sized
// screen, and checks the accessible names of its controls.
func testKeyboardAndPhone(t *testing.T, browser context.Context) {
	s := newServer(t, nil)
	v := visitor(t, browser)
	v.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	v.navigate(s.URL + "/")

	// Enter on the launcher opens the panel, full screen, with the focus
	// on Name; Escape closes it and gives the focus back.
	v.keys(button("Live Chat"), kb.Enter)
	v.waitJS("the focus on Name", root+`.activeElement?.id === "mc-name"`)
	rect := eval[map[string]float64](v, `(() => { const r = `+root+`.querySelector(".panel").getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })()`)
	if rect["x"] != 0 || rect["y"] != 0 || rect["w"] != 390 || rect["h"] != 844 {
		t.Fatalf("the panel on a phone is %v, want the whole 390x844 screen", rect)
	}
	names := v.axNames()
	for role, want := range map[string][]string{
		"textbox": {"Name", "Email", "Phone"},
		"button":  {"Start Chat", "Minimize chat"},
	} {
		for _, n := range want {
			if !contains(names[role], n) {
				t.Errorf("no %s named %q in the accessibility tree: %q", role, n, names[role])
			}
		}
	}
	v.screenshot("09-phone-form")
	v.keys(in("#mc-name"), kb.Escape)
	v.waitJS("the panel to close", root+`.querySelector(".panel").hidden && `+root+`.activeElement?.classList.contains("launcher")`)
	if !contains(v.axNames()["button"], "Live Chat") {
		t.Errorf("no button named Live Chat in the accessibility tree")
	}

	// Microchat.identify fills the form; the rest by keyboard.
	v.do("identify", chromedp.Evaluate[chromedp.Void](`Microchat.identify({name: "Kim Keys", email: "kim@example.com"})`))
	v.keys(button("Live Chat"), kb.Enter)
	v.waitJS("the focus on Phone", root+`.activeElement?.id === "mc-phone"`)
	if got := eval[string](v, root+`.querySelector("#mc-email").value`); got != "kim@example.com" {
		t.Fatalf("Email = %q after identify", got)
	}
	v.keys(in("#mc-phone"), "\n")
	v.waitText("Waiting for support staff...")
	v.waitText("Status: Connecting...")
	names = v.axNames()
	for _, n := range []string{"Waiting for support staff...", "Status: Connecting..."} {
		if !contains(names["StaticText"], n) {
			t.Errorf("%q is not in the accessibility tree: %q", n, names["StaticText"])
		}
	}
	for _, n := range []string{"Attach a file", "Send"} {
		if !contains(names["button"], n) {
			t.Errorf("no button named %q", n)
		}
	}
	if !contains(names["textbox"], "Message") {
		t.Errorf("no textbox named Message: %q", names["textbox"])
	}
	if !eval[bool](v, root+`.activeElement?.id === "mc-text"`) {
		t.Errorf("the focus is not in the message box after Start Chat")
	}
	v.send("Typed on a phone")
	v.waitText("Sent")
	v.screenshot("10-phone-chat")

	// The token is where the contract says, and never in a URL; a token
	// the server refuses brings the form back.
	key := "microchat:" + s.URL
	token := eval[string](v, `localStorage.getItem(`+jsString(key)+`)`)
	if len(token) != 43 {
		t.Fatalf("localStorage[%s] = %q, want the 43-character token", key, token)
	}
	if n := eval[int](v, `performance.getEntriesByType("resource").filter((r) => r.name.includes(`+jsString(token)+`)).length`); n != 0 {
		t.Fatalf("%d requests had the token in their URL", n)
	}
	// A message not yet stored when the token is refused goes back to the
	// message box, for the next chat.
	v.do("a wrong token", chromedp.Evaluate[chromedp.Void](`localStorage.setItem(`+jsString(key)+`, "x".repeat(43));
		sessionStorage.setItem(`+jsString(key+":outbox")+`, JSON.stringify([{client_id: "c-unsent", text: "words not stored", attachments: []}]))`))
	v.do("reload", chromedp.Reload())
	v.waitText("Your chat session has expired. Please start a new chat.")
	v.waitText("Start Chat")
	if got := eval[string](v, in("#mc-text")+`.value`); got != "words not stored" {
		t.Fatalf("the message box after the token was refused holds %q, want the message not stored", got)
	}
	if got := eval[string](v, `localStorage.getItem(`+jsString(key)+`) ?? ""`); got != "" {
		t.Fatalf("the refused token is still kept: %q", got)
	}
}

// testOfflineAndLimits stops the server under a visitor: the widget says
// it is reconnecting, keeps what they write, and sends it once the server
// is back; then a rate limit tells them how long to wait.
func testOfflineAndLimits(t *testing.T, browser context.Context) {
	s := newServer(t, func(c *config.Config) { c.Widget.RateLimits.MessagesPerMinute = 4 })
	ctx := context.Background()
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Olga Offline", "", "")
	v.send("first")
	v.waitText("Sent")

	// The server goes away: the widget says so and keeps what the visitor
	// writes; an agent answers meanwhile (straight into the database).
	// Back, the widget resumes: both messages once each.
	const conv = 1 // the first conversation of a fresh database
	bob := s.agent("bob@example.com", "Bob Berg")
	s.restart(func() {
		v.waitText("Reconnecting...")
		v.send("written while offline")
		v.waitText("Sending...")
		v.screenshot("11-reconnecting")
		if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &bob.acct.ID, Text: "Answered while you were away"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
	})
	// The widget tries again after a random wait that doubles per failed
	// try, up to 30 s (socket.js): how many tries failed depends on how
	// long the restart took on a busy machine, so the bound is that cap.
	v.waitJSWithin(35*time.Second, "the reconnection", `!`+root+`.querySelector(".mc").innerText.includes("Reconnecting...")`)
	v.waitText("Answered while you were away")
	v.waitText("Sent")
	// Events come in order: once a later message shows, a second copy of
	// the missed one would have come before it.
	if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv, Author: inbox.AuthorAgent, AgentID: &bob.acct.ID, Text: "And one more"}); err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	v.waitText("And one more")
	if n := v.count("Answered while you were away"); n != 1 {
		t.Fatalf("the message missed while offline shows %d times", n)
	}
	msgs, err := s.store.Messages(ctx, conv, inbox.MessageQuery{})
	if err != nil {
		t.Fatalf("Messages() = %v", err)
	}
	var texts []string
	for _, m := range msgs.Messages {
		if m.Author == inbox.AuthorContact {
			texts = append(texts, m.Text)
		}
	}
	if strings.Join(texts, "|") != "first|written while offline" {
		t.Fatalf("stored messages = %q", texts)
	}

	// Over the limit: the visitor is told to wait.
	for i := range 4 {
		v.send(fmt.Sprintf("quick %d", i))
	}
	v.waitText("Please wait")
	v.waitText("Waiting to send...")
	v.screenshot("12-rate-limited")
}

// eventually waits up to 5 s for ok.
var eventually = inboxtest.Eventually

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pngBytes is a 64x64 picture.
func pngBytes(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), 110, uint8(y * 4), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
