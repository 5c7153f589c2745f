package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envReexecChild makes the test binary act as serve's start: re-execute
// itself with the GODEBUG setting, then print what it runs with.
const envReexecChild = "MICROCHAT_TEST_REEXEC_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envReexecChild) == "1" {
		reexecWithGodebug()
		fmt.Print(os.Getenv("GODEBUG"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The process really runs with the setting after the re-execution, keeps
// the operator's other settings, and does not re-execute once more.
func TestReexecWithGodebug(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable() = %v", err)
	}
	for _, tc := range []struct{ godebug, want string }{
		{"", serverGodebug},
		{"gctrace=0", "gctrace=0," + serverGodebug},
		{"adaptivestackstart=1", "adaptivestackstart=1"},
	} {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(withoutGodebug(os.Environ()), envReexecChild+"=1", "GODEBUG="+tc.godebug)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child with GODEBUG=%q: %v", tc.godebug, err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("child with GODEBUG=%q runs with GODEBUG=%q, want %q", tc.godebug, got, tc.want)
		}
	}
}

func withoutGodebug(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	return out
}
