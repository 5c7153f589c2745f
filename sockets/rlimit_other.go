//go:build !unix

package sockets

func openFileLimit() int { return 0 }
