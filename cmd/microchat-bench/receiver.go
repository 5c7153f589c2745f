package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/webhook"
)

// The webhook receiver (-webhook ADDR): an HTTP server in this process
// that the server's webhook (config file, webhooks.endpoints, with
// -webhook-secret as its secret) delivers to while the chat load runs.
// Every POST is checked as a Standard Webhooks receiver does: its
// webhook-signature must hold the signature webhook.Sign makes of
// webhook-id, webhook-timestamp and the body with the secret (a bad one is
// answered 401 and counted), and its webhook-timestamp must be within 5
// minutes of now. A good one is answered 204 at once, then counted by
// type; a webhook-id seen before is a duplicate, and a delivery of a
// conversation whose seq is below one already received is out of order.
// For message.created, lag is the arrival here minus the payload's
// timestamp (when the server stored the message): both are this
// machine's wall clock.

// maxHookBody bounds a delivery's body: a chat message's is under 2 KB.
const maxHookBody = 1 << 20

// hookTolerance is how far a delivery's webhook-timestamp may be from
// now (the Standard Webhooks libraries' tolerance).
const hookTolerance = 5 * time.Minute

// hookPayload is the part of a delivery's body the receiver reads
// (inbox.HookPayload, with inbox.HookMessageData or another type's data).
type hookPayload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		ConversationID int64 `json:"conversation_id"`
		Seq            int64 `json:"seq"`
		Message        struct {
			Text string `json:"text"`
		} `json:"message"`
	} `json:"data"`
}

// hookReceiver counts and times the deliveries it receives; it is an
// http.Handler.
type hookReceiver struct {
	secrets []string
	// lag holds message.created's lag, for those stored in the window.
	lag recorder

	mu sync.Mutex
	// from and until bound the measured window (wall and monotonic
	// clocks); zero until the load starts, when everything counts.
	from, until time.Time
	seen        map[string]bool  // webhook-ids received
	lastSeq     map[int64]int64  // per conversation, the highest seq received
	byType      map[string]int64 // deliveries by type, duplicates included
	received    int64            // good deliveries, duplicates included
	inWindow    int64            // unique deliveries that arrived within the window
	own         int64            // unique message.created of the tool's messages
	duplicates  int64
	outOfOrder  int64
	badSig      int64 // signature missing or wrong, or webhook-timestamp off
	badBody     int64 // signed, but not a payload
	badMethod   int64
}

// newHookReceiver returns a receiver of deliveries signed with secret.
func newHookReceiver(secret string) (*hookReceiver, error) {
	if _, err := webhook.ParseSecret(secret); err != nil {
		return nil, err
	}
	return &hookReceiver{secrets: []string{secret}, seen: map[string]bool{}, lastSeq: map[int64]int64{}, byType: map[string]int64{}}, nil
}

// measure sets the measured window: message.created lags are recorded
// for messages stored within it, and the rate counts arrivals within it.
func (h *hookReceiver) measure(from, until time.Time) {
	h.mu.Lock()
	h.from, h.until = from, until
	h.mu.Unlock()
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if r.Method != http.MethodPost {
		h.count(&h.badMethod)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody))
	if err != nil {
		h.count(&h.badBody)
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	if err := h.verify(id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, arrived); err != nil {
		h.count(&h.badSig)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Type == "" {
		h.count(&h.badBody)
		return
	}
	h.record(id, &p, arrived)
}

func (h *hookReceiver) count(n *int64) {
	h.mu.Lock()
	*n++
	h.mu.Unlock()
}

// verify checks a delivery's signature headers. The webhook package has
// no verifier (the server only signs): the signature is made again with
// webhook.Sign and compared in constant time with each of those sent.
func (h *hookReceiver) verify(id, ts, sigs string, body []byte, now time.Time) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not unix seconds")
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > hookTolerance || d < -hookTolerance {
		return fmt.Errorf("webhook-timestamp is %v from now", d.Round(time.Second))
	}
	want, err := webhook.Sign(h.secrets, id, at, body)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(s), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("no webhook-signature matches")
}

// record counts a good delivery of p with webhook-id id.
func (h *hookReceiver) record(id string, p *hookPayload, arrived time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.received++
	h.byType[p.Type]++
	if h.seen[id] {
		h.duplicates++
		return
	}
	h.seen[id] = true
	if h.from.IsZero() || !arrived.Before(h.from) && arrived.Before(h.until) {
		h.inWindow++
	}
	if c, seq := p.Data.ConversationID, p.Data.Seq; c != 0 && seq > 0 {
		if seq < h.lastSeq[c] {
			h.outOfOrder++
		} else {
			h.lastSeq[c] = seq
		}
	}
	if p.Type != inbox.HookMessageCreated {
		return
	}
	if strings.HasPrefix(p.Data.Message.Text, markerPrefix) {
		h.own++
	}
	if h.from.IsZero() || !p.Timestamp.Before(h.from) && p.Timestamp.Before(h.until) {
		h.lag.add(arrived.Sub(p.Timestamp))
	}
}

// ownArrived is how many of the tool's messages arrived as message.created.
func (h *hookReceiver) ownArrived() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.own
}

// WebhookSummary is what the receiver measured.
type WebhookSummary struct {
	Listen string `json:"listen"`
	// Received counts the deliveries with a good signature, duplicates
	// included, in all and by type.
	Received int64            `json:"received"`
	ByType   map[string]int64 `json:"by_type"`
	// Rate is the deliveries (duplicates not counted) that arrived within
	// the measured window, per second of it.
	Rate float64 `json:"per_second"`
	// Lag is message.created's, arrival here minus the payload's
	// timestamp, for the messages stored within the measured window.
	Lag           Latency `json:"message_created_lag"`
	Duplicates    int64   `json:"duplicates"`
	OutOfOrder    int64   `json:"out_of_order"`
	BadSignatures int64   `json:"bad_signatures"`
	BadBodies     int64   `json:"bad_bodies"`
	BadMethods    int64   `json:"bad_methods"`
	// The tool's own messages, warmup included: sent (written to a
	// socket or POSTed), acknowledged by the server (stored), and
	// arrived as message.created; Missing is acknowledged but not
	// arrived GraceSeconds after the load ended.
	Sent         int64   `json:"messages_sent"`
	Acknowledged int64   `json:"messages_acknowledged"`
	Arrived      int64   `json:"messages_arrived"`
	Missing      int64   `json:"messages_missing"`
	GraceSeconds float64 `json:"grace_seconds"`
	// Attempts are the server's microchat_webhook_attempts_total by
	// outcome, from before the load until after the grace.
	Attempts map[string]float64 `json:"server_attempts"`
}

// summary returns what the receiver measured; window is the measured
// window's length.
func (h *hookReceiver) summary(window time.Duration) *WebhookSummary {
	h.mu.Lock()
	s := &WebhookSummary{Received: h.received, ByType: make(map[string]int64, len(h.byType)), Duplicates: h.duplicates,
		OutOfOrder: h.outOfOrder, BadSignatures: h.badSig, BadBodies: h.badBody, BadMethods: h.badMethod, Arrived: h.own}
	for k, v := range h.byType {
		s.ByType[k] = v
	}
	if window > 0 {
		s.Rate = round2(float64(h.inWindow) / window.Seconds())
	}
	h.mu.Unlock()
	s.Lag = h.lag.latency()
	return s
}

// serveHooks serves h on ln until the shutdown it returns is called.
func serveHooks(ln net.Listener, h http.Handler) (shutdown func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}
}

// print writes the receiver's part of the summary.
func (s *WebhookSummary) print(p func(string, ...any)) {
	var types []string
	for _, k := range sortedKeys(s.ByType) {
		types = append(types, fmt.Sprintf("%s %s", k, itoa(s.ByType[k])))
	}
	p("webhook receiver %s: %s deliveries (%s); %s/s arrived in the measured window; duplicates %d, out of order %d, bad signatures %d, bad bodies %d",
		s.Listen, itoa(s.Received), strings.Join(types, ", "), itoa(int64(s.Rate)), s.Duplicates, s.OutOfOrder, s.BadSignatures, s.BadBodies)
	l := s.Lag
	p("webhook lag, ms (message.created stored in the window, n %d): p50 %.2f, p90 %.2f, p99 %.2f, max %.2f",
		l.N, l.P50, l.P90, l.P99, l.Max)
	p("webhook messages: the tool sent %s, the server acknowledged %s, %s arrived as message.created; missing %s after %.1f s of grace",
		itoa(s.Sent), itoa(s.Acknowledged), itoa(s.Arrived), itoa(s.Missing), s.GraceSeconds)
	if len(s.Attempts) > 0 {
		p("server's webhook attempts (load and grace): ok %.0f, retry %.0f, failed %.0f", s.Attempts["ok"], s.Attempts["retry"], s.Attempts["failed"])
	}
}
