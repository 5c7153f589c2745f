package webhook

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// receiver is a test server on 127.0.0.1 that counts the requests that
// reach it.
type receiver struct {
	*httptest.Server
	requests atomic.Int32
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// port is the receiver's port, for URLs with another host.
func (r *receiver) port() string {
	return fmt.Sprint(r.Listener.Addr().(*net.TCPAddr).Port)
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// send delivers a small event with a new secret.
func send(c *http.Client, url string) Result {
	return Send(context.Background(), c, url, "msg_1", time.Now(), []byte(`{"type":"test"}`), []string{NewSecret()})
}

// lookupAnswers is a Guard.LookupIP that answers addrs to each lookup, in
// turn (the last one from then on), and counts the lookups.
func lookupAnswers(n *atomic.Int32, addrs ...[]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		i := min(int(n.Add(1))-1, len(addrs)-1)
		var out []netip.Addr
		for _, a := range addrs[i] {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

func wantBlocked(t *testing.T, r Result) {
	t.Helper()
	if r.Status != 0 || !errors.Is(r.Err, ErrBlocked) || r.OK() {
		t.Fatalf("Send() = %+v, want Status 0 and ErrBlocked", r)
	}
}

func TestSendLoopback(t *testing.T) {
	rcv := newReceiver(t, answer(http.StatusNoContent, ""))
	// Refused without Allow: nothing reaches the receiver.
	wantBlocked(t, send(NewClient(Guard{}, 5*time.Second), rcv.URL))
	if n := rcv.requests.Load(); n != 0 {
		t.Fatalf("receiver got %d requests, want 0", n)
	}
	// Allowed, in any written form of 127.0.0.1.
	c := NewClient(Guard{Allow: loopback}, 5*time.Second)
	for i, host := range []string{"127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.01", "127.1.", "[::ffff:127.0.0.1]", "１２７。０。０。１"} {
		r := send(c, "http://"+host+":"+rcv.port()+"/hook")
		if r.Status != http.StatusNoContent || r.Err != nil || !r.OK() {
			t.Fatalf("Send(%s) with Allow = %+v, want 204", host, r)
		}
		if n := rcv.requests.Load(); n != int32(i+1) {
			t.Fatalf("receiver got %d requests, want %d", n, i+1)
		}
		// Without Allow, refused in that form as well.
		wantBlocked(t, send(NewClient(Guard{}, 5*time.Second), "http://"+host+":"+rcv.port()+"/hook"))
	}
	wantBlocked(t, send(c, "http://localhost:"+rcv.port()+"/"))
	if n := rcv.requests.Load(); n != 7 {
		t.Fatalf("receiver got %d requests, want 7", n)
	}
}

// TestSendResolved: a name is judged by every address it resolves to.
func TestSendResolved(t *testing.T) {
	rcv := newReceiver(t, answer(http.StatusOK, "ok"))
	for _, addrs := range [][]string{
		{"127.0.0.1"},
		{"::ffff:127.0.0.1"},
		{"93.184.216.34", "127.0.0.1"}, // one public answer does not hide the other
		{"10.0.0.1", "93.184.216.34"},
		{},
	} {
		var lookups atomic.Int32
		g := Guard{LookupIP: lookupAnswers(&lookups, addrs)}
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			t.Errorf("%v: dialed %s", addrs, addr)
			return nil, errors.New("no dial in this test")
		}
		r := send(newClient(g, 5*time.Second, dial), "http://hooks.example.com:"+rcv.port()+"/")
		if len(addrs) == 0 {
			if r.Status != 0 || r.Err == nil || errors.Is(r.Err, ErrBlocked) {
				t.Errorf("Send(no address) = %+v, want an error other than ErrBlocked", r)
			}
		} else if r.Status != 0 || !errors.Is(r.Err, ErrBlocked) {
			t.Errorf("Send(resolved to %v) = %+v, want ErrBlocked", addrs, r)
		}
		if n := lookups.Load(); n != 1 {
			t.Errorf("%v: %d lookups, want 1", addrs, n)
		}
	}
	if n := rcv.requests.Load(); n != 0 {
		t.Fatalf("receiver got %d requests, want 0", n)
	}
}

// TestSendRebinding: a name that resolved to a public address on one
// attempt and to 127.0.0.1 on the next is refused on the next. The public
// address is never dialed on the network: the test's dial takes it to
// the local receiver, as if the receiver were there.
func TestSendRebinding(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		// A new connection, and so a new dial, for the next attempt.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusOK)
	})
	public := "93.184.216.34"
	var lookups, dials atomic.Int32
	g := Guard{LookupIP: lookupAnswers(&lookups, []string{public}, []string{"127.0.0.1"})}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if addr != net.JoinHostPort(public, rcv.port()) {
			t.Errorf("dialed %s", addr)
			return nil, errors.New("not the public address")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, rcv.Listener.Addr().String())
	}
	c := newClient(g, 5*time.Second, dial)
	url := "http://rebind.example.com:" + rcv.port() + "/"
	if r := send(c, url); !r.OK() || r.Err != nil {
		t.Fatalf("first Send() = %+v, want 200", r)
	}
	wantBlocked(t, send(c, url))
	if l, d, n := lookups.Load(), dials.Load(), rcv.requests.Load(); l != 2 || d != 1 || n != 1 {
		t.Fatalf("%d lookups, %d dials, %d requests; want 2, 1, 1", l, d, n)
	}
}

func TestSendNoRedirect(t *testing.T) {
	target := newReceiver(t, answer(http.StatusOK, "followed"))
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/hook", http.StatusFound)
	})
	r := send(NewClient(Guard{Allow: loopback}, 5*time.Second), rcv.URL)
	if r.Status != http.StatusFound || r.Err != nil || r.OK() {
		t.Fatalf("Send() = %+v, want 302", r)
	}
	if n, m := rcv.requests.Load(), target.requests.Load(); n != 1 || m != 0 {
		t.Fatalf("%d requests to the endpoint, %d to the redirect's target; want 1, 0", n, m)
	}
}

// TestSendTimeout: a receiver that never answers ends the attempt at the
// client's timeout, with Err and no status. The request must have reached
// it: an attempt whose request the machine did not even write within the
// timeout is tried again with a longer one.
func TestSendTimeout(t *testing.T) {
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before rcv.Close, which waits for the handlers
	for timeout := 200 * time.Millisecond; ; timeout *= 2 {
		var wrote atomic.Bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) { wrote.Store(info.Err == nil) },
		})
		start := time.Now()
		r := Send(ctx, NewClient(Guard{Allow: loopback}, timeout), rcv.URL, "msg_1", time.Now(), []byte("{}"), []string{NewSecret()})
		elapsed := time.Since(start)
		var ne net.Error
		if r.Status != 0 || !errors.As(r.Err, &ne) || !ne.Timeout() {
			t.Fatalf("Send() = %+v, want a timeout and no status", r)
		}
		if elapsed < timeout {
			t.Fatalf("Send() timed out after %v, before its timeout %v", elapsed, timeout)
		}
		if !wrote.Load() {
			if timeout > 10*time.Second {
				t.Fatalf("the request was not written within %v", timeout)
			}
			continue
		}
		<-entered // written on a local socket: the receiver gets it
		return
	}
}

func TestSendAnswerExcerpt(t *testing.T) {
	long := "a" + strings.Repeat("é", 40<<10) // past 64 KiB; rune 512 straddles byte 1,024
	for _, tc := range []struct {
		status     int
		body, want string
	}{
		{http.StatusInternalServerError, long, long[:1023]},
		{http.StatusOK, "ok", "ok"},
		{http.StatusBadRequest, "bad \xff\xfe input\xe2\x82", "bad \uFFFD\uFFFD input\uFFFD\uFFFD"},
		{http.StatusGone, strings.Repeat("\xff", 400), strings.Repeat("\uFFFD", 341)},
		{http.StatusNoContent, "", ""},
	} {
		rcv := newReceiver(t, answer(tc.status, tc.body))
		r := send(NewClient(Guard{Allow: loopback}, 5*time.Second), rcv.URL)
		if r.Status != tc.status || r.Err != nil || r.Body != tc.want {
			t.Errorf("Send() = %d %q (%d bytes), %v; want %d %q", r.Status, r.Body, len(r.Body), r.Err, tc.status, tc.want)
		}
		if len(r.Body) > 1024 || !utf8.ValidString(r.Body) {
			t.Errorf("Body is %d bytes, valid UTF-8 %v", len(r.Body), utf8.ValidString(r.Body))
		}
	}
}

// TestSendSigned: the receiver gets the body and the headers, and the
// Standard Webhooks Go library verifies them with either secret of a
// rotation (verified, the example of docs/webhooks.md).
func TestSendSigned(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	const msgID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	body := []byte(`{"type":"message.created","data":{"text":"hello"}}`)
	ts := time.Now()
	mux := http.NewServeMux()
	for path, secret := range map[string]string{"/a": a, "/b": b, "/other": NewSecret()} {
		h, err := verified(secret)
		if err != nil {
			t.Fatalf("verified() = %v", err)
		}
		mux.Handle(path, h)
	}
	var mu sync.Mutex
	var got []http.Header
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	c := NewClient(Guard{Allow: loopback}, 5*time.Second)
	for path, want := range map[string]int{"/a": http.StatusNoContent, "/b": http.StatusNoContent, "/other": http.StatusBadRequest} {
		r := Send(context.Background(), c, rcv.URL+path, msgID, ts, body, []string{a, b})
		if r.Status != want || r.Err != nil {
			t.Errorf("Send(%s) = %+v, want %d", path, r, want)
		}
		if want == http.StatusBadRequest && !strings.Contains(r.Body, "no matching signature") {
			t.Errorf("Send(%s): Body %q", path, r.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	for _, h := range got {
		for name, want := range map[string]string{
			"webhook-id":        msgID,
			"webhook-timestamp": fmt.Sprint(ts.Unix()),
			"Content-Type":      "application/json",
			"User-Agent":        "Microchat-Webhooks/1",
		} {
			if h.Get(name) != want {
				t.Errorf("%s: %q, want %q", name, h.Get(name), want)
			}
		}
		if sigs := strings.Fields(h.Get("webhook-signature")); len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
			t.Errorf("webhook-signature: %q, want two v1 signatures", h.Get("webhook-signature"))
		}
	}
}

func TestSendRefusesBadRequest(t *testing.T) {
	rcv := newReceiver(t, answer(http.StatusOK, ""))
	c := NewClient(Guard{Allow: loopback}, 5*time.Second)
	for _, r := range []Result{
		Send(context.Background(), c, rcv.URL, "msg_1", time.Now(), nil, nil),
		Send(context.Background(), c, rcv.URL, "msg.1", time.Now(), nil, []string{NewSecret()}),
		Send(context.Background(), c, "http://[::1", "msg_1", time.Now(), nil, []string{NewSecret()}),
		Send(context.Background(), c, "ftp://127.0.0.1/", "msg_1", time.Now(), nil, []string{NewSecret()}),
	} {
		if r.Status != 0 || r.Err == nil {
			t.Errorf("Send() = %+v, want an error", r)
		}
	}
	if n := rcv.requests.Load(); n != 0 {
		t.Fatalf("receiver got %d requests, want 0", n)
	}
}

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 4, "hell"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"\xff", 3, "\uFFFD"},
		{"\xff", 2, ""},
		{"a\uFFFDb", 4, "a\uFFFD"},
		{"日本", 5, "日"},
	} {
		if got := excerpt([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("excerpt(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestSendTLS: certificates are verified, against the URL's host name,
// also when the client dials the address it resolved itself.
func TestSendTLS(t *testing.T) {
	rcv := &receiver{}
	rcv.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rcv.requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	rcv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	rcv.StartTLS()
	t.Cleanup(rcv.Close)
	var lookups atomic.Int32
	g := Guard{Allow: loopback, LookupIP: lookupAnswers(&lookups, []string{"127.0.0.1"})}

	// The test server's certificate is signed by nobody the system trusts.
	r := send(NewClient(g, 5*time.Second), rcv.URL)
	var unknown x509.UnknownAuthorityError
	if r.Status != 0 || !errors.As(r.Err, &unknown) {
		t.Fatalf("Send(untrusted certificate) = %+v, want an unknown authority", r)
	}

	// Trusted, it is valid for example.com (and 127.0.0.1), not for other names.
	trusting := func() *http.Client {
		c := NewClient(g, 5*time.Second)
		c.Transport.(*http.Transport).TLSClientConfig.RootCAs = rcv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		return c
	}
	if r := send(trusting(), "https://example.com:"+rcv.port()+"/"); r.Status != http.StatusNoContent || r.Err != nil {
		t.Fatalf("Send(example.com) = %+v, want 204", r)
	}
	var invalid x509.HostnameError
	if r := send(trusting(), "https://hooks.example.org:"+rcv.port()+"/"); r.Status != 0 || !errors.As(r.Err, &invalid) {
		t.Fatalf("Send(another name) = %+v, want a host name error", r)
	}
	if n, l := rcv.requests.Load(), lookups.Load(); n != 1 || l != 2 {
		t.Fatalf("%d requests, %d lookups; want 1, 2", n, l)
	}
}

// TestNewClient: what no test server can show, that the client uses no
// proxy (a proxy would dial what the guard never saw).
func TestNewClient(t *testing.T) {
	c := NewClient(Guard{}, time.Second)
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil || tr.MaxIdleConnsPerHost != 64 || tr.TLSClientConfig.InsecureSkipVerify || c.Timeout != time.Second {
		t.Fatalf("NewClient() = %+v with %+v", c, tr)
	}
}
