package web

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// errPrivateURL is the test's URL check's refusal, as package webhook's
// guard would say it.
var errPrivateURL = errors.New("resolves to 10.0.0.7, a private address")

// newHookEnv is a server whose URL check refuses any URL on
// internal.example.
func newHookEnv(t *testing.T, url string) *env {
	t.Helper()
	return newEnvOptions(t, inboxtest.Open(t, url, nil), nil, Options{CheckWebhookURL: func(u string) error {
		if strings.Contains(u, "internal.example") {
			return errPrivateURL
		}
		return nil
	}})
}

// makeWebhook creates a webhook through the API with c.
func (c *client) makeWebhook(name, url string, events ...string) createdWebhook {
	c.e.t.Helper()
	var w createdWebhook
	c.do("POST", "/api/v1/webhooks", map[string]any{"name": name, "url": url, "events": events}).want(http.StatusCreated).decode(&w)
	if w.Webhook.ID == 0 || w.Webhook.Name != name || !strings.HasPrefix(w.Secret, "whsec_") {
		c.e.t.Fatalf("created webhook = %+v", w)
	}
	return w
}

// wantNoStore fails unless no cache may keep the answer.
func (r *result) wantNoStore() *result {
	r.t.Helper()
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		r.t.Fatalf("%s: Cache-Control = %q, want no-store", r.req, cc)
	}
	return r
}

// An admin makes, lists, changes, rotates and deletes webhooks; the
// secret is in the answers of POST /webhooks and /rotate only, which no
// cache keeps. The URL check's refusal is a 400 naming url and stores
// nothing; a config file's webhook is read-only (403 with its reason).
func TestWebhooksAdmin(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newHookEnv(t, url)
		admin := e.login(e.agent("admin@example.com", inbox.RoleAdmin).Email)

		var created createdWebhook
		r := admin.do("POST", "/api/v1/webhooks", map[string]any{"name": " CRM ", "url": "https://crm.example.com/hook",
			"events": []string{inbox.HookContactUpdated, inbox.HookMessageCreated}}).want(http.StatusCreated).wantNoStore()
		r.decode(&created)
		w := created.Webhook
		if w.ID == 0 || w.Name != "CRM" || w.URL != "https://crm.example.com/hook" || !w.Enabled || w.FromConfig ||
			!slices.Equal(w.Events, []string{inbox.HookMessageCreated, inbox.HookContactUpdated}) || !strings.HasPrefix(created.Secret, "whsec_") {
			t.Fatalf("created = %+v", created)
		}
		if sec, err := e.store.WebhookSecrets(ctx, w.ID); err != nil || sec.Current != created.Secret {
			t.Fatalf("stored secret = %+v, %v; want the one answered", sec, err)
		}
		off := admin.makeWebhook("Off", "http://hooks.example.org/x", inbox.HookRatingCreated)
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(off.Webhook.ID), map[string]any{"enabled": false}).want(http.StatusOK)
		var disabled createdWebhook
		admin.do("POST", "/api/v1/webhooks", map[string]any{"name": "Born off", "url": "https://x.example.com", "events": inbox.HookEvents, "enabled": false}).
			want(http.StatusCreated).decode(&disabled)
		if disabled.Webhook.Enabled || len(disabled.Webhook.Events) != len(inbox.HookEvents) {
			t.Fatalf("created with enabled false = %+v", disabled.Webhook)
		}

		// Listed by id, never with a secret.
		var list webhookList
		listed := admin.do("GET", "/api/v1/webhooks", nil).want(http.StatusOK)
		listed.decode(&list)
		if len(list.Webhooks) != 3 || list.Webhooks[0].ID != w.ID || list.Webhooks[1].Enabled || list.Webhooks[2].ID != disabled.Webhook.ID {
			t.Fatalf("list = %+v", list.Webhooks)
		}
		if strings.Contains(string(listed.body), "whsec_") || strings.Contains(string(listed.body), "secret\"") {
			t.Fatalf("the list shows a secret: %s", listed.body)
		}
		var one webhookAnswer
		admin.do("GET", "/api/v1/webhooks/"+itoa64(w.ID), nil).want(http.StatusOK).decode(&one)
		if one.Webhook.ID != w.ID || one.Webhook.Name != "CRM" {
			t.Fatalf("GET one = %+v", one)
		}
		admin.do("GET", "/api/v1/webhooks/999999", nil).want(http.StatusNotFound)
		admin.do("GET", "/api/v1/webhooks/x", nil).want(http.StatusNotFound)

		// The URL check refuses: a 400 naming url with its reason, and
		// nothing stored or changed.
		res := admin.do("POST", "/api/v1/webhooks", map[string]any{"name": "Inside", "url": "https://internal.example/hook", "events": inbox.HookEvents})
		res.wantField("url")
		if msg := res.apiErr().Error; !strings.Contains(msg, errPrivateURL.Error()) {
			t.Fatalf("refused URL's error = %q, want the check's reason", msg)
		}
		if all, _ := e.store.Webhooks(ctx); len(all) != 3 {
			t.Fatalf("after a refused URL: %d webhooks, want 3", len(all))
		}
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(w.ID), map[string]any{"url": "http://internal.example", "enabled": false}).wantField("url")
		if got, _ := e.store.Webhook(ctx, w.ID); got.URL != "https://crm.example.com/hook" || !got.Enabled {
			t.Fatalf("after a refused PATCH: %+v", got)
		}

		// Bad input names its field; a name in use is 409.
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": "https://x.example.com", "events": inbox.HookEvents}, "name"},
			{map[string]any{"name": "  ", "url": "https://x.example.com", "events": inbox.HookEvents}, "name"},
			{map[string]any{"name": strings.Repeat("n", inbox.MaxWebhookName+1), "url": "https://x.example.com", "events": inbox.HookEvents}, "name"},
			{map[string]any{"name": "x", "events": inbox.HookEvents}, "url"},
			{map[string]any{"name": "x", "url": "ftp://x.example.com", "events": inbox.HookEvents}, "url"},
			{map[string]any{"name": "x", "url": "https://u:p@x.example.com", "events": inbox.HookEvents}, "url"},
			{map[string]any{"name": "x", "url": "https://x.example.com"}, "events"},
			{map[string]any{"name": "x", "url": "https://x.example.com", "events": []string{}}, "events"},
			{map[string]any{"name": "x", "url": "https://x.example.com", "events": []string{"message.deleted"}}, "events"},
			{map[string]any{"name": "x", "url": "https://x.example.com", "events": "message.created"}, "events"},
			{map[string]any{"name": "x", "url": "https://x.example.com", "events": inbox.HookEvents, "enabled": "yes"}, "enabled"},
			{map[string]any{"name": "x", "url": "https://x.example.com", "events": inbox.HookEvents, "secret": "whsec_mine"}, "secret"},
		} {
			admin.do("POST", "/api/v1/webhooks", tc.body).wantField(tc.field)
		}
		admin.do("POST", "/api/v1/webhooks", nil).want(http.StatusBadRequest)
		if f := admin.do("POST", "/api/v1/webhooks", map[string]any{"name": "CRM", "url": "https://y.example.com", "events": inbox.HookEvents}).
			want(http.StatusConflict).apiErr().Field; f != "name" {
			t.Fatalf("a name in use: field %q, want name", f)
		}

		// Change some fields; the others stay.
		var changed webhookAnswer
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(w.ID), map[string]any{"enabled": false, "events": []string{inbox.HookConversationClosed}}).
			want(http.StatusOK).decode(&changed)
		if c := changed.Webhook; c.Enabled || c.Name != "CRM" || c.URL != w.URL || !slices.Equal(c.Events, []string{inbox.HookConversationClosed}) {
			t.Fatalf("changed = %+v", c)
		}
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(w.ID), map[string]any{"url": "https://crm2.example.com/h", "enabled": true}).want(http.StatusOK).decode(&changed)
		if got, _ := e.store.Webhook(ctx, w.ID); got.URL != "https://crm2.example.com/h" || !got.Enabled || got.Name != "CRM" {
			t.Fatalf("stored after PATCH = %+v", got)
		}
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(w.ID), map[string]any{"events": []string{}}).wantField("events")
		admin.do("PATCH", "/api/v1/webhooks/"+itoa64(w.ID), map[string]any{"name": "Off"}).want(http.StatusConflict)
		admin.do("PATCH", "/api/v1/webhooks/999999", map[string]any{"enabled": true}).want(http.StatusNotFound)

		// Rotate: a new secret, no-store; the old one signs beside it for
		// 24 hours by default, or as long as asked (0: not at all).
		var rotated webhookSecret
		admin.do("POST", "/api/v1/webhooks/"+itoa64(w.ID)+"/rotate", nil).want(http.StatusOK).wantNoStore().decode(&rotated)
		sec, err := e.store.WebhookSecrets(ctx, w.ID)
		if err != nil || !strings.HasPrefix(rotated.Secret, "whsec_") || !slices.Equal(sec.List(), []string{rotated.Secret, created.Secret}) {
			t.Fatalf("after rotating: answered %q, stored %v, %v", rotated.Secret, sec.List(), err)
		}
		if got, _ := e.store.Webhook(ctx, w.ID); got.PreviousSecretUntil == nil || got.PreviousSecretUntil.Sub(e.store.Now()).Hours() < 23.9 {
			t.Fatalf("the old secret signs until %v, want 24 hours from now", got.PreviousSecretUntil)
		}
		admin.do("POST", "/api/v1/webhooks/"+itoa64(w.ID)+"/rotate", map[string]any{"overlap_hours": 0}).want(http.StatusOK).decode(&rotated)
		if sec, _ = e.store.WebhookSecrets(ctx, w.ID); !slices.Equal(sec.List(), []string{rotated.Secret}) {
			t.Fatalf("after rotating without overlap: %v, want the new secret alone", sec.List())
		}
		for _, h := range []any{-1, 169, "24"} {
			admin.do("POST", "/api/v1/webhooks/"+itoa64(w.ID)+"/rotate", map[string]any{"overlap_hours": h}).wantField("overlap_hours")
		}
		admin.do("POST", "/api/v1/webhooks/999999/rotate", nil).want(http.StatusNotFound)

		// The config file's webhooks are read-only here.
		if err := e.store.SyncConfigWebhooks(ctx, []inbox.NewWebhook{{Name: "From file", URL: "https://file.example.com", Events: inbox.HookEvents, Enabled: true, Secret: inbox.NewWebhookSecret()}}); err != nil {
			t.Fatalf("SyncConfigWebhooks() = %v", err)
		}
		admin.do("GET", "/api/v1/webhooks", nil).want(http.StatusOK).decode(&list)
		file := list.Webhooks[len(list.Webhooks)-1]
		if !file.FromConfig {
			t.Fatalf("the file's webhook = %+v", file)
		}
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "", map[string]any{"enabled": false}},
			{"DELETE", "", nil},
			{"POST", "/rotate", nil},
		} {
			res := admin.do(req.method, "/api/v1/webhooks/"+itoa64(file.ID)+req.path, req.body).want(http.StatusForbidden)
			if msg := res.apiErr().Error; !strings.Contains(msg, "config file") {
				t.Fatalf("%s of the file's webhook: %q, want it to say the config file", req.method, msg)
			}
		}

		// Delete.
		admin.do("DELETE", "/api/v1/webhooks/"+itoa64(w.ID), nil).want(http.StatusNoContent)
		admin.do("GET", "/api/v1/webhooks/"+itoa64(w.ID), nil).want(http.StatusNotFound)
		admin.do("DELETE", "/api/v1/webhooks/"+itoa64(w.ID), nil).want(http.StatusNotFound)
	})
}

// Webhooks are for admins: an agent is 403 on every route, no session
// 401, and a session's write without the CSRF token 403; an admin's API
// token works as the session does, without CSRF, an agent's is 403.
func TestWebhooksAccess(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newHookEnv(t, url)
		e.agent("admin@example.com", inbox.RoleAdmin)
		e.agent("bob@example.com", inbox.RoleAgent)
		admin, agent, none := e.login("admin@example.com"), e.login("bob@example.com"), e.client()
		w := admin.makeWebhook("CRM", "https://crm.example.com/hook", inbox.HookMessageCreated)
		id := itoa64(w.Webhook.ID)
		body := map[string]any{"name": "Other", "url": "https://o.example.com", "events": inbox.HookEvents}
		routes := []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/webhooks", nil},
			{"POST", "/api/v1/webhooks", body},
			{"GET", "/api/v1/webhooks/" + id, nil},
			{"PATCH", "/api/v1/webhooks/" + id, map[string]any{"enabled": false}},
			{"POST", "/api/v1/webhooks/" + id + "/rotate", nil},
			{"GET", "/api/v1/webhooks/" + id + "/deliveries", nil},
			{"POST", "/api/v1/webhooks/" + id + "/deliveries/replay", nil},
			{"POST", "/api/v1/webhooks/" + id + "/deliveries/1/replay", nil},
			{"DELETE", "/api/v1/webhooks/" + id, nil},
		}
		agentTok := agent.makeAPIToken("bot", 1)
		for _, r := range routes {
			if msg := agent.do(r.method, r.path, r.body).want(http.StatusForbidden).apiErr().Error; msg != "only an admin may do this" {
				t.Fatalf("%s %s as an agent: %q", r.method, r.path, msg)
			}
			e.bearerClient(agentTok.Token).do(r.method, r.path, r.body).want(http.StatusForbidden)
			none.do(r.method, r.path, r.body).want(http.StatusUnauthorized)
		}

		// The admin's writes without the CSRF token are refused.
		csrf := admin.csrf
		admin.csrf = ""
		for _, r := range routes {
			if r.method != "GET" {
				admin.do(r.method, r.path, r.body).want(http.StatusForbidden)
			}
		}
		admin.csrf = csrf
		if got, _ := e.store.Webhooks(context.Background()); len(got) != 1 || !got[0].Enabled {
			t.Fatalf("after the refused writes: %+v", got)
		}

		// An admin's token: no cookie, no CSRF token.
		script := e.bearerClient(admin.makeAPIToken("ops", 1).Token)
		var made createdWebhook
		script.do("POST", "/api/v1/webhooks", body).want(http.StatusCreated).wantNoStore().decode(&made)
		var list webhookList
		script.do("GET", "/api/v1/webhooks", nil).want(http.StatusOK).decode(&list)
		if len(list.Webhooks) != 2 || list.Webhooks[1].ID != made.Webhook.ID {
			t.Fatalf("list with the admin's token = %+v", list.Webhooks)
		}
		for _, r := range routes[3:] {
			if r := script.do(r.method, r.path, r.body); r.code >= 400 && r.code != http.StatusNotFound {
				t.Fatalf("%s with the admin's token = %d %s", r.req, r.code, r.body)
			}
		}
		script.do("GET", "/api/v1/webhooks/"+id, nil).want(http.StatusNotFound) // deleted by the last route
	})
}

// A webhook's failed deliveries are listed, the newest first, with the
// receiver's answer, and replayed one or all: pending again, due now.
func TestWebhookDeliveries(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newHookEnv(t, url)
		admin := e.login(e.agent("admin@example.com", inbox.RoleAdmin).Email)
		w := admin.makeWebhook("CRM", "https://crm.example.com/hook", inbox.HookMessageCreated).Webhook
		other := admin.makeWebhook("Other", "https://other.example.com/hook", inbox.HookRatingCreated).Webhook
		conv := e.conversation("Carla", "")
		e.contactSays(conv.ID, "first")
		e.contactSays(conv.ID, "second")
		const answer = `<img src=x onerror=alert(1)>`
		ids := inboxtest.FailDeliveries(t, e.store, w.ID, 500, answer)
		if len(ids) != 2 {
			t.Fatalf("failed deliveries %v, want 2", ids)
		}
		path := "/api/v1/webhooks/" + itoa64(w.ID)

		var one webhookAnswer
		admin.do("GET", path, nil).want(http.StatusOK).decode(&one)
		if one.Webhook.Failed != 2 || one.Webhook.Pending != 0 || one.Webhook.LastFailureAt == nil || one.Webhook.LastError != "answered HTTP 500" {
			t.Fatalf("webhook with failed deliveries = %+v", one.Webhook)
		}
		var list deliveryList
		admin.do("GET", path+"/deliveries", nil).want(http.StatusOK).decode(&list)
		if len(list.Deliveries) != 2 || list.Deliveries[0].ID != ids[1] || list.Deliveries[1].ID != ids[0] {
			t.Fatalf("failed deliveries = %+v, want %v newest first", list.Deliveries, ids)
		}
		d := list.Deliveries[0]
		if d.State != inbox.HookFailed || d.Type != inbox.HookMessageCreated || d.ConversationID != conv.ID || d.Attempts != 1 ||
			d.LastStatus != 500 || d.LastBody != answer || d.LastError != "answered HTTP 500" || d.LastAt == nil {
			t.Fatalf("failed delivery = %+v", d)
		}
		admin.do("GET", path+"/deliveries?state=failed&limit=1", nil).want(http.StatusOK).decode(&list)
		if len(list.Deliveries) != 1 || list.Deliveries[0].ID != ids[1] {
			t.Fatalf("limit 1 = %+v", list.Deliveries)
		}
		admin.do("GET", path+"/deliveries?before="+itoa64(ids[1]), nil).want(http.StatusOK).decode(&list)
		if len(list.Deliveries) != 1 || list.Deliveries[0].ID != ids[0] {
			t.Fatalf("before %d = %+v", ids[1], list.Deliveries)
		}
		admin.do("GET", path+"/deliveries?state=pending", nil).want(http.StatusOK).decode(&list)
		if len(list.Deliveries) != 0 {
			t.Fatalf("pending = %+v, want none", list.Deliveries)
		}
		for q, field := range map[string]string{"state=sent": "state", "limit=0": "limit", "limit=201": "limit", "limit=x": "limit", "before=-1": "before"} {
			admin.do("GET", path+"/deliveries?"+q, nil).wantField(field)
		}
		admin.do("GET", "/api/v1/webhooks/999999/deliveries", nil).want(http.StatusNotFound)

		// Replay one: pending again with its id; a second time, or through
		// another webhook, it is not a failed delivery there.
		var replayed replayAnswer
		admin.do("POST", path+"/deliveries/"+itoa64(ids[0])+"/replay", nil).want(http.StatusOK).decode(&replayed)
		if replayed.Replayed != 1 {
			t.Fatalf("replayed = %+v", replayed)
		}
		admin.do("POST", path+"/deliveries/"+itoa64(ids[0])+"/replay", nil).want(http.StatusNotFound)
		admin.do("POST", "/api/v1/webhooks/"+itoa64(other.ID)+"/deliveries/"+itoa64(ids[1])+"/replay", nil).want(http.StatusNotFound)
		admin.do("POST", path+"/deliveries/x/replay", nil).want(http.StatusNotFound)
		pending, err := e.store.WebhookDeliveries(ctx, w.ID, inbox.HookPending, 0, 50)
		if err != nil || len(pending) != 1 || pending[0].ID != ids[0] || pending[0].Attempts != 0 || pending[0].NextAt.After(e.store.Now()) {
			t.Fatalf("pending after the replay = %+v, %v", pending, err)
		}

		// Replay all: the other one.
		admin.do("POST", path+"/deliveries/replay", nil).want(http.StatusOK).decode(&replayed)
		if replayed.Replayed != 1 {
			t.Fatalf("replayed all = %+v, want the one left", replayed)
		}
		admin.do("POST", path+"/deliveries/replay", nil).want(http.StatusOK).decode(&replayed)
		if replayed.Replayed != 0 {
			t.Fatalf("replayed all again = %+v, want none", replayed)
		}
		admin.do("GET", path, nil).want(http.StatusOK).decode(&one)
		if one.Webhook.Failed != 0 || one.Webhook.Pending != 2 {
			t.Fatalf("after replaying all = %+v", one.Webhook)
		}
	})
}

// PATCH /contacts/{id}: any agent fixes a contact's name, email or
// phone, checked as the widget's form is; webhooks are owed
// contact.updated.
func TestUpdateContact(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newHookEnv(t, url)
		admin := e.login(e.agent("admin@example.com", inbox.RoleAdmin).Email)
		agent := e.login(e.agent("bob@example.com", inbox.RoleAgent).Email)
		w := admin.makeWebhook("CRM", "https://crm.example.com/hook", inbox.HookContactUpdated).Webhook
		conv := e.conversation("Carla", "")
		path := "/api/v1/contacts/" + itoa64(conv.ContactID)

		var ans contactAnswer
		agent.do("PATCH", path, map[string]any{"name": "Carla Brown", "email": "Carla@Example.com"}).want(http.StatusOK).decode(&ans)
		if c := ans.Contact; c.ID != conv.ContactID || c.Name != "Carla Brown" || c.Email != "carla@example.com" || c.EmailVerified || c.Phone != "" {
			t.Fatalf("changed contact = %+v", c)
		}
		agent.do("PATCH", path, map[string]any{"phone": "+1 555 0100"}).want(http.StatusOK).decode(&ans)
		stored, err := e.store.ContactDetail(ctx, conv.ContactID)
		if err != nil || stored.Name != "Carla Brown" || stored.Email != "carla@example.com" || stored.Phone != "+1 555 0100" {
			t.Fatalf("stored contact = %+v, %v", stored.Contact, err)
		}
		hooks, err := e.store.WebhookDeliveries(ctx, w.ID, inbox.HookPending, 0, 50)
		if err != nil || len(hooks) != 2 || hooks[0].Type != inbox.HookContactUpdated || hooks[0].ContactID != conv.ContactID {
			t.Fatalf("deliveries = %+v, %v; want two contact.updated", hooks, err)
		}

		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"email": "not an address"}, "email"},
			{map[string]any{"email": "Carla <carla@example.com>"}, "email"},
			{map[string]any{"phone": "call me"}, "phone"},
			{map[string]any{"name": "", "email": ""}, "name"},
			{map[string]any{"name": strings.Repeat("n", 201)}, "name"},
			{map[string]any{"name": 7}, "name"},
			{map[string]any{"online": true}, "online"},
		} {
			agent.do("PATCH", path, tc.body).wantField(tc.field)
		}
		agent.do("PATCH", path, nil).want(http.StatusBadRequest)
		if got, _ := e.store.ContactDetail(ctx, conv.ContactID); got.Email != "carla@example.com" || got.Name != "Carla Brown" {
			t.Fatalf("after refused changes: %+v", got.Contact)
		}
		agent.do("PATCH", "/api/v1/contacts/999999", map[string]any{"name": "x"}).want(http.StatusNotFound)
		e.client().do("PATCH", path, map[string]any{"name": "x"}).want(http.StatusUnauthorized)
		agent.csrf = ""
		agent.do("PATCH", path, map[string]any{"name": "x"}).want(http.StatusForbidden)
	})
}

// The top-level webhooks of openapi.yaml describe every event type that
// inbox delivers, and only those, each with the Standard Webhooks
// headers and its data's schema (TestOpenAPISchemas checks that schema
// against the type's JSON).
func TestOpenAPIWebhooks(t *testing.T) {
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatalf("ReadFile() = %v", err)
	}
	type schema struct {
		Ref        string            `yaml:"$ref"`
		AllOf      []schema          `yaml:"allOf"`
		Properties map[string]schema `yaml:"properties"`
		Const      string            `yaml:"const"`
	}
	var doc struct {
		Webhooks map[string]struct {
			Post struct {
				Parameters []struct {
					Ref string `yaml:"$ref"`
				} `yaml:"parameters"`
				RequestBody struct {
					Content map[string]struct {
						Schema schema `yaml:"schema"`
					} `yaml:"content"`
				} `yaml:"requestBody"`
				Responses map[string]any `yaml:"responses"`
			} `yaml:"post"`
		} `yaml:"webhooks"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	data := map[string]any{
		inbox.HookConversationCreated:  inbox.HookConversationData{},
		inbox.HookConversationAssigned: inbox.HookAssignedData{},
		inbox.HookConversationClosed:   inbox.HookClosedData{},
		inbox.HookConversationReopened: inbox.HookReopenedData{},
		inbox.HookMessageCreated:       inbox.HookMessageData{},
		inbox.HookMessageFailed:        inbox.HookMessageFailedData{},
		inbox.HookRatingCreated:        inbox.HookRatingData{},
		inbox.HookContactUpdated:       inbox.HookContactData{},
		inbox.HookContactErased:        inbox.HookContactErasedData{},
	}
	if len(doc.Webhooks) != len(inbox.HookEvents) {
		t.Errorf("openapi.yaml has %d webhooks, inbox %d event types", len(doc.Webhooks), len(inbox.HookEvents))
	}
	for _, typ := range inbox.HookEvents {
		hook, ok := doc.Webhooks[typ]
		if !ok {
			t.Errorf("openapi.yaml: no webhook %s", typ)
			continue
		}
		var params []string
		for _, p := range hook.Post.Parameters {
			params = append(params, strings.TrimPrefix(p.Ref, "#/components/parameters/"))
		}
		if !slices.Equal(params, []string{"HookID", "HookTimestamp", "HookSignature"}) {
			t.Errorf("webhook %s: parameters %v, want the three Standard Webhooks headers", typ, params)
		}
		body := hook.Post.RequestBody.Content["application/json"].Schema
		if len(body.AllOf) != 2 || body.AllOf[0].Ref != "#/components/schemas/HookPayload" {
			t.Errorf("webhook %s: body %+v, want HookPayload and its data", typ, body)
			continue
		}
		want := "#/components/schemas/" + reflect.TypeOf(data[typ]).Name()
		if p := body.AllOf[1].Properties; p["type"].Const != typ || p["data"].Ref != want {
			t.Errorf("webhook %s: type %q and data %q, want %q and %s", typ, p["type"].Const, p["data"].Ref, typ, want)
		}
		if hook.Post.Responses["2XX"] == nil {
			t.Errorf("webhook %s: no 2XX response", typ)
		}
	}
}
