package browsertest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/microdeets/microchat/inbox"
)

// TestWidgetSkipsNotes: agents' private notes never show in the widget,
// and the widget, whose events then skip the notes' seq numbers, shows
// every reply after them, live and after a reload (docs/widget-protocol.md,
// "Gaps in seq").
func TestWidgetSkipsNotes(t *testing.T) {
	browser := newBrowser(t)
	s := newServer(t, nil)
	alice := s.agent("alice@example.com", "Alice Moreau")
	v := visitor(t, browser)
	v.navigate(s.URL + "/")
	v.do("listening to messages", chromedp.Evaluate[chromedp.Void](`window.__got = []; Microchat.on("message", (m) => __got.push(m.text))`))
	startChat(v, "Nora", "", "")
	conv := alice.event(0, inbox.EventConversationCreated).ConversationID
	v.send("Is my order late?")
	alice.event(conv, inbox.EventMessageAdded)
	path := fmt.Sprintf("/api/v1/conversations/%d", conv)
	alice.call("POST", path+"/join", nil, 200, nil)
	v.waitText("Alice Moreau joined the chat")

	// Twice a note, then a reply: the widget shows each reply.
	for i, reply := range []string{"It is on its way.", "It arrives tomorrow."} {
		alice.call("POST", path+"/messages", map[string]any{"channel": "note", "text": fmt.Sprintf("SECRET-%d lost in transit", i)}, 201, nil)
		alice.call("POST", path+"/messages", map[string]any{"channel": "note", "text": fmt.Sprintf("SECRET-%d ask the carrier", i)}, 201, nil)
		var ans struct {
			Message inbox.Message `json:"message"`
		}
		alice.call("POST", path+"/messages", map[string]any{"text": reply}, 201, &ans)
		v.waitText(reply)
		// The widget read it: a read frame up to the reply's seq.
		alice.next("event", func(f agentFrame) bool {
			var r inbox.MessagesRead
			return f.Event.Type == inbox.EventMessagesRead && f.Event.Decode(&r) == nil && r.UpTo == ans.Message.Seq
		})
	}
	if text := v.text(); strings.Contains(text, "SECRET") {
		t.Fatalf("the widget shows a note: %q", text)
	}
	if got := eval[[]string](v, `window.__got`); strings.Join(got, "|") != "It is on its way.|It arrives tomorrow." {
		t.Fatalf(`Microchat.on("message") got %q, want the two replies`, got)
	}

	// A note last, then a reload: the history from /state, and the
	// socket resumes from a seq no event of the visitor's carried.
	alice.call("POST", path+"/messages", map[string]any{"channel": "note", "text": "SECRET-2 refund if late"}, 201, nil)
	v.do("reload", chromedp.Reload())
	v.waitText("It arrives tomorrow.")
	alice.call("POST", path+"/messages", map[string]any{"text": "Anything else?"}, 201, nil)
	v.waitText("Anything else?")
	if text := v.text(); strings.Contains(text, "SECRET") || v.count("It arrives tomorrow.") != 1 {
		t.Fatalf("after a reload the widget shows %q; want each reply once and no note", text)
	}
}
