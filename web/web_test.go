package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/presence"
)

// testPassword is every test agent's password.
const testPassword = "correct horse battery"

// frameWait is how long a test waits for a frame, a close or a hook before
// it fails: a bound for a lost answer, never a timing the test relies on,
// so it is generous for a loaded 2-core machine running -race.
const frameWait = inboxtest.Patience

// env is a real Server on a real database behind a real HTTP listener.
type env struct {
	t     *testing.T
	store *inbox.Store
	srv   *Server
	ts    *httptest.Server
	cfg   config.Config
}

// newEnv starts a Server on a fresh database at url; edit, if not nil,
// changes the default config first.
func newEnv(t *testing.T, url string, edit func(*config.Config)) *env {
	t.Helper()
	return newEnvStore(t, inboxtest.Open(t, url, nil), edit)
}

func newEnvStore(t *testing.T, store *inbox.Store, edit func(*config.Config)) *env {
	t.Helper()
	return newEnvOptions(t, store, edit, Options{})
}

// newEnvPresence is newEnvStore with a presence tracker of these options,
// closed after the server: a test that counts presence writes drives its
// clock and writer.
func newEnvPresence(t *testing.T, store *inbox.Store, edit func(*config.Config), opts presence.Options) *env {
	t.Helper()
	p := presence.New(store, opts)
	t.Cleanup(p.Close)
	return newEnvOptions(t, store, edit, Options{Presence: p})
}

// newEnvOptions starts a Server on store with opts, whose Config (the
// defaults, changed by edit if not nil), Store and Logger it sets.
func newEnvOptions(t *testing.T, store *inbox.Store, edit func(*config.Config), opts Options) *env {
	t.Helper()
	cfg := config.Defaults()
	if edit != nil {
		edit(&cfg)
	}
	var w io.Writer = io.Discard
	if os.Getenv("MICROCHAT_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Config, opts.Store, opts.Logger = cfg, store, log
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return newEnvServer(t, store, srv, cfg)
}

// agent creates an account with testPassword.
func (e *env) agent(email, role string) inbox.Agent {
	e.t.Helper()
	a, err := e.store.CreateAgent(context.Background(), inbox.NewAgent{Email: email, Name: strings.Split(email, "@")[0], Role: role, Password: testPassword})
	if err != nil {
		e.t.Fatalf("CreateAgent(%s) = %v", email, err)
	}
	return a
}

// conversation creates a contact and an open chat conversation.
func (e *env) conversation(name, email string) inbox.Conversation {
	e.t.Helper()
	ctx := context.Background()
	ct, err := e.store.CreateContact(ctx, inbox.NewContact{Name: name, Email: email})
	if err != nil {
		e.t.Fatalf("CreateContact() = %v", err)
	}
	conv, err := e.store.StartConversation(ctx, ct.ID, inbox.ChannelChat, "")
	if err != nil {
		e.t.Fatalf("StartConversation() = %v", err)
	}
	return conv
}

// contactSays adds a contact message.
func (e *env) contactSays(conversationID int64, text string) inbox.Message {
	e.t.Helper()
	m, _, err := e.store.AddMessage(context.Background(), inbox.NewMessage{ConversationID: conversationID, Author: inbox.AuthorContact, Text: text})
	if err != nil {
		e.t.Fatalf("AddMessage() = %v", err)
	}
	return m
}

// client is a browser: a cookie jar, and the CSRF token once logged in.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
	// header is added to every request.
	header http.Header
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}, header: http.Header{}}
}

// login returns a client logged in as email.
func (e *env) login(email string) *client {
	e.t.Helper()
	c := e.client()
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": testPassword})
	r.want(http.StatusOK)
	var s sessionAnswer
	r.decode(&s)
	if s.CSRFToken == "" || s.Agent.Email != email {
		e.t.Fatalf("login(%s) = %s", email, r.body)
	}
	c.csrf = s.CSRFToken
	return c
}

// result is an answer, read whole.
type result struct {
	t      *testing.T
	req    string
	code   int
	header http.Header
	body   []byte
}

// do sends a request. body is nil (none), a string or []byte (sent as
// is), or a value sent as JSON; any body goes as application/json.
func (c *client) do(method, path string, body any) *result {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatalf("json.Marshal() = %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.e.ts.URL+path, rd)
	if err != nil {
		c.e.t.Fatalf("NewRequest() = %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req)
}

// send adds the client's CSRF token and headers to req, sends it and
// reads the answer.
func (c *client) send(req *http.Request) *result {
	c.e.t.Helper()
	if c.csrf != "" {
		req.Header.Set(headerCSRF, c.csrf)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	name := req.Method + " " + strings.TrimPrefix(req.URL.String(), c.e.ts.URL)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatalf("%s: reading body: %v", name, err)
	}
	return &result{t: c.e.t, req: name, code: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the status code is code.
func (r *result) want(code int) *result {
	r.t.Helper()
	if r.code != code {
		r.t.Fatalf("%s = %d %s, want %d", r.req, r.code, r.body, code)
	}
	return r
}

func (r *result) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("%s: decoding %s: %v", r.req, r.body, err)
	}
}

// apiErr returns the error body.
func (r *result) apiErr() apiError {
	r.t.Helper()
	var e apiError
	r.decode(&e)
	if e.Error == "" {
		r.t.Fatalf("%s = %d %s, want an error body", r.req, r.code, r.body)
	}
	return e
}

// wantField fails unless the answer is a 400 naming field.
func (r *result) wantField(field string) {
	r.t.Helper()
	r.want(http.StatusBadRequest)
	if e := r.apiErr(); e.Field != field || !strings.Contains(e.Error, field) {
		r.t.Fatalf("%s = %s, want an error naming %q", r.req, r.body, field)
	}
}

func itoa64(id int64) string {
	b, _ := json.Marshal(id)
	return string(b)
}
