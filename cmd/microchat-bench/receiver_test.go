package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/webhook"
)

// hookBody is a message.created body as the server sends it.
func hookBody(t *testing.T, conv, seq int64, text string, at time.Time) []byte {
	t.Helper()
	b, err := json.Marshal(inbox.HookPayload{Type: inbox.HookMessageCreated, Timestamp: at,
		Data: inbox.HookMessageData{ConversationID: conv, Seq: seq, Message: inbox.Message{ConversationID: conv, Seq: seq, Text: text}}})
	if err != nil {
		t.Fatalf("Marshal() = %v", err)
	}
	return b
}

// deliver POSTs body to url as webhook-id id, signed with secret at ts,
// and returns the status.
func deliver(t *testing.T, url, secret, id string, ts time.Time, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest() = %v", err)
	}
	if err := webhook.Headers(req.Header, []string{secret}, id, ts, body); err != nil {
		t.Fatalf("Headers() = %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST = %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHookReceiver feeds the receiver deliveries signed with webhook.Sign
// (webhook.Headers), repeated, out of order and badly signed, and checks
// what it counts.
func TestHookReceiver(t *testing.T) {
	secret, other := webhook.NewSecret(), webhook.NewSecret()
	h, err := newHookReceiver(secret)
	if err != nil {
		t.Fatalf("newHookReceiver() = %v", err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	now := time.Now()
	mine := messageText('v', 0, 1, 64)

	for _, c := range []struct {
		name, id, secret string
		ts               time.Time
		body             []byte
		want             int
	}{
		{"first", "msg_1", secret, now, hookBody(t, 7, 2, mine, now), 204},
		{"next", "msg_2", secret, now, hookBody(t, 7, 4, mine, now), 204},
		{"a retry of the next", "msg_2", secret, now, hookBody(t, 7, 4, mine, now), 204},
		{"an earlier one after it", "msg_3", secret, now, hookBody(t, 7, 3, mine, now), 204},
		{"another conversation", "msg_4", secret, now, hookBody(t, 8, 1, "someone else's", now), 204},
		{"signed with another secret", "msg_5", other, now, hookBody(t, 7, 5, mine, now), 401},
		{"signed 10 minutes ago", "msg_6", secret, now.Add(-10 * time.Minute), hookBody(t, 7, 6, mine, now), 401},
		{"not a payload", "msg_7", secret, now, []byte("[1, 2]"), 204},
	} {
		if got := deliver(t, srv.URL+"/hook", c.secret, c.id, c.ts, c.body); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, got, c.want)
		}
	}
	// A body changed after signing.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(hookBody(t, 7, 9, mine, now))))
	webhook.Headers(req.Header, []string{secret}, "msg_8", now, hookBody(t, 7, 8, mine, now))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("changed body: %v %v, want HTTP 401", resp, err)
	}
	if resp, err := http.Get(srv.URL); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET: %v %v, want HTTP 405", resp, err)
	}

	s := h.summary(time.Second)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"received", s.Received, 5},
		{"message.created", s.ByType[inbox.HookMessageCreated], 5},
		{"duplicates", s.Duplicates, 1},
		{"out of order", s.OutOfOrder, 1},
		{"bad signatures", s.BadSignatures, 3},
		{"bad bodies", s.BadBodies, 1},
		{"bad methods", s.BadMethods, 1},
		{"the tool's messages arrived", s.Arrived, 3},
		{"lag samples", int64(s.Lag.N), 4},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d (summary %+v)", c.name, c.got, c.want, s)
		}
	}
}

// TestLoadWebhook runs a small load against the real server with a real
// webhook worker delivering message.created to the tool's receiver, and
// checks that every acknowledged message arrived once, in order, well
// signed.
func TestLoadWebhook(t *testing.T) {
	srv := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen() = %v", err)
	}
	secret := webhook.NewSecret()
	if _, _, err := srv.store.CreateWebhook(ctx, inbox.NewWebhook{Name: "bench", URL: "http://" + ln.Addr().String() + "/hook",
		Events: []string{inbox.HookMessageCreated}, Enabled: true, Secret: secret}); err != nil {
		t.Fatalf("CreateWebhook() = %v", err)
	}
	w := webhook.New(webhook.Options{Store: srv.store, Guard: webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	defer func() { stop(); <-done }()

	o := testOptions(srv.url)
	o.Visitors, o.Agents, o.Active, o.Rate = 20, 2, 10, 100
	o.Duration, o.Warmup, o.Floor = 2*time.Second, 500*time.Millisecond, false
	o.Webhook, o.WebhookSecret = ln.Addr().String(), secret
	if err := o.validate(); err != nil {
		t.Fatalf("validate() = %v", err)
	}
	b, err := newBench(o, logWriter{t})
	if err != nil {
		t.Fatalf("newBench() = %v", err)
	}
	b.hookListener = ln
	s := mustRun(t)(b.run(ctx))
	h := s.Webhook
	if h == nil {
		t.Fatal("no webhook summary")
	}
	if h.Acknowledged < 150 || h.Arrived != h.Acknowledged || h.Missing != 0 || h.Sent != h.Acknowledged {
		t.Errorf("sent %d, acknowledged %d, arrived %d, missing %d; want about 250, all arrived", h.Sent, h.Acknowledged, h.Arrived, h.Missing)
	}
	if h.Duplicates != 0 || h.OutOfOrder != 0 || h.BadSignatures != 0 || h.BadBodies != 0 {
		t.Errorf("duplicates %d, out of order %d, bad signatures %d, bad bodies %d; want none", h.Duplicates, h.OutOfOrder, h.BadSignatures, h.BadBodies)
	}
	if h.Lag.N == 0 || h.Rate <= 0 || h.Attempts["ok"] < float64(h.Arrived) {
		t.Errorf("lag %+v, rate %v, server attempts %v", h.Lag, h.Rate, h.Attempts)
	}
	if len(s.Errors) > 0 {
		t.Errorf("errors: %v", s.Errors)
	}
}

// TestWebhookFlags checks -webhook's checks.
func TestWebhookFlags(t *testing.T) {
	secret := webhook.NewSecret()
	for _, c := range []struct {
		args []string
		want string // in the error; empty: none
	}{
		{[]string{"-webhook", "127.0.0.1:9700", "-webhook-secret", secret}, ""},
		{[]string{"-webhook", "127.0.0.1:9700"}, "-webhook-secret"},
		{[]string{"-webhook", "127.0.0.1:9700", "-webhook-secret", "whsec_short"}, "-webhook-secret"},
		{[]string{"-webhook", "10.0.0.1:9700", "-webhook-secret", secret}, "loopback"},
		{[]string{"-webhook", "127.0.0.1", "-webhook-secret", secret}, "HOST:PORT"},
		{[]string{"-webhook", "127.0.0.1:9700", "-webhook-secret", secret, "-idle"}, "needs a load"},
	} {
		args := append([]string{"-email", "a@example.com", "-password", "x"}, c.args...)
		_, err := parseFlags(args, &strings.Builder{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want an error about %s", c.args, err, c.want)
		}
	}
}
