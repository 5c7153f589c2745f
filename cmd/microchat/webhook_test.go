package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/lxzan/gws"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The "done when": an admin adds a webhook through the API, a
// visitor chats, and the receiver gets signed events, in order, that the
// Standard Webhooks library verifies; a webhook of the config file
// delivers too; the SSRF guard refuses the metadata address through the
// API even with loopback allowed.
func TestWebhooksEndToEnd(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, dbURL string) {
		type got struct {
			id, typ string
			seq     int64
		}
		var mu sync.Mutex
		var hooks = map[string][]got{}
		verifiers := map[string]*standardwebhooks.Webhook{}
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := r.URL.Path[1:]
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			wh := verifiers[name]
			if wh == nil {
				w.WriteHeader(503) // not known yet: tried again
				return
			}
			if err := wh.Verify(body, r.Header); err != nil {
				t.Errorf("%s: delivery does not verify: %v", name, err)
				w.WriteHeader(400)
				return
			}
			var p struct {
				Type string `json:"type"`
				Data struct {
					Seq int64 `json:"seq"`
				} `json:"data"`
			}
			json.Unmarshal(body, &p)
			hooks[name] = append(hooks[name], got{r.Header.Get("webhook-id"), p.Type, p.Data.Seq})
			w.WriteHeader(204)
		}))
		t.Cleanup(recv.Close)
		fileSecret := inbox.NewWebhookSecret()
		verifiers["file"], _ = standardwebhooks.NewWebhook(fileSecret)

		testEnv(t)
		t.Setenv("MICROCHAT_DATABASE_URL", dbURL)
		t.Setenv(envAdminEmail, "alice@example.com")
		t.Setenv(envAdminPassword, "correct horse battery")
		t.Setenv("MICROCHAT_WEBHOOKS_ENDPOINTS_0_SECRET", fileSecret)
		cfg := filepath.Join(t.TempDir(), "microchat.yaml")
		yaml := "webhooks:\n  allow_networks: [127.0.0.0/8]\n  endpoints:\n    - name: file\n      url: " + recv.URL + "/file\n" +
			"      events: [conversation.created]\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := startServe(t, "--config", cfg)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server log:\n%s", srv.stderr)
			}
		})
		admin := loginAgent(t, srv.url, "alice@example.com", "correct horse battery")

		var made struct {
			Webhook inbox.Webhook `json:"webhook"`
			Secret  string        `json:"secret"`
		}
		admin.post(t, "/api/v1/webhooks", map[string]any{"name": "crm", "url": recv.URL + "/crm",
			"events": []string{"conversation.created", "message.created", "conversation.assigned"}}, &made)
		mu.Lock()
		verifiers["crm"], _ = standardwebhooks.NewWebhook(made.Secret)
		mu.Unlock()
		// The metadata address is refused whatever is allowed.
		req, _ := http.NewRequest("POST", srv.url+"/api/v1/webhooks", jsonBody(t, map[string]any{"name": "meta",
			"url": "http://169.254.169.254/latest/meta-data/", "events": []string{"message.created"}}))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", admin.csrf)
		res, err := admin.c.Do(req)
		if err != nil || res.StatusCode/100 != 4 {
			t.Fatalf("POST a webhook to 169.254.169.254 = %v, %v; want a 4xx", res, err)
		}
		res.Body.Close()

		// A visitor chats; an agent joins and answers.
		var start struct {
			Token        string             `json:"token"`
			Conversation inbox.Conversation `json:"conversation"`
		}
		postJSON(t, http.DefaultClient, srv.url+"/api/v1/widget/conversations", nil, map[string]any{"name": "Dave"}, &start)
		ws := dialVisitor(t, srv.addr, start.Token)
		for i := range 3 {
			frame, _ := json.Marshal(map[string]any{"type": "message", "client_id": "v" + strconv.Itoa(i), "text": "hello " + strconv.Itoa(i)})
			if err := ws.WriteMessage(gws.OpcodeText, frame); err != nil {
				t.Fatal(err)
			}
		}
		chat := strconv.FormatInt(start.Conversation.ID, 10)
		admin.eventually(t, "the visitor's three messages", chat, func(ms []inbox.Message) bool { return len(ms) == 3 })
		admin.post(t, "/api/v1/conversations/"+chat+"/join", nil, nil)
		admin.post(t, "/api/v1/conversations/"+chat+"/messages", map[string]any{"text": "Hi Dave", "client_id": "a1"}, nil)

		want := []string{"conversation.created", "message.created", "message.created", "message.created",
			"conversation.assigned", "message.created"}
		inboxtest.Eventually(t, "the crm webhook's six deliveries and the file's one", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(hooks["crm"]) >= len(want) && len(hooks["file"]) >= 1
		})
		mu.Lock()
		defer mu.Unlock()
		var types []string
		ids := map[string]bool{}
		var last int64
		for _, h := range hooks["crm"] {
			types = append(types, h.typ)
			if ids[h.id] || h.seq < last {
				t.Fatalf("crm deliveries repeat or go back: %+v", hooks["crm"])
			}
			ids[h.id], last = true, h.seq
		}
		if !slices.Equal(types, want) {
			t.Fatalf("crm got %v, want %v", types, want)
		}
		if f := hooks["file"]; len(f) != 1 || f[0].typ != "conversation.created" {
			t.Fatalf("file webhook got %+v", f)
		}
	})
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
