package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// pressure returns the kernel's pressure-stall totals for CPU and I/O:
// how long at least one task waited for a CPU, or for I/O (the "some"
// line of /proc/pressure/cpu and /proc/pressure/io). Over a phase, they
// say how contended the machine was, by this run or anything else; zero
// where the kernel does not keep them.
func pressure() (cpu, io time.Duration) {
	return pressureOf("/proc/pressure/cpu"), pressureOf("/proc/pressure/io")
}

func pressureOf(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return parsePressure(string(b))
}

// parsePressure reads total= of the "some" line, in microseconds.
func parsePressure(s string) time.Duration {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					return time.Duration(n) * time.Microsecond
				}
			}
		}
	}
	return 0
}

// meter measures one phase: wall time, the tool's CPU and the machine's
// pressure stalls.
type meter struct {
	start     time.Time
	tool      time.Duration
	cpuP, ioP time.Duration
}

func startMeter() meter {
	m := meter{start: time.Now(), tool: toolCPU()}
	m.cpuP, m.ioP = pressure()
	return m
}

// stop fills c with the phase's figures so far.
func (m meter) stop(c *CPUPhase) time.Duration {
	wall := time.Since(m.start)
	cpuP, ioP := pressure()
	c.phase(wall, toolCPU()-m.tool)
	if wall > 0 {
		c.CPUPressure = round2(100 * (cpuP - m.cpuP).Seconds() / wall.Seconds())
		c.IOPressure = round2(100 * (ioP - m.ioP).Seconds() / wall.Seconds())
	}
	return wall
}
