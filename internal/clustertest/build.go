package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Package is the import path of the binary that Binary builds.
const Package = "github.com/microdeets/microchat/cmd/microchat"

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of the microchat binary, built (pure Go,
// CGO_ENABLED=0, as it ships) the first time a test of this test binary
// asks for it, into a temporary directory that [Main] removes. A build
// that fails fails every test that asks, with the compiler's output.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "microchat-clustertest-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "microchat")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		cmd := exec.Command(gobin, "build", "-o", build.path, Package)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build %s: %v\n%s", Package, err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("clustertest: %v", build.err)
	}
	return build.path
}

// Main runs the tests and removes the binary that Binary built; call it
// from TestMain: os.Exit(clustertest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}
