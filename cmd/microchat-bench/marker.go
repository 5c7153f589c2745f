package main

import (
	"bytes"
	"strconv"
	"time"
)

// The text of every message the tool sends is
//
//	mcb1 D OWNER SENT xxxx...
//
// D is the direction ('v' visitor->agent, 'a' agent->visitor, 'f' the
// floor's echo), OWNER the index of the agent that owns the conversation,
// SENT when it was sent, in nanoseconds of this process's monotonic clock
// since it started, and the x's pad it to -size bytes. Whoever receives an
// event finds the text in the frame's bytes (no JSON decoding on the hot
// path: tens of thousands of frames a second share two cores with the
// server) and subtracts SENT from the clock.

const markerPrefix = "mcb1 "

// minTextSize is the least -size: room for the prefix and the numbers.
const minTextSize = 40

var epoch = time.Now()

// clock is now on the monotonic clock, in nanoseconds since start.
func clock() int64 { return int64(time.Since(epoch)) }

// messageText is the text of a message sent at sent.
func messageText(dir byte, owner int, sent int64, size int) string {
	b := make([]byte, 0, size)
	b = append(b, markerPrefix...)
	b = append(b, dir, ' ')
	b = strconv.AppendInt(b, int64(owner), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'x')
	}
	return string(b)
}

// findMarker finds the first text of direction dir in frame and returns
// its owner and send time.
func findMarker(frame []byte, dir byte) (owner int, sent int64, ok bool) {
	pat := [...]byte{'m', 'c', 'b', '1', ' ', dir, ' '}
	i := bytes.Index(frame, pat[:])
	if i < 0 {
		return 0, 0, false
	}
	rest := frame[i+len(pat):]
	o, rest, ok := leadingInt(rest)
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return 0, 0, false
	}
	s, rest, ok := leadingInt(rest[1:])
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return 0, 0, false
	}
	return int(o), s, true
}

func leadingInt(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, b[i:], i > 0
}

// jsonString returns the value of the first "key":"value" in frame, or
// nil. Frames are compact JSON from encoding/json, whose structs put the
// frame's "type" first, so the first "type" is the frame's own.
func jsonString(frame []byte, key string) []byte {
	pat := make([]byte, 0, len(key)+4)
	pat = append(pat, '"')
	pat = append(pat, key...)
	pat = append(pat, '"', ':', '"')
	i := bytes.Index(frame, pat)
	if i < 0 {
		return nil
	}
	v := frame[i+len(pat):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

// frameType is the type of a server frame: hello, event, ack, error, ...
func frameType(frame []byte) string {
	return string(jsonString(frame, "type"))
}

// jsonInt returns the integer value of the first "key": in frame (compact
// JSON, as jsonString assumes): the first "seq" of an event frame is the
// event's, of an ack frame its message's.
func jsonInt(frame []byte, key string) (int64, bool) {
	pat := make([]byte, 0, len(key)+3)
	pat = append(pat, '"')
	pat = append(pat, key...)
	pat = append(pat, '"', ':')
	i := bytes.Index(frame, pat)
	if i < 0 {
		return 0, false
	}
	n, _, ok := leadingInt(frame[i+len(pat):])
	return n, ok
}
