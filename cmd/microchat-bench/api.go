package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// userAgent is sent with every request and socket handshake: a browser's,
// as the widget's would be, so that the server parses a real one, and the
// same for a visitor's start and socket, so that the server finds the
// visitor's facts unchanged when the socket connects, as with a browser.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 microchat-bench/1"

// api is the tool's HTTP client of the Microchat API: agent logins and
// replies, visitor tokens, joins and /metrics.
type api struct {
	base string // http://host:port
	hc   *http.Client
}

// newAPI returns a client of base keeping up to conns connections open.
func newAPI(base *url.URL, dialHost string, conns int) *api {
	return &api{base: base.String(), hc: httpClient(dialHost, nil, conns)}
}

// httpClient dials dialHost (host:port) whatever the URL's host, from src
// when it is not nil.
func httpClient(dialHost string, src *netip.Addr, conns int) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d = dialerFrom(*src)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, dialHost)
		},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// apiError is an answer other than the one expected.
type apiError struct {
	Op         string
	Code       int
	Body       string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.Op, e.Code, strings.TrimSpace(e.Body))
}

// kind is the error's name in the error counts.
func (e *apiError) kind() string { return e.Op + ": HTTP " + strconv.Itoa(e.Code) }

// agentLogin is a logged-in agent: the session cookie and CSRF token.
type agentLogin struct {
	Index  int
	ID     int64
	Email  string
	Cookie string // name=value
	CSRF   string
}

// request says how to send one API call.
type request struct {
	op, method, path string
	body             any
	as               *agentLogin // cookie and CSRF token
	bearer           string      // visitor token
	want             int         // expected status; 0 means 200
}

// call sends r and decodes the answer into out (if not nil). It returns
// the answer's header, for cookies.
func (a *api) call(ctx context.Context, hc *http.Client, r request, out any) (http.Header, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, a.base+r.path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.as != nil {
		req.Header.Set("Cookie", r.as.Cookie)
		req.Header.Set("X-CSRF-Token", r.as.CSRF)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if hc == nil {
		hc = a.hc
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.op, err)
	}
	defer resp.Body.Close()
	want := r.want
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		e := &apiError{Op: r.op, Code: resp.StatusCode, Body: string(b)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return resp.Header, e
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.Header, err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.Header, fmt.Errorf("%s: decoding the answer: %w", r.op, err)
	}
	return resp.Header, nil
}

// login logs email in over hc and returns its session.
func (a *api) login(ctx context.Context, hc *http.Client, email, password string) (agentLogin, error) {
	var ans struct {
		Agent struct {
			ID int64 `json:"id"`
		} `json:"agent"`
		CSRFToken string `json:"csrf_token"`
	}
	h, err := a.call(ctx, hc, request{op: "login", method: "POST", path: "/api/v1/auth/login",
		body: map[string]string{"email": email, "password": password}}, &ans)
	if err != nil {
		return agentLogin{}, err
	}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Value != "" && c.MaxAge >= 0 {
			return agentLogin{ID: ans.Agent.ID, Email: email, Cookie: c.Name + "=" + c.Value, CSRF: ans.CSRFToken}, nil
		}
	}
	return agentLogin{}, fmt.Errorf("login %s: no session cookie in the answer", email)
}

// benchAgentEmail and benchAgentPassword name the agents the tool
// creates. The password is derived from the admin's, so that a later run
// against the same database logs the same agents in again.
func benchAgentEmail(i int) string { return fmt.Sprintf("bench-agent-%d@load.invalid", i) }

func benchAgentPassword(adminPassword string, i int) string {
	h := sha256.Sum256([]byte("microchat-bench:" + adminPassword + ":" + strconv.Itoa(i)))
	return "bench-" + hex.EncodeToString(h[:12])
}

// ensureAgent creates agent i unless it exists.
func (a *api) ensureAgent(ctx context.Context, admin *agentLogin, i int, password string) error {
	_, err := a.call(ctx, nil, request{op: "create agent", method: "POST", path: "/api/v1/agents", as: admin, want: http.StatusCreated,
		body: map[string]string{"email": benchAgentEmail(i), "name": fmt.Sprintf("Bench agent %d", i), "password": password}}, nil)
	if e, ok := err.(*apiError); ok && e.Code == http.StatusBadRequest && strings.Contains(e.Body, "exists") {
		return nil
	}
	return err
}

// visitorStart is the part of POST /api/v1/widget/conversations's answer
// the tool uses.
type visitorStart struct {
	Token   string `json:"token"`
	Contact struct {
		ID int64 `json:"id"`
	} `json:"contact"`
	Conversation struct {
		ID int64 `json:"id"`
	} `json:"conversation"`
}

// mint starts a visitor's conversation over hc and returns its token.
func (a *api) mint(ctx context.Context, hc *http.Client, name string) (visitorStart, error) {
	var vs visitorStart
	_, err := a.call(ctx, hc, request{op: "mint", method: "POST", path: "/api/v1/widget/conversations", want: http.StatusCreated,
		body: map[string]string{"name": name}}, &vs)
	if err == nil && (vs.Token == "" || vs.Conversation.ID == 0) {
		err = fmt.Errorf("mint: the answer has no token or conversation id")
	}
	return vs, err
}

// join makes agent as join conversation id.
func (a *api) join(ctx context.Context, as *agentLogin, id int64) error {
	_, err := a.call(ctx, nil, request{op: "join", method: "POST", path: "/api/v1/conversations/" + strconv.FormatInt(id, 10) + "/join", as: as}, nil)
	return err
}

// reply sends agent as's message to conversation id and returns the seq
// it was stored at.
func (a *api) reply(ctx context.Context, as *agentLogin, id int64, clientID, text string) (int64, error) {
	var ans struct {
		Message struct {
			Seq int64 `json:"seq"`
		} `json:"message"`
	}
	_, err := a.call(ctx, nil, request{op: "agent reply", method: "POST", path: "/api/v1/conversations/" + strconv.FormatInt(id, 10) + "/messages", as: as, want: http.StatusCreated,
		body: map[string]string{"text": text, "client_id": clientID}}, &ans)
	return ans.Message.Seq, err
}

// metrics reads the server's memory and socket counts from /metrics.
func (a *api) metrics(ctx context.Context) (ServerMemory, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+"/metrics", nil)
	if err != nil {
		return ServerMemory{}, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return ServerMemory{}, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerMemory{}, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}
