// Package webhook holds the parts of outgoing webhooks that need no
// database: signing (Standard Webhooks, https://www.standardwebhooks.com),
// the guard that keeps a webhook from reaching the server's own network,
// and the HTTP client that sends one attempt. The delivery worker and the
// storage of endpoints and attempts build on it.
//
// The rules:
//
//   - Every delivery is signed as Standard Webhooks specifies (spec,
//     "Signature scheme" and "Webhook headers"): HMAC-SHA256 over
//     "{webhook-id}.{webhook-timestamp}.{body}" with each of the
//     endpoint's secrets, so that receivers verify it with any of the
//     spec's libraries, and a rotation sends two signatures that either
//     secret verifies.
//   - A webhook reaches only globally reachable addresses, unless an
//     administrator allowed a network (Guard.Allow): the URL is checked
//     when it is saved (Guard.CheckURL), and every address a name resolves
//     to is checked at each dial, which then dials that very address, so
//     that a name that changes its answer (DNS rebinding) cannot slip
//     between the check and the connection.
//   - The client follows no redirect and uses no proxy: a 3xx is a failed
//     attempt (spec, "Delivery success and failure"), and what is dialed
//     is what was checked.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every secret NewSecret makes, so that people and
// libraries recognize a symmetric signing secret (Standard Webhooks spec,
// "Signature scheme", secret serialization).
const SecretPrefix = "whsec_"

// The spec's bounds on a symmetric secret: "at least 24 bytes (192 bits,
// 512 maximum)" (Standard Webhooks spec, "Signature scheme").
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// UserAgent is the User-Agent of every delivery.
const UserAgent = "Microchat-Webhooks/1"

// NewSecret returns a new signing secret: SecretPrefix followed by the
// standard base64 (RFC 4648, section 4, padded) of 32 random bytes from
// crypto/rand, 50 characters in all.
func NewSecret() string {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand: the program crashes instead)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseSecret returns the key of a secret: s without its optional
// SecretPrefix, decoded as standard base64 (RFC 4648, section 4, padded),
// which must be 24 to 64 bytes (Standard Webhooks spec, "Signature
// scheme"). It is an error otherwise, which says why without quoting s.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook: secret is not %s followed by standard base64: %v", SecretPrefix, err)
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("webhook: secret is %d bytes, Standard Webhooks wants %d to %d", len(key), minSecretLen, maxSecretLen)
	}
	return key, nil
}

// Sign returns the value of the webhook-signature header for one
// delivery: for each secret, in order, "v1," followed by the standard
// base64 of HMAC-SHA256(key, msgID + "." + ts in unix seconds + "." +
// body), separated by single spaces (Standard Webhooks spec, "Signature
// scheme" and "Webhook headers"). During a rotation secrets holds the new
// and the old secret, so a receiver holding either verifies.
//
// It is an error when secrets is empty, a secret does not parse
// (ParseSecret), or msgID is empty or holds a "." (which the spec forbids:
// it would move the boundary between the signed fields) or a character
// not allowed in a header value.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhook: no secret to sign with")
	}
	if msgID == "" || strings.Contains(msgID, ".") || !isPrintableASCII(msgID) {
		return "", fmt.Errorf("webhook: message id %q must be printable ASCII without spaces or dots", msgID)
	}
	prefix := msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "."
	var sb strings.Builder
	for i, s := range secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return "", fmt.Errorf("secret %d: %w", i+1, err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(prefix))
		mac.Write(body)
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return sb.String(), nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Headers sets on h the headers of one delivery of body (Standard
// Webhooks spec, "Webhook headers"): webhook-id (msgID, the same on
// every attempt of one event, so receivers can drop repeats),
// webhook-timestamp (ts, this attempt's time, in unix seconds) and
// webhook-signature (Sign), and Content-Type application/json and
// User-Agent UserAgent. Its errors are Sign's; h is unchanged then.
func Headers(h http.Header, secrets []string, msgID string, ts time.Time, body []byte) error {
	sig, err := Sign(secrets, msgID, ts, body)
	if err != nil {
		return err
	}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	return nil
}
