package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is what a run measured; -json prints it as is.
type Summary struct {
	Target string `json:"target"`
	// AgentTarget is the agents' node (-agent-url; Target without it).
	AgentTarget string         `json:"agent_target"`
	Started     time.Time      `json:"started"`
	LoadAverage string         `json:"load_average_before"`
	Options     summaryOptions `json:"options"`
	Sources     string         `json:"sources"`
	OpenFiles   struct {
		Limit  uint64 `json:"limit"`
		Hard   uint64 `json:"hard"`
		Needed uint64 `json:"needed"`
	} `json:"open_files"`
	Visitors struct {
		Wanted         int     `json:"wanted"`
		Minted         int     `json:"minted"`
		MintSeconds    float64 `json:"mint_seconds"`
		MintRate       float64 `json:"mint_rate"`
		Connected      int     `json:"connected"`
		ConnectSeconds float64 `json:"connect_seconds"`
		// ConnectRate is sockets per second from the first dial until the
		// last hello (issue 14's target: 5,000/s); ServerCPUPerConnect the
		// server's CPU time per connect meanwhile, in milliseconds.
		ConnectRate         float64 `json:"connect_rate"`
		ServerCPUPerConnect float64 `json:"server_cpu_ms_per_connect"`
		// Held is how many were still open at the end.
		Held int `json:"held"`
	} `json:"visitors"`
	Agents struct {
		Wanted    int `json:"wanted"`
		Connected int `json:"connected"`
		Held      int `json:"held"`
		Joined    int `json:"joined"`
	} `json:"agents"`
	Messages *MessageSummary `json:"messages,omitempty"`
	Storm    *StormSummary   `json:"storm,omitempty"`
	Webhook  *WebhookSummary `json:"webhook,omitempty"`
	Floor    *FloorSummary   `json:"floor,omitempty"`
	Memory   MemorySummary   `json:"server_memory"`
	// CPU is what the server and the tool used while the visitors
	// connected, and during the load (warmup and drain included).
	CPU struct {
		Connect CPUPhase `json:"connect"`
		Load    CPUPhase `json:"load"`
	} `json:"cpu"`
	Errors   map[string]int64 `json:"errors"`
	Warnings []string         `json:"warnings,omitempty"`
}

type summaryOptions struct {
	Visitors int     `json:"visitors"`
	Agents   int     `json:"agents"`
	Active   int     `json:"active"`
	Rate     float64 `json:"rate"`
	Duration string  `json:"duration"`
	Warmup   string  `json:"warmup"`
	Idle     bool    `json:"idle"`
	Size     int     `json:"size"`
	Seed     uint64  `json:"seed"`
	Reply    string  `json:"reply"` // socket or http
}

func (o *options) summary() summaryOptions {
	return summaryOptions{Visitors: o.Visitors, Agents: o.Agents, Active: o.Active, Rate: o.Rate,
		Duration: o.Duration.String(), Warmup: o.Warmup.String(), Idle: o.Idle, Size: o.Size, Seed: o.Seed, Reply: o.Reply}
}

// MessageSummary is the load's measurement: messages sent during the
// measured window (after the warmup) and how they arrived.
type MessageSummary struct {
	TargetRate      float64 `json:"target_rate"`
	Conversations   int     `json:"conversations"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	SentV2A         int64   `json:"sent_visitor_to_agent"`
	SentA2V         int64   `json:"sent_agent_to_visitor"`
	ReceivedV2A     int64   `json:"received_visitor_to_agent"`
	ReceivedA2V     int64   `json:"received_agent_to_visitor"`
	LostV2A         int64   `json:"lost_visitor_to_agent"`
	LostA2V         int64   `json:"lost_agent_to_visitor"`
	SentRate        float64 `json:"sent_rate"`
	// AchievedRate is messages received per second, both directions.
	AchievedRate float64 `json:"achieved_rate"`
	// VisitorToAgent: sent on the visitor's socket until the event on the
	// owning agent's socket. AgentToVisitor: the agent's reply sent until
	// the event on the visitor's socket. VisitorAck: until the ack on the
	// visitor's socket. AgentReply: until the ack on the agent's socket
	// (-reply socket) or the POST's answer (-reply http).
	VisitorToAgent Latency `json:"visitor_to_agent"`
	AgentToVisitor Latency `json:"agent_to_visitor"`
	VisitorAck     Latency `json:"visitor_ack"`
	AgentReply     Latency `json:"agent_reply"`
}

// Ratio is our latency over the floor's, per percentile.
type Ratio struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Ratios compare both directions with the floor.
type Ratios struct {
	VisitorToAgent Ratio `json:"visitor_to_agent"`
	AgentToVisitor Ratio `json:"agent_to_visitor"`
}

func ratioOf(ours, floor Latency) Ratio {
	r := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return math.Round(a/b*10) / 10
	}
	return Ratio{P50: r(ours.P50, floor.P50), P95: r(ours.P95, floor.P95), P99: r(ours.P99, floor.P99)}
}

// ratios sets the floor's ratios to the load's latencies.
func (f *FloorSummary) ratios(m *MessageSummary) {
	if m == nil || f.RoundTrip.N == 0 {
		return
	}
	f.Ratios = &Ratios{
		VisitorToAgent: ratioOf(m.VisitorToAgent, f.RoundTrip),
		AgentToVisitor: ratioOf(m.AgentToVisitor, f.RoundTrip),
	}
}

// MemorySample is the server's memory at At seconds into an idle hold.
type MemorySample struct {
	At         float64 `json:"at_seconds"`
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
}

// CPUPhase is the CPU time the server and the tool used in one phase, in
// seconds and in cores (seconds per second of the phase); the machine has
// two.
type CPUPhase struct {
	Seconds     float64 `json:"seconds"`
	ServerCPU   float64 `json:"server_cpu_seconds"`
	ToolCPU     float64 `json:"tool_cpu_seconds"`
	ServerCores float64 `json:"server_cores"`
	ToolCores   float64 `json:"tool_cores"`
	// CPUPressure and IOPressure are the share of the phase, in percent,
	// during which some task on the machine waited for a CPU, or for I/O
	// (Linux's pressure-stall information).
	CPUPressure float64 `json:"cpu_pressure_pct"`
	IOPressure  float64 `json:"io_pressure_pct"`
}

func (c *CPUPhase) phase(wall, tool time.Duration) {
	c.Seconds = round2(wall.Seconds())
	c.ToolCPU = round2(tool.Seconds())
	if wall > 0 {
		c.ToolCores = round2(tool.Seconds() / wall.Seconds())
	}
}

// server sets the server's share from its process_cpu_seconds_total
// before and after (read just after the phase).
func (c *CPUPhase) server(before, after *ServerMemory) {
	if before == nil || after == nil {
		return
	}
	c.ServerCPU = round2(after.CPUSeconds - before.CPUSeconds)
	if c.Seconds > 0 {
		c.ServerCores = round2(c.ServerCPU / c.Seconds)
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// MemorySummary is the server's memory from /metrics: before the visitor
// sockets, right after they connected, after they were held (with -idle,
// at the end of -duration; otherwise once they were connected and joined,
// before the messages), and at the end of the load.
type MemorySummary struct {
	Before    *ServerMemory `json:"before,omitempty"`
	Connected *ServerMemory `json:"connected,omitempty"`
	After     *ServerMemory `json:"after,omitempty"`
	End       *ServerMemory `json:"end,omitempty"`
	// Samples are read during an idle hold.
	Samples []MemorySample `json:"samples,omitempty"`
	// Sockets is the number of visitor sockets the deltas are divided by.
	Sockets int `json:"sockets"`
	// Per visitor socket, (After - Before) / Sockets, in bytes.
	RSSPerSocket       float64 `json:"rss_per_socket"`
	HeapStackPerSocket float64 `json:"heap_stack_per_socket"`
	HeapPerSocket      float64 `json:"heap_per_socket"`
	StackPerSocket     float64 `json:"stack_per_socket"`
	// HeapFreePerSocket is the growth of heap memory freed but not yet
	// returned to the system: in RSS, not in the heap in use.
	HeapFreePerSocket float64 `json:"heap_free_per_socket"`
}

func (m *MemorySummary) perSocket(n int) {
	m.Sockets = n
	if n == 0 || m.Before == nil || m.After == nil {
		return
	}
	per := func(after, before float64) float64 { return math.Round((after - before) / float64(n)) }
	m.RSSPerSocket = per(m.After.RSS, m.Before.RSS)
	m.HeapPerSocket = per(m.After.HeapInuse, m.Before.HeapInuse)
	m.StackPerSocket = per(m.After.StackInuse, m.Before.StackInuse)
	m.HeapStackPerSocket = per(m.After.HeapInuse+m.After.StackInuse, m.Before.HeapInuse+m.Before.StackInuse)
	m.HeapFreePerSocket = per(m.After.HeapIdle-m.After.HeapReleased, m.Before.HeapIdle-m.Before.HeapReleased)
}

// print writes the summary for people.
func (s *Summary) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("microchat-bench %s at %s (load average before: %s)", s.Target, s.Started.Format(time.RFC3339), s.LoadAverage)
	if s.AgentTarget != "" && s.AgentTarget != s.Target {
		p("cross node: visitors on %s, agents on %s", s.Target, s.AgentTarget)
	}
	o := s.Options
	mode := fmt.Sprintf("%g messages/s over %d conversations for %s after %s warmup", o.Rate, o.Active, o.Duration, o.Warmup)
	switch {
	case o.Agents == 0:
	case o.Reply == replySocket:
		mode += ", agent replies over their sockets"
	case o.Reply == replyHTTP:
		mode += ", agent replies over HTTP"
	}
	if o.Idle {
		mode = "idle, held for " + o.Duration
	}
	p("run: %d visitors, %d agents, %s; text %d bytes", o.Visitors, o.Agents, mode, o.Size)
	p("sources: %s; open files: limit %d (hard %d), needed about %d", s.Sources, s.OpenFiles.Limit, s.OpenFiles.Hard, s.OpenFiles.Needed)
	v := s.Visitors
	p("visitors: %s minted in %.2f s (%s/s); %s connected in %.2f s; %s held at the end",
		itoa(int64(v.Minted)), v.MintSeconds, itoa(int64(v.MintRate)), itoa(int64(v.Connected)), v.ConnectSeconds, itoa(int64(v.Held)))
	p("connect rate: %s new widget sockets/s (target 5,000/s), server CPU %.3f ms per connect", itoa(int64(v.ConnectRate)), v.ServerCPUPerConnect)
	p("agents: %d connected, %d held at the end; %d conversations joined", s.Agents.Connected, s.Agents.Held, s.Agents.Joined)

	if m := s.Messages; m != nil {
		p("messages: target %s/s; sent %s/s (%s visitor->agent, %s agent->visitor); received %s/s achieved; lost %d visitor->agent, %d agent->visitor",
			itoa(int64(m.TargetRate)), itoa(int64(m.SentRate)), itoa(m.SentV2A), itoa(m.SentA2V), itoa(int64(m.AchievedRate)), m.LostV2A, m.LostA2V)
	}
	if s.Messages != nil || s.Floor != nil {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "latency, ms\tn\tp50\tp95\tp99\tmax\t")
		row := func(name string, l Latency) {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, l.N, l.P50, l.P95, l.P99, l.Max)
		}
		if m := s.Messages; m != nil {
			row("visitor->agent", m.VisitorToAgent)
			row("agent->visitor", m.AgentToVisitor)
			row("visitor ack", m.VisitorAck)
			if o.Reply == replySocket {
				row("agent reply ack", m.AgentReply)
			} else {
				row("agent reply POST", m.AgentReply)
			}
		}
		if f := s.Floor; f != nil {
			row(fmt.Sprintf("floor: echo round trip (%d sockets, %g/s)", f.Conns, f.Rate), f.RoundTrip)
		}
		tw.Flush()
	}
	if f := s.Floor; f != nil {
		if f.Error != "" {
			p("floor: %s", f.Error)
		}
		if r := f.Ratios; r != nil {
			p("ratio to the floor (p50 / p95 / p99): visitor->agent %.1f / %.1f / %.1f; agent->visitor %.1f / %.1f / %.1f",
				r.VisitorToAgent.P50, r.VisitorToAgent.P95, r.VisitorToAgent.P99, r.AgentToVisitor.P50, r.AgentToVisitor.P95, r.AgentToVisitor.P99)
		}
	}

	if s.Webhook != nil {
		s.Webhook.print(p)
	}

	mem := s.Memory
	if mem.Before != nil {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "server memory, MB\tbefore\tconnected\tafter\tend\tper visitor socket\t")
		mb := func(x *ServerMemory, f func(*ServerMemory) float64) string {
			if x == nil {
				return "-"
			}
			return fmt.Sprintf("%.1f", f(x)/1e6)
		}
		row := func(name string, f func(*ServerMemory) float64, per float64) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f KB\t\n", name, mb(mem.Before, f), mb(mem.Connected, f), mb(mem.After, f), mb(mem.End, f), per/1024)
		}
		row("RSS", func(x *ServerMemory) float64 { return x.RSS }, mem.RSSPerSocket)
		row("heap in use", func(x *ServerMemory) float64 { return x.HeapInuse }, mem.HeapPerSocket)
		row("stack in use", func(x *ServerMemory) float64 { return x.StackInuse }, mem.StackPerSocket)
		row("heap + stack", func(x *ServerMemory) float64 { return x.HeapInuse + x.StackInuse }, mem.HeapStackPerSocket)
		row("heap freed, not yet returned", func(x *ServerMemory) float64 { return x.HeapIdle - x.HeapReleased }, mem.HeapFreePerSocket)
		tw.Flush()
		socks := func(x *ServerMemory) string {
			if x == nil {
				return "-"
			}
			return fmt.Sprintf("contact %.0f, agent %.0f", x.Sockets["contact"], x.Sockets["agent"])
		}
		if len(mem.Samples) > 0 && mem.Sockets > 0 {
			var b strings.Builder
			for _, x := range mem.Samples {
				per := func(a, b float64) float64 { return (a - b) / float64(mem.Sockets) / 1024 }
				fmt.Fprintf(&b, " %.0fs %.1f/%.1f", x.At, per(x.RSS, mem.Before.RSS), per(x.HeapInuse+x.StackInuse, mem.Before.HeapInuse+mem.Before.StackInuse))
			}
			p("per visitor socket during the hold, KB of RSS/heap+stack:%s", b.String())
		}
		p("server's websocket connections: before %s; after %s; end %s (per-socket figures divide by %d)", socks(mem.Before), socks(mem.After), socks(mem.End), mem.Sockets)
	}
	if s.Storm != nil {
		s.Storm.print(p)
	}
	cpu := func(name string, c CPUPhase) {
		if c.Seconds > 0 {
			p("cpu while %s (%.2f s): server %.2f s (%.2f cores), tool %.2f s (%.2f cores); machine stalled on CPU %.0f%%, on I/O %.0f%% of the time",
				name, c.Seconds, c.ServerCPU, c.ServerCores, c.ToolCPU, c.ToolCores, c.CPUPressure, c.IOPressure)
		}
	}
	cpu("connecting", s.CPU.Connect)
	cpu("loading", s.CPU.Load)
	if len(s.Errors) == 0 {
		p("errors: none")
	} else {
		p("errors:")
		for _, k := range sortedKeys(s.Errors) {
			p("  %8s  %s", itoa(s.Errors[k]), k)
		}
	}
	for _, w := range s.Warnings {
		p("warning: %s", strings.TrimSpace(w))
	}
}
