package clustertest

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procAttr makes the kernel kill a node when the test process dies, so
// that a test binary killed by its -timeout leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// Owner returns the node whose process holds the client side of the TCP
// connection from local (its "ip:port", as the server in the test saw the
// remote address: emailtest's ClientAddrs or HeldFrom), or nil when no
// running node does (the connection is gone, or another process holds
// it). It reads /proc/net/tcp for the socket's inode, then each node's
// /proc/PID/fd.
func (c *Cluster) Owner(local string) *Node {
	c.t.Helper()
	inode, err := tcpInode(local)
	if err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	if inode == "" {
		return nil
	}
	want := "socket:[" + inode + "]"
	for _, n := range c.Nodes {
		pid := n.Pid()
		if pid == 0 {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // it exited meanwhile
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == want {
				return n
			}
		}
	}
	return nil
}

// tcpInode returns the inode of the IPv4 TCP socket bound to local
// ("127.0.0.1:PORT"), "" when there is none.
func tcpInode(local string) (string, error) {
	ap, err := netip.ParseAddrPort(local)
	if err != nil || !ap.Addr().Is4() {
		return "", fmt.Errorf("Owner(%q): want an IPv4 address and port", local)
	}
	ip := ap.Addr().As4()
	// /proc/net/tcp writes the address as the 32-bit word in host order
	// (little-endian here), the port in hex.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[1] != want {
			continue
		}
		if _, err := strconv.ParseUint(fields[9], 10, 64); err == nil && fields[9] != "0" {
			return fields[9], nil
		}
	}
	return "", sc.Err()
}
