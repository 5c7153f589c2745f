package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
)

// stubNode stands in for a Microchat node behind nginx: it records what
// each request looked like when it arrived, answers WebSocket handshakes
// with 101 and then echoes what it reads, and reads whole bodies.
type stubNode struct {
	name string
	srv  *httptest.Server

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	path, host, xff, proto, connection, upgrade string
	httpVersion                                 string
	bodyLen                                     int64
}

func newStubNode(t *testing.T, name string) *stubNode {
	n := &stubNode{name: name}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.Copy(io.Discard, r.Body)
		n.mu.Lock()
		n.seen = append(n.seen, seenRequest{
			path: r.URL.Path, host: r.Host, xff: r.Header.Get("X-Forwarded-For"),
			proto: r.Header.Get("X-Forwarded-Proto"), connection: r.Header.Get("Connection"),
			upgrade: r.Header.Get("Upgrade"), httpVersion: r.Proto, bodyLen: body,
		})
		n.mu.Unlock()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			io.Copy(conn, rw) // echo until the client closes
			return
		}
		fmt.Fprint(w, n.name)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *stubNode) requests() []seenRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seenRequest(nil), n.seen...)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNginx runs deploy/nginx's configuration in a temporary prefix, in
// the foreground, listening on a loopback port and balancing the given
// stub nodes in place of the upstream's servers. It returns nginx's
// address once it accepts connections.
func startNginx(t *testing.T, nodes ...*stubNode) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			t.Fatal("nginx is not installed: apt-get install nginx (scripts/test-deps.sh does it as root)")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	port := freePort(t)

	main, err := os.ReadFile("nginx/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	// Logs in the prefix; no open-file limit to raise (a test process may
	// not); the rest as shipped.
	m := regexp.MustCompile(`/var/log/nginx/`).ReplaceAllString(string(main), dir+"/")
	m = regexp.MustCompile(`(?m)^worker_rlimit_nofile .*$`).ReplaceAllString(m, "")
	m = regexp.MustCompile(`(?m)^worker_processes .*$`).ReplaceAllString(m, "worker_processes 1;")
	conf, err := os.ReadFile("nginx/microchat.conf")
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	c := regexp.MustCompile(`(?m)^(\s*server )\S+(.*;)$`).ReplaceAllStringFunc(string(conf), func(line string) string {
		if i >= len(nodes) {
			t.Fatalf("more upstream servers than the %d stub nodes", len(nodes))
		}
		addr := strings.TrimPrefix(nodes[i].srv.URL, "http://")
		i++
		return regexp.MustCompile(`server \S+`).ReplaceAllString(line, "server "+addr)
	})
	if i != len(nodes) {
		t.Fatalf("%d upstream servers, want %d", i, len(nodes))
	}
	c = strings.Replace(c, "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	for name, text := range map[string]string{"nginx.conf": m, "microchat.conf": c, "mime.types": "types {}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	globals := fmt.Sprintf("daemon off; pid %s/nginx.pid;", dir)
	if os.Geteuid() == 0 {
		// Workers that can read the temporary prefix (else nobody's).
		globals += " user root;"
	}
	args := []string{"-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "startup.log"), "-g", globals}
	if out, err := exec.Command(bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx does not accept on %s: %v\n%s%s", addr, err, out.String(), b)
		}
		time.Sleep(10 * time.Millisecond) // waiting for nginx's listener
	}
}

// TestNginxProxies runs nginx with the example configuration in front of
// two stub nodes and checks what reaches them: both nodes used, the Host
// with its port, X-Forwarded-For appended, WebSocket handshakes upgraded
// and tunnelled both ways on both socket routes, the largest upload let
// through, /metrics kept off, and a dead node skipped.
func TestNginxProxies(t *testing.T) {
	a, b := newStubNode(t, "a"), newStubNode(t, "b")
	addr := startNginx(t, a, b)
	client := &http.Client{Timeout: 10 * time.Second}

	get := func(path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	answered := map[string]int{}
	for range 6 {
		code, who := get("/api/v1/conversations", map[string]string{"X-Forwarded-For": "203.0.113.9"})
		if code != 200 {
			t.Fatalf("GET through nginx: %d %s", code, who)
		}
		answered[who]++
	}
	if answered["a"] == 0 || answered["b"] == 0 {
		t.Errorf("answers by node: %v, want both nodes used", answered)
	}
	for _, r := range append(a.requests(), b.requests()...) {
		if r.host != addr {
			t.Errorf("Host at the node %q, want %q (with the port, for the Origin check)", r.host, addr)
		}
		if r.xff != "203.0.113.9, 127.0.0.1" {
			t.Errorf("X-Forwarded-For at the node %q, want the client's chain with nginx's peer appended", r.xff)
		}
		if r.proto != "http" || r.httpVersion != "HTTP/1.1" || strings.EqualFold(r.connection, "upgrade") {
			t.Errorf("request at the node: %+v, want X-Forwarded-Proto http, HTTP/1.1, no Connection: upgrade", r)
		}
	}

	// Both WebSocket routes: upgraded at the node, then a tunnel.
	for _, path := range []string{"/api/v1/ws", "/api/v1/widget/ws"} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, addr)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: %s, want 101", path, res.Status)
		}
		fmt.Fprint(conn, "frame-"+path)
		echo := make([]byte, len("frame-"+path))
		if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "frame-"+path {
			t.Errorf("%s: echo %q, %v", path, echo, err)
		}
		conn.Close()
	}
	var upgraded []string
	for _, r := range append(a.requests(), b.requests()...) {
		if r.upgrade != "" {
			if !strings.EqualFold(r.connection, "upgrade") || r.upgrade != "websocket" {
				t.Errorf("%s at the node: Connection %q, Upgrade %q", r.path, r.connection, r.upgrade)
			}
			upgraded = append(upgraded, r.path)
		}
	}
	if len(upgraded) != 2 {
		t.Errorf("handshakes at the nodes: %v, want both routes", upgraded)
	}

	// The largest upload a node accepts (max_upload_bytes and the
	// multipart allowance) reaches it whole.
	size := int64(config.Defaults().Limits.MaxUploadBytes) + goConstInt(t, filepath.Join(root, "web/attachments.go"), "uploadOverhead")
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/widget/uploads", io.LimitReader(zeros{}, size))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.ContentLength = size
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("upload of %d bytes: %s, want it passed to the node", size, res.Status)
	}
	var got int64
	for _, r := range append(a.requests(), b.requests()...) {
		if r.path == "/api/v1/widget/uploads" {
			got = r.bodyLen
		}
	}
	if got != size {
		t.Errorf("the node read %d bytes of the upload, want %d", got, size)
	}

	before := len(a.requests()) + len(b.requests())
	if code, _ := get("/metrics", nil); code != 404 {
		t.Errorf("GET /metrics through nginx: %d, want 404", code)
	}
	if n := len(a.requests()) + len(b.requests()); n != before {
		t.Error("/metrics reached a node through the balancer")
	}

	// A node that is gone: every GET is answered by the other.
	a.srv.Close()
	for range 4 {
		if code, who := get("/api/v1/conversations", nil); code != 200 || who != "b" {
			t.Errorf("with node a down: %d from %q, want 200 from b", code, who)
		}
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
