package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/webhook"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var ctx = context.Background()

// loopback lets the workers of these tests reach their receivers.
var loopback = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// hit is one request a receiver got.
type hit struct {
	id     string
	typ    string
	conv   int64
	seq    int64
	status int
}

// receiver is a real HTTP server on 127.0.0.1 that verifies each
// delivery with the Standard Webhooks library and answers what answer
// says (200 when nil).
type receiver struct {
	t      *testing.T
	wh     *standardwebhooks.Webhook
	mu     sync.Mutex
	hits   []hit
	answer func(n int) int // n: the request's number, from 0
	ln     net.Listener
	srv    *http.Server
	addr   string
}

func newReceiver(t *testing.T, secret string, answer func(int) int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("NewWebhook() = %v", err)
	}
	r := &receiver{t: t, wh: wh, answer: answer}
	r.start("127.0.0.1:0")
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatalf("listen %s: %v", addr, err)
	}
	r.ln, r.addr = ln, ln.Addr().String()
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
}

func (r *receiver) stop() { r.srv.Close() }

// holds makes secret the only one the receiver verifies with.
func (r *receiver) holds(secret string) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Fatalf("NewWebhook() = %v", err)
	}
	r.mu.Lock()
	r.wh = wh
	r.mu.Unlock()
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	wh := r.wh
	r.mu.Unlock()
	if err := wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("delivery %s does not verify: %v", req.Header.Get("webhook-id"), err)
		w.WriteHeader(400)
		return
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			ConversationID int64 `json:"conversation_id"`
			Seq            int64 `json:"seq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.mu.Lock()
	status := 200
	if r.answer != nil {
		status = r.answer(len(r.hits))
	}
	r.hits = append(r.hits, hit{id: req.Header.Get("webhook-id"), typ: p.Type, conv: p.Data.ConversationID, seq: p.Data.Seq, status: status})
	r.mu.Unlock()
	w.WriteHeader(status)
	io.WriteString(w, "answer")
}

// delivered returns the hits answered 2xx.
func (r *receiver) delivered() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hit
	for _, h := range r.hits {
		if h.status/100 == 2 {
			out = append(out, h)
		}
	}
	return out
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hits)
}

// checkOnceInOrder fails unless want messages arrived, each id once,
// and each conversation's deliveries came in order: every request (failed
// ones too) of a conversation has a seq no lower than the one before it,
// so nothing was sent before what precedes it had arrived.
func checkOnceInOrder(t *testing.T, r *receiver, want int) {
	t.Helper()
	got := r.delivered()
	ids := map[string]bool{}
	for _, h := range got {
		if ids[h.id] {
			t.Fatalf("delivery %s arrived twice: %+v", h.id, got)
		}
		ids[h.id] = true
	}
	if len(got) != want {
		t.Fatalf("%d deliveries arrived, want %d: %+v", len(got), want, got)
	}
	last := map[int64]int64{}
	for _, h := range r.all() {
		if h.seq < last[h.conv] {
			t.Fatalf("conversation %d: seq %d sent after %d: %+v", h.conv, h.seq, last[h.conv], r.all())
		}
		last[h.conv] = h.seq
	}
}

// startWorker runs a worker on the store's clock until the test ends.
func startWorker(t *testing.T, s *inbox.Store, clock *inboxtest.Clock, o webhook.Options) (stop func()) {
	t.Helper()
	o.Store, o.AfterFunc = s, clock.AfterFunc
	if o.Guard.Allow == nil {
		o.Guard = loopback
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	o.Jitter = func() float64 { return 0 }
	w := webhook.New(o)
	c, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(c)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// chat makes n conversations of one contact with m messages each.
func chat(t *testing.T, s *inbox.Store, n, m int) []int64 {
	t.Helper()
	contact, err := s.CreateContact(ctx, inbox.NewContact{Name: "Carol"})
	if err != nil {
		t.Fatalf("CreateContact() = %v", err)
	}
	var convs []int64
	for range n {
		c, err := s.StartConversation(ctx, contact.ID, inbox.ChannelChat, "")
		if err != nil {
			t.Fatalf("StartConversation() = %v", err)
		}
		convs = append(convs, c.ID)
	}
	for i := range m {
		for _, c := range convs {
			if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: c, Author: inbox.AuthorContact, Text: "m" + string(rune('a'+i))}); err != nil {
				t.Fatalf("AddMessage() = %v", err)
			}
		}
	}
	return convs
}

// advanceUntil moves the clock a second at a time until cond holds.
func advanceUntil(t *testing.T, clock *inboxtest.Clock, what string, cond func() bool) {
	t.Helper()
	inboxtest.Eventually(t, what, func() bool {
		if cond() {
			return true
		}
		clock.Advance(time.Second)
		return false
	})
}

// A receiver that answers 500 for a while, then 200, gets every delivery
// once (by webhook-id), verified with the Standard Webhooks library, in
// order per conversation.
func TestDeliveryRetried(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		failing := 12
		r := newReceiver(t, inbox.NewWebhookSecret(), func(n int) int {
			if n < failing {
				return 500
			}
			return 200
		})
		w, secret, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "crm", URL: r.URL(), Events: []string{inbox.HookMessageCreated}, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		r.wh, _ = standardwebhooks.NewWebhook(secret)
		chat(t, s, 4, 5)
		startWorker(t, s, clock, webhook.Options{Concurrency: 3})
		advanceUntil(t, clock, "20 deliveries", func() bool { return len(r.delivered()) >= 20 })
		checkOnceInOrder(t, r, 20)
		if len(r.all()) < 20+failing {
			t.Fatalf("%d requests, want the %d failed ones besides", len(r.all()), failing)
		}
		hook, _ := s.Webhook(ctx, w.ID)
		advanceUntil(t, clock, "no delivery pending", func() bool {
			hook, _ = s.Webhook(ctx, w.ID)
			return hook.Pending == 0
		})
		if hook.Failed != 0 || hook.LastSuccessAt == nil || hook.LastFailureAt == nil {
			t.Fatalf("Webhook() = %+v", hook)
		}
	})
}

// A receiver that refuses connections while the server restarts misses
// nothing: what was owed is sent by the next server, once.
func TestDeliveryAcrossRestart(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s, err := inbox.Open(ctx, url, &inbox.Options{Now: clock.Now})
		if err != nil {
			t.Fatalf("Open() = %v", err)
		}
		r := newReceiver(t, inbox.NewWebhookSecret(), nil)
		_, secret, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "crm", URL: r.URL(), Events: inbox.HookEvents, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		r.wh, _ = standardwebhooks.NewWebhook(secret)
		r.stop() // down: connections are refused
		chat(t, s, 2, 3)
		stop := startWorker(t, s, clock, webhook.Options{})
		advanceUntil(t, clock, "a refused attempt recorded", func() bool {
			list, _ := s.Webhooks(ctx)
			return len(list) == 1 && list[0].LastFailureAt != nil
		})
		stop()
		s.Close()

		// The next server, and the receiver back at its address.
		s = inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		r.start(r.addr)
		startWorker(t, s, clock, webhook.Options{})
		// conversation.created twice and six message.created.
		advanceUntil(t, clock, "8 deliveries", func() bool { return len(r.delivered()) >= 8 })
		checkOnceInOrder(t, r, 8)
	})
}

// A receiver that never answers holds only its own deliveries: messages
// are stored as fast as ever (the chat path inserts a row and returns),
// and another webhook's receiver gets everything meanwhile.
func TestHungReceiver(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		hung := make(chan struct{})
		var hangs sync.WaitGroup
		stuck := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hangs.Add(1)
			defer hangs.Done()
			<-hung
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go stuck.Serve(ln)
		t.Cleanup(func() {
			close(hung)
			stuck.Close()
		})
		hungHook, _, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "hung", URL: "http://" + ln.Addr().String() + "/", Events: inbox.HookEvents, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		r := newReceiver(t, inbox.NewWebhookSecret(), nil)
		_, secret, _ := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "ok", URL: r.URL(), Events: []string{inbox.HookMessageCreated}, Enabled: true})
		r.wh, _ = standardwebhooks.NewWebhook(secret)
		// The hung receiver's attempts never time out in this test.
		startWorker(t, s, clock, webhook.Options{Timeout: time.Hour, Concurrency: 2})
		chat(t, s, 5, 4)
		advanceUntil(t, clock, "the healthy receiver's 20 deliveries", func() bool { return len(r.delivered()) >= 20 })
		checkOnceInOrder(t, r, 20)
		hook, _ := s.Webhook(ctx, hungHook.ID)
		if hook.Pending != 25 {
			t.Fatalf("hung webhook = %+v, want its 25 deliveries pending", hook)
		}
	})
}

// A secret rotated without overlap (it leaked) signs the very next
// delivery: not the old one until the worker reloads its webhooks.
func TestRotationSignsAtOnce(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		clock := inboxtest.NewClock()
		s := inboxtest.Open(t, url, &inbox.Options{Now: clock.Now})
		r := newReceiver(t, inbox.NewWebhookSecret(), nil)
		w, secret, err := s.CreateWebhook(ctx, inbox.NewWebhook{Name: "crm", URL: r.URL(), Events: []string{inbox.HookMessageCreated}, Enabled: true})
		if err != nil {
			t.Fatalf("CreateWebhook() = %v", err)
		}
		r.holds(secret)
		convs := chat(t, s, 1, 1)
		startWorker(t, s, clock, webhook.Options{})
		step := func(what string, n int) {
			t.Helper()
			inboxtest.Eventually(t, what, func() bool {
				if len(r.delivered()) >= n {
					return true
				}
				clock.Advance(100 * time.Millisecond) // the gap, never the 5 s reload
				return false
			})
		}
		step("the first delivery", 1)
		fresh, err := s.RotateWebhookSecret(ctx, w.ID, 0)
		if err != nil {
			t.Fatalf("RotateWebhookSecret() = %v", err)
		}
		r.holds(fresh) // the receiver verifies (t.Errorf) with the new one only
		if _, _, err := s.AddMessage(ctx, inbox.NewMessage{ConversationID: convs[0], Author: inbox.AuthorContact, Text: "after"}); err != nil {
			t.Fatalf("AddMessage() = %v", err)
		}
		step("the delivery after the rotation", 2)
		if n := len(r.all()); n != 2 {
			t.Fatalf("%d requests, want 2 (none refused): %+v", n, r.all())
		}
	})
}
