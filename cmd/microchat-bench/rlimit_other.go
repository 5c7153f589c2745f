//go:build !unix

package main

import (
	"errors"
	"time"
)

func raiseOpenFiles() (cur, hard uint64, err error) {
	return 0, 0, errors.New("open-file limits are not known on this system")
}

func toolCPU() time.Duration { return 0 }
