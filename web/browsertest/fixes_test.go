package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestComposerRules runs the composer's rules on what it sends (issue 13,
// item 5), in Chromium against a real server, each subtest with a server
// and database of its own.
func TestComposerRules(t *testing.T) {
	browser := newBrowser(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, context.Context, string)
	}{
		{"too long", testComposerTooLong},
		{"join before any message", testThreadJoinFirst},
		{"note then auto", testComposerNoteOnce},
		{"failed upload", testComposerFailedUpload},
		{"times on one line", testThreadTimesOneLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inboxtest.Run(t, func(t *testing.T, url string) { tc.fn(t, browser, url) })
		})
	}
}

// setComposer puts text in the composer as a paste would.
func (d *dash) setComposer(text string) {
	d.t.Helper()
	d.do("pasting", chromedp.Evaluate[chromedp.Void](`(() => { const t = `+composer+`; t.focus(); t.value = `+jsString(text)+`; t.dispatchEvent(new Event("input")); })()`))
}

// testComposerTooLong: a text over limits.max_message_bytes, counted in
// UTF-8 bytes as the server counts, is not sent: it stays in the
// composer, which says why; one at the limit is sent.
func testComposerTooLong(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	d := s.dashboard(browser, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	conv := s.newContactConversation("Vera", "Hello")
	d.open(conv.ID)

	// 9,000 "é" are 9,000 characters but 18,000 bytes, over 16 KiB.
	long := strings.Repeat("é", 9000)
	d.setComposer(long)
	d.enter()
	d.waitJS("the reason", `document.querySelector("#thread .composer-hint")?.textContent.startsWith("The message is too long")`)
	if got := eval[string](d.page, composer+`.value`); got != long {
		t.Fatalf("the composer holds %d characters after refusing the text, want %d", len([]rune(got)), 9000)
	}
	if n := eval[int](d.page, `document.querySelectorAll("#thread .msg.author-agent").length`); n != 0 {
		t.Fatalf("%d agent bubbles after refusing the text", n)
	}

	// At the limit it goes.
	ok := strings.Repeat("a", 16<<10)
	d.setComposer(ok)
	d.waitJS("the reason gone", `document.querySelector("#thread .composer-hint")?.textContent === ""`)
	d.enter()
	eventually(t, "the reply stored", func() bool { return len(s.agentTexts(conv.ID)) == 1 })
	if got := eval[string](d.page, composer+`.value`); got != "" {
		t.Fatalf("the composer holds %d characters after sending", len(got))
	}
}

// testThreadJoinFirst: a JOIN before the conversation's first message
// shows as a system line after a reload too, before the reply.
func testThreadJoinFirst(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	d := s.dashboard(browser, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	conv := s.newContactConversation("Vera")
	d.open(conv.ID)
	d.click("JOIN", pageButton("#thread", "JOIN"))
	joined := `[...document.querySelectorAll("#thread .system-line")].some((l) => l.textContent.includes("Alice Moreau joined the conversation"))`
	d.waitJS("the joined line", joined)
	d.write("How can I help?")
	eventually(t, "the reply stored", func() bool { return len(s.agentTexts(conv.ID)) == 1 })

	d.do("reload", chromedp.Reload())
	d.waitOpen()
	d.open(conv.ID)
	d.waitJS("the reply", "!!"+msgWith("How can I help?"))
	d.waitJS("the joined line after a reload", joined)
	// Before the reply, as it happened.
	if !eval[bool](d.page, `(() => { const l = [...document.querySelectorAll("#thread .system-line")].find((l) => l.textContent.includes("joined")); return !!(l.compareDocumentPosition(`+msgWith("How can I help?")+`) & Node.DOCUMENT_POSITION_FOLLOWING); })()`) {
		t.Fatalf("the joined line is after the reply")
	}
}

// TestWidgetNamesUnjoinedAgent: a reply of an agent who wrote without
// joining is labelled with their name in the live widget, as after a
// reload, not "Support" (the message's agent_name,
// docs/widget-protocol.md, "Names").
func TestWidgetNamesUnjoinedAgent(t *testing.T) {
	browser := newBrowser(t)
	s := newServer(t, nil)
	bob := s.agent("bob@example.com", "Bob Martin")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	v.do("listening to messages", chromedp.Evaluate[chromedp.Void](`window.__got = []; Microchat.on("message", (m) => __got.push(m))`))
	startChat(v, "Nora", "", "")
	conv := bob.event(0, inbox.EventConversationCreated).ConversationID
	v.send("Is anyone there?")
	bob.event(conv, inbox.EventMessageAdded)
	bob.call("POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), map[string]any{"text": "Yes, I am here."}, 201, nil)
	v.waitText("Yes, I am here.")
	who := root + `.querySelector(".msg.agent .who")?.textContent`
	if got := eval[string](v, who); got != "Bob Martin" {
		t.Fatalf("the live reply is labelled %q, want Bob Martin", got)
	}
	if got := eval[[]string](v, `window.__got.map((m) => m.agent_name)`); strings.Join(got, "|") != "Bob Martin" {
		t.Fatalf(`Microchat.on("message") got agent names %q, want Bob Martin`, got)
	}
	v.do("reload", chromedp.Reload())
	v.waitText("Yes, I am here.")
	if got := eval[string](v, who); got != "Bob Martin" {
		t.Fatalf("after a reload the reply is labelled %q, want Bob Martin", got)
	}
}

// testComposerNoteOnce: after a private note is sent, the reply channel
// is Auto again, so that the next text reaches the contact.
func testComposerNoteOnce(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	d := s.dashboard(browser, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	conv := s.newContactConversation("Vera", "Hello")
	d.open(conv.ID)
	d.channel("note")
	d.waitJS("the note's reason", reason("private note: only agents see it"))
	d.write("Sounds upset")
	d.waitJS("the note", `!!`+msgWith("Sounds upset")+`?.classList.contains("note")`)
	d.waitJS("Auto again", `document.querySelector('#thread select[aria-label="Reply channel"]').value === "auto" && !document.querySelector("#thread form.composer").classList.contains("note")`)
	d.waitJS("Auto's reason", `document.getElementById("channel-reason")?.textContent !== "private note: only agents see it"`)
}

// testComposerFailedUpload: a file over limits.max_upload_bytes shows as
// a chip with its error and its whole name, extension included; sending
// the reply clears it.
func testComposerFailedUpload(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, func(c *config.Config) { c.Limits.MaxUploadBytes = 1 << 10 })
	d := s.dashboard(browser, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	conv := s.newContactConversation("Vera", "Hello")
	d.open(conv.ID)
	d.do("the window", chromedp.EmulateViewport(1280, 720))
	huge := writeFile(t, t.TempDir(), "huge.bin", make([]byte, 4<<10))
	d.upload(`document.querySelector('#thread form.composer input[type="file"]')`, []string{huge})
	chip := `document.querySelector("#thread .upload.error")`
	d.waitJS("the failed chip", `!!`+chip+`?.querySelector(".error")?.textContent.startsWith("larger than the limit")`)
	// The whole name shows: nothing of it is cut.
	if !eval[bool](d.page, `(() => { const n = `+chip+`.querySelector(".name"); return n.textContent === "huge.bin" && [n, ...n.querySelectorAll("*")].every((e) => e.scrollWidth <= e.clientWidth); })()`) {
		t.Fatalf("the chip cuts the name: %s", eval[string](d.page, chip+`.querySelector(".name").outerHTML`))
	}
	d.write("See the log.")
	eventually(t, "the reply stored", func() bool { return len(s.agentTexts(conv.ID)) == 1 })
	d.waitJS("no chip left", `!document.querySelector("#thread .upload")`)
}

// testThreadTimesOneLine: at 1280x720 a message's time stays on one line
// ("10:01 AM", never "10:01" over "AM"), in a short message's bubble
// under a long name too (a time over two lines is twice the font size
// high).
func testThreadTimesOneLine(t *testing.T, browser context.Context, url string) {
	s := newServerAt(t, url, nil, nil)
	d := s.dashboard(browser, "alice@example.com", "Alice Moreau", inbox.RoleAdmin)
	d.do("the window", chromedp.EmulateViewport(1280, 720))
	conv := s.newContactConversation("Maximilian Alexander Bartholomew Worthington-Smythe-Fitzgerald of Bexley Heath and Upper Norwood", "ok", "I waited at the counter for twenty minutes and nobody came")
	d.open(conv.ID)
	d.channel("note")
	d.write("k")
	d.waitJS("the note", `!!`+msgWith("k"))
	wrapped := eval[[]string](d.page, `[...document.querySelectorAll("#thread .msg time")].filter((t) => t.getBoundingClientRect().height > parseFloat(getComputedStyle(t).fontSize) * 2).map((t) => t.textContent)`)
	if len(wrapped) != 0 {
		t.Fatalf("times wrapped or cut: %q", wrapped)
	}
}
