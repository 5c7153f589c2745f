package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// The dashboard's side views in a browser (issue 13 items 1, 7, 9, 10):
// the visitor panel, Reports > Operators, Admin and Profile, against a
// real server. Screenshots go where the harness puts them
// ($MICROCHAT_ARTIFACTS), at 1440x900 and 1280x720.

// TestDashboardSide runs each view's test against a server of its own,
// one after the other, in one browser.
func TestDashboardSide(t *testing.T) {
	browser := newBrowser(t)
	t.Run("visitor panel", func(t *testing.T) { testVisitorPanel(t, browser) })
	t.Run("reports", func(t *testing.T) { testReports(t, browser) })
	t.Run("admin", func(t *testing.T) { testAdmin(t, browser) })
	t.Run("profile", func(t *testing.T) { testProfile(t, browser) })
}

// shots saves the page at both sizes the dashboard is made for, from its
// top, without the notification banner (a person says "Not now" once).
func (p *page) shots(name string) {
	p.t.Helper()
	if eval[bool](p, `!document.getElementById("banner").hidden`) {
		p.click("Not now", pageButton("#banner", "Not now"))
		p.waitJS("the banner gone", `document.getElementById("banner").hidden`)
	}
	p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".view").forEach((v) => (v.scrollTop = 0))`))
	for _, sz := range [][2]int64{{1440, 900}, {1280, 720}} {
		p.do("resize", chromedp.EmulateViewport(sz[0], sz[1]))
		p.screenshot(fmt.Sprintf("%s-%dx%d", name, sz[0], sz[1]))
	}
	p.do("resize", chromedp.EmulateViewport(1440, 900))
}

// fillForm types over the fields of a form, given as name, value pairs,
// and presses its submit button.
func (p *page) fillForm(form string, nameValues ...string) {
	p.t.Helper()
	for i := 0; i < len(nameValues); i += 2 {
		el := q(form + ` [name="` + nameValues[i] + `"]`)
		p.click(nameValues[i], el)
		p.waitJS(nameValues[i]+" focused", `document.activeElement === `+el)
		p.do("select "+nameValues[i], chromedp.Evaluate[chromedp.Void](el+`.select()`))
		p.do("type "+nameValues[i], chromedp.KeyEvent(nameValues[i+1]))
	}
	p.click("submit", q(form+` button[type=submit]`))
}

// waitFile returns the content of a file being downloaded, once it is
// there whole (Chromium writes it under another name and renames it).
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var b []byte
	inboxtest.Eventually(t, "the download "+filepath.Base(path), func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return string(b)
}

// xssName is a contact's name that would run script if it were HTML.
const xssName = `Eve <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`

// newVisitor creates a visitor with a chat conversation through the
// store, as the widget's start would, with facts and pages viewed; their
// email is their first name at customer.test.
func (s *server) newVisitor(name string, facts inbox.Facts, pages ...inbox.NewPageView) inbox.VisitorStart {
	s.t.Helper()
	v, err := s.store.StartVisitor(context.Background(), inbox.NewVisitor{Name: name, Email: strings.ToLower(strings.Fields(name)[0]) + "@customer.test", Phone: "+33 1 23 45 67 89", Facts: facts, Pages: pages}, time.Hour)
	if err != nil {
		s.t.Fatalf("StartVisitor() = %v", err)
	}
	if _, _, err := s.store.AddMessage(context.Background(), inbox.NewMessage{ConversationID: v.Conversation.ID, Author: inbox.AuthorContact, Text: "Hello, is the Pro plan billed yearly?"}); err != nil {
		s.t.Fatalf("AddMessage() = %v", err)
	}
	return v
}

func testVisitorPanel(t *testing.T, browser context.Context) {
	ctx := context.Background()
	s := newServer(t, nil)
	s.newAgentAccount("ann@example.com", "Ann Admin", inbox.RoleAdmin)
	s.newAgentAccount("bob@example.com", "Bob Agent", inbox.RoleAgent)
	ago := func(d time.Duration) time.Time { return time.Now().Add(-d) }
	v := s.newVisitor(xssName, inbox.Facts{Browser: "Firefox", BrowserVersion: "128.0", OS: "Windows", IP: "203.0.113.7"},
		inbox.NewPageView{URL: "https://shop.example/", Title: "Home", At: ago(9 * time.Minute)},
		inbox.NewPageView{URL: "https://shop.example/pricing", Title: "Pricing", At: ago(5 * time.Minute)},
	)
	if err := s.store.AddPageView(ctx, v.Contact.ID, inbox.NewPageView{URL: "https://shop.example/checkout?plan=pro", Title: "Checkout <b>now</b>", At: ago(time.Minute)}); err != nil {
		t.Fatalf("AddPageView() = %v", err)
	}
	// The country comes from the IP address; a test's comes from the
	// store.
	if _, err := s.store.SetContactFacts(ctx, v.Contact.ID, inbox.Facts{Browser: "Firefox", BrowserVersion: "128.0", OS: "Windows", IP: "203.0.113.7", Country: "DE"}); err != nil {
		t.Fatalf("SetContactFacts() = %v", err)
	}
	other, err := s.store.StartConversation(ctx, v.Contact.ID, inbox.ChannelEmail, "Invoice 1182")
	if err != nil {
		t.Fatalf("StartConversation() = %v", err)
	}

	p := openDashboard(t, browser, s, fmt.Sprintf("#/c/%d", v.Conversation.ID))
	p.login("ann@example.com")
	panel := `document.getElementById("visitor")`
	p.waitJS("the visitor panel", fmt.Sprintf(`%s.dataset.contact === "%d" && !!%s.querySelector(".vp-pages")`, panel, v.Contact.ID, panel))

	// The map, with the country marked and named.
	p.waitJS("Germany marked on the map", q(`#visitor svg.worldmap [data-country="DE"].marked`)+` !== null`)
	if n := eval[int](p, `document.querySelectorAll("#visitor svg.worldmap .marked").length`); n != 1 {
		t.Fatalf("%d countries marked, want 1", n)
	}
	text := eval[string](p, panel+`.innerText`)
	for _, want := range []string{"Germany", "eve@customer.test", "+33 1 23 45 67 89", fmt.Sprintf("#%d", v.Contact.ID), "Firefox 128.0", "Windows", "203.0.113.7", "First seen"} {
		if !strings.Contains(text, want) {
			t.Errorf("the visitor panel lacks %q:\n%s", want, text)
		}
	}
	// The pages viewed, newest first, with their titles as text.
	titles := eval[[]string](p, `[...document.querySelectorAll("#visitor .vp-pages .vp-page-title")].map((e) => e.textContent)`)
	if strings.Join(titles, "|") != "Checkout <b>now</b>|Pricing|Home" {
		t.Fatalf("pages viewed = %q, want Checkout <b>now</b>, Pricing, Home", titles)
	}
	if n := eval[int](p, `document.querySelectorAll("#visitor .vp-pages time").length`); n != 3 {
		t.Fatalf("%d page times, want 3", n)
	}
	// The name is text: no element came of it, no script ran.
	if got := eval[string](p, q("#visitor .vp-name")+`.textContent`); got != xssName {
		t.Fatalf("the contact's name shows as %q, want %q", got, xssName)
	}
	if n := eval[int](p, `document.querySelectorAll("#visitor img, #visitor script").length`); n != 0 {
		t.Fatalf("the contact's name made %d elements", n)
	}
	p.noScriptRan()

	// Live presence: the contact comes online.
	if eval[bool](p, q("#visitor .vp-presence.online")+` !== null`) {
		t.Fatalf("the contact shows online before they are")
	}
	if err := s.store.SetContactOnline(ctx, v.Contact.ID, true); err != nil {
		t.Fatalf("SetContactOnline() = %v", err)
	}
	p.waitJS("the contact online", q("#visitor .vp-presence.online")+` !== null && `+q("#visitor .vp-last-seen")+`?.textContent === "Now"`)

	// The screenshots show a visitor as most are: a plain name, a
	// browser, pages.
	jonas := s.newVisitor("Jonas Becker", inbox.Facts{Browser: "Chrome", BrowserVersion: "131.0", OS: "macOS", IP: "198.51.100.23", Country: "FR"},
		inbox.NewPageView{URL: "https://shop.example/", Title: "Example Shop — Coffee machines", At: ago(14 * time.Minute)},
		inbox.NewPageView{URL: "https://shop.example/products/espresso-pro", Title: "Espresso Pro 9000", At: ago(8 * time.Minute)},
		inbox.NewPageView{URL: "https://shop.example/pricing", Title: "Pricing and delivery", At: ago(2 * time.Minute)},
	)
	if err := s.store.SetContactOnline(ctx, jonas.Contact.ID, true); err != nil {
		t.Fatalf("SetContactOnline() = %v", err)
	}
	p.do("open Jonas", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "#/c/%d"`, jonas.Conversation.ID)))
	p.waitJS("Jonas's panel", fmt.Sprintf(`%s.dataset.contact === "%d" && !!%s.querySelector(".vp-pages") && !!%s`, panel, jonas.Contact.ID, panel, q(`#visitor [data-country="FR"].marked`)))
	p.shots("visitor-panel")
	p.do("back to Eve", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "#/c/%d"`, v.Conversation.ID)))
	p.waitJS("Eve's panel", fmt.Sprintf(`%s.dataset.contact === "%d" && !!%s.querySelector(".vp-pages")`, panel, v.Contact.ID, panel))

	// The contact's other conversation opens from the panel.
	link := fmt.Sprintf(`#visitor a[data-conversation="%d"]`, other.ID)
	p.waitJS("the other conversation in the panel", q(link)+` !== null`)
	p.click("the other conversation", q(link))
	p.waitJS("the other conversation opened", fmt.Sprintf(`location.hash === "#/c/%d"`, other.ID))

	// The pane collapses and opens again.
	p.click("Hide visitor details", pageButton("#visitor", "Hide visitor details"))
	p.waitJS("the panel collapsed", panel+`.classList.contains("vp-collapsed") && `+q("#visitor .vp-body")+`.hidden`)
	p.click("Show visitor details", pageButton("#visitor", "Show visitor details"))
	p.waitJS("the panel open", `!`+panel+`.classList.contains("vp-collapsed")`)

	// An agent sees the panel but no Erase contact, and no Admin.
	b := openDashboard(t, browser, s, fmt.Sprintf("#/c/%d", v.Conversation.ID))
	b.login("bob@example.com")
	b.waitJS("Bob's visitor panel", fmt.Sprintf(`%s.dataset.contact === "%d" && !!%s.querySelector(".vp-pages")`, panel, v.Contact.ID, panel))
	if eval[bool](b, pageButton("#visitor", "Erase contact")+` !== undefined`) {
		t.Fatalf("an agent sees Erase contact")
	}
	if !eval[bool](b, q("#nav-admin")+`.hidden`) {
		t.Fatalf("an agent sees the Admin nav")
	}
	b.noScriptRan()

	// The admin erases the contact, after confirming.
	p.click("Erase contact", pageButton("#visitor", "Erase contact"))
	p.waitJS("the confirmation", q("dialog.confirm[open]")+` !== null`)
	p.click("Erase contact (confirm)", pageButton("dialog.confirm", "Erase contact"))
	p.waitJS("the panel emptied", `!`+panel+`.dataset.contact`)
	if _, err := s.store.Contact(ctx, v.Contact.ID); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("Contact() after erasing = %v, want ErrNotFound", err)
	}
	p.noScriptRan()
}

// allowDownloads makes the page's downloads go to dir.
func (p *page) allowDownloads(dir string) {
	p.t.Helper()
	_, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:         browser.SetDownloadBehaviorBehaviorAllow,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
		DownloadPath:     dir,
	})
	if err != nil {
		p.t.Fatalf("allowing downloads: %v", err)
	}
}

func testReports(t *testing.T, browser context.Context) {
	ctx := context.Background()
	s := newServer(t, nil)
	ann := s.newAgentAccount("ann@example.com", "Ann Admin", inbox.RoleAdmin)
	v := s.newVisitor("Eve", inbox.Facts{})
	if err := s.store.Join(ctx, v.Conversation.ID, ann.ID); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: v.Conversation.ID, Author: inbox.AuthorAgent, AgentID: &ann.ID, Text: "Yes, yearly."}); err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	if err := s.store.Leave(ctx, v.Conversation.ID, ann.ID); err != nil {
		t.Fatalf("Leave() = %v", err)
	}
	// A colleague with two rated conversations, for a second row.
	bob := s.newAgentAccount("bob@example.com", "Bob Agent", inbox.RoleAgent)
	for i, score := range []int{4, 2} {
		w := s.newVisitor(fmt.Sprintf("Walt %d", i), inbox.Facts{})
		for _, step := range []func(context.Context, int64, int64) error{s.store.Join, s.store.Leave} {
			if err := step(ctx, w.Conversation.ID, bob.ID); err != nil {
				t.Fatalf("Join/Leave() = %v", err)
			}
		}
		if _, err := s.store.Rate(ctx, w.Conversation.ID, score, ""); err != nil {
			t.Fatalf("Rate() = %v", err)
		}
	}

	p := openDashboard(t, browser, s, "#/reports")
	p.login("ann@example.com")
	row := fmt.Sprintf(`#view-reports tr[data-agent="%d"]`, ann.ID)
	p.waitJS("Ann's row", q(row+" td.joined")+`?.textContent === "1"`)
	if got := eval[string](p, q(row+" td.ratings")+`.textContent`); got != "0" {
		t.Fatalf("ratings before the visitor rates = %q, want 0", got)
	}
	if !eval[bool](p, pageButton("#view-reports", "Operators")+`?.getAttribute("role") === "tab"`) {
		t.Fatalf("no Operators tab")
	}

	// The visitor rates while the report is shown: it shows, live.
	if _, err := s.store.Rate(ctx, v.Conversation.ID, 5, "Quick and <b>kind</b>"); err != nil {
		t.Fatalf("Rate() = %v", err)
	}
	p.waitJS("the rating in the report", q(row+" td.ratings")+`?.textContent === "1"`)
	if got := eval[string](p, q(row+" td.average")+`.textContent`); got != "5.00" {
		t.Fatalf("average = %q, want 5.00", got)
	}
	p.waitJS("the chart's bars", `document.querySelectorAll("#view-reports svg.chart rect").length > 0`)
	bobRow := fmt.Sprintf(`#view-reports tr[data-agent="%d"]`, bob.ID)
	if got := eval[string](p, q(bobRow+" td.ratings")+`.textContent + " " + `+q(bobRow+" td.average")+`.textContent`); got != "2 3.00" {
		t.Fatalf("Bob's ratings and average = %q, want 2 3.00", got)
	}
	p.click("1 comment", pageButton(row, "1 comment"))
	p.waitJS("the comment as text", q("#view-reports .comments .comment")+`?.textContent === "Quick and <b>kind</b>"`)
	p.noScriptRan()

	// The periods: 7 days still has it; a custom month long ago does not.
	p.click("Last 7 days", pageButton("#view-reports", "Last 7 days"))
	p.waitJS("7 days", pageButton("#view-reports", "Last 7 days")+`.getAttribute("aria-pressed") === "true" && `+q(row+" td.ratings")+`?.textContent === "1"`)
	p.shots("reports")
	p.click("Custom", pageButton("#view-reports", "Custom"))
	p.do("a custom period", chromedp.Evaluate[chromedp.Void](`(() => {
		const [from, to] = document.querySelectorAll("#view-reports .custom-range input");
		from.value = "2020-01-01"; to.value = "2020-01-31";
	})()`))
	p.click("Apply", pageButton("#view-reports", "Apply"))
	p.waitJS("an empty period", q(row+" td.joined")+`?.textContent === "0" && `+q(row+" td.ratings")+`?.textContent === "0"`)
	p.click("Last 30 days", pageButton("#view-reports", "Last 30 days"))
	p.waitJS("30 days", q(row+" td.ratings")+`?.textContent === "1"`)

	// Export CSV downloads the report with Ann's row.
	dir := t.TempDir()
	p.allowDownloads(dir)
	p.click("Export CSV", `[...document.querySelectorAll("#view-reports a")].find((a) => a.textContent.trim() === "Export CSV")`)
	files := func() []string { f, _ := filepath.Glob(filepath.Join(dir, "operators-*.csv")); return f }
	inboxtest.Eventually(t, "the CSV download", func() bool { return len(files()) == 1 })
	csv := waitFile(t, files()[0])
	if !strings.Contains(csv, "Ann Admin") {
		t.Fatalf("the CSV download has no row of Ann Admin: %q", csv)
	}
}

func testAdmin(t *testing.T, browser context.Context) {
	ctx := context.Background()
	s := newServer(t, nil)
	s.newAgentAccount("ann@example.com", "Ann Admin", inbox.RoleAdmin)
	s.newAgentAccount("bob@example.com", "Bob Agent", inbox.RoleAgent)

	p := openDashboard(t, browser, s, "#/admin")
	p.login("ann@example.com")
	p.waitJS("the agents table", q("#view-admin table.agents")+` !== null`)

	// Add an agent.
	p.click("Add agent", pageButton("#view-admin", "Add agent"))
	p.fillForm("#view-admin form", "name", "Carl <i>New</i>", "email", "carl@example.com", "password", "a long enough password")
	p.waitJS("Carl in the table", `[...document.querySelectorAll("#view-admin table.agents .op-name")].some((e) => e.textContent === "Carl <i>New</i>")`)
	var carl inbox.Agent
	agents, _ := s.store.Agents(ctx)
	for _, a := range agents {
		if a.Email == "carl@example.com" {
			carl = a
		}
	}
	if carl.ID == 0 || carl.Role != inbox.RoleAgent {
		t.Fatalf("Carl is not stored as an agent: %+v", agents)
	}
	row := fmt.Sprintf(`#view-admin tr[data-agent="%d"]`, carl.ID)
	login := func() int {
		res, err := http.Post(s.URL+"/api/v1/auth/login", "application/json", strings.NewReader(`{"email": "carl@example.com", "password": "a long enough password"}`))
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	p.shots("admin")

	// Disable him, after confirming: he cannot log in.
	p.click("Disable", pageButton(row, "Disable"))
	p.waitJS("the confirmation", q("dialog.confirm[open]")+` !== null`)
	p.click("Disable (confirm)", pageButton("dialog.confirm", "Disable"))
	p.waitJS("Carl disabled", q(row+" .badge")+`?.textContent === "Disabled"`)
	if a, err := s.store.Agent(ctx, carl.ID); err != nil || a.DeactivatedAt == nil {
		t.Fatalf("Agent() after Disable = %+v, %v; want deactivated", a, err)
	}
	if code := login(); code != http.StatusUnauthorized {
		t.Fatalf("Carl's login while disabled = %d, want 401", code)
	}
	// Enable him again.
	p.click("Enable", pageButton(row, "Enable"))
	p.waitJS("Carl enabled", q(row+" .badge")+`?.textContent === "Active"`)
	if a, err := s.store.Agent(ctx, carl.ID); err != nil || a.DeactivatedAt != nil {
		t.Fatalf("Agent() after Enable = %+v, %v; want active", a, err)
	}
	if code := login(); code != http.StatusOK {
		t.Fatalf("Carl's login after Enable = %d, want 200", code)
	}

	// Ann, the last admin, cannot make herself an agent: the refusal is
	// shown and her role select goes back to Admin.
	var ann inbox.Agent
	for _, a := range agents {
		if a.Email == "ann@example.com" {
			ann = a
		}
	}
	annRole := q(fmt.Sprintf(`#view-admin tr[data-agent="%d"] select`, ann.ID))
	p.do("Ann demotes herself", chromedp.Evaluate[chromedp.Void](annRole+`.value = "agent"; `+annRole+`.dispatchEvent(new Event("change"))`))
	p.waitJS("the refusal", `document.querySelector("#view-admin").innerText.includes("last enabled admin")`)
	p.waitJS("Ann's role shown as Admin again", annRole+`.value === "admin"`)

	// The saved replies and the quarantine are there.
	p.click("Saved replies", pageButton("#view-admin", "Saved replies"))
	p.click("Add saved reply", pageButton("#view-admin", "Add saved reply"))
	p.fillForm("#view-admin form", "shortcut", "refund", "title", "Refunds", "text", "Refunds take 5 days.")
	p.waitJS("the saved reply", `[...document.querySelectorAll("#view-admin .shortcut")].some((e) => e.textContent === "/refund")`)
	p.click("Mail quarantine", pageButton("#view-admin", "Mail quarantine"))
	p.waitJS("the quarantine", `document.querySelector("#view-admin").innerText.includes("The quarantine is empty.")`)

	// A quarantined mail: listed with its reason as text, its raw source
	// downloaded.
	raw := "From: x@example.com\r\nSubject: broken\r\n\r\n\xff\xfe body"
	qm, err := s.store.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: "support", Folder: "INBOX", UIDValidity: 1, UID: 7, Reason: "unreadable <script>window.__pwned=3</script>", Raw: []byte(raw)})
	if err != nil {
		t.Fatalf("Quarantine() = %v", err)
	}
	p.click("Agents", pageButton("#view-admin", "Agents"))
	p.click("Mail quarantine", pageButton("#view-admin", "Mail quarantine"))
	qrow := fmt.Sprintf(`#view-admin tr[data-quarantine="%d"]`, qm.ID)
	p.waitJS("the quarantined mail", q(qrow+" .reason")+`?.textContent === "unreadable <script>window.__pwned=3</script>"`)
	dir := t.TempDir()
	p.allowDownloads(dir)
	p.click("Download raw", `document.querySelector(`+jsString(qrow+" a")+`)`)
	if got := waitFile(t, filepath.Join(dir, fmt.Sprintf("quarantine-%d.eml", qm.ID))); got != raw {
		t.Fatalf("the raw download = %q, want %q", got, raw)
	}
	p.noScriptRan()
}

func testProfile(t *testing.T, browser context.Context) {
	ctx := context.Background()
	s := newServer(t, nil)
	ann := s.agent("ann@example.com", "Ann Agent")

	// A visitor chats, Ann joins: the widget shows her name.
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	startChat(v, "Vera", "", "")
	ev := ann.event(0, inbox.EventConversationCreated)
	if err := s.store.Join(ctx, ev.ConversationID, ann.acct.ID); err != nil {
		t.Fatalf("Join() = %v", err)
	}
	v.waitJS("Ann's name in the widget", root+`.querySelector(".agent-name")?.textContent === "Ann Agent"`)

	p := openDashboard(t, browser, s, "#/profile")
	p.login("ann@example.com")
	name := q(`#view-profile input[name="name"]`)
	p.waitJS("the profile", name+`?.value === "Ann Agent"`)
	p.fillForm(`#view-profile form[aria-labelledby="profile-name-title"]`, "name", "Ann from Support")
	v.waitJS("the new name in the widget", root+`.querySelector(".agent-name")?.textContent === "Ann from Support"`)
	p.waitJS("the new name in the me-menu", q("#me-name")+`.textContent === "Ann from Support"`)

	// Notifications: mine only, no sound; kept by the server.
	p.click("Mine only", `document.querySelector('#view-profile input[value="mine"]')`)
	p.waitJS("saved", q(`#view-profile form[aria-labelledby="profile-notify-title"] .form-status.success`)+` !== null`)
	p.click("Play a sound", `document.querySelector('#view-profile input[name="sound"]')`)
	p.waitJS("the sound off", `window.microchat.ctx.me().settings?.sound === false && window.microchat.ctx.me().settings?.notifications === "mine"`)
	p.shots("profile")

	// The password: a wrong confirmation is caught here, a wrong current
	// one by the server, then it changes.
	pw := func(cur, next, confirm string) {
		p.fillForm(`#view-profile form[aria-labelledby="profile-password-title"]`, "current_password", cur, "new_password", next, "confirm_password", confirm)
	}
	pw(password, "new password 1234", "new password 12345")
	p.waitJS("the confirmation refused", q(`#view-profile [name="confirm_password"]`)+`.getAttribute("aria-invalid") === "true"`)
	pw("not my password", "new password 1234", "new password 1234")
	p.waitJS("the current password refused", q(`#view-profile [name="current_password"]`)+`.getAttribute("aria-invalid") === "true"`)
	pw(password, "new password 1234", "new password 1234")
	p.waitJS("the password changed", `document.querySelector("#view-profile").innerText.includes("Password changed")`)
	var out struct{}
	ann.csrf = ""
	ann.call("POST", "/api/v1/auth/login", map[string]string{"email": "ann@example.com", "password": "new password 1234"}, 200, &out)
	p.noScriptRan()
}
