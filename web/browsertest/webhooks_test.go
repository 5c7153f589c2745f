package browsertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestWebhooksPage runs the admin page's Webhooks section
// (web/static/inbox/webhooks.js) in Chromium against a real server, on
// SQLite and on PostgreSQL: an admin adds a webhook and sees its secret
// once, sees it listed and disables it; a delivery the worker gave up on
// shows with the receiver's answer as text, and Replay makes it pending
// again.
func TestWebhooksPage(t *testing.T) {
	browser := newBrowser(t)
	inboxtest.Run(t, func(t *testing.T, url string) { testWebhooksPage(t, browser, url) })
}

func testWebhooksPage(t *testing.T, browser context.Context, url string) {
	ctx := context.Background()
	s := newServerAt(t, url, nil, nil)
	s.newAgentAccount("ann@example.com", "Ann Admin", inbox.RoleAdmin)
	p := openDashboard(t, browser, s, "#/admin")
	p.login("ann@example.com")
	p.waitJS("the agents table", q("#view-admin table.agents")+` !== null`)
	p.click("Webhooks", pageButton("#view-admin .tabs", "Webhooks"))
	p.waitJS("no webhooks yet", q("#view-admin .webhooks .empty-state")+` !== null`)

	// Add one: name, URL, two events.
	p.click("Add webhook", pageButton("#view-admin", "Add webhook"))
	form := `#view-admin form[aria-label="New webhook"]`
	for _, ev := range []string{inbox.HookConversationCreated, inbox.HookMessageCreated} {
		p.click(ev, q(form+` input[name="events"][value="`+ev+`"]`))
	}
	p.shots("admin-webhook-new")
	p.fillForm(form, "name", "CRM", "url", "https://crm.example.com/hook")
	value := q("#view-admin .token-reveal .token-value")
	p.waitJS("the secret", value+`?.value.startsWith("whsec_")`)
	list, err := s.store.Webhooks(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Webhooks() = %+v, %v; want the one added", list, err)
	}
	w := list[0]
	if w.Name != "CRM" || w.URL != "https://crm.example.com/hook" || !w.Enabled ||
		strings.Join(w.Events, " ") != inbox.HookConversationCreated+" "+inbox.HookMessageCreated {
		t.Fatalf("stored webhook = %+v", w)
	}
	if sec, err := s.store.WebhookSecrets(ctx, w.ID); err != nil || eval[string](p, value+`.value`) != sec.Current {
		t.Fatalf("the page's secret is not the stored one (%v)", err)
	}
	if txt := eval[string](p, q("#view-admin .token-reveal")+`.textContent`); !strings.Contains(txt, "will not be shown again") {
		t.Fatalf("the secret's note = %q, want it to say it will not be shown again", txt)
	}
	row := fmt.Sprintf(`#view-admin tr[data-webhook="%d"]`, w.ID)
	p.waitJS("CRM listed, enabled", q(row)+`?.innerText.includes("https://crm.example.com/hook") && `+q(row+" .badge")+`.textContent === "Enabled" && `+
		q(row+" .hook-events")+`.textContent === "conversation.createdmessage.created"`)
	if txt := eval[string](p, q("#view-admin .webhooks")+`.innerText`); strings.Contains(txt, "null") || strings.Contains(txt, "undefined") {
		t.Fatalf("the section shows a missing value: %q", txt)
	}
	p.shots("admin-webhooks")

	// A message it is owed, which the worker gives up on: the receiver
	// answered markup.
	contact, err := s.store.CreateContact(ctx, inbox.NewContact{Name: "Carla"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	conv, err := s.store.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
	if err != nil {
		t.Fatalf("StartConversation() = %v", err)
	}
	if _, _, err := s.store.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorContact, Text: "hello"}); err != nil {
		t.Fatalf("AddMessage() = %v", err)
	}
	const answer = `<img src=x onerror="window.__pwned=1;alert(1)"><b>busy</b>`
	failed := inboxtest.FailDeliveries(t, s.store, w.ID, 503, answer)
	if len(failed) != 2 {
		t.Fatalf("failed deliveries %v, want conversation.created and message.created", failed)
	}

	// Disable it: stored, and said in the row.
	p.click("Disable CRM", pageButton(row, "Disable CRM"))
	p.waitJS("CRM disabled", q(row+" .badge")+`?.textContent === "Disabled" && `+pageButton(row, "Enable CRM")+` !== undefined`)
	if got, err := s.store.Webhook(ctx, w.ID); err != nil || got.Enabled {
		t.Fatalf("Webhook() after Disable = %+v, %v; want disabled", got, err)
	}
	p.waitJS("the failure in the row", q(row+" .hook-counts")+`?.textContent.includes("2 failed") && `+q(row+" .hook-last")+`.textContent.includes("answered HTTP 503")`)

	// Its failed deliveries: the answer as text, no markup made of it.
	p.click("Failed deliveries of CRM", pageButton(row, "Failed deliveries of CRM"))
	drow := fmt.Sprintf(`#view-admin tr[data-delivery="%d"]`, failed[1])
	p.waitJS("the failed message.created", q(drow+" .hook-body")+`?.textContent === `+jsString(answer)+` && `+q(drow)+`.innerText.includes("message.created") && `+q(drow)+`.innerText.includes("503")`)
	if n := eval[int](p, `document.querySelectorAll("#view-admin table.deliveries img, #view-admin table.deliveries b").length`); n != 0 {
		t.Fatalf("the answer became %d elements, want text", n)
	}
	p.shots("admin-webhook-deliveries")

	// Replay it: pending again, out of the list.
	p.click("Replay", pageButton(drow, fmt.Sprintf("Replay delivery %d", failed[1])))
	p.waitJS("the delivery replayed", q(drow)+` === null && `+q("#view-admin .hook-note")+`?.textContent.includes("sent again")`)
	pending, err := s.store.WebhookDeliveries(ctx, w.ID, inbox.HookPending, 0, 50)
	if err != nil || len(pending) != 1 || pending[0].ID != failed[1] || pending[0].Attempts != 0 {
		t.Fatalf("pending after Replay = %+v, %v; want delivery %d", pending, err, failed[1])
	}
	// Replay all: the other one.
	p.click("Replay all", pageButton("#view-admin", "Replay all"))
	p.waitJS("none failed", q("#view-admin .webhooks .empty-state")+`?.textContent === "No failed deliveries."`)
	if pending, _ = s.store.WebhookDeliveries(ctx, w.ID, inbox.HookPending, 0, 50); len(pending) != 2 {
		t.Fatalf("pending after Replay all = %+v, want both", pending)
	}
	p.noScriptRan()

	// Back to the list: edit its URL and events.
	p.click("All webhooks", pageButton("#view-admin", "All webhooks"))
	p.click("Edit CRM", pageButton(row, "Edit CRM"))
	edit := `#view-admin form[aria-label="Edit CRM"]`
	p.click(inbox.HookConversationCreated, q(edit+` input[name="events"][value="`+inbox.HookConversationCreated+`"]`))
	p.click(inbox.HookRatingCreated, q(edit+` input[name="events"][value="`+inbox.HookRatingCreated+`"]`))
	p.fillForm(edit, "url", "https://crm.example.com/v2")
	p.waitJS("the change listed", q(edit)+` === null && `+q(row)+`?.innerText.includes("https://crm.example.com/v2") && `+
		q(row+" .hook-events")+`.textContent === "message.createdrating.created"`)
	if got, _ := s.store.Webhook(ctx, w.ID); got.URL != "https://crm.example.com/v2" || strings.Join(got.Events, " ") != inbox.HookMessageCreated+" "+inbox.HookRatingCreated || got.Enabled {
		t.Fatalf("stored after Edit = %+v", got)
	}

	// Rotate its secret, after a confirmation: the new one shown once,
	// the old one said to sign for a day more.
	before, err := s.store.WebhookSecrets(ctx, w.ID)
	if err != nil {
		t.Fatalf("WebhookSecrets() = %v", err)
	}
	p.click("Rotate the secret of CRM", pageButton(row, "Rotate the secret of CRM"))
	p.waitJS("the confirmation", q("dialog.confirm[open]")+` !== null`)
	p.click("Rotate", pageButton("dialog.confirm[open]", "Rotate"))
	p.waitJS("the new secret", value+`?.value.startsWith("whsec_") && `+q("#view-admin .token-reveal")+`.textContent.includes("24 hours")`)
	if sec, err := s.store.WebhookSecrets(ctx, w.ID); err != nil || eval[string](p, value+`.value`) != sec.Current || sec.Previous != before.Current {
		t.Fatalf("after Rotate: the page's secret is not the stored one, or the old one does not sign (%v)", err)
	}

	// A webhook of the config file is read-only.
	if err := s.store.SyncConfigWebhooks(ctx, []inbox.NewWebhook{{Name: "Billing", URL: "https://billing.example.com", Events: inbox.HookEvents, Enabled: true, Secret: inbox.NewWebhookSecret()}}); err != nil {
		t.Fatalf("SyncConfigWebhooks() = %v", err)
	}
	p.click("Agents", pageButton("#view-admin .tabs", "Agents"))
	p.click("Webhooks", pageButton("#view-admin .tabs", "Webhooks"))
	p.waitJS("the secret forgotten on leaving", q("#view-admin .token-value")+` === null`)
	file := `#view-admin tr[data-webhook]:last-child`
	p.waitJS("Billing listed from the config file", q(file)+`?.innerText.includes("Billing") && `+q(file+" .badge")+`.textContent === "From config file"`)
	if n := eval[int](p, q(file)+`.querySelectorAll("button").length`); n != 1 || eval[string](p, q(file+" button")+`.textContent`) != "Failed deliveries (0)" {
		t.Fatalf("the config file's webhook has %d buttons, want its failed deliveries only", n)
	}

	// Delete CRM, after a confirmation.
	p.click("Delete CRM", pageButton(row, "Delete CRM"))
	p.waitJS("the confirmation", q("dialog.confirm[open]")+` !== null`)
	p.click("Delete", pageButton("dialog.confirm[open]", "Delete"))
	p.waitJS("CRM gone", q(row)+` === null`)
	if _, err := s.store.Webhook(ctx, w.ID); !errors.Is(err, inbox.ErrNotFound) {
		t.Fatalf("Webhook() after Delete = %v, want ErrNotFound", err)
	}
	p.noScriptRan()
}
