package main

import (
	"os"
	"strings"
	"syscall"
)

// The runtime setting the server needs, and which //go:debug cannot set:
// adaptivestackstart=0 starts every goroutine on a 2 KB stack. By
// default the runtime starts new goroutines at the average stack size it
// last scanned, and while thousands of widget sockets connect beside the
// workers' deep database stacks, their read loops started on 4 KB: 1.5 KB
// more for every idle socket (docs/benchmarks.md).
const serverGodebug = "adaptivestackstart=0"

// godebugEnv returns env with serverGodebug added to GODEBUG, and false
// when GODEBUG already says adaptivestackstart (the operator's choice is
// kept).
func godebugEnv(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for _, setting := range strings.Split(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(setting), "adaptivestackstart=") {
				return env, false
			}
		}
		found = true
		if v == "" {
			out = append(out, "GODEBUG="+serverGodebug)
		} else {
			out = append(out, "GODEBUG="+v+","+serverGodebug)
		}
	}
	if !found {
		out = append(out, "GODEBUG="+serverGodebug)
	}
	return out, true
}

// reexecWithGodebug replaces the process with itself under serverGodebug,
// which the runtime reads only at start. It returns if that is not needed
// or not possible (the server then runs with the runtime's default).
func reexecWithGodebug() {
	env, ok := godebugEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	syscall.Exec(exe, os.Args, env)
}
