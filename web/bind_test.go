package web

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

func TestBadBodies(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		c := e.login("a@example.com")
		post := "/api/v1/conversations/" + itoa64(conv.ID) + "/messages"

		r := c.do("POST", post, `{"text": "hi"`).want(http.StatusBadRequest)
		if got := r.apiErr().Error; !strings.HasPrefix(got, "malformed JSON at byte ") {
			t.Fatalf("truncated JSON: error = %q", got)
		}
		r = c.do("POST", post, `{"text": hi}`).want(http.StatusBadRequest)
		if got := r.apiErr().Error; got != "malformed JSON at byte 10" {
			t.Fatalf("bad JSON: error = %q, want the offset", got)
		}
		c.do("POST", post, `{"text": 5}`).wantField("text")
		c.do("POST", post, `{"text": "hi", "channel": ["chat"]}`).wantField("channel")
		c.do("POST", post, `{"channel": "chat"}`).wantField("text")
		c.do("POST", post, `{"text": "   "}`).wantField("text")
		c.do("POST", post, `{"text": "hi", "colour": "red"}`).wantField("colour")
		c.do("POST", post, `{"text": "hi", "channel": "pigeon"}`).wantField("channel")
		c.do("POST", post, `[]`).want(http.StatusBadRequest)
		c.do("POST", post, `{"text": "hi"} {"text": "again"}`).want(http.StatusBadRequest)
		c.do("POST", post, "").want(http.StatusBadRequest)
		c.do("POST", post, nil).want(http.StatusBadRequest)
		c.do("POST", "/api/v1/conversations/"+itoa64(conv.ID)+"/read", `{"up_to": "all"}`).wantField("up_to")
		c.do("POST", "/api/v1/auth/login", `{"email": "a@example.com"}`).wantField("password")
		c.do("GET", "/api/v1/conversations?limit=many", nil).wantField("limit")
		c.do("GET", "/api/v1/conversations?column=sideways", nil).wantField("column")

		// JSON only.
		req, _ := http.NewRequest("POST", e.ts.URL+post, strings.NewReader(`{"text": "hi"}`))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set(headerCSRF, c.csrf)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatalf("POST text/plain: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("POST text/plain = %d, want 415", resp.StatusCode)
		}

		page, err := e.store.Messages(t.Context(), conv.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 0 {
			t.Fatalf("messages after bad requests = %+v, %v", page.Messages, err)
		}
	})
}

// onlyReader hides a reader's length, so that the body is sent chunked
// and only the reading finds it too large.
type onlyReader struct{ io.Reader }

func TestBodyTooLarge(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.Limits.MaxBodyBytes = 1024 })
		e.agent("a@example.com", inbox.RoleAgent)
		conv := e.conversation("Carla", "")
		c := e.login("a@example.com")
		post := "/api/v1/conversations/" + itoa64(conv.ID) + "/messages"
		big := `{"text": "` + strings.Repeat("x", 2000) + `"}`

		r := c.do("POST", post, big).want(http.StatusRequestEntityTooLarge)
		if got := r.apiErr().Error; !strings.Contains(got, "too large") {
			t.Fatalf("error = %q", got)
		}
		c.do("POST", post, onlyReader{strings.NewReader(big)}).want(http.StatusRequestEntityTooLarge)
		c.do("POST", post, `{"text": "fits"}`).want(http.StatusCreated)
	})
}
