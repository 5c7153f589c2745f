//go:build unix

package sockets

import "syscall"

// openFileLimit is the process's RLIMIT_NOFILE (its soft limit, which the
// Go runtime raises to the hard one at start), or 0 if unknown.
func openFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 0
	}
	return int(l.Cur)
}
