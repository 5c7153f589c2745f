package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ServerMemory is what the server's /metrics says of its memory and
// sockets at one moment.
type ServerMemory struct {
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	// HeapIdle - HeapReleased is heap memory the Go runtime holds but has
	// not returned to the system: part of RSS, not of HeapInuse.
	HeapIdle     float64 `json:"heap_idle_bytes"`
	HeapReleased float64 `json:"heap_released_bytes"`
	// CPUSeconds is the server's CPU time so far, user and system.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Sockets are microchat_websocket_connections by kind (agent,
	// contact).
	Sockets map[string]float64 `json:"websocket_connections"`
	// WebhookAttempts are microchat_webhook_attempts_total by outcome
	// (ok, retry, failed).
	WebhookAttempts map[string]float64 `json:"webhook_attempts,omitempty"`
}

// The samples read from /metrics.
const (
	metricRSS     = "process_resident_memory_bytes"
	metricHeap    = "go_memstats_heap_inuse_bytes"
	metricStack   = "go_memstats_stack_inuse_bytes"
	metricSockets = "microchat_websocket_connections"
	metricCPU     = "process_cpu_seconds_total"
	metricIdle    = "go_memstats_heap_idle_bytes"
	metricRelease = "go_memstats_heap_released_bytes"
	metricHooks   = "microchat_webhook_attempts_total"
)

// parseMetrics reads the samples the tool needs from Prometheus's
// text format. Written here rather than with expfmt: a few unlabelled or
// singly-labelled gauges need a line scanner, not the full parser and its
// name-validation settings.
func parseMetrics(r io.Reader) (ServerMemory, error) {
	m := ServerMemory{Sockets: map[string]float64{}}
	found := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, ok := splitSample(line)
		if !ok {
			continue
		}
		switch name {
		case metricRSS:
			m.RSS = value
		case metricHeap:
			m.HeapInuse = value
		case metricStack:
			m.StackInuse = value
		case metricSockets:
			m.Sockets[labelValue(labels, "kind")] += value
		case metricCPU:
			m.CPUSeconds = value
		case metricIdle:
			m.HeapIdle = value
		case metricRelease:
			m.HeapReleased = value
		case metricHooks:
			if m.WebhookAttempts == nil {
				m.WebhookAttempts = map[string]float64{}
			}
			m.WebhookAttempts[labelValue(labels, "outcome")] += value
		default:
			continue
		}
		found[name] = true
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	var missing []string
	for _, n := range []string{metricRSS, metricHeap, metricStack} {
		if !found[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return m, fmt.Errorf("/metrics has no %s", strings.Join(missing, ", "))
	}
	return m, nil
}

// splitSample splits `name{labels} value [timestamp]`.
func splitSample(line string) (name, labels string, value float64, ok bool) {
	rest := line
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return "", "", 0, false
	} else if line[i] == '{' {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", "", 0, false
		}
		name, labels, rest = line[:i], line[i+1:j], line[j+1:]
	} else {
		name, rest = line[:i], line[i:]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", "", 0, false
	}
	return name, labels, v, true
}

// labelValue returns the value of key in `a="x",b="y"`.
func labelValue(labels, key string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == key {
			if s, err := strconv.Unquote(v); err == nil {
				return s
			}
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
