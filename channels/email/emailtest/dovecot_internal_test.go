package emailtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/microdeets/microchat/inbox/inboxtest"
)

// TestDovecotGroup checks what stop relies on to see every Dovecot
// process gone: a live member of the group is listed, a zombie is not
// (PID 1 here reaps no orphans, so a zombie may stay forever, and
// kill(-pgid, 0) still finds it).
func TestDovecotGroup(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	pgid := cmd.Process.Pid
	if live := dovecotGroup(pgid); len(live) != 1 || !strings.Contains(live[0], "(sleep)") {
		t.Errorf("dovecotGroup() = %q, want the sleep process", live)
	}

	cmd.Process.Kill()
	inboxtest.Eventually(t, "the killed process to be a zombie", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pgid) + "/stat")
		if err != nil {
			t.Fatalf("reaped before Wait: %v", err)
		}
		return strings.Contains(string(b), ") Z ")
	})
	if syscall.Kill(-pgid, 0) != nil {
		t.Error("kill(-pgid, 0) fails for a group of zombies: the /proc scan is not needed")
	}
	if live := dovecotGroup(pgid); len(live) != 0 {
		t.Errorf("dovecotGroup() = %q with a zombie, want none", live)
	}
	cmd.Wait()
}
