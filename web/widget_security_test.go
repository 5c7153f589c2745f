package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/channels/webchat"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// A visitor reaches only their own conversation and attachments: another
// visitor's are the same 404 as missing ones, over HTTP and the socket.
func TestWidgetIsolation(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		a, b := e.startVisitor("Ann"), e.startVisitor("Ben")
		var up attachmentAnswer
		a.upload("/api/v1/widget/uploads", "a.txt", []byte("Ann's secret")).want(http.StatusCreated).decode(&up)
		a.do("GET", "/api/v1/widget/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusOK)

		other := b.do("GET", "/api/v1/widget/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusNotFound)
		missing := b.do("GET", "/api/v1/widget/attachments/999999", nil).want(http.StatusNotFound)
		if string(other.body) != string(missing.body) {
			t.Fatalf("another's attachment = %s, a missing one = %s; want the same", other.body, missing.body)
		}
		var st stateAnswer
		b.do("GET", "/api/v1/widget/state", nil).want(http.StatusOK).decode(&st)
		if st.Conversation.ID != b.start.Conversation.ID || st.Contact.ID != b.start.Contact.ID || len(st.Messages) != 0 {
			t.Fatalf("Ben's state = %+v", st)
		}
		// Over the socket: Ann's attachment in Ben's message is refused
		// like one that does not exist, and Ben sees none of Ann's events.
		sb, _ := b.connect(1)
		errs := map[int64]vframe{}
		for i, id := range []int64{up.Attachment.ID, 999999} {
			sb.send(t, map[string]any{"type": "message", "client_id": itoa64(int64(i)), "text": "mine?", "attachment_ids": []int64{id}})
			errs[id] = sb.nextOf(t, "error")
		}
		if e1, e2 := errs[up.Attachment.ID], errs[999999]; e1.Code != "invalid" || e1.Error != e2.Error {
			t.Fatalf("errors = %s and %s, want the same invalid", e1, e2)
		}
		sa, _ := a.connect(1)
		sa.send(t, map[string]any{"type": "message", "client_id": "x", "text": "hi", "attachment_ids": []int64{up.Attachment.ID}})
		sa.find(t, "ack")
		sb.quiet(t)
		// Ben's socket asking for Ann's conversation gets his own, resynced,
		// and none of Ann's events: not one committed after it subscribed
		// to the conversation it named and before its token was read (the
		// hub offered it to that subscription before the test's own).
		webchat.TestHookAfterHintSubscribe = func(id int64) {
			seen := make(chan struct{})
			var once sync.Once
			sub := e.store.Hub().SubscribeFunc(id, func(inbox.Event) { once.Do(func() { close(seen) }) })
			defer sub.Close()
			e.contactSays(id, "Ann's secret, said while Ben's socket authenticates")
			select {
			case <-seen:
			case <-time.After(frameWait):
				t.Errorf("the event did not come within %v", frameWait)
			}
		}
		t.Cleanup(func() { webchat.TestHookAfterHintSubscribe = nil })
		sb2, _, _ := e.dialWidget(nil)
		sb2.send(t, map[string]any{"type": "auth", "token": b.token, "conversation_id": a.start.Conversation.ID, "last_seq": 1})
		if h := sb2.next(t); h.Type != "hello" || h.Conversation.ID != b.start.Conversation.ID {
			t.Fatalf("hello = %s, want Ben's conversation", h)
		}
		sb2.nextOf(t, "resync")
		webchat.TestHookAfterHintSubscribe = nil
		sb2.quiet(t)

		// No token, a wrong one: 401.
		e.client().do("GET", "/api/v1/widget/state", nil).want(http.StatusUnauthorized)
		bad := e.client()
		bad.header.Set("Authorization", "Bearer "+strings.Repeat("x", 43))
		bad.do("GET", "/api/v1/widget/state", nil).want(http.StatusUnauthorized)
		// An agent's attachment URL checks the conversation too.
		admin := e.agent("admin@example.com", inbox.RoleAdmin)
		ac := e.login(admin.Email)
		ac.do("GET", "/api/v1/conversations/"+itoa64(b.start.Conversation.ID)+"/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusNotFound)
		ac.do("GET", "/api/v1/conversations/"+itoa64(a.start.Conversation.ID)+"/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusOK)
	})
}

func TestWidgetOrigins(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) { c.Widget.AllowedOrigins = []string{"https://shop.example"} })
	c := e.client()
	c.header.Set("Origin", "https://evil.example")
	c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Eve"}).want(http.StatusForbidden)
	if _, resp, err := e.dialWidget(http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("socket from another origin = %v, %v; want 403", resp, err)
	}

	c.header.Set("Origin", "https://shop.example")
	r := c.do("OPTIONS", "/api/v1/widget/conversations", nil).want(http.StatusNoContent)
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight headers = %v", r.header)
	}
	r = c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Sam"}).want(http.StatusCreated)
	if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS headers = %v", r.header)
	}
	var start startAnswer
	r.decode(&start)
	s, _, err := e.dialWidget(http.Header{"Origin": {"https://shop.example"}})
	if err != nil {
		t.Fatalf("socket from the allowed origin: %v", err)
	}
	s.send(t, map[string]any{"type": "auth", "token": start.Token})
	if f := s.next(t); f.Type != "hello" {
		t.Fatalf("frame = %s", f)
	}

	// A bad token is closed with 4401; a first frame that is not auth 1008.
	s, _, _ = e.dialWidget(nil)
	s.send(t, map[string]any{"type": "auth", "token": "nope"})
	if code := s.closeCode(t); code != 4401 {
		t.Fatalf("close code for a bad token = %d, want 4401", code)
	}
	// The close reason names a mistyped field of an auth frame.
	for _, c := range []struct {
		frame map[string]any
		want  string
	}{
		{map[string]any{"type": "ping"}, "the first frame must be auth"},
		{map[string]any{"type": "auth", "token": start.Token, "last_seq": "5"}, "bad auth frame: last_seq "},
		{map[string]any{"type": "auth", "token": start.Token, "conversation_id": 1.5}, "bad auth frame: conversation_id "},
		{map[string]any{"type": "auth", "token": 7}, "bad auth frame: token "},
	} {
		s, _, _ = e.dialWidget(nil)
		s.send(t, c.frame)
		if code, reason := s.closeReason(t); code != 1008 || !strings.HasPrefix(reason, c.want) {
			t.Fatalf("close for %v = %d %q, want 1008 %q...", c.frame, code, reason, c.want)
		}
	}
	// Start Chat validates what the form sends.
	c.do("POST", "/api/v1/widget/conversations", map[string]any{"email": "x@example.com"}).wantField("name")
	c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "X", "email": "nope"}).wantField("email")
	c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "X", "phone": "call me maybe"}).wantField("phone")
	c.do("POST", "/api/v1/widget/conversations", map[string]any{"name": "X", "phone": "+44 (20) 7946-0958", "email": "x@example.com"}).want(http.StatusCreated)
}

func TestWidgetRateLimits(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) {
		c.Widget.RateLimits = config.WidgetRateLimits{StartsPerMinutePerIP: 2, MessagesPerMinute: 2, UploadsPerMinute: 1}
	})
	v := e.startVisitor("Ray")
	e.startVisitor("Ray again")
	r := e.client().do("POST", "/api/v1/widget/conversations", map[string]any{"name": "Too many"}).want(http.StatusTooManyRequests)
	if e := r.apiErr(); e.Code != "rate_limited" || e.RetryAfter < 1 || r.header.Get("Retry-After") == "" {
		t.Fatalf("429 = %s %v", r.body, r.header)
	}
	v.upload("/api/v1/widget/uploads", "a.txt", []byte("one")).want(http.StatusCreated)
	v.upload("/api/v1/widget/uploads", "b.txt", []byte("two")).want(http.StatusTooManyRequests)

	s, _ := v.connect(1)
	for i := range 2 {
		s.send(t, map[string]any{"type": "message", "client_id": itoa64(int64(i)), "text": "hi"})
		s.find(t, "ack")
	}
	s.send(t, map[string]any{"type": "message", "client_id": "3", "text": "hi"})
	if f := s.find(t, "error"); f.Type != "error" || f.Code != "rate_limited" || f.RetryAfter < 1 || f.ClientID != "3" {
		t.Fatalf("frame = %s, want rate_limited with retry_after", f)
	}
}

// Bad frames get an error frame or a close code, and the server keeps
// serving another socket.
func TestWidgetBadFrames(t *testing.T) {
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) { c.Limits.MaxMessageBytes = 1024 })
	v := e.startVisitor("Bo")
	other, _ := v.connect(1)
	alive := func() {
		t.Helper()
		other.send(t, map[string]any{"type": "ping"})
		if f := other.nextOf(t, "pong"); f.Type != "pong" {
			t.Fatalf("other socket = %s", f)
		}
	}
	s, _ := v.connect(1)
	s.send(t, map[string]any{"type": "message", "client_id": "big", "text": strings.Repeat("x", 1025)})
	if f := s.nextOf(t, "error"); f.Code != "too_large" || f.ClientID != "big" {
		t.Fatalf("oversized message = %s", f)
	}
	s.send(t, map[string]any{"type": "launch"})
	if f := s.nextOf(t, "error"); f.Code != "unknown_type" {
		t.Fatalf("unknown type = %s", f)
	}
	s.conn.WriteMessage(gws.OpcodeText, []byte("{not json"))
	if f := s.nextOf(t, "error"); f.Code != "invalid" {
		t.Fatalf("bad JSON = %s", f)
	}
	s.send(t, map[string]any{"type": "message", "text": "no id"})
	if f := s.nextOf(t, "error"); f.Code != "invalid" {
		t.Fatalf("message without client_id = %s", f)
	}
	alive()

	s.conn.WriteMessage(gws.OpcodeText, []byte("{\"type\":\"\xff\"}"))
	if code := s.closeCode(t); code != 1007 {
		t.Fatalf("close code after invalid UTF-8 = %d, want 1007", code)
	}
	alive()
	s, _ = v.connect(1)
	s.conn.WriteMessage(gws.OpcodeBinary, []byte{1, 2, 3})
	if code := s.closeCode(t); code != 1003 {
		t.Fatalf("close code after a binary frame = %d, want 1003", code)
	}
	alive()
	s, _ = v.connect(1)
	s.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"`+strings.Repeat("x", 64<<10)+`"}`))
	if code := s.closeCode(t); code != 1009 {
		t.Fatalf("close code after an oversized frame = %d, want 1009", code)
	}
	alive()

	// A flood of frames that each write to the database is read as fast
	// as they are handled (push-back), not closed: all are handled, then
	// the ping behind them.
	flood, _ := v.connect(1)
	go func() {
		for range 500 {
			if flood.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"page_view","url":"https://shop.example/"}`)) != nil {
				return
			}
		}
		flood.conn.WriteMessage(gws.OpcodeText, []byte(`{"type":"ping"}`))
	}()
	for done := false; !done; {
		select {
		case f := <-flood.frames:
			if f.Type == "error" {
				t.Fatalf("page view in the flood answered %s", f)
			}
			done = f.Type == "pong"
		case err := <-flood.closed:
			t.Fatalf("flood connection closed: %v", err)
		case <-time.After(frameWait):
			t.Fatalf("no pong after the flood within %v", frameWait)
		}
	}
	alive()
}

func TestUploads(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		ctx := context.Background()
		e := newEnv(t, url, func(c *config.Config) { c.Limits.MaxUploadBytes = 4096 })
		v := e.startVisitor("Uma")
		var up attachmentAnswer
		v.upload("/api/v1/widget/uploads", "x.txt", pngBytes).want(http.StatusCreated).decode(&up)
		if up.Attachment.ContentType != "image/png" || up.Attachment.Name != "x.txt" || up.Attachment.Size != int64(len(pngBytes)) {
			t.Fatalf("PNG named x.txt = %+v", up.Attachment)
		}
		r := v.do("GET", "/api/v1/widget/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusOK)
		if r.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "inline") ||
			r.header.Get("Content-Security-Policy") == "" || string(r.body) != string(pngBytes) {
			t.Fatalf("PNG served with %v", r.header)
		}

		html := []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")
		svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)
		for _, f := range []struct {
			name string
			data []byte
			ct   string
		}{{"x.png", html, "text/html; charset=utf-8"}, {"../../etc/pic.svg", svg, "image/svg+xml"}} {
			v.upload("/api/v1/widget/uploads", f.name, f.data).want(http.StatusCreated).decode(&up)
			if up.Attachment.ContentType != f.ct || strings.Contains(up.Attachment.Name, "/") {
				t.Fatalf("%s = %+v", f.name, up.Attachment)
			}
			r := v.do("GET", "/api/v1/widget/attachments/"+itoa64(up.Attachment.ID), nil).want(http.StatusOK)
			h := r.header
			if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
				h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
				t.Fatalf("%s served with %v", f.name, h)
			}
		}
		if up.Attachment.Name != "pic.svg" {
			t.Fatalf("stored name = %q, want pic.svg", up.Attachment.Name)
		}
		v.upload("/api/v1/widget/uploads", "evil\u202egnp.exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 200)...)).want(http.StatusUnsupportedMediaType)
		r = v.upload("/api/v1/widget/uploads", "big.txt", []byte(strings.Repeat("a", 4097))).want(http.StatusRequestEntityTooLarge)
		if e := r.apiErr(); !strings.Contains(e.Error, "4KiB") {
			t.Fatalf("413 = %s, want the limit named", r.body)
		}
		v.do("POST", "/api/v1/widget/uploads", map[string]any{"file": "x"}).want(http.StatusBadRequest)

		// An agent uploads and replies with it; the visitor downloads it.
		alice := e.agent("alice@example.com", inbox.RoleAgent)
		ac := e.login(alice.Email)
		conv := v.start.Conversation.ID
		var aup attachmentAnswer
		ac.upload("/api/v1/conversations/"+itoa64(conv)+"/attachments", "invoice.pdf", []byte("%PDF-1.4\n%...")).want(http.StatusCreated).decode(&aup)
		if aup.Attachment.ContentType != "application/pdf" {
			t.Fatalf("agent upload = %+v", aup.Attachment)
		}
		noError(t, "SetContactOnline()", e.store.SetContactOnline(ctx, v.start.Contact.ID, true))
		var rep replyAnswer
		ac.do("POST", "/api/v1/conversations/"+itoa64(conv)+"/messages", map[string]any{"attachment_ids": []int64{aup.Attachment.ID}}).want(http.StatusCreated).decode(&rep)
		if len(rep.Message.Attachments) != 1 {
			t.Fatalf("reply = %+v", rep.Message)
		}
		r = v.do("GET", "/api/v1/widget/attachments/"+itoa64(aup.Attachment.ID), nil).want(http.StatusOK)
		if !strings.Contains(r.header.Get("Content-Disposition"), `filename=invoice.pdf`) {
			t.Fatalf("Content-Disposition = %q", r.header.Get("Content-Disposition"))
		}
		ac.do("GET", "/api/v1/conversations/"+itoa64(conv)+"/attachments/"+itoa64(aup.Attachment.ID), nil).want(http.StatusOK)
	})
}

func TestDisplayName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":                      "report.pdf",
		`C:\Users\me\photo.png`:           "photo.png",
		"../../etc/passwd":                "passwd",
		"a\x00b\r\nc.txt":                 "abc.txt",
		"evil\u202egnp.exe":               "evilgnp.exe",
		"  ":                              "file",
		"..":                              "file",
		strings.Repeat("é", 200) + ".txt": strings.Repeat("é", 127),
	} {
		if got := displayName(in); got != want {
			t.Errorf("displayName(%q) = %q, want %q", in, got, want)
		}
	}
}
