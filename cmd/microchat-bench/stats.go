package main

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// maxSamples bounds a recorder's memory: 8,000 messages/s for 10 minutes
// fits.
const maxSamples = 8 << 20

// recorder keeps every latency sample of one kind.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	dropped int64
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, d)
	} else {
		r.dropped++
	}
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// Latency is a distribution of samples, in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func (r *recorder) latency() Latency {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	return latencyOf(s)
}

func latencyOf(s []time.Duration) Latency {
	if len(s) == 0 {
		return Latency{}
	}
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Latency{
		N:    len(s),
		P50:  ms(percentile(s, 0.50)),
		P90:  ms(percentile(s, 0.90)),
		P95:  ms(percentile(s, 0.95)),
		P99:  ms(percentile(s, 0.99)),
		Max:  ms(s[len(s)-1]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}

// errorCounts counts errors by kind ("visitor dial: connection refused",
// "agent reply: HTTP 429", ...).
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
