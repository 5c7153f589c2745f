// Command microchat-bench is the web chat load tool. Against a Microchat
// server running on this machine it mints visitor tokens, opens visitor
// and agent WebSockets, drives a message rate through them both ways, and
// prints what the server held, how fast, at what latency and for how much
// memory (from the server's /metrics), next to a floor measured in the same
// run: a bare gws echo server in a child process of its own, at the same
// rate and message size.
//
// The rules:
//
//   - Loopback only. The target must be localhost, 127.0.0.0/8 or ::1; any
//     other host is refused before anything is sent.
//   - Bounded. Every phase has a deadline, the measured part lasts at most
//     maxDuration, and a watchdog ends the process at the hard cap whatever
//     it is doing.
//   - A process of its own. The server and the tool each hold one end of
//     every socket, and a process here may hold 20,000 files: the tool
//     raises its own RLIMIT_NOFILE to the hard limit and says when that is
//     below what the run needs.
//   - Many source addresses. Visitor sockets are dialled from 127.0.0.x
//     addresses, about 4,000 each (one address runs out of ports near
//     28,000, and the kernel's search for a free port slows long before),
//     chosen among those with no socket at all (TIME_WAIT included) unless
//     -sources names them.
//   - Latency is measured inside this process: every message's text
//     carries the time it was sent on this process's monotonic clock, and
//     the receiving socket subtracts it (see marker.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds of a run.
const (
	// maxDuration bounds -duration and -warmup together.
	maxDuration = 10 * time.Minute
	// setupBudget is what minting, connecting, joining and draining may
	// take on top of -warmup and -duration before the run is cut short.
	setupBudget = 5 * time.Minute
	// maxVisitors bounds -visitors: more cannot be held under the
	// 20,000-file limit anyway.
	maxVisitors = 100_000
	maxAgents   = 200
	maxRate     = 100_000
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		os.Exit(floorMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `microchat-bench: load a running Microchat server's web chat from this machine.

Usage:
  microchat-bench [flags]

Mints -visitors visitor tokens (POST /api/v1/widget/conversations), opens
one widget WebSocket per visitor from several 127.0.0.x source addresses,
logs -agents agents in (the -email admin, plus agents it creates) and
opens their WebSockets; the agents join -active of the conversations, and
for -duration (after -warmup) messages flow at -rate per second in all,
half visitor->agent over the visitors' sockets, half agent->visitor as
agent replies: message frames on the agents' own sockets, or with
-reply http POSTs to /api/v1/conversations/ID/messages. With -idle the
sockets are only held for -duration. Server memory comes from GET
/metrics before the sockets open and after they are held. Before that,
the floor: a bare gws echo server started as a child process, measured
at the same rate and message size.

The server's widget rate limits must allow the load: set
widget.rate_limits.starts_per_minute_per_ip, messages_per_minute and
messages_per_minute_per_ip to 0 (off) in its config, or
MICROCHAT_WIDGET_RATE_LIMITS_STARTS_PER_MINUTE_PER_IP=0 etc., and
limits.sockets_per_ip and limits.agent_messages_per_second to 0 (every
socket comes from one address; agents reply as fast as they can); with
many agents, raise limits.login_attempts_per_minute too, and the node's
visitor cap (limits.visitor_sockets, from the open-file limit) must hold
-visitors. See docs/benchmarks.md.

With -webhook ADDR the tool also receives the server's webhook
deliveries on ADDR during the load (the server's config file names the
endpoint, http://ADDR/, for message.created, with -webhook-secret as its
secret, and webhooks.allow_networks [127.0.0.0/8]), and reports how many
arrived, how soon after the messages were stored, and how many of its own
messages never did.

Only loopback targets are accepted. The run stops by itself: -warmup plus
-duration at most 10m, everything else within 5m more.

Flags:
`

// options are the parsed flags.
type options struct {
	URL      string
	Email    string
	Password string
	Visitors int
	Agents   int
	Active   int
	Rate     float64
	Duration time.Duration
	Warmup   time.Duration
	Idle     bool
	Sources  string
	Seed     uint64
	JSON     bool
	// JSONFile is a file to write the JSON summary to besides the
	// printed one (scripts compare runs from it).
	JSONFile    string
	Size        int
	Origin      string
	Concurrency int
	Senders     int
	Floor       bool
	// Reply is how agents reply: replySocket or replyHTTP.
	Reply string
	// AgentURL is the node the agents log in to, open their sockets on
	// and reply through; empty means URL (one node).
	AgentURL string
	// CompareSingle runs the load twice in one command, alternating
	// Rounds times: agents on URL (single node), then on AgentURL (cross
	// node), and prints the ratio of the latencies.
	CompareSingle bool
	Rounds        int
	// Storm restarts the visitors' node (URL) during the load by running
	// RestartCmd, and measures how the visitors come back: each
	// reconnects after a random delay in [0, StormSpread) and resumes
	// from its last seq. Settle is how long the sockets are held before
	// the memory is read, before the restart and after all are back.
	Storm       bool
	RestartCmd  string
	StormSpread time.Duration
	StormWait   time.Duration
	StormSettle time.Duration
	// Webhook is the address the webhook receiver listens on during the
	// load (receiver.go), empty for none; WebhookSecret the secret the
	// server signs its deliveries with; WebhookGrace how long after the
	// load the tool waits for the deliveries of its messages.
	Webhook       string
	WebhookSecret string
	WebhookGrace  time.Duration
}

// How agents send their replies (-reply).
const (
	replySocket = "socket" // a message frame on the agent's socket, timed until its ack
	replyHTTP   = "http"   // POST /api/v1/conversations/{id}/messages, timed until its answer
)

func defaultOptions() options {
	return options{
		URL:          "http://127.0.0.1:8080",
		Visitors:     100,
		Agents:       2,
		Active:       10,
		Rate:         200,
		Duration:     10 * time.Second,
		Warmup:       2 * time.Second,
		Seed:         1,
		Size:         64,
		Concurrency:  128,
		Senders:      64,
		Floor:        true,
		Reply:        replySocket,
		Rounds:       1,
		StormSpread:  5 * time.Second,
		StormWait:    30 * time.Second,
		StormSettle:  10 * time.Second,
		WebhookGrace: 10 * time.Second,
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("microchat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", o.URL, "the Microchat server: http://HOST:PORT on loopback only")
	fs.StringVar(&o.Email, "email", os.Getenv("MICROCHAT_BENCH_EMAIL"), "an admin's email to log agents in with (default $MICROCHAT_BENCH_EMAIL); needed when -agents > 0")
	fs.StringVar(&o.Password, "password", "", "that admin's password (default $MICROCHAT_BENCH_PASSWORD)")
	fs.IntVar(&o.Visitors, "visitors", o.Visitors, "N: visitor sockets to open (each with its own token and conversation)")
	fs.IntVar(&o.Agents, "agents", o.Agents, "M: agent sockets to open; the first is the -email admin, the others are agents the tool creates (bench-agent-I@load.invalid)")
	fs.IntVar(&o.Active, "active", o.Active, "K: how many of the visitors' conversations carry messages (the agents join them, round robin)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "R: messages per second in all, half visitor->agent and half agent->visitor (all visitor->agent with -agents 0)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "D: how long messages are measured, or with -idle how long the sockets are held")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "messages driven before the measurement starts (not counted)")
	fs.BoolVar(&o.Idle, "idle", false, "only open the sockets, hold them for -duration and measure the server's memory; no messages, no floor")
	fs.StringVar(&o.Sources, "sources", "", "source addresses for the sockets: a comma-separated list of 127.x.y.z, or a count;\nthe default is one address per 4,000 sockets, the first free ones from 127.0.0.2 on\n(free: no socket on them at all, so not in TIME_WAIT from an earlier run)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed for which conversations are active and in what order messages go")
	fs.BoolVar(&o.JSON, "json", false, "print the summary as JSON instead of text")
	fs.StringVar(&o.JSONFile, "json-file", "", "also write the summary as JSON to this file")
	fs.IntVar(&o.Size, "size", o.Size, "bytes of text per message (at least 40: the text carries the send time)")
	fs.StringVar(&o.Origin, "origin", "", "Origin header of the visitor sockets (empty: none, as a non-browser client)")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "mints, socket dials and joins in flight at once")
	fs.IntVar(&o.Senders, "senders", o.Senders, "goroutines sending agent replies: with -reply http the POSTs in flight at once;\nwith -reply socket they only write frames (the server stores up to 64 per agent socket at once)")
	fs.StringVar(&o.Reply, "reply", o.Reply, "how agents reply: socket (a message frame on the agent's socket, timed until its ack)\nor http (a POST, timed until its answer)")
	fs.BoolVar(&o.Floor, "floor", true, "measure the floor (bare gws echo in a child process) before the load")
	fs.StringVar(&o.AgentURL, "agent-url", "", "another node of the same cluster for the agents (logins, sockets, joins, replies): http://HOST:PORT on loopback;\nthe visitors stay on -url, so every message crosses between the nodes (empty: -url)")
	fs.BoolVar(&o.CompareSingle, "compare-single", false, "with -agent-url: run the load with the agents on -url (single node), then on -agent-url (cross node),\n-rounds times alternating, each on fresh sockets, and print the cross-node latencies over the single-node ones")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "with -compare-single: how many single/cross pairs")
	fs.BoolVar(&o.Storm, "storm", false, "reconnect storm: during the load, run -restart-cmd (which restarts the -url node); every visitor socket\nreconnects after a random delay within -storm-spread and resumes from its last seq; reports how soon all are back,\nthe catch-up time, lost and duplicated agent messages, and the node's memory before and after")
	fs.StringVar(&o.RestartCmd, "restart-cmd", "", "with -storm: a shell command (sh -c) that restarts the -url node: kills its process and starts it again,\nreturning once the new process is started (scripts/bench-cluster.sh restart A)")
	fs.DurationVar(&o.StormSpread, "storm-spread", o.StormSpread, "with -storm: visitors come back after a random delay in [0, spread) after their socket dropped")
	fs.DurationVar(&o.StormWait, "storm-wait", o.StormWait, "with -storm: how long after the restart the tool waits for every visitor to be back")
	fs.DurationVar(&o.StormSettle, "storm-settle", o.StormSettle, "with -storm: the sockets are held this long before the restart and after all are back, then the node's memory is read")
	fs.StringVar(&o.Webhook, "webhook", "", "ADDR: serve a webhook receiver on ADDR (127.0.0.1:PORT) during the load; the server's webhook (webhooks.endpoints\nin its config, events [message.created]) must POST to http://ADDR/ with -webhook-secret. Reports deliveries per second,\nmessage.created's lag (arrival minus the payload's timestamp), duplicates, out-of-order, bad signatures and missing")
	fs.StringVar(&o.WebhookSecret, "webhook-secret", os.Getenv("MICROCHAT_BENCH_WEBHOOK_SECRET"), "with -webhook: the endpoint's secret, whsec_... (default $MICROCHAT_BENCH_WEBHOOK_SECRET)")
	fs.DurationVar(&o.WebhookGrace, "webhook-grace", o.WebhookGrace, "with -webhook: how long after the load to wait for the deliveries of the tool's messages")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.Password == "" {
		o.Password = os.Getenv("MICROCHAT_BENCH_PASSWORD")
	}
	return o, o.validate()
}

// validate checks the options' ranges and that the target is loopback.
func (o *options) validate() error {
	if _, err := targetURL(o.URL); err != nil {
		return err
	}
	switch {
	case o.Visitors < 0 || o.Visitors > maxVisitors:
		return fmt.Errorf("-visitors %d: want 0..%d", o.Visitors, maxVisitors)
	case o.Agents < 0 || o.Agents > maxAgents:
		return fmt.Errorf("-agents %d: want 0..%d", o.Agents, maxAgents)
	case o.Active < 0 || o.Active > o.Visitors && !o.Idle:
		return fmt.Errorf("-active %d: want 0..-visitors (%d)", o.Active, o.Visitors)
	case o.Rate < 0 || o.Rate > maxRate:
		return fmt.Errorf("-rate %g: want 0..%d", o.Rate, maxRate)
	case o.Duration <= 0 || o.Warmup < 0 || o.Duration+o.Warmup > maxDuration:
		return fmt.Errorf("-duration %v -warmup %v: want a positive duration, and both together at most %v", o.Duration, o.Warmup, maxDuration)
	case o.Size < minTextSize || o.Size > 60_000:
		return fmt.Errorf("-size %d: want %d..60000", o.Size, minTextSize)
	case o.Concurrency < 1 || o.Concurrency > 4096:
		return fmt.Errorf("-concurrency %d: want 1..4096", o.Concurrency)
	case o.Senders < 1 || o.Senders > 4096:
		return fmt.Errorf("-senders %d: want 1..4096", o.Senders)
	case o.Reply != replySocket && o.Reply != replyHTTP:
		return fmt.Errorf("-reply %q: want %s or %s", o.Reply, replySocket, replyHTTP)
	}
	if o.AgentURL != "" {
		if _, err := targetURL(o.AgentURL); err != nil {
			return fmt.Errorf("-agent-url: %w", err)
		}
	}
	if o.CompareSingle && (o.AgentURL == "" || o.Idle || o.Storm) {
		return errors.New("-compare-single needs -agent-url, and no -idle or -storm")
	}
	if o.Rounds < 1 || o.Rounds > 10 {
		return fmt.Errorf("-rounds %d: want 1..10", o.Rounds)
	}
	if o.Storm {
		switch {
		case o.RestartCmd == "":
			return errors.New("-storm needs -restart-cmd: the command that restarts the -url node")
		case o.Idle:
			return errors.New("-storm and -idle: the storm runs during the load (give -rate 0 for idle sockets)")
		case o.Agents > 0 && o.AgentURL == "" && o.Reply == replySocket:
			return errors.New("-storm with the agents on the restarted node: give -agent-url (another node) or -reply http (their sockets would drop too)")
		case o.StormSpread < 0 || o.StormSpread > time.Minute || o.StormWait < time.Second || o.StormWait > 5*time.Minute ||
			o.StormSettle < 0 || o.StormSettle > 5*time.Minute:
			return fmt.Errorf("-storm-spread %v (0..1m), -storm-wait %v (1s..5m), -storm-settle %v (0..5m)", o.StormSpread, o.StormWait, o.StormSettle)
		}
	}
	if o.Webhook != "" {
		if err := checkListen(o.Webhook); err != nil {
			return fmt.Errorf("-webhook: %w", err)
		}
		switch {
		case o.Idle || o.Storm || o.CompareSingle || o.Rate == 0:
			return errors.New("-webhook needs a load: -rate > 0, and no -idle, -storm or -compare-single")
		case o.WebhookGrace < 0 || o.WebhookGrace > 5*time.Minute:
			return fmt.Errorf("-webhook-grace %v: want 0..5m", o.WebhookGrace)
		}
		if _, err := newHookReceiver(o.WebhookSecret); err != nil {
			return fmt.Errorf("-webhook-secret: %w", err)
		}
	}
	if !o.Idle && o.Rate > 0 && o.Active == 0 {
		return errors.New("-rate > 0 needs -active > 0 (or -idle)")
	}
	if o.Agents > 0 && (o.Email == "" || o.Password == "") {
		return errors.New("-agents > 0 needs -email and -password (or $MICROCHAT_BENCH_EMAIL and $MICROCHAT_BENCH_PASSWORD) of an admin")
	}
	return nil
}

// hardCap is the longest a run with o may take, everything included.
func (o *options) hardCap() time.Duration {
	one := o.Warmup + o.Duration + setupBudget
	if o.Webhook != "" {
		one += o.WebhookGrace
	}
	if o.Storm {
		one += 2*o.StormSettle + o.StormWait + restartTimeout
	}
	if o.CompareSingle {
		return time.Duration(2*o.Rounds) * one
	}
	return one
}

// targetURL parses raw and refuses anything but http(s) on a loopback
// host: this tool may only load servers on this machine.
func targetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url %q: %v", raw, err)
	}
	host := u.Hostname()
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("-url %q: refusing to load %q: only loopback targets (localhost, 127.0.0.0/8, ::1) may be load-tested from this tool", raw, host)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-url %q: want http://HOST:PORT (the sockets are plain ws://)", raw)
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return nil, fmt.Errorf("-url %q: IPv6 targets are not supported: the sockets are dialled from 127.x.y.z source addresses; use 127.0.0.1", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("-url %q: give the server's root, without a path", raw)
	}
	u.Path = ""
	return u, nil
}

// checkListen refuses a listening address other than HOST:PORT on
// loopback: the receiver takes webhooks from this machine only.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT: %v", addr, err)
	}
	if !isLoopbackHost(host) || port == "" {
		return fmt.Errorf("%q: want a loopback HOST:PORT, e.g. 127.0.0.1:9700", addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "microchat-bench: %v\n", err)
		return exitUsage
	}

	// The watchdog: whatever happens, the process ends at the hard cap
	// (plus a little for the run's own deadline to act first).
	hardCap := o.hardCap()
	time.AfterFunc(hardCap+30*time.Second, func() {
		fmt.Fprintf(stderr, "microchat-bench: hard cap of %v reached; exiting\n", hardCap)
		os.Exit(exitFailure)
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, hardCap)
	defer cancel()

	// Progress goes to stderr, the summary (text or JSON) to stdout.
	var out printer
	if o.CompareSingle {
		out, err = runCompare(ctx, o, stderr)
	} else {
		var s *Summary
		s, err = run(ctx, o, stderr)
		if s != nil {
			out = s
		}
	}
	if out != nil {
		if o.JSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(out)
		} else {
			out.print(stdout)
		}
		if o.JSONFile != "" {
			if b, jerr := json.MarshalIndent(out, "", "  "); jerr != nil {
				err = errors.Join(err, jerr)
			} else if werr := os.WriteFile(o.JSONFile, append(b, '\n'), 0o644); werr != nil {
				err = errors.Join(err, fmt.Errorf("-json-file: %w", werr))
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "microchat-bench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// printer is a run's result: a Summary, or a Comparison of runs.
type printer interface{ print(io.Writer) }

// itoa formats n with thousands separators, for the text summary.
func itoa(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
