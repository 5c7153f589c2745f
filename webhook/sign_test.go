package webhook

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The test vector of the Standard Webhooks Go library (libraries/go,
// TestWebhookSign).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVector(t *testing.T) {
	got, err := Sign([]string{vectorSecret}, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil || got != vectorSignature {
		t.Fatalf("Sign() = %q, %v; want %q", got, err, vectorSignature)
	}
	// Without the prefix, the same key.
	got, err = Sign([]string{strings.TrimPrefix(vectorSecret, SecretPrefix)}, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil || got != vectorSignature {
		t.Fatalf("Sign(unprefixed) = %q, %v; want %q", got, err, vectorSignature)
	}
	// Two secrets: both signatures, space-separated, in order.
	other := NewSecret()
	got, err = Sign([]string{other, vectorSecret}, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	first, second, ok := strings.Cut(got, " ")
	if err != nil || !ok || !strings.HasPrefix(first, "v1,") || first == vectorSignature || second != vectorSignature {
		t.Fatalf("Sign(two secrets) = %q, %v", got, err)
	}
}

func TestSecrets(t *testing.T) {
	s := NewSecret()
	if !strings.HasPrefix(s, SecretPrefix) || len(s) != len(SecretPrefix)+44 {
		t.Fatalf("NewSecret() = %q", s)
	}
	if s2 := NewSecret(); s2 == s {
		t.Fatalf("NewSecret() twice = %q", s)
	}
	key, err := ParseSecret(s)
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseSecret(NewSecret()) = %d bytes, %v", len(key), err)
	}
	if k2, err := ParseSecret(strings.TrimPrefix(s, SecretPrefix)); err != nil || !bytes.Equal(k2, key) {
		t.Fatalf("ParseSecret(without prefix) = %x, %v; want %x", k2, err, key)
	}
	enc := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{SecretPrefix + enc(24), true},
		{SecretPrefix + enc(64), true},
		{SecretPrefix + enc(23), false},
		{SecretPrefix + enc(65), false},
		{"", false},
		{SecretPrefix, false},
		{SecretPrefix + "not base64!", false},
		{SecretPrefix + strings.TrimRight(enc(32), "="), false}, // unpadded
		{SecretPrefix + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), false},
	} {
		_, err := ParseSecret(tc.secret)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSecret(%q) = %v, want ok %v", tc.secret, err, tc.ok)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name    string
		secrets []string
		msgID   string
	}{
		{"no secret", nil, "msg_1"},
		{"bad secret", []string{NewSecret(), "whsec_short"}, "msg_1"},
		{"empty id", []string{NewSecret()}, ""},
		{"dot in id", []string{NewSecret()}, "msg.1"},
		{"space in id", []string{NewSecret()}, "msg 1"},
		{"newline in id", []string{NewSecret()}, "msg\r\nX-Evil: 1"},
		{"non-ASCII id", []string{NewSecret()}, "msg_é"},
	} {
		if sig, err := Sign(tc.secrets, tc.msgID, now, []byte("{}")); err == nil {
			t.Errorf("%s: Sign() = %q, want an error", tc.name, sig)
		}
		h := http.Header{}
		if err := Headers(h, tc.secrets, tc.msgID, now, []byte("{}")); err == nil || len(h) != 0 {
			t.Errorf("%s: Headers() = %v, set %v", tc.name, err, h)
		}
	}
}

// TestStandardWebhooksGo verifies what Headers sets with the Standard
// Webhooks Go library, as a receiver in Go does.
func TestStandardWebhooksGo(t *testing.T) {
	a, b, c := NewSecret(), NewSecret(), NewSecret()
	body := []byte(`{"type":"message.created","timestamp":"2025-01-02T03:04:05Z","data":{"text":"héllo"}}`)
	ts := time.Now()
	h := http.Header{}
	if err := Headers(h, []string{a, b}, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body); err != nil {
		t.Fatalf("Headers() = %v", err)
	}
	if got := h.Get("webhook-timestamp"); got != strconv.FormatInt(ts.Unix(), 10) {
		t.Fatalf("webhook-timestamp = %q, want %d", got, ts.Unix())
	}
	if got, want := h.Get("Content-Type"), "application/json"; got != want {
		t.Fatalf("Content-Type = %q, want %q", got, want)
	}
	if got := h.Get("User-Agent"); got != "Microchat-Webhooks/1" {
		t.Fatalf("User-Agent = %q", got)
	}
	verify := func(secret string, body []byte, h http.Header) error {
		t.Helper()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("NewWebhook() = %v", err)
		}
		return wh.Verify(body, h)
	}
	// During a rotation, a receiver holding either secret verifies.
	for _, s := range []string{a, b} {
		if err := verify(s, body, h); err != nil {
			t.Errorf("Verify() = %v", err)
		}
	}
	if err := verify(c, body, h); err == nil {
		t.Errorf("Verify(other secret) = nil, want an error")
	}
	tampered := func(name, value string) http.Header {
		t2 := h.Clone()
		t2.Set(name, value)
		return t2
	}
	for name, tc := range map[string]struct {
		body []byte
		h    http.Header
	}{
		"body":      {bytes.Replace(body, []byte("héllo"), []byte("hello"), 1), h},
		"id":        {body, tampered("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4X")},
		"timestamp": {body, tampered("webhook-timestamp", strconv.FormatInt(ts.Unix()+1, 10))},
	} {
		for _, s := range []string{a, b} {
			if err := verify(s, tc.body, tc.h); err == nil {
				t.Errorf("Verify(tampered %s) = nil, want an error", name)
			}
		}
	}
}
