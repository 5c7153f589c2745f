package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Timeouts of the harness: bounds for what should happen, generous for
// a loaded 2-core machine (several tests' processes share it), never
// waits that a test relies on.
const (
	// StartTimeout bounds a node's start: listening, then /readyz 200.
	StartTimeout = 60 * time.Second
	// StopTimeout bounds a node's exit after SIGTERM or SIGKILL.
	StopTimeout = 30 * time.Second
	// Patience is how long Eventually and the sockets' waits wait.
	Patience = 30 * time.Second
)

// The admin every cluster creates (MICROCHAT_ADMIN_*).
const (
	AdminEmail    = "admin@example.com"
	AdminPassword = "correct horse battery"
	AdminName     = "Alice"
)

// Options configure a cluster; the zero value is two nodes with the
// defaults below.
type Options struct {
	// Nodes is how many nodes Start starts (default 2). Their ids are
	// "node-a", "node-b", "node-c"...
	Nodes int
	// OfflineAfter is the visitors' grace period, offline_after
	// (default 1 s).
	OfflineAfter time.Duration
	// YAML is the nodes' config file (the mailboxes' keys are added from
	// Mailbox): top-level keys, e.g. "limits:\n  login_attempts_per_minute: 4\n".
	YAML string
	// Mailbox, when set, is the one mailbox, "support"
	// (support@example.com), every node is configured with.
	Mailbox *Mailbox
	// Env are more variables for every node ("NAME=value"), over the
	// harness's own but MICROCHAT_LISTEN, MICROCHAT_NODE_ID and
	// MICROCHAT_DATA_DIR, which are each node's.
	Env []string
}

// Mailbox is the IMAP and SMTP servers of the cluster's mailbox; both
// run in the test process.
type Mailbox struct {
	IMAP *emailtest.IMAPServer
	SMTP *emailtest.SMTPServer
	// PollInterval is the mailbox's poll_interval (default 1 s); with
	// IDLE the Ingester is told of new mail at once anyway.
	PollInterval time.Duration
}

// Cluster is a set of microchat serve processes over one database.
type Cluster struct {
	t           testing.TB
	bin         string
	config      string
	env         []string
	DatabaseURL string
	Nodes       []*Node
}

// Start starts a cluster for the test: a fresh database
// (inboxtest.SharedPostgres: a database, not a schema, as LISTEN/NOTIFY
// channels are per database; dropped when the test ends), the
// binary (Binary), and o.Nodes nodes on 127.0.0.1 ports of their own. The
// first node migrates the database and creates the admin before the
// others start (together). Start returns once every node answers /readyz
// with 200. The nodes are killed when the test ends, their output logged
// if it failed.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes <= 0 {
		o.Nodes = 2
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = time.Second
	}
	c := &Cluster{t: t, bin: Binary(t), DatabaseURL: inboxtest.SharedPostgres(t)}
	dir := t.TempDir()
	c.config = filepath.Join(dir, "microchat.yaml")
	yaml := o.YAML
	if mb := o.Mailbox; mb != nil {
		poll := mb.PollInterval
		if poll <= 0 {
			poll = time.Second
		}
		yaml += fmt.Sprintf(`mailboxes:
  - name: support
    address: support@example.com
    display_name: Example Support
    poll_interval: %s
    imap: {host: %s, port: %d, tls: none, username: %q, password: %q, folder: INBOX}
    smtp: {host: %s, port: %d, tls: none}
`, poll, mb.IMAP.Host, mb.IMAP.Port, mb.IMAP.Username, mb.IMAP.Password, mb.SMTP.Host, mb.SMTP.Port)
	}
	if err := os.WriteFile(c.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The harness's variables, then o.Env: for a name given twice the
	// process sees the last (os/exec).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MICROCHAT_") && !strings.HasPrefix(kv, "GODEBUG=") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env,
		"MICROCHAT_DATABASE_URL="+c.DatabaseURL,
		"MICROCHAT_OFFLINE_AFTER="+o.OfflineAfter.String(),
		"MICROCHAT_SHUTDOWN_TIMEOUT=5s",
		"MICROCHAT_ADMIN_EMAIL="+AdminEmail,
		"MICROCHAT_ADMIN_PASSWORD="+AdminPassword,
		"MICROCHAT_ADMIN_NAME="+AdminName,
		// Every client is 127.0.0.1: no per-IP limits but the logins',
		// which a test gives an address of its own with X-Forwarded-For.
		"MICROCHAT_TRUSTED_PROXIES=127.0.0.1",
		"MICROCHAT_LIMITS_SOCKETS_PER_IP=0",
		"MICROCHAT_WIDGET_RATE_LIMITS_STARTS_PER_MINUTE_PER_IP=0",
		"MICROCHAT_WIDGET_RATE_LIMITS_MESSAGES_PER_MINUTE=0",
		"MICROCHAT_WIDGET_RATE_LIMITS_MESSAGES_PER_MINUTE_PER_IP=0",
	)
	c.env = append(c.env, o.Env...)
	for i := range o.Nodes {
		n := &Node{c: c, ID: "node-" + string(rune('a'+i)), dataDir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(c.cleanup)
	c.Nodes[0].Start()
	var wg sync.WaitGroup
	for _, n := range c.Nodes[1:] {
		wg.Go(n.start)
	}
	wg.Wait()
	for _, n := range c.Nodes[1:] {
		n.waitStarted()
	}
	return c
}

// cleanup kills the nodes still running and logs every node's output if
// the test failed.
func (c *Cluster) cleanup() {
	for _, n := range c.Nodes {
		n.mu.Lock()
		p := n.proc
		n.mu.Unlock()
		if p != nil && p.running() {
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if c.t.Failed() {
		for _, n := range c.Nodes {
			c.t.Logf("output of %s (%s):\n%s", n.ID, n.URL, tail(n.Log(), logLines))
		}
	}
}

// logLines is how many of a node's last lines a failed test logs.
const logLines = 400

// tail returns the last n lines of s, saying how many it left out.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d lines before]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

// Node is one microchat serve process of a cluster, and the ones that
// replace it after a Kill or Stop (same id, same address).
type Node struct {
	c       *Cluster
	ID      string // its node_id
	dataDir string
	// Addr is the host:port it listens on (the same after a restart),
	// URL http://Addr; both set by the first Start.
	Addr string
	URL  string

	mu   sync.Mutex
	proc *process
	log  strings.Builder // every process's output, in order
	err  error           // start's failure, reported by waitStarted
}

// process is one run of a node.
type process struct {
	cmd    *exec.Cmd
	addr   chan string   // the listening address, once
	exited chan struct{} // closed when it has exited
	state  *os.ProcessState
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start starts the node (again, after Kill or Stop: on its address) and
// waits until its /readyz answers 200.
func (n *Node) Start() {
	n.c.t.Helper()
	n.start()
	n.waitStarted()
}

func (n *Node) waitStarted() {
	n.c.t.Helper()
	n.mu.Lock()
	err := n.err
	n.mu.Unlock()
	if err != nil {
		n.c.t.Fatalf("clustertest: %s: %v\noutput:\n%s", n.ID, err, n.Log())
	}
}

// listening finds the address in serve's line "listening", in the text
// log (msg=listening node_id=... addr=...) or the JSON one (log.format:
// json), whatever attributes come between.
var listening = regexp.MustCompile(`msg=listening .*?\baddr=([^\s"]+)|"msg":"listening",.*?"addr":"([^"]+)"`)

// start runs the process and waits for /readyz; a failure is kept in
// n.err (it runs on goroutines of its own, which may not call Fatal).
func (n *Node) start() {
	fail := func(err error) {
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
	}
	n.mu.Lock()
	n.err = nil
	if n.proc != nil && n.proc.running() {
		n.mu.Unlock()
		fail(fmt.Errorf("Start while running"))
		return
	}
	listen := "127.0.0.1:0"
	if n.Addr != "" {
		listen = n.Addr
	}
	cmd := exec.Command(n.c.bin, "serve", "--config", n.c.config)
	cmd.Env = append(append([]string{}, n.c.env...),
		"MICROCHAT_LISTEN="+listen,
		"MICROCHAT_NODE_ID="+n.ID,
		"MICROCHAT_DATA_DIR="+n.dataDir)
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StderrPipe()
	if err != nil {
		n.mu.Unlock()
		fail(err)
		return
	}
	cmd.Stdout = cmd.Stderr // both to the pipe
	p := &process{cmd: cmd, addr: make(chan string, 1), exited: make(chan struct{})}
	fmt.Fprintf(&n.log, "--- %s start %s\n", time.Now().Format("15:04:05.000"), listen)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		fail(err)
		return
	}
	n.proc = p
	n.mu.Unlock()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		n.copyLog(p, out)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		cmd.Wait()
		p.state = cmd.ProcessState
		n.mu.Lock()
		fmt.Fprintf(&n.log, "--- %s exit: %v\n", time.Now().Format("15:04:05.000"), cmd.ProcessState)
		n.mu.Unlock()
		close(p.exited)
	}()

	timeout := time.After(StartTimeout)
	select {
	case addr := <-p.addr:
		n.mu.Lock()
		n.Addr, n.URL = addr, "http://"+addr
		n.mu.Unlock()
	case <-p.exited:
		fail(fmt.Errorf("exited before listening: %v", p.state))
		return
	case <-timeout:
		fail(fmt.Errorf("not listening within %v", StartTimeout))
		return
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := hc.Get(n.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			fail(fmt.Errorf("exited before /readyz answered 200: %v", p.state))
			return
		case <-timeout:
			fail(fmt.Errorf("/readyz not 200 within %v (last: %v)", StartTimeout, err))
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// copyLog keeps the process's output in n.log and finds its address.
func (n *Node) copyLog(p *process, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		n.mu.Lock()
		n.log.WriteString(line)
		n.log.WriteByte('\n')
		n.mu.Unlock()
		if !found {
			if m := listening.FindStringSubmatch(line); m != nil {
				found = true
				p.addr <- m[1] + m[2]
			}
		}
	}
	io.Copy(io.Discard, r)
}

// Log returns everything the node's processes have written so far.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// Running reports whether the node's process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && n.proc.running()
}

// Pid is the node's process id (0 when it is not running).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || !n.proc.running() {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Kill ends the node with SIGKILL, as a crash or kill -9 would: nothing
// of it runs after, its sockets and database connections are closed by
// the kernel. It returns once the process has exited.
func (n *Node) Kill() {
	n.c.t.Helper()
	n.signal(syscall.SIGKILL)
}

// Stop ends the node with SIGTERM (a graceful shutdown) and returns its
// exit code once it has exited.
func (n *Node) Stop() int {
	n.c.t.Helper()
	return n.signal(syscall.SIGTERM)
}

// Restart stops the node gracefully and starts it again.
func (n *Node) Restart() {
	n.c.t.Helper()
	if code := n.Stop(); code != 0 {
		n.c.t.Errorf("clustertest: %s exited with %d after SIGTERM", n.ID, code)
	}
	n.Start()
}

func (n *Node) signal(sig syscall.Signal) int {
	n.c.t.Helper()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || !p.running() {
		n.c.t.Fatalf("clustertest: %s is not running", n.ID)
	}
	n.mu.Lock()
	fmt.Fprintf(&n.log, "--- %s %v\n", time.Now().Format("15:04:05.000"), sig)
	n.mu.Unlock()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		n.c.t.Fatalf("clustertest: %s still running %v after %v", n.ID, StopTimeout, sig)
	}
	return p.state.ExitCode()
}

// Ready reports whether the node's /readyz answers 200, and what it
// answered.
func (n *Node) Ready() (bool, string) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(n.URL + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// Metrics returns the node's /metrics text.
func (n *Node) Metrics() string {
	n.c.t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(n.URL + "/metrics")
	if err != nil {
		n.c.t.Fatalf("clustertest: %s /metrics: %v", n.ID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Eventually polls cond every 20 ms until it holds, and fails the test
// with what if it does not within d (Patience when 0). It returns how long
// it waited.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, d, what, func() (bool, string) { return cond(), "" })
}

// Until is Eventually with a condition that also says where things
// stand, which the failure reports (the last answer).
func Until(t testing.TB, d time.Duration, what string, cond func() (ok bool, state string)) time.Duration {
	t.Helper()
	if d <= 0 {
		d = Patience
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			if state != "" {
				state = " (last: " + state + ")"
			}
			t.Fatalf("timed out after %v waiting for %s%s", d, what, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
