//go:build !linux

package clustertest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }

// Owner needs Linux's /proc.
func (c *Cluster) Owner(local string) *Node {
	c.t.Helper()
	c.t.Skip("clustertest: Owner needs Linux (/proc)")
	return nil
}
