package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestVisitorSocketMemory measures what an idle, authenticated visitor
// socket costs the server: N visitors connect from a separate process
// (this test binary again, as TestVisitorSocketMemoryClient), and the
// server's RSS, heap and stack before and after are compared. It runs
// with 200 sockets, checking that every one authenticates and counts as
// online, checks the heap, stack and goroutines per socket against
// bounds, and logs the figures; MICROCHAT_MEMTEST=N measures N (e.g.
// 2000) instead. SEM sets how many sockets the client connects at once
// (64), MICROCHAT_MEMTEST_HEAPPROFILE=FILE writes the server's heap
// profile at the end:
//
//	MICROCHAT_MEMTEST=2000 go test -run TestVisitorSocketMemory -v ./web/
//
// The 19,000-socket figure is the load tool's (docs/benchmarks.md).
func TestVisitorSocketMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MICROCHAT_MEMTEST"))
	if n <= 0 {
		n = 200
	}
	e := newEnv(t, inboxtest.SQLiteURL(t), func(c *config.Config) {
		c.Widget.RateLimits = config.WidgetRateLimits{}
		c.Limits.SocketsPerIP = 0 // every socket comes from 127.0.0.1
	})
	ctx := context.Background()
	tokens := make([]string, n)
	for i := range tokens {
		v, err := e.store.StartVisitor(ctx, inbox.NewVisitor{Name: fmt.Sprint("v", i)}, time.Hour)
		noError(t, "StartVisitor()", err)
		tokens[i] = v.Token
	}
	file := t.TempDir() + "/tokens"
	os.WriteFile(file, []byte(strings.Join(tokens, "\n")), 0o600)

	before := measure()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MICROCHAT_MEMTEST_ADDR="+strings.TrimPrefix(e.ts.URL, "http://"), "MICROCHAT_MEMTEST_TOKENS="+file)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	start := time.Now()
	noError(t, "start the client", cmd.Start())
	defer func() { stdin.Close(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	ready := false
	for !ready && sc.Scan() {
		ready = sc.Text() == "ready"
	}
	if !ready {
		t.Fatalf("the client process did not get all %d sockets authenticated (see its output above)", n)
	}
	took := time.Since(start)
	waitFor(t, "presence written", func() bool { return e.srv.presence.Writes() >= int64(n) })
	// One goroutine per socket (gws's read loop) and nothing else once
	// the hellos are written: wait for the jobs to end rather than sleep.
	maxGoroutines := before.goroutines + n + n/10
	waitFor(t, fmt.Sprintf("at most %d goroutines (%d before, %d sockets)", maxGoroutines, before.goroutines, n),
		func() bool { return runtime.NumGoroutine() <= maxGoroutines })
	after := measure()
	if f := os.Getenv("MICROCHAT_MEMTEST_HEAPPROFILE"); f != "" {
		out, _ := os.Create(f)
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) / 1024 }
	t.Logf("%d idle visitor sockets, connected and authenticated in %v", n, took.Round(time.Millisecond))
	t.Logf("per socket: RSS %.2f KB, heap in use %.2f KB, stacks %.2f KB; goroutines %d -> %d",
		per(after.rss, before.rss), per(after.heap, before.heap), per(after.stack, before.stack), before.goroutines, after.goroutines)
	// Bounds that a real regression breaks and noise does not: measured
	// at 200 sockets, heap in use
	// is 7-8.5 KB and stacks 4-5.5 KB per socket, with or without -race
	// (RSS is not bounded here: -race multiplies it by ten). A 64 KB
	// buffer or a goroutine of its own per socket is far over.
	if kb := per(after.heap, before.heap); kb > maxHeapPerSocketKB {
		t.Errorf("heap in use per idle socket = %.2f KB, over %d KB", kb, maxHeapPerSocketKB)
	}
	if kb := per(after.stack, before.stack); kb > maxStackPerSocketKB {
		t.Errorf("stacks per idle socket = %.2f KB, over %d KB", kb, maxStackPerSocketKB)
	}
	if after.goroutines > maxGoroutines {
		t.Errorf("%d goroutines for %d sockets (%d before), want one per socket", after.goroutines, n, before.goroutines)
	}
	// Below a few thousand sockets the fixed costs of the process
	// dominate; compare with the RSS target only from there.
	if kb := per(after.rss, before.rss); kb > 8 && n >= 2000 {
		t.Logf("RSS per idle socket = %.2f KB, over the 8 KB target (GODEBUG=adaptivestackstart=0 saves the 2 KB of stack that the runtime's adaptive starting size adds)", kb)
	}
}

// The bounds per idle visitor socket that TestVisitorSocketMemory
// enforces: about three times what it measures at 200 sockets.
const (
	maxHeapPerSocketKB  = 24
	maxStackPerSocketKB = 16
)

type memStats struct {
	rss, heap, stack uint64
	goroutines       int
}

func measure() memStats {
	for range 6 { // several cycles: each may halve a stack that grew
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memStats{rss: rss(), heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// rss returns the resident set size from /proc/self/status.
func rss() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestMain runs this test binary as the client process of
// TestVisitorSocketMemory when MICROCHAT_MEMTEST_ADDR is set, and as the
// tests otherwise.
func TestMain(m *testing.M) {
	if addr := os.Getenv("MICROCHAT_MEMTEST_ADDR"); addr != "" {
		os.Exit(memClient(addr, os.Getenv("MICROCHAT_MEMTEST_TOKENS")))
	}
	os.Exit(m.Run())
}

// memClient opens a socket per token, authenticates, says "ready" when
// every one has its hello, and holds them until its standard input
// closes. Its exit code is 1 if any socket failed.
func memClient(addr, file string) int {
	b, _ := os.ReadFile(file)
	tokens := strings.Split(string(b), "\n")
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, semN())
	for _, tok := range tokens {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h := &helloWaiter{hello: make(chan struct{})}
			conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: "ws://" + addr + "/api/v1/widget/ws", ReadBufferSize: 512})
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				failed.Add(1)
				return
			}
			go conn.ReadLoop()
			auth, _ := json.Marshal(map[string]any{"type": "auth", "token": tok, "last_seq": 1})
			conn.WriteMessage(gws.OpcodeText, auth)
			select {
			case <-h.hello:
			case <-time.After(30 * time.Second):
				fmt.Fprintln(os.Stderr, "no hello within 30 s")
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Printf("failed: %d sockets\n", n)
		return 1
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

type helloWaiter struct {
	once  sync.Once
	hello chan struct{}
}

func (*helloWaiter) OnOpen(*gws.Conn)             {}
func (*helloWaiter) OnClose(*gws.Conn, error)     {}
func (*helloWaiter) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }
func (*helloWaiter) OnPong(*gws.Conn, []byte)     {}
func (h *helloWaiter) OnMessage(_ *gws.Conn, m *gws.Message) {
	m.Close()
	h.once.Do(func() { close(h.hello) })
}

func init() {
	if os.Getenv("MICROCHAT_MEMTEST_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 64
	}
}

func semN() int {
	if n, _ := strconv.Atoi(os.Getenv("SEM")); n > 0 {
		return n
	}
	return 64
}
