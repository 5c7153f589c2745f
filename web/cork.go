package web

import (
	"net"
	"sync"
	"time"
)

// corkConn is a socket's connection whose writes can be held and sent
// together: the agents' socket writes thousands of frames a second under
// load, and one write system call per frame cost more than the frames.
// While held, writes collect in a buffer; flush sends them in one write
// and releases the hold. Writes while not held go straight out, so a
// frame written by another goroutine (a pong from the read loop) waits at
// most until the holder's next flush.
type corkConn struct {
	net.Conn
	// timeout bounds each write to the connection.
	timeout time.Duration
	mu      sync.Mutex
	held    bool
	buf     []byte
	err     error // the first failed write; every later one fails too
}

// corkFlushAt is how much a hold collects before it is written anyway.
const corkFlushAt = 64 << 10

// hold makes the following writes collect until flush.
func (c *corkConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.held {
		c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkFlushAt {
		if err := c.send(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes what the hold collected and releases it; the error is the
// connection's first failed write, now or before.
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if c.err != nil {
		return c.err
	}
	return c.send()
}

func (c *corkConn) send() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, c.err = c.Conn.Write(c.buf)
	if cap(c.buf) > corkFlushAt*2 {
		c.buf = nil // a burst's buffer is not kept for an idle socket
	} else {
		c.buf = c.buf[:0]
	}
	return c.err
}

// Close sends what is held (gws writes a close frame and closes at once)
// and closes the connection.
func (c *corkConn) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.send()
	}
	c.held = false
	c.mu.Unlock()
	return c.Conn.Close()
}
