package web

import (
	"errors"
	"net"
	"testing"
	"time"
)

// countingConn records each write to the connection.
type countingConn struct {
	net.Conn
	writes []string
	fail   error
	closed bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }
func (c *countingConn) Close() error                     { c.closed = true; return nil }

func TestCorkConn(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under, timeout: time.Second}

	c.Write([]byte("a")) // not held: straight out
	c.hold()
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if len(under.writes) != 1 {
		t.Fatalf("writes while held reached the connection: %q", under.writes)
	}
	if err := c.flush(); err != nil {
		t.Fatalf("flush() = %v", err)
	}
	if got := under.writes; len(got) != 2 || got[1] != "bc" {
		t.Fatalf("writes = %q, want a then bc in one write", got)
	}
	c.Write([]byte("d")) // the hold ended with the flush
	if len(under.writes) != 3 {
		t.Fatalf("writes = %q, want d sent at once after the flush", under.writes)
	}

	// A hold that grows past corkFlushAt is written without waiting.
	c.hold()
	big := make([]byte, corkFlushAt)
	c.Write(big)
	if len(under.writes) != 4 {
		t.Fatalf("%d writes, want the large hold written at once", len(under.writes))
	}
	c.flush()

	// Close sends what is held: gws writes its close frame and closes.
	c.hold()
	c.Write([]byte("close frame"))
	c.Close()
	if got := under.writes[len(under.writes)-1]; got != "close frame" || !under.closed {
		t.Fatalf("last write %q, closed %v; want the held close frame sent before closing", got, under.closed)
	}

	// A failed write fails every later one and the flush.
	broken := &countingConn{fail: errors.New("connection reset")}
	c = &corkConn{Conn: broken, timeout: time.Second}
	c.hold()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("held write = %v, want nil until the flush", err)
	}
	if err := c.flush(); err == nil {
		t.Fatal("flush() = nil on a broken connection")
	}
	if _, err := c.Write([]byte("y")); err == nil {
		t.Fatal("write after a failed flush = nil")
	}
}
