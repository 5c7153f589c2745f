package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Source addresses. Linux picks a free ephemeral port per source address
// (32768-60999 here, about 28,000) and its search slows as they fill up, so
// sockets are spread over several loopback addresses, about perSource
// each. A port closed by this side sits in TIME_WAIT for 60 s, so by
// default only addresses with no socket at all are taken.
const (
	perSource    = 4000
	maxPerSource = 28000
	maxSources   = 1000
)

// parseSources returns the addresses to dial from for conns sockets:
// spec is a comma-separated list of loopback IPv4 addresses, a count, or
// empty (one address per perSource sockets). Counted addresses are the
// first from 127.0.0.2 on that inUse does not hold.
func parseSources(spec string, conns int, inUse map[netip.Addr]bool) ([]netip.Addr, error) {
	spec = strings.TrimSpace(spec)
	count := 0
	if spec == "" {
		count = max(1, (conns+perSource-1)/perSource)
	} else if n, err := strconv.Atoi(spec); err == nil {
		if n < 1 || n > maxSources {
			return nil, fmt.Errorf("-sources %d: want 1..%d addresses", n, maxSources)
		}
		count = n
	}
	if count > 0 {
		return freeSources(count, inUse)
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, f := range strings.Split(spec, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-sources: %q is not an IP address", f)
		}
		if !a.Is4() || !a.IsLoopback() {
			return nil, fmt.Errorf("-sources: %s is not a loopback IPv4 address (127.0.0.0/8)", a)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) > maxSources {
		return nil, fmt.Errorf("-sources: %d addresses, want at most %d", len(out), maxSources)
	}
	return out, nil
}

// freeSources returns n loopback addresses from 127.0.0.2 on, skipping
// those in use and the x.x.x.0 and x.x.x.255 of each /24.
func freeSources(n int, inUse map[netip.Addr]bool) ([]netip.Addr, error) {
	var out []netip.Addr
	for a := netip.AddrFrom4([4]byte{127, 0, 0, 2}); a.Is4() && len(out) < n; a = a.Next() {
		b := a.As4()
		if b[0] != 127 {
			break
		}
		if b[3] == 0 || b[3] == 255 || inUse[a] {
			continue
		}
		out = append(out, a)
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d free loopback source addresses, want %d", len(out), n)
	}
	return out, nil
}

// addrsInUse returns the local IPv4 addresses of every TCP socket of this
// machine's network namespace, in any state (TIME_WAIT included), from
// /proc/net/tcp; nil when it cannot be read.
func addrsInUse() map[netip.Addr]bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseProcNetTCP(f)
}

// parseProcNetTCP reads /proc/net/tcp: each line after the header has
// "sl local_address rem_address st ...", an address being the IPv4 address
// as a little-endian hex word, a colon and the port.
func parseProcNetTCP(r io.Reader) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		host, _, ok := strings.Cut(fields[1], ":")
		b, err := hex.DecodeString(host)
		if !ok || err != nil || len(b) != 4 {
			continue
		}
		out[netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]})] = true
	}
	return out
}

// describeSources is "127.0.0.2-127.0.0.6 (5)" or a list.
func describeSources(addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return "none"
	}
	contiguous := true
	for i := 1; i < len(addrs); i++ {
		if addrs[i] != addrs[i-1].Next() {
			contiguous = false
		}
	}
	if len(addrs) == 1 {
		return addrs[0].String()
	}
	if contiguous {
		return fmt.Sprintf("%s-%s", addrs[0], addrs[len(addrs)-1])
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// dialerFrom dials TCP from source address src.
func dialerFrom(src netip.Addr) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src.AsSlice()},
		Timeout:   10 * time.Second,
	}
}

// errKind names an error for the error counts: the errno or condition
// when there is one, otherwise its (shortened) text.
func errKind(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free port on the source address (EADDRNOTAVAIL)"
	case errors.Is(err, syscall.EADDRINUSE):
		return "address in use"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by the server"
	case errors.Is(err, net.ErrClosed):
		return "closed by the tool"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
