package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"golang.org/x/crypto/bcrypt"
)

func init() { inbox.BcryptCost = bcrypt.MinCost }

// testEnv gives the test a clean environment: a fresh data directory, a
// free port on the loopback interface, no admin and no config file. It
// returns the data directory.
func testEnv(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"MICROCHAT_CONFIG", "MICROCHAT_DATABASE_URL", "MICROCHAT_BASE_URL", envAdminEmail, envAdminPassword, envAdminName} {
		t.Setenv(name, "")
	}
	t.Setenv("MICROCHAT_DATA_DIR", dir)
	t.Setenv("MICROCHAT_LISTEN", "127.0.0.1:0")
	t.Setenv("MICROCHAT_SHUTDOWN_TIMEOUT", "5s")
	return dir
}

// server is a serve command running in-process.
type server struct {
	addr   string
	url    string
	stderr *inboxtest.Buffer
	stop   context.CancelFunc
	done   chan int // the exit code, once run returns
	// active receives when a connection's request headers have been
	// read (http.StateActive); dropped when nobody waits.
	active chan struct{}
}

// startServe runs "microchat serve args..." until the test ends, and
// returns once it listens.
func startServe(t testing.TB, args ...string) *server {
	t.Helper()
	s := &server{stderr: &inboxtest.Buffer{}, done: make(chan int, 1), active: make(chan struct{}, 1)}
	listening := make(chan string, 1)
	ctx := context.WithValue(context.Background(), listenHookKey{}, func(addr string) { listening <- addr })
	ctx = context.WithValue(ctx, connStateHookKey{}, func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive {
			select {
			case s.active <- struct{}{}:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	go func() { s.done <- run(ctx, append([]string{"serve"}, args...), io.Discard, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop within 20s")
		}
	})
	select {
	case s.addr = <-listening:
	case code := <-s.done:
		s.done <- code
		t.Fatalf("serve exited with %d before listening; stderr:\n%s", code, s.stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not listen within 15s; stderr:\n%s", s.stderr)
	}
	s.url = "http://" + s.addr
	return s
}

// wait stops waiting for the server and returns its exit code.
func (s *server) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(timeout):
		t.Fatalf("serve still running %v after cancel; stderr:\n%s", timeout, s.stderr)
		return -1
	}
}

// runCmd runs one command line in-process and returns its exit code and
// outputs.
func runCmd(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(body)
}

func TestServe(t *testing.T) {
	testEnv(t)
	t.Setenv(envAdminEmail, "admin@example.com")
	t.Setenv(envAdminPassword, "a long enough password")
	start := time.Now()
	s := startServe(t)
	c := &http.Client{Timeout: 10 * time.Second}

	resp, _ := get(t, c, s.url+"/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz = %d, want 200", resp.StatusCode)
	}
	t.Logf("ready %v after start (with creating the admin)", time.Since(start).Round(time.Millisecond))

	for _, tc := range []struct{ path, contentType string }{
		{"/", "text/html"},
		{"/widget.js", "javascript"},
		{"/inbox", "text/html"},
		{"/healthz", ""},
	} {
		resp, _ := get(t, c, s.url+tc.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tc.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.contentType)
		}
	}
	if out := s.stderr.String(); !strings.Contains(out, "created admin") || strings.Contains(out, "/setup#token=") {
		t.Errorf("stderr: want \"created admin\" and no setup link, got:\n%s", out)
	}

	jar, _ := cookiejar.New(nil)
	c.Jar = jar
	resp, err := c.Post(s.url+"/api/v1/auth/login", "application/json",
		strings.NewReader(`{"email": "admin@example.com", "password": "a long enough password"}`))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/auth/login = %d %s, want 200", resp.StatusCode, body)
	}
	resp, body2 := get(t, c, s.url+"/api/v1/conversations?column=unassigned")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/conversations = %d %s, want 200", resp.StatusCode, body2)
	}

	s.stop()
	if code := s.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("serve exited with %d, want 0; stderr:\n%s", code, s.stderr)
	}
}

// Every log line of serve, once the store is open, names the node: the
// node_id set, or the one the store made, the same on every line and
// given once (the store's own lines included).
func TestServeLogsNodeID(t *testing.T) {
	for _, set := range []string{"node-under-test", ""} {
		t.Run(fmt.Sprintf("node_id=%q", set), func(t *testing.T) {
			testEnv(t)
			t.Setenv("MICROCHAT_NODE_ID", set)
			t.Setenv(envAdminEmail, "admin@example.com")
			t.Setenv(envAdminPassword, "a long enough password")
			s := startServe(t)
			// The store's line (pkg=inbox) about the prune job comes from
			// a goroutine that serve starts once listening.
			for deadline := time.Now().Add(15 * time.Second); !strings.Contains(s.stderr.String(), "worker lock taken"); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no \"worker lock taken\" line within 15s; stderr:\n%s", s.stderr)
				}
			}
			s.stop()
			if code := s.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("serve exited with %d, want 0; stderr:\n%s", code, s.stderr)
			}
			out := s.stderr.String()
			// Lines of serve itself, before and after HTTP, and the store's.
			kinds := []string{"created admin", "listening", "pkg=inbox", "shutting down"}
			seen := map[string]bool{}
			want := set
			for line := range strings.Lines(out) {
				line = strings.TrimSuffix(line, "\n")
				if !strings.HasPrefix(line, "time=") {
					continue // not a log line
				}
				for _, k := range kinds {
					seen[k] = seen[k] || strings.Contains(line, k)
				}
				if n := strings.Count(line, " node_id="); n != 1 {
					t.Errorf("line has node_id= %d times, want once: %s", n, line)
					continue
				}
				_, rest, _ := strings.Cut(line, " node_id=")
				node, _, _ := strings.Cut(rest, " ")
				if want == "" {
					want = node
				}
				if node == "" || node != want {
					t.Errorf("line names node %q, want %q: %s", node, want, line)
				}
			}
			for _, k := range kinds {
				if !seen[k] {
					t.Errorf("no log line with %q; stderr:\n%s", k, out)
				}
			}
		})
	}
}

// TestShutdown cancels the server while a request is half sent: the
// request is still answered, new connections are refused, and serve exits
// with 0.
func TestShutdown(t *testing.T) {
	testEnv(t)
	s := startServe(t)

	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email": "nobody@example.com", "password": "not the password"}`
	head := fmt.Sprintf("POST /api/v1/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", s.addr, len(body))
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	// The server has read the headers and waits for the body.
	select {
	case <-s.active:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not start on the request within 10 s")
	}

	s.stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the port still accepts connections 5s after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case code := <-s.done:
		s.done <- code
		t.Fatalf("serve exited with %d before the request in flight was answered", code)
	default:
	}

	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("sending the rest of the request: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong password = %d, want 401", resp.StatusCode)
	}
	if code := s.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("serve exited with %d, want 0; stderr:\n%s", code, s.stderr)
	}
	if c, err := net.Dial("tcp", s.addr); err == nil {
		c.Close()
		t.Fatal("the port is still open after serve returned")
	}
}

func TestSetupLink(t *testing.T) {
	testEnv(t)
	s := startServe(t)
	_, port, _ := net.SplitHostPort(s.addr)
	out := s.stderr.String()
	want := "Create one within 24 hours at: http://127.0.0.1:" + port + "/setup#token="
	if !strings.Contains(out, want) {
		t.Fatalf("stderr does not contain %q:\n%s", want, out)
	}
	// Like every log line after the store opened, it names its node.
	if !regexp.MustCompile(`No admin yet \(node_id=[^)\s]+\)\.`).MatchString(out) {
		t.Fatalf("the setup message names no node:\n%s", out)
	}
}

func TestSetupLinkBaseURL(t *testing.T) {
	testEnv(t)
	t.Setenv("MICROCHAT_BASE_URL", "https://chat.example.com/")
	s := startServe(t)
	if out := s.stderr.String(); !strings.Contains(out, "at: https://chat.example.com/setup#token=") {
		t.Fatalf("stderr has no setup link on base_url:\n%s", out)
	}
}

func TestBaseURL(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	for listen, want := range map[string]string{
		":8080":          "http://localhost:8080",
		"0.0.0.0:8080":   "http://localhost:8080",
		"[::]:8080":      "http://localhost:8080",
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		"chat.lan:8080":  "http://chat.lan:8080",
	} {
		cfg := testConfig()
		cfg.Listen = listen
		if got := baseURL(cfg, addr); got != want {
			t.Errorf("baseURL(listen %q) = %q, want %q", listen, got, want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	dir := testEnv(t)
	path := filepath.Join(dir, "microchat.yaml")
	if err := os.WriteFile(path, []byte("# test\ndata_dir: "+dir+"\nlisen: \":8080\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "serve", "--config", path)
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "microchat: config: ") || !strings.Contains(lines[0], "microchat.yaml:3:") || !strings.Contains(lines[0], `"lisen"`) {
		t.Errorf("stderr = %q, want one line naming microchat.yaml:3 and \"lisen\"", stderr)
	}

	// The same through MICROCHAT_CONFIG.
	t.Setenv("MICROCHAT_CONFIG", path)
	if code, _, stderr := runCmd(t); code != exitUsage || !strings.Contains(stderr, "lisen") {
		t.Errorf("with MICROCHAT_CONFIG: exit %d, stderr %q", code, stderr)
	}
}

func TestUnreachableDatabase(t *testing.T) {
	testEnv(t)
	t.Setenv("MICROCHAT_DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	for _, args := range [][]string{{"serve"}, {"agent", "list"}} {
		start := time.Now()
		code, _, stderr := runCmd(t, args...)
		if code != exitFailure {
			t.Errorf("%v: exit code %d, want %d", args, code, exitFailure)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "microchat: database: ") {
			t.Errorf("%v: stderr = %q, want one line starting \"microchat: database: \"", args, stderr)
		}
		if d := time.Since(start); d > startupTimeout+time.Second {
			t.Errorf("%v: took %v", args, d)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, stdout, _ := runCmd(t, args...)
		if code != 0 || !strings.Contains(stdout, "microchat agent add") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
	if code, stdout, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(stdout, "microchat ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := runCmd(t, "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCmd(t, "serve", "-h"); code != 0 {
		t.Errorf("serve -h: exit %d", code)
	}
	if code, _, _ := runCmd(t, "serve", "--no-such-flag"); code != exitUsage {
		t.Errorf("serve --no-such-flag: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCmd(t, "serve", "extra"); code != exitUsage {
		t.Errorf("serve extra: exit %d, want %d", code, exitUsage)
	}
}

// BenchmarkStartupReady measures the time from starting serve on a new,
// empty data directory until /readyz answers 200.
func BenchmarkStartupReady(b *testing.B) {
	c := &http.Client{Timeout: 5 * time.Second}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		testEnv(b)
		b.StartTimer()
		start := time.Now()
		s := startServe(b)
		for {
			resp, err := c.Get(s.url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("/readyz not 200 after 10s: %v; stderr:\n%s", err, s.stderr)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		s.stop()
		s.wait(b, 10*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/ready")
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"a:\n\tb: x\n\tb: x\n":  "a: b: x",
		"first\nsecond":         "first; second",
		"  spaced  \n\n  out  ": "spaced; out",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAdminFromEnvInvalid(t *testing.T) {
	testEnv(t)
	for _, tc := range []struct{ email, password, want string }{
		{"admin@example.com", "short", "password"},
		{"admin@example.com", "", envAdminPassword},
		{"not an address", "a long enough password", "email"},
	} {
		t.Setenv(envAdminEmail, tc.email)
		t.Setenv(envAdminPassword, tc.password)
		code, _, stderr := runCmd(t, "serve")
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("admin %q/%q: exit %d, stderr %q; want %d and one line naming %s", tc.email, tc.password, code, stderr, exitUsage, tc.want)
		}
	}
}

// With pprof_listen set, the profiler answers there, and only there.
func TestPprofListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := servePprof(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("servePprof() = %v", err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("GET profiler: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("profiler answered %d", resp.StatusCode)
	}
	if _, err := servePprof(ctx, addr, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatalf("a second profiler on the same address started")
	}
}

func TestGodebugEnv(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want []string
		ok   bool
	}{
		{[]string{"HOME=/root"}, []string{"HOME=/root", "GODEBUG=adaptivestackstart=0"}, true},
		{[]string{"GODEBUG=gctrace=1", "A=b"}, []string{"GODEBUG=gctrace=1,adaptivestackstart=0", "A=b"}, true},
		{[]string{"GODEBUG="}, []string{"GODEBUG=adaptivestackstart=0"}, true},
		// The operator's own choice is kept, and no second exec happens.
		{[]string{"GODEBUG=gctrace=1,adaptivestackstart=1"}, []string{"GODEBUG=gctrace=1,adaptivestackstart=1"}, false},
		{[]string{"GODEBUG=adaptivestackstart=0"}, []string{"GODEBUG=adaptivestackstart=0"}, false},
	} {
		got, ok := godebugEnv(tc.env)
		if ok != tc.ok || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("godebugEnv(%q) = %q, %v; want %q, %v", tc.env, got, ok, tc.want, tc.ok)
		}
	}
}
