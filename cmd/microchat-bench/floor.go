package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// The floor: what a WebSocket round trip costs on this machine with no
// application behind it. A bare gws echo server runs in a child process
// (this binary re-executed with the hidden floorCommand), so that, like the
// server, it is a process of its own; the tool sends it frames of the same
// size as the visitors' message frames, at the same rate, and measures the
// round trip. A message through Microchat crosses the server once (client
// -> server -> other client), as an echo does, so the two compare.

// floorCommand is the hidden subcommand that runs the echo server.
const floorCommand = "floor-echo"

// Bounds of the floor's measurement, whatever -duration is.
const (
	maxFloorDuration = 30 * time.Second
	maxFloorWarmup   = 2 * time.Second
	maxFloorConns    = 1000
)

// floorMain runs the echo server on 127.0.0.1, port chosen by the
// kernel, prints "listening ADDR" and serves until stdin is closed (the
// parent is done or gone) or the hard cap passes.
func floorMain(stdin io.Reader, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "floor: %v\n", err)
		return exitFailure
	}
	up := gws.NewUpgrader(echoEvents{}, &gws.ServerOption{
		ReadBufferSize:     4096,
		ReadMaxPayloadSize: 1 << 20,
		HandshakeTimeout:   10 * time.Second,
	})
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, err := up.Upgrade(w, r); err == nil {
				go c.ReadLoop()
			}
		}),
	}
	go srv.Serve(ln)
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(maxDuration + setupBudget):
	}
	return exitOK
}

// echoEvents sends every frame back.
type echoEvents struct{ gws.BuiltinEventHandler }

func (echoEvents) OnMessage(c *gws.Conn, m *gws.Message) {
	c.WriteMessage(m.Opcode, m.Bytes())
	m.Close()
}

// FloorSummary is the floor's measurement.
type FloorSummary struct {
	Conns           int     `json:"conns"`
	Rate            float64 `json:"rate"`
	DurationSeconds float64 `json:"duration_seconds"`
	Sent            int64   `json:"sent"`
	Received        int64   `json:"received"`
	// RoundTrip is client -> echo server -> client.
	RoundTrip Latency `json:"round_trip"`
	// Ratios are the load's latencies over RoundTrip.
	Ratios *Ratios `json:"ratios,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// floorConn is one client socket of the floor.
type floorConn struct {
	gws.BuiltinEventHandler
	f *floorRun
}

type floorRun struct {
	from, until int64
	rtt         recorder
	received    atomic.Int64
}

func (c *floorConn) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	if _, sent, ok := findMarker(m.Bytes(), 'f'); ok && sent >= c.f.from && sent < c.f.until {
		c.f.rtt.add(time.Duration(clock() - sent))
		c.f.received.Add(1)
	}
}

// startFloor starts the echo server's process and returns its address and
// a function that stops it.
func startFloor(ctx context.Context) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe, floorCommand)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	stop := func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(exited)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
		if !ok {
			stop()
			return "", nil, fmt.Errorf("floor: the echo process said %q; stderr: %s", line, stderr.String())
		}
		return addr, stop, nil
	case <-time.After(10 * time.Second):
		stop()
		return "", nil, errors.New("floor: the echo process did not start within 10s")
	}
}

// runFloor measures the floor at rate for dur after warmup, over conns
// sockets, with frames like the visitors' message frames.
func (b *bench) runFloor(ctx context.Context, rate float64, conns int, warmup, dur time.Duration) FloorSummary {
	s := FloorSummary{Conns: conns, Rate: rate, DurationSeconds: dur.Seconds()}
	addr, stop, err := startFloor(ctx)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer stop()
	run := &floorRun{}
	sockets := make([]*gws.Conn, 0, conns)
	defer func() {
		for _, c := range sockets {
			c.WriteClose(1000, nil)
		}
	}()
	for range conns {
		c, _, err := gws.NewClient(&floorConn{f: run}, &gws.ClientOption{
			Addr:             "ws://" + addr + "/",
			ReadBufferSize:   4096,
			HandshakeTimeout: 10 * time.Second,
		})
		if err != nil {
			s.Error = "floor: connecting: " + err.Error()
			return s
		}
		sockets = append(sockets, c)
		go c.ReadLoop()
	}

	start := clock()
	run.from = start + int64(warmup)
	run.until = run.from + int64(dur)
	jobs := make(chan job, 8192)
	var sent atomic.Int64
	var workers sync.WaitGroup
	for range 8 {
		workers.Go(func() {
			for j := range jobs {
				t := j.at
				frame := b.messageFrame('f', 0, t, "f", j.i)
				if sockets[j.i%len(sockets)].WriteMessage(gws.OpcodeText, frame) == nil && t >= run.from && t < run.until {
					sent.Add(1)
				}
			}
		})
	}
	pace(ctx, rate, start, run.until, func(j job) {
		select {
		case jobs <- j:
		default:
			b.errs.add("floor: message not sent: send queue full (the tool is behind)")
		}
	})
	close(jobs)
	workers.Wait()
	drain(ctx, 2*time.Second, func() bool { return run.received.Load() >= sent.Load() })
	s.Sent, s.Received = sent.Load(), run.received.Load()
	s.RoundTrip = run.rtt.latency()
	return s
}
