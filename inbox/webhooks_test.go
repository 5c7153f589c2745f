package inbox_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// hookTypes sends nothing: it returns the due runs of a webhook as the
// types of their deliveries, by stream.
func dueTypes(t *testing.T, s *inbox.Store, webhookID int64) (map[int64][]string, [][]inbox.Delivery) {
	t.Helper()
	runs, err := s.DueDeliveries(ctx, webhookID, nil, 1000, 1000)
	if err != nil {
		t.Fatalf("DueDeliveries() = %v", err)
	}
	out := map[int64][]string{}
	for _, run := range runs {
		for _, d := range run {
			k := d.ConversationID
			if k == 0 {
				k = -d.ContactID
			}
			out[k] = append(out[k], d.Type)
		}
	}
	return out, runs
}

// Each change a webhook wants is a delivery stored with the change, in
// the order of its conversation, with a body of its type; the ones it
// does not want, and those of a disabled webhook, are none.
func TestWebhookDeliveriesRecorded(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		all, secret, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "all", URL: "https://crm.example.com/hook", Events: inbox.HookEvents, Enabled: true})
		if err != nil || len(secret) < 40 || secret[:6] != "whsec_" || len(all.Events) != len(inbox.HookEvents) {
			t.Fatalf("CreateWebhook() = %+v, %q, %v", all, secret, err)
		}
		msgs, _, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "messages", URL: "https://crm.example.com/m", Events: []string{inbox.HookMessageCreated}, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		off, _, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "off", URL: "https://crm.example.com/off", Events: inbox.HookEvents})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		agent, _ := s.CreateAgent(ctx, inbox.NewAgent{Email: "a@example.com", Name: "Ann", Password: "correct horse"})
		contact, _ := s.CreateContact(ctx, inbox.NewContact{Name: "Carol"})
		conv, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		if err != nil {
			t.Fatalf("StartConversation() = %v", err)
		}
		if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorContact, Text: "hello"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		if err := s.Join(ctx, conv.ID, agent.ID); err != nil {
			t.Fatalf("Join() = %v", err)
		}
		if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorAgent, AgentID: &agent.ID, Channel: inbox.ChannelNote, Text: "VIP"}); err != nil {
			t.Fatalf("AddMessage(note) = %v", err)
		}
		if err := s.Leave(ctx, conv.ID, agent.ID); err != nil {
			t.Fatalf("Leave() = %v", err)
		}
		if _, err := s.Rate(ctx, conv.ID, 5, "quick"); err != nil {
			t.Fatalf("Rate() = %v", err)
		}
		if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: conv.ID, Author: inbox.AuthorContact, Text: "one more thing"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		if _, err := s.UpdateContact(ctx, contact.ID, inbox.ContactPatch{Email: ptr("carol@example.com")}); err != nil {
			t.Fatalf("UpdateContact() = %v", err)
		}

		got, runs := dueTypes(t, s, all.ID)
		want := []string{inbox.HookConversationCreated, inbox.HookMessageCreated, inbox.HookConversationAssigned,
			inbox.HookMessageCreated, inbox.HookConversationClosed,
			inbox.HookRatingCreated, inbox.HookConversationReopened, inbox.HookMessageCreated}
		if !slices.Equal(got[conv.ID], want) || !slices.Equal(got[-contact.ID], []string{inbox.HookContactUpdated}) {
			t.Fatalf("deliveries = %v, want %v in conversation %d and contact.updated", got, want, conv.ID)
		}
		var note, contactBody, rating map[string]any
		for _, run := range runs {
			for _, d := range run {
				var p struct {
					Type string
					Data map[string]any
				}
				if err := json.Unmarshal(d.Body, &p); err != nil || p.Type != d.Type {
					t.Fatalf("body of %s = %s, %v", d.Type, d.Body, err)
				}
				if d.Type == inbox.HookMessageCreated && p.Data["private"] == true {
					note = p.Data
				}
				switch d.Type {
				case inbox.HookContactUpdated:
					contactBody = p.Data
				case inbox.HookRatingCreated:
					rating = p.Data
				}
			}
		}
		if note == nil || note["message"].(map[string]any)["text"] != "VIP" {
			t.Fatalf("no private note among message.created: %v", runs)
		}
		if c, _ := contactBody["contact"].(map[string]any); c == nil || c["email"] != "carol@example.com" {
			t.Fatalf("contact.updated data = %v", contactBody)
		}
		if rating["score"] != float64(5) || rating["comment"] != "quick" {
			t.Fatalf("rating.created data = %v", rating)
		}
		if got, _ := dueTypes(t, s, msgs.ID); len(got[conv.ID]) != 3 || len(got) != 1 {
			t.Fatalf("message.created webhook got %v, want its 3 messages only", got)
		}
		if got, _ := dueTypes(t, s, off.ID); len(got) != 0 {
			t.Fatalf("disabled webhook got %v", got)
		}

		// Erasing the contact drops what was owed of them and owes
		// contact.erased.
		if err := s.EraseContact(ctx, contact.ID); err != nil {
			t.Fatalf("EraseContact() = %v", err)
		}
		got, _ = dueTypes(t, s, all.ID)
		if len(got) != 1 || !slices.Equal(got[-contact.ID], []string{inbox.HookContactErased}) {
			t.Fatalf("after the erasure: %v, want contact.erased only", got)
		}
	})
}

// A failed delivery holds those after it in its conversation until it is
// sent; other conversations go on; given up, it waits for a replay,
// which keeps its id.
func TestWebhookDeliveryOrder(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		w, _, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "m", URL: "https://crm.example.com/m", Events: []string{inbox.HookMessageCreated}, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		contact, _ := s.CreateContact(ctx, inbox.NewContact{Name: "Carol"})
		a, _ := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		b, _ := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		for _, c := range []int64{a.ID, a.ID, b.ID} {
			if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: c, Author: inbox.AuthorContact, Text: "m"}); err != nil {
				t.Fatalf("AddMessage() = %v", err)
			}
		}
		_, runs := dueTypes(t, s, w.ID)
		if len(runs) != 2 {
			t.Fatalf("runs = %v, want one per conversation", runs)
		}
		var first inbox.Delivery
		for _, run := range runs {
			if run[0].ConversationID == a.ID {
				if len(run) != 2 || run[0].ID > run[1].ID {
					t.Fatalf("run of a = %+v", run)
				}
				first = run[0]
			}
		}
		// maxRuns bounds the runs, the earliest due first.
		if one, err := s.DueDeliveries(ctx, w.ID, nil, 100, 1); err != nil || len(one) != 1 || one[0][0].ConversationID != a.ID || len(one[0]) != 2 {
			t.Fatalf("DueDeliveries(1 run) = %+v, %v; want a's two", one, err)
		}
		// While the first of a is in flight, a gives nothing.
		busy, err := s.DueDeliveries(ctx, w.ID, []int64{a.ID}, 100, 100)
		if err != nil || len(busy) != 1 || busy[0][0].ConversationID != b.ID {
			t.Fatalf("DueDeliveries(a busy) = %v, %v", busy, err)
		}
		// It fails: a waits for its retry, b is sent.
		retry := clock.Now().Add(time.Minute)
		outs := []inbox.DeliveryOutcome{{ID: first.ID, At: clock.Now(), Status: 500, Body: "oops", Error: "HTTP 500", RetryAt: retry}}
		for _, run := range runs {
			if run[0].ConversationID == b.ID {
				outs = append(outs, inbox.DeliveryOutcome{ID: run[0].ID, OK: true, At: clock.Now(), Status: 200})
			}
		}
		if err := s.RecordDeliveries(ctx, w.ID, outs); err != nil {
			t.Fatalf("RecordDeliveries() = %v", err)
		}
		if got, _ := s.Webhook(ctx, w.ID); !got.UpdatedAt.Equal(w.UpdatedAt) {
			t.Fatalf("updated_at after deliveries = %v, want %v: an outcome is no change to the webhook", got.UpdatedAt, w.UpdatedAt)
		}
		if got, _ := dueTypes(t, s, w.ID); len(got) != 0 {
			t.Fatalf("due before the retry: %v", got)
		}
		// A new message of a is held too.
		s.AddMessage(ctx, inbox.NewMessage{ConversationID: a.ID, Author: inbox.AuthorContact, Text: "m"})
		if got, _ := dueTypes(t, s, w.ID); len(got) != 0 {
			t.Fatalf("a new message of a held conversation is due: %v", got)
		}
		clock.Advance(time.Minute)
		_, runs = dueTypes(t, s, w.ID)
		if len(runs) != 1 || len(runs[0]) != 3 || runs[0][0].ID != first.ID {
			t.Fatalf("after the retry time: %+v, want a's three from %d", runs, first.ID)
		}
		// Given up: kept as failed, with the answer; those after it go on.
		if err := s.RecordDeliveries(ctx, w.ID, []inbox.DeliveryOutcome{{ID: first.ID, At: clock.Now(), Status: 410, Body: "gone"}}); err != nil {
			t.Fatalf("RecordDeliveries() = %v", err)
		}
		failed, err := s.WebhookDeliveries(ctx, w.ID, inbox.HookFailed, 0, 50)
		if err != nil || len(failed) != 1 || failed[0].ID != first.ID || failed[0].LastStatus != 410 || failed[0].LastBody != "gone" || failed[0].Attempts != 2 {
			t.Fatalf("failed = %+v, %v", failed, err)
		}
		if _, runs = dueTypes(t, s, w.ID); len(runs) != 1 || len(runs[0]) != 2 {
			t.Fatalf("after giving up: %+v", runs)
		}
		hook, _ := s.Webhook(ctx, w.ID)
		if hook.Failed != 1 || hook.Pending != 2 || hook.LastFailureAt == nil || hook.LastSuccessAt == nil {
			t.Fatalf("Webhook() = %+v", hook)
		}
		if n, err := s.ReplayDelivery(ctx, w.ID, first.ID); err != nil || n != 1 {
			t.Fatalf("ReplayDelivery() = %d, %v", n, err)
		}
		if _, err := s.ReplayDelivery(ctx, w.ID, first.ID); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("ReplayDelivery() again = %v, want ErrNotFound", err)
		}
		_, runs = dueTypes(t, s, w.ID)
		if len(runs) != 1 || runs[0][0].ID != first.ID || runs[0][0].Attempts != 0 {
			t.Fatalf("after the replay: %+v", runs)
		}
	})
}

// The config file's webhooks are synced by name and cannot be changed
// through the API; rotation keeps the old secret for the overlap.
func TestWebhookAdmin(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		secret := inbox.NewWebhookSecret()
		cfg := []inbox.NewWebhook{{Name: "crm", URL: "https://crm.example.com/h", Events: []string{inbox.HookConversationCreated}, Enabled: true, Secret: secret}}
		if err := s.SyncConfigWebhooks(ctx, cfg); err != nil {
			t.Fatalf("SyncConfigWebhooks() = %v", err)
		}
		list, _ := s.Webhooks(ctx)
		if len(list) != 1 || !list[0].FromConfig || list[0].Name != "crm" {
			t.Fatalf("Webhooks() = %+v", list)
		}
		id := list[0].ID
		if _, err := s.UpdateWebhook(ctx, id, inbox.WebhookPatch{Enabled: ptr(false)}); !errors.Is(err, inbox.ErrForbidden) {
			t.Fatalf("UpdateWebhook(config) = %v, want ErrForbidden", err)
		}
		if err := s.DeleteWebhook(ctx, id); !errors.Is(err, inbox.ErrForbidden) {
			t.Fatalf("DeleteWebhook(config) = %v, want ErrForbidden", err)
		}
		if _, _, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "crm", URL: "https://x.example.com", Events: inbox.HookEvents}); !errors.Is(err, inbox.ErrConflict) {
			t.Fatalf("CreateWebhook(same name) = %v, want ErrConflict", err)
		}
		for _, bad := range []inbox.NewWebhook{
			{Name: "", URL: "https://x.example.com", Events: inbox.HookEvents},
			{Name: "x", URL: "ftp://x.example.com", Events: inbox.HookEvents},
			{Name: "x", URL: "https://u:p@x.example.com", Events: inbox.HookEvents},
			{Name: "x", URL: "https://x.example.com", Events: nil},
			{Name: "x", URL: "https://x.example.com", Events: []string{"message.deleted"}},
			{Name: "x", URL: "https://x.example.com", Events: inbox.HookEvents, Secret: "plain"},
		} {
			var invalid *inbox.InvalidError
			if _, _, err := s.CreateWebhook(ctx, bad); !errors.As(err, &invalid) {
				t.Fatalf("CreateWebhook(%+v) = %v, want an InvalidError", bad, err)
			}
		}
		// Dropped from the file: gone.
		if err := s.SyncConfigWebhooks(ctx, nil); err != nil {
			t.Fatalf("SyncConfigWebhooks(nil) = %v", err)
		}
		if list, _ = s.Webhooks(ctx); len(list) != 0 {
			t.Fatalf("Webhooks() after the file dropped it = %+v", list)
		}

		w, old, _ := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "api", URL: "https://x.example.com", Events: inbox.HookEvents, Enabled: true})
		fresh, err := s.RotateWebhookSecret(ctx, w.ID, time.Hour)
		if err != nil || fresh == old {
			t.Fatalf("RotateWebhookSecret() = %q, %v", fresh, err)
		}
		sec, _ := s.WebhookSecrets(ctx, w.ID)
		if !slices.Equal(sec.List(), []string{fresh, old}) {
			t.Fatalf("secrets during the overlap = %v", sec.List())
		}
		clock.Advance(time.Hour)
		if sec, _ = s.WebhookSecrets(ctx, w.ID); !slices.Equal(sec.List(), []string{fresh}) {
			t.Fatalf("secrets after the overlap = %v", sec.List())
		}
		if w, err = s.UpdateWebhook(ctx, w.ID, inbox.WebhookPatch{Events: &[]string{inbox.HookRatingCreated, inbox.HookContactErased, inbox.HookRatingCreated}}); err != nil ||
			!slices.Equal(w.Events, []string{inbox.HookRatingCreated, inbox.HookContactErased}) {
			t.Fatalf("UpdateWebhook(events) = %+v, %v", w, err)
		}
		if err := s.DeleteWebhook(ctx, w.ID); err != nil {
			t.Fatalf("DeleteWebhook() = %v", err)
		}
	})
}
