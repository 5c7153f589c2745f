package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/idna"
)

// ErrBlocked is wrapped by every refusal of an address or host by a
// Guard (CheckURL, Check, and the dials of a NewClient), so that callers
// tell a refused endpoint from one that did not answer with errors.Is.
var ErrBlocked = errors.New("webhook: address not allowed")

// MaxURLLen is the longest endpoint URL CheckURL accepts, in bytes.
const MaxURLLen = 2048

// Guard decides which addresses a webhook may reach. A webhook URL is
// chosen by whoever configures it, so without a guard it is a way into
// the server's own network (server-side request forgery: Standard
// Webhooks spec, "Server side request forgery (SSRF)"). The zero Guard
// refuses every address that is not globally reachable unicast, and
// resolves names with the system's resolver.
type Guard struct {
	// Allow lists the networks an administrator allowed explicitly
	// (webhooks.allow_networks): an address inside one is allowed
	// whatever range it is in, e.g. 127.0.0.0/8 for a receiver on the
	// same machine.
	Allow []netip.Prefix

	// LookupIP resolves a host name to its addresses at each dial. Nil
	// means net.DefaultResolver.LookupNetIP(ctx, "ip", host); tests set it
	// to simulate DNS answers, such as a name that rebinds to 127.0.0.1.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckURL parses raw as a webhook endpoint and returns it when it may be
// used: an absolute http or https URL with a host, without userinfo, at
// most MaxURLLen bytes. A host written as an IP address, in any form a
// resolver or browser reads as one (parseHost: dotted decimal, a single
// number, octal, hex, the short forms of inet_aton, IPv6 with or without
// a zone, a trailing dot), is checked now with Check; "localhost" and the
// names under it are refused (RFC 6761, section 6.3). Other names pass:
// what they resolve to is checked at each dial (NewClient), since it may
// change. A refused address or name wraps ErrBlocked.
func (g Guard) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLen {
		return nil, fmt.Errorf("webhook: URL is %d bytes, at most %d", len(raw), MaxURLLen)
	}
	// The errors do not quote the URL: its query may hold a token.
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("webhook: URL does not parse: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("webhook: URL is not an absolute http or https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("webhook: URL has no host")
	}
	if u.User != nil {
		return nil, errors.New("webhook: URL has a user name or password; send credentials in the URL's path or query instead")
	}
	addr, isIP, err := parseHost(u.Hostname())
	if err != nil {
		return nil, err
	}
	if isIP {
		if err := g.Check(addr); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// parseHost reads a URL's host (without brackets or port) the way the
// HTTP client's dial does (NewClient), so that what is checked is what
// is dialed: a non-ASCII name is mapped to ASCII as net/http maps it
// (IDNA, UTS #46 lookup: "１２７。０。０。１" is 127.0.0.1); one trailing
// dot is dropped. It returns the address and true for an IP literal, or
// false for a host name, which it has checked for shape; "localhost" and
// names under it are refused with ErrBlocked.
//
// IPv4 literals follow inet_aton (glibc, which getaddrinfo uses on the
// system's resolvers) and the WHATWG URL Standard's IPv4 parser alike: one
// to four parts separated by dots, each decimal, octal (a leading 0) or
// hex (0x), the last one filling the remaining bytes ("127.1" is
// 127.0.0.1, "2130706433" too). As in the WHATWG URL Standard ("ends in a
// number checker"), a host whose last label is a number is an IPv4
// address or an error, never a name to resolve: "0x7f.1" cannot reach a
// resolver that reads it another way.
func parseHost(host string) (addr netip.Addr, isIP bool, err error) {
	if host == "" {
		return netip.Addr{}, false, errors.New("webhook: URL has no host")
	}
	if strings.Contains(host, ":") {
		// Only an IPv6 literal has colons (URL brackets removed).
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false, fmt.Errorf("webhook: host %q is not a valid IPv6 address", host)
		}
		return a, true, nil
	}
	name := host
	if !isASCII(name) {
		name, err = idna.Lookup.ToASCII(name)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("webhook: host %q is not a valid name: %v", host, err)
		}
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return netip.Addr{}, false, fmt.Errorf("webhook: host %q is not a valid host name", host)
		}
	}
	if endsInNumber(labels[len(labels)-1]) {
		a, ok := parseIPv4(labels)
		if !ok {
			return netip.Addr{}, false, fmt.Errorf("webhook: host %q is not a valid IPv4 address", host)
		}
		return a, true, nil
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return netip.Addr{}, false, fmt.Errorf("%w: %s is this machine (RFC 6761, section 6.3); allow 127.0.0.1's network with webhooks.allow_networks and use the address to reach it", ErrBlocked, host)
	}
	return netip.Addr{}, false, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// endsInNumber says whether a host's last label is a number, which makes
// the host an IPv4 address (WHATWG URL Standard, "ends in a number
// checker"): all decimal digits, or 0x followed by hex digits.
func endsInNumber(label string) bool {
	if strings.Trim(label, "0123456789") == "" {
		return true
	}
	if len(label) >= 2 && label[0] == '0' && label[1] == 'x' {
		return strings.Trim(label[2:], "0123456789abcdef") == ""
	}
	return false
}

// parseIPv4 reads the labels of a host as inet_aton does: a, a.b, a.b.c
// or a.b.c.d, each part decimal, octal (leading 0) or hex (0x, at least
// one digit), every part but the last at most 255 and the last filling
// the bytes left. Labels are lower case.
func parseIPv4(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, l := range labels {
		n, ok := parseIPv4Part(l)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(labels)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Part reads one part of an inet_aton address. Values past 32
// bits are refused rather than wrapped.
func parseIPv4Part(s string) (uint64, bool) {
	base := uint64(10)
	switch {
	case strings.HasPrefix(s, "0x"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n uint64
	for _, c := range []byte(s) {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
}

// Check returns nil when a may be dialed: it is inside one of g.Allow, or
// it is globally reachable unicast. Otherwise it returns an error
// wrapping ErrBlocked that names the address, the range it is in and how
// to allow it. The ranges are those of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890) that are not globally
// reachable, plus multicast and, for IPv6, everything outside global
// unicast (2000::/3, RFC 4291 section 2.4). An IPv6 address that carries
// an IPv4 address (IPv4-mapped and -compatible, RFC 4291 section 2.5.5;
// IPv4-translated, RFC 2765; NAT64, RFC 6052; 6to4, RFC 3056) is judged
// by that IPv4 address too: it is allowed if either is inside Allow, and
// refused if the IPv4 address is.
func (g Guard) Check(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: not an IP address", ErrBlocked)
	}
	a = a.WithZone("")
	v4, embeds := embeddedIPv4(a)
	for _, p := range g.Allow {
		if p.Contains(a) || embeds && p.Contains(v4) {
			return nil
		}
	}
	if embeds {
		if why := blockedBecause(v4); why != "" {
			if a.Is4In6() {
				// The same socket address as v4 (dual-stack sockets).
				return blockedError(a, "the IPv4-mapped form of "+v4.String()+", "+why)
			}
			return blockedError(a, "an IPv6 address that embeds "+v4.String()+", "+why)
		}
		if a.Is4In6() || prefixNAT64.Contains(a) {
			// Globally reachable when the IPv4 address is (RFC 6052,
			// section 3.1). 6to4 goes on to the IPv6 ranges; the
			// compatible and translated forms are outside 2000::/3.
			return nil
		}
	}
	if why := blockedBecause(a); why != "" {
		return blockedError(a, why)
	}
	return nil
}

func blockedError(a netip.Addr, why string) error {
	return fmt.Errorf("%w: %s is %s; allow its network with webhooks.allow_networks to reach it", ErrBlocked, a, why)
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries in one of
// the standard embeddings, and whether it carries one.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	low := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case a.Is4In6(), prefixIPv4Translated.Contains(a), prefixNAT64.Contains(a):
		return low, true
	case prefixIPv4Compatible.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return low, true
	case prefix6to4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

var (
	prefixIPv4Compatible = netip.MustParsePrefix("::/96")           // RFC 4291, section 2.5.5.1 (deprecated)
	prefixIPv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765, section 2.1
	prefixNAT64          = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052, section 2.1
	prefix6to4           = netip.MustParsePrefix("2002::/16")       // RFC 3056, section 2
	prefixGlobalUnicast  = netip.MustParsePrefix("2000::/3")        // RFC 4291, section 2.4
)

// blockedRanges are the ranges Check refuses, first match wins, with the
// words its error uses. Sources: the IANA Special-Purpose Address
// Registries (RFC 6890) for IPv4 and IPv6, their "Globally Reachable:
// False" rows, and the multicast and reserved ranges.
var blockedRanges = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address (RFC 1122, section 3.2.1.3)"},
	{netip.MustParsePrefix("0.0.0.0/8"), `in "this network" (RFC 1122, section 3.2.1.3)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address (RFC 1122, section 3.2.1.3)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address, where cloud metadata services answer (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address (RFC 5771)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address (RFC 919)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address (RFC 1112, section 4)"},

	{netip.MustParsePrefix("::/128"), "the unspecified address (RFC 4291, section 2.5.2)"},
	{netip.MustParsePrefix("::1/128"), "a loopback address (RFC 4291, section 2.5.3)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address (RFC 6666)"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local address (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address (RFC 4291, section 2.5.6)"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address (RFC 4291, section 2.7)"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address (RFC 4380)"},
	{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address (RFC 5180)"},
	{netip.MustParsePrefix("2001:10::/28"), "an ORCHID address (RFC 4843)"},
	{netip.MustParsePrefix("2001:20::/28"), "an ORCHIDv2 address (RFC 7343)"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address (RFC 3849)"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "a segment routing (SRv6) address (RFC 9602)"},
}

// blockedBecause says why a is refused, or "" if it is not.
func blockedBecause(a netip.Addr) string {
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	if a.Is6() && !prefixGlobalUnicast.Contains(a) {
		return "outside IPv6 global unicast, 2000::/3 (RFC 4291, section 2.4)"
	}
	return ""
}

// lookup resolves host with g.LookupIP, or the system's resolver.
func (g Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if g.LookupIP != nil {
		return g.LookupIP(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
