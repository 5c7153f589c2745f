package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
	"github.com/microdeets/microchat/web"
	"github.com/microdeets/microchat/webhook"
)

// TestMain lets the test binary be the floor's child process, as the tool
// re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		os.Exit(floorMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct horse battery"
)

// server is a real Microchat server on SQLite behind a real listener, with
// the widget's rate limits off, as a load test needs.
type server struct {
	url   string
	store *inbox.Store
}

func newServer(t *testing.T) *server {
	t.Helper()
	store := inboxtest.Open(t, inboxtest.SQLiteURL(t), nil)
	if _, err := store.CreateAgent(context.Background(), inbox.NewAgent{Email: adminEmail, Name: "Admin", Role: inbox.RoleAdmin, Password: adminPassword}); err != nil {
		t.Fatalf("CreateAgent() = %v", err)
	}
	cfg := config.Defaults()
	cfg.Widget.RateLimits = config.WidgetRateLimits{}
	cfg.Limits.SocketsPerIP, cfg.Limits.AgentMessagesPerSecond = 0, 0 // every socket comes from 127.0.0.1; replies as fast as they go
	srv, err := web.New(web.Options{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Collectors: webhook.Collectors()})
	if err != nil {
		t.Fatalf("web.New() = %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	return &server{url: ts.URL, store: store}
}

func testOptions(url string) options {
	o := defaultOptions()
	o.URL, o.Email, o.Password = url, adminEmail, adminPassword
	return o
}

// mustRun returns a function that logs the summary of a run and fails
// the test on its error: mustRun(t)(run(...)).
func mustRun(t *testing.T) func(*Summary, error) *Summary {
	return func(s *Summary, err error) *Summary {
		t.Helper()
		if s != nil {
			var out strings.Builder
			s.print(&out)
			t.Logf("summary:\n%s", out.String())
		}
		if err != nil {
			t.Fatalf("run() = %v", err)
		}
		return s
	}
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLoad runs a small load against the real server, floor included, and
// checks that the summary is sane.
func TestLoad(t *testing.T) {
	srv := newServer(t)
	o := testOptions(srv.url)
	o.Visitors, o.Agents, o.Active, o.Rate = 50, 2, 10, 200
	o.Duration, o.Warmup = 2*time.Second, 500*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := mustRun(t)(run(ctx, o, logWriter{t}))
	if len(s.Errors) > 0 {
		t.Errorf("errors: %v", s.Errors)
	}
	if s.Visitors.Minted != 50 || s.Visitors.Connected != 50 || s.Visitors.Held != 50 {
		t.Errorf("visitors minted %d, connected %d, held %d; want 50 each", s.Visitors.Minted, s.Visitors.Connected, s.Visitors.Held)
	}
	if s.Visitors.ConnectRate <= 0 {
		t.Errorf("connect rate %v", s.Visitors.ConnectRate)
	}
	if s.Agents.Connected != 2 || s.Agents.Held != 2 || s.Agents.Joined != 10 {
		t.Errorf("agents connected %d, held %d, joined %d; want 2, 2, 10", s.Agents.Connected, s.Agents.Held, s.Agents.Joined)
	}
	m := s.Messages
	if m == nil {
		t.Fatal("no message summary")
	}
	// 100/s each way for 2 s: about 200 each.
	for _, c := range []struct {
		name       string
		sent, recv int64
		lat        Latency
	}{
		{"visitor->agent", m.SentV2A, m.ReceivedV2A, m.VisitorToAgent},
		{"agent->visitor", m.SentA2V, m.ReceivedA2V, m.AgentToVisitor},
	} {
		if c.sent < 150 || c.recv != c.sent {
			t.Errorf("%s: sent %d, received %d; want about 200 and all", c.name, c.sent, c.recv)
		}
		if c.lat.N != int(c.recv) || c.lat.P50 <= 0 || c.lat.P99 < c.lat.P50 {
			t.Errorf("%s latency %+v", c.name, c.lat)
		}
	}
	// The replies went over the agents' sockets (the default), each acked
	// once.
	if m.VisitorAck.N == 0 || m.AgentReply.N != int(m.SentA2V) {
		t.Errorf("ack latency %+v, reply ack latency %+v: want samples, one per reply (%d)", m.VisitorAck, m.AgentReply, m.SentA2V)
	}
	if o.Reply != replySocket || s.Options.Reply != replySocket {
		t.Errorf("reply mode %q, in the summary %q; want socket", o.Reply, s.Options.Reply)
	}
	var out strings.Builder
	s.print(&out)
	if !strings.Contains(out.String(), "agent reply ack") {
		t.Errorf("summary without an agent reply ack row:\n%s", out.String())
	}
	if m.AchievedRate < 150 {
		t.Errorf("achieved %v messages/s, want about 200", m.AchievedRate)
	}
	f := s.Floor
	if f == nil || f.Error != "" || f.Received == 0 || f.RoundTrip.P50 <= 0 || f.Ratios == nil || f.Ratios.VisitorToAgent.P50 <= 0 {
		t.Errorf("floor %+v", f)
	}
	mem := s.Memory
	if mem.Before == nil || mem.After == nil || mem.After.RSS == 0 || mem.Sockets != 50 {
		t.Errorf("memory %+v", mem)
	}
	if got := mem.After.Sockets["contact"] - mem.Before.Sockets["contact"]; got != 50 {
		t.Errorf("the server counts %v more contact sockets, want 50", got)
	}
}

// TestIdle holds visitor sockets only.
func TestIdle(t *testing.T) {
	srv := newServer(t)
	o := testOptions(srv.url)
	o.Visitors, o.Agents, o.Active, o.Idle, o.Duration = 30, 0, 0, true, 500*time.Millisecond
	o.Email, o.Password = "", ""
	s, err := run(context.Background(), o, logWriter{t})
	if err != nil {
		t.Fatalf("run() = %v", err)
	}
	if s.Visitors.Held != 30 || len(s.Errors) > 0 || s.Messages != nil || s.Floor != nil {
		t.Errorf("held %d, errors %v, messages %v, floor %v", s.Visitors.Held, s.Errors, s.Messages, s.Floor)
	}
	if s.Memory.After == nil || s.Memory.Sockets != 30 {
		t.Errorf("memory %+v", s.Memory)
	}
}

// TestAgentSide logs agents in (creating the second), opens their
// sockets, joins conversations, measures contact messages stored
// directly, without the widget, and sends replies both ways (-reply).
func TestAgentSide(t *testing.T) {
	for _, mode := range []string{replySocket, replyHTTP} {
		t.Run(mode, func(t *testing.T) { testAgentSide(t, mode) })
	}
}

func testAgentSide(t *testing.T, mode string) {
	srv := newServer(t)
	o := testOptions(srv.url)
	o.Agents, o.Reply = 3, mode
	b, err := newBench(o, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	b.sources = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	ctx := context.Background()
	logins, err := b.loginAgents(ctx)
	if err != nil {
		t.Fatalf("loginAgents() = %v", err)
	}
	if len(logins) != 3 || logins[1].Email != benchAgentEmail(1) || logins[2].CSRF == "" {
		t.Fatalf("logins %+v", logins)
	}
	// A second run logs the same agents in again.
	if again, err := b.loginAgents(ctx); err != nil || again[2].ID != logins[2].ID {
		t.Fatalf("loginAgents() again = %+v, %v", again, err)
	}
	defer b.closeAll()
	for i, l := range logins {
		a := &agent{b: b, idx: i, login: l}
		if kind, err := a.connect(ctx, b.sources[0]); err != nil {
			t.Fatalf("agent %d connect: %s %v", i, kind, err)
		}
		b.agents = append(b.agents, a)
	}
	for i := range 3 {
		ct, err := srv.store.CreateContact(ctx, inbox.NewContact{Name: "Contact"})
		if err != nil {
			t.Fatal(err)
		}
		conv, err := srv.store.StartConversation(ctx, ct.ID, inbox.ChannelChat, "")
		if err != nil {
			t.Fatal(err)
		}
		v := &visitor{b: b, idx: i, owner: i % 3}
		v.start.Conversation.ID = conv.ID
		b.active = append(b.active, v)
	}
	if n := b.joinActive(ctx); n != 3 {
		t.Fatalf("joinActive() = %d, errors %v", n, b.errs.snapshot())
	}
	b.from.Store(clock())
	b.until.Store(clock() + int64(time.Minute))
	for i, v := range b.active {
		text := messageText('v', v.owner, clock(), 64)
		if _, _, err := srv.store.AddMessage(ctx, inbox.NewMessage{ConversationID: v.start.Conversation.ID, Author: inbox.AuthorContact, Text: text}); err != nil {
			t.Fatal(err)
		}
		b.sendAgent(ctx, job{i: i, at: clock()}, v)
	}
	drain(ctx, 5*time.Second, func() bool { return b.recvV2A.Load() == 3 && b.reply.count() == 3 })
	if got := b.recvV2A.Load(); got != 3 {
		t.Errorf("owners received %d visitor messages, want 3 (each once)", got)
	}
	if l := b.v2a.latency(); l.N != 3 || l.P50 <= 0 {
		t.Errorf("visitor->agent latency %+v", l)
	}
	if b.sentA2V.Load() != 3 || b.reply.count() != 3 {
		t.Errorf("replies sent %d, answers timed %d; want 3; errors %v", b.sentA2V.Load(), b.reply.count(), b.errs.snapshot())
	}
	if mode == replySocket && b.replyAcks.Load() != 3 {
		t.Errorf("replies acked %d, want 3", b.replyAcks.Load())
	}
	for _, v := range b.active {
		page, err := srv.store.Messages(ctx, v.start.Conversation.ID, inbox.MessageQuery{})
		if err != nil || len(page.Messages) != 2 || page.Messages[1].Author != inbox.AuthorAgent || page.Messages[1].AgentID == nil ||
			*page.Messages[1].AgentID != b.agents[v.owner].login.ID {
			t.Errorf("conversation %d: messages %+v, %v; want the contact's and its owner's reply", v.start.Conversation.ID, page.Messages, err)
		}
	}
	if e := b.errs.snapshot(); len(e) > 0 {
		t.Errorf("errors %v", e)
	}
}

// TestFloor runs the echo child process and measures it.
func TestFloor(t *testing.T) {
	b := &bench{o: defaultOptions(), runID: "test"}
	f := b.runFloor(context.Background(), 500, 4, 200*time.Millisecond, time.Second)
	if f.Error != "" {
		t.Fatal(f.Error)
	}
	if f.Sent < 400 || f.Received != f.Sent {
		t.Errorf("floor sent %d, received %d; want about 500, all", f.Sent, f.Received)
	}
	if l := f.RoundTrip; l.N != int(f.Received) || l.P50 <= 0 || l.P99 < l.P50 || l.P99 > 100 {
		t.Errorf("floor round trip %+v", l)
	}
	if e := b.errs.snapshot(); len(e) > 0 {
		t.Errorf("errors %v", e)
	}
}

func TestTargetURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://127.9.8.7", "http://127.0.0.1:8080/"} {
		if _, err := targetURL(ok); err != nil {
			t.Errorf("targetURL(%q) = %v", ok, err)
		}
	}
	for raw, want := range map[string]string{
		"http://10.0.0.1:8080":      "only loopback",
		"http://192.168.1.10:8080":  "only loopback",
		"http://172.16.0.1":         "only loopback",
		"http://example.com:8080":   "only loopback",
		"http://8.8.8.8":            "only loopback",
		"http://localhost.evil.com": "only loopback",
		"https://127.0.0.1":         "want http://",
		"http://[::1]:8080":         "IPv6",
		"http://127.0.0.1:8080/api": "without a path",
	} {
		if _, err := targetURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("targetURL(%q) = %v, want an error saying %q", raw, err, want)
		}
	}
	o := testOptions("http://10.1.2.3:8080")
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("validate() = %v, want a refusal", err)
	}
}

func TestParseSources(t *testing.T) {
	a := netip.MustParseAddr
	inUse := map[netip.Addr]bool{a("127.0.0.2"): true, a("127.0.0.4"): true}
	for _, c := range []struct {
		spec  string
		conns int
		want  string
	}{
		{"", 19000, "127.0.0.3,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8"},
		{"", 10, "127.0.0.3"},
		{"", 4000, "127.0.0.3"},
		{"", 4001, "127.0.0.3,127.0.0.5"},
		{"2", 100000, "127.0.0.3,127.0.0.5"},
		{"127.0.0.2, 127.0.9.9,127.0.0.2", 10, "127.0.0.2,127.0.9.9"},
	} {
		got, err := parseSources(c.spec, c.conns, inUse)
		if err != nil {
			t.Errorf("parseSources(%q, %d) = %v", c.spec, c.conns, err)
			continue
		}
		s := make([]string, len(got))
		for i, g := range got {
			s[i] = g.String()
		}
		if strings.Join(s, ",") != c.want {
			t.Errorf("parseSources(%q, %d) = %v, want %s", c.spec, c.conns, s, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.1", "127.0.0.2,192.168.0.1", "::1", "0", "x"} {
		if _, err := parseSources(bad, 10, nil); err == nil {
			t.Errorf("parseSources(%q) = nil error", bad)
		}
	}
	// Past the /24: .255 and .0 are skipped.
	got, err := freeSources(300, nil)
	if err != nil || len(got) != 300 || got[252].String() != "127.0.0.254" || got[253].String() != "127.0.1.1" {
		t.Errorf("freeSources(300) = ..%v.., %v", got[252:254], err)
	}
	if d := describeSources(got[:3]); d != "127.0.0.2-127.0.0.4" {
		t.Errorf("describeSources() = %q", d)
	}
}

func TestParseProcNetTCP(t *testing.T) {
	const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0200007F:D431 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
   2: 0300017F:D432 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000
`
	got := parseProcNetTCP(strings.NewReader(procNetTCP))
	for _, want := range []string{"127.0.0.1", "127.0.0.2", "127.1.0.3"} {
		if !got[netip.MustParseAddr(want)] {
			t.Errorf("parseProcNetTCP() = %v, want %s in it", got, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("parseProcNetTCP() = %v, want 3 addresses", got)
	}
	// This machine's own table parses (the listener of a test server at
	// least is in it).
	if addrsInUse() == nil {
		t.Log("no /proc/net/tcp here")
	}
}

func TestParseMetrics(t *testing.T) {
	const text = `# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.2345e+07
go_memstats_stack_inuse_bytes 2.62144e+06
go_memstats_heap_alloc_bytes 9e+06
# TYPE microchat_websocket_connections gauge
microchat_websocket_connections{kind="agent"} 2
microchat_websocket_connections{kind="contact"} 19000
microchat_websocket_messages_total{direction="in",kind="contact"} 5
process_resident_memory_bytes 2.0971520e+08 1700000000000
microchat_webhook_attempts_total{outcome="ok"} 1200
microchat_webhook_attempts_total{outcome="retry"} 3
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.HeapInuse != 12345000 || m.StackInuse != 2621440 || m.RSS != 209715200 || m.Sockets["agent"] != 2 || m.Sockets["contact"] != 19000 ||
		m.WebhookAttempts["ok"] != 1200 || m.WebhookAttempts["retry"] != 3 {
		t.Errorf("parseMetrics() = %+v", m)
	}
	if _, err := parseMetrics(strings.NewReader("go_memstats_heap_inuse_bytes 1\n")); err == nil || !strings.Contains(err.Error(), metricRSS) {
		t.Errorf("parseMetrics(missing) = %v, want an error naming %s", err, metricRSS)
	}
	var mem MemorySummary
	mem.Before = &ServerMemory{RSS: 100e6, HeapInuse: 10e6, StackInuse: 1e6}
	mem.After = &ServerMemory{RSS: 100e6 + 19000*6600, HeapInuse: 10e6 + 19000*2600, StackInuse: 1e6 + 19000*2048}
	mem.perSocket(19000)
	if mem.RSSPerSocket != 6600 || mem.HeapStackPerSocket != 4648 {
		t.Errorf("perSocket() = %+v", mem)
	}
}

func TestParsePressure(t *testing.T) {
	const text = "some avg10=2.33 avg60=3.32 avg300=3.03 total=212262899\nfull avg10=1.36 avg60=1.08 avg300=0.97 total=95810127\n"
	if got := parsePressure(text); got != 212262899*time.Microsecond {
		t.Errorf("parsePressure() = %v", got)
	}
	if got := parsePressure("garbage"); got != 0 {
		t.Errorf("parsePressure(garbage) = %v", got)
	}
}

func TestMarker(t *testing.T) {
	text := messageText('v', 7, 123456789, 64)
	if len(text) != 64 || !strings.HasPrefix(text, "mcb1 v 7 123456789 x") {
		t.Fatalf("messageText() = %q", text)
	}
	frame := []byte(`{"type":"event","event":{"id":41,"conversation_id":7,"seq":5,"type":"message_added","data":{"message":{"id":12,"author":"contact","text":"` + text + `","state":"sent"}}}}`)
	if frameType(frame) != "event" {
		t.Errorf("frameType() = %q", frameType(frame))
	}
	owner, sent, ok := findMarker(frame, 'v')
	if !ok || owner != 7 || sent != 123456789 {
		t.Errorf("findMarker() = %d, %d, %v", owner, sent, ok)
	}
	if _, _, ok := findMarker(frame, 'a'); ok {
		t.Error("findMarker('a') found a 'v' text")
	}
	for _, bad := range []string{`"text":"mcb1 v x 1 "`, `"text":"mcb1 v 1 2"`, `"text":"mcb1 v 1  "`} {
		if _, _, ok := findMarker([]byte(bad), 'v'); ok {
			t.Errorf("findMarker(%s) = ok", bad)
		}
	}
	if c := jsonString([]byte(`{"type":"error","code":"rate_limited","error":"slow down"}`), "code"); string(c) != "rate_limited" {
		t.Errorf("jsonString(code) = %q", c)
	}
	b := &bench{o: defaultOptions(), runID: "r1"}
	f := string(b.messageFrame('v', 1, 99, "v", 3))
	if !strings.HasPrefix(f, `{"type":"message","client_id":"mcb-r1-v-3","text":"mcb1 v 1 99 `) || !strings.HasSuffix(f, `"}`) {
		t.Errorf("messageFrame() = %s", f)
	}
	var reply struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		ClientID       string `json:"client_id"`
		Text           string `json:"text"`
	}
	rf := replyFrame(42, b.clientID("a", 5), messageText('a', 1, 99, 64))
	if err := json.Unmarshal(rf, &reply); err != nil || reply.Type != "message" || reply.ConversationID != 42 ||
		reply.ClientID != "mcb-r1-a-5" || !strings.HasPrefix(reply.Text, "mcb1 a 1 99 ") {
		t.Errorf("replyFrame() = %s: %+v, %v", rf, reply, err)
	}
	ack := []byte(`{"type":"ack","client_id":"mcb-r1-a-5","message":{"id":3,"text":"` + reply.Text + `"},"channel":"chat","reason":"r","created":true}`)
	if _, sent, ok := findMarker(ack, 'a'); frameType(ack) != "ack" || !ok || sent != 99 {
		t.Errorf("ack frame: type %q, sent %d, %v", frameType(ack), sent, ok)
	}
	for frame, want := range map[string]string{
		`{"type":"error","client_id":"mcb-r1-a-5","status":404,"error":"not found"}`: "agent reply: error frame 404 not found",
		`{"type":"error","error":"frame is not a JSON object of a known shape"}`:     "agent error frame: frame is not a JSON object of a known shape",
	} {
		if got := agentErrorKind([]byte(frame)); got != want {
			t.Errorf("agentErrorKind(%s) = %q, want %q", frame, got, want)
		}
	}
}

func TestLatency(t *testing.T) {
	var r recorder
	for i := 1; i <= 100; i++ {
		r.add(time.Duration(i) * time.Millisecond)
	}
	l := r.latency()
	if l.N != 100 || l.P50 != 50 || l.P95 != 95 || l.P99 != 99 || l.Max != 100 || l.Mean != 50.5 {
		t.Errorf("latency() = %+v", l)
	}
	if got := ratioOf(Latency{P50: 3, P95: 6, P99: 9}, Latency{P50: 1, P95: 2, P99: 0}); got != (Ratio{P50: 3, P95: 3}) {
		t.Errorf("ratioOf() = %+v", got)
	}
	if (&recorder{}).latency() != (Latency{}) {
		t.Error("empty recorder has a latency")
	}
}

func TestPace(t *testing.T) {
	n := 0
	start := clock()
	last := int64(-1)
	pace(context.Background(), 1000, start, start+int64(300*time.Millisecond), func(j job) {
		if j.i != n || j.at < last || j.at > clock() {
			t.Fatalf("job %+v after %d jobs, the last due at %d", j, n, last)
		}
		last = j.at
		n++
	})
	if n < 280 || n > 310 {
		t.Errorf("pace(1000/s, 300ms) called %d times, want about 300", n)
	}
}

func TestFlags(t *testing.T) {
	var stderr strings.Builder
	if _, err := parseFlags([]string{"-visitors", "10", "-active", "20", "-agents", "0"}, &stderr); err == nil {
		t.Error("-active > -visitors accepted")
	}
	if _, err := parseFlags([]string{"-agents", "1"}, &stderr); err == nil || !strings.Contains(err.Error(), "-email") {
		t.Errorf("-agents without -email: %v", err)
	}
	if _, err := parseFlags([]string{"-duration", "20m", "-agents", "0"}, &stderr); err == nil {
		t.Error("-duration 20m accepted")
	}
	o, err := parseFlags([]string{"-idle", "-visitors", "19000", "-agents", "0", "-duration", "30s"}, &stderr)
	if err != nil || !o.Idle || o.Visitors != 19000 || o.hardCap() != o.Warmup+30*time.Second+setupBudget || o.Reply != replySocket {
		t.Errorf("parseFlags(idle) = %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"-agents", "0", "-reply", "http"}, &stderr); err != nil || o.Reply != replyHTTP {
		t.Errorf("parseFlags(-reply http) = %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"-agents", "0", "-reply", "pigeon"}, &stderr); err == nil || !strings.Contains(err.Error(), "-reply") {
		t.Errorf("-reply pigeon: %v", err)
	}
	stderr.Reset()
	if code := benchMain([]string{"-h"}, io.Discard, &stderr); code != exitOK || !strings.Contains(stderr.String(), "-visitors") || !strings.Contains(stderr.String(), "rate_limits") {
		t.Errorf("-h: code %d, %s", code, stderr.String())
	}
}
