package webhook

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The receivers of docs/webhooks.md, "Verifying a delivery": verified (Go)
// here and testdata/receiver.cjs (Node), which TestDocsExamples keeps
// the same as the document's examples.

// verified answers 204 to a delivery signed with secret ("whsec_..."),
// 400 to anything else.
func verified(secret string) (http.Handler, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Checks the signature, and that webhook-timestamp is within 5 minutes.
		if err := wh.Verify(payload, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// payload is the event's JSON; r.Header.Get("webhook-id") identifies it across retries.
		w.WriteHeader(http.StatusNoContent)
	}), nil
}

// nodeTestDir is where scripts/test-deps.sh installs the npm packages of
// the tests: $MICROCHAT_TEST_NODE, or microchat-test/node in the user's
// cache directory (${XDG_CACHE_HOME:-$HOME/.cache}).
func nodeTestDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("MICROCHAT_TEST_NODE"); dir != "" {
		return dir
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the npm packages of the tests (%v): set MICROCHAT_TEST_NODE and run scripts/test-deps.sh", err)
	}
	return filepath.Join(cache, "microchat-test", "node")
}

// startNodeReceiver runs testdata/receiver.cjs with secret and returns its
// URL. Without node or the standardwebhooks package the test fails: this
// is how receivers in Node verify what Microchat signs.
func startNodeReceiver(t *testing.T, secret string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is missing (%v): run scripts/test-deps.sh, which installs nodejs, npm and the standardwebhooks package", err)
	}
	modules := filepath.Join(nodeTestDir(t), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "standardwebhooks", "package.json")); err != nil {
		t.Fatalf("the npm package standardwebhooks is missing (%v): run scripts/test-deps.sh, which installs it there", err)
	}
	cmd := exec.Command(node, "testdata/receiver.cjs")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "WEBHOOK_SECRET="+secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StdoutPipe() = %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		t.Fatalf("receiver.cjs printed no port (%v); its stderr:\n%s", err, stderr.String())
	}
	t.Cleanup(stop)
	return "http://127.0.0.1:" + strings.TrimSpace(port) + "/webhooks"
}

// TestStandardWebhooksNode sends deliveries to the Node receiver, which
// verifies them with the standardwebhooks npm package: a rotation's two
// signatures, each secret alone, and a signature of another secret.
func TestStandardWebhooksNode(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	urlA, urlB := startNodeReceiver(t, a), startNodeReceiver(t, b)
	c := NewClient(Guard{Allow: loopback}, 10*time.Second)
	body := []byte(`{"type":"message.created","timestamp":"2025-01-02T03:04:05Z","data":{"text":"héllo \u2603"}}`)
	for _, tc := range []struct {
		url     string
		secrets []string
		want    int
	}{
		{urlA, []string{a, b}, http.StatusNoContent},
		{urlB, []string{a, b}, http.StatusNoContent},
		{urlB, []string{b, a}, http.StatusNoContent},
		{urlA, []string{a}, http.StatusNoContent},
		{urlB, []string{b}, http.StatusNoContent},
		{urlA, []string{b}, http.StatusBadRequest},
		{urlB, []string{NewSecret()}, http.StatusBadRequest},
	} {
		r := Send(context.Background(), c, tc.url, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now(), body, tc.secrets)
		if r.Status != tc.want || r.Err != nil {
			t.Errorf("Send(to the receiver of secret %d, signed with %d secrets) = %+v, want %d", map[string]int{urlA: 1, urlB: 2}[tc.url], len(tc.secrets), r, tc.want)
		}
		if tc.want == http.StatusBadRequest && r.Body != "No matching signature found" {
			t.Errorf("Body = %q", r.Body)
		}
	}
	// An old timestamp is refused.
	r := Send(context.Background(), c, urlA, "msg_1", time.Now().Add(-10*time.Minute), body, []string{a})
	if r.Status != http.StatusBadRequest || r.Body != "Message timestamp too old" {
		t.Errorf("Send(10 minutes old) = %+v, want 400", r)
	}
}

// TestDocsExamples: each example of docs/webhooks.md is code the tests
// run, word for word: the Go ones in this file, the JavaScript ones in
// testdata/receiver.cjs.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{"go": "receiver_test.go", "js": "testdata/receiver.cjs"}
	blocks := regexp.MustCompile("(?ms)^```(\\w+)\n(.*?)^```$").FindAllSubmatch(doc, -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		lang, code := string(b[1]), string(b[2])
		src, ok := sources[lang]
		if !ok {
			continue
		}
		seen[lang] = true
		text, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(text), code) {
			t.Errorf("docs/webhooks.md has a %s example that is not in %s:\n%s", lang, src, code)
		}
	}
	for lang := range sources {
		if !seen[lang] {
			t.Errorf("docs/webhooks.md has no %s example", lang)
		}
	}
}
