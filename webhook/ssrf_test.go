package webhook

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// checkURLTests are endpoint URLs and how a Guard without Allow takes them:
// ok, refused as an address (blocked, ErrBlocked) or as a URL.
var checkURLTests = []struct {
	url     string
	ok      bool
	blocked bool
}{
	// Loopback in every written form.
	{"http://127.0.0.1/", false, true},
	{"http://127.0.0.1:8080/hook", false, true},
	{"http://127.1.2.3/", false, true},
	{"http://2130706433/", false, true},          // decimal
	{"http://0177.0.0.1/", false, true},          // octal
	{"http://0177.0000.0000.0001/", false, true}, // octal
	{"http://017700000001/", false, true},        // octal, one number
	{"http://0x7f.0.0.1/", false, true},          // hex
	{"http://0X7F.0.0.1/", false, true},          // hex
	{"http://0x7f000001/", false, true},          // hex, one number
	{"http://0x7f.1/", false, true},              // hex, short
	{"http://127.1/", false, true},               // short
	{"http://127.0.1/", false, true},             // short
	{"http://127.0.0.1./", false, true},          // trailing dot
	{"http://2130706433./", false, true},         // trailing dot
	{"http://１２７。０。０。１/", false, true},           // full-width, as net/http maps it
	{"http://[::1]/", false, true},
	{"http://[0:0:0:0:0:0:0:1]/", false, true},
	{"http://[::ffff:127.0.0.1]/", false, true}, // IPv4-mapped
	{"http://[::ffff:7f00:1]/", false, true},    // IPv4-mapped
	{"http://[::127.0.0.1]/", false, true},      // IPv4-compatible
	{"http://[::7f00:1]/", false, true},         // IPv4-compatible
	{"http://[::ffff:0:7f00:1]/", false, true},  // IPv4-translated
	{"http://[64:ff9b::7f00:1]/", false, true},  // NAT64
	{"http://[64:ff9b::127.0.0.1]/", false, true},
	{"http://[2002:7f00:1::]/", false, true},  // 6to4
	{"http://[2002:7f00:1::1]/", false, true}, // 6to4
	{"http://localhost/", false, true},
	{"http://LocalHost:8080/", false, true},
	{"http://localhost./", false, true},
	{"http://a.localhost/", false, true},
	{"http://b.a.localhost./", false, true},

	// This host, this network, and ranges that are nobody's on the Internet.
	{"http://[::]/", false, true},
	{"http://0.0.0.0/", false, true},
	{"http://0/", false, true},
	{"http://0.1.2.3/", false, true},
	{"http://169.254.169.254/latest/meta-data/", false, true},
	{"http://[::ffff:169.254.169.254]/", false, true},
	{"http://[64:ff9b::a9fe:a9fe]/", false, true},
	{"http://[2002:a9fe:a9fe::]/", false, true},
	{"http://[fe80::1]/", false, true},
	{"http://[fe80::1%25eth0]/", false, true},
	{"http://[fc00::1]/", false, true},
	{"http://[fd12:3456::1]/", false, true},
	{"http://[fec0::1]/", false, true},
	{"http://[ff02::1]/", false, true},
	{"http://[ff0e::1]/", false, true},
	{"http://224.0.0.1/", false, true},
	{"http://239.255.255.250/", false, true},
	{"http://10.0.0.1/", false, true},
	{"http://10.1.1/", false, true}, // short: 10.1.0.1
	{"http://012.1/", false, true},  // octal 10.0.0.1
	{"http://172.16.0.1/", false, true},
	{"http://172.31.255.255/", false, true},
	{"http://192.168.1.1/", false, true},
	{"http://[::ffff:192.168.1.1]/", false, true},
	{"http://100.64.0.1/", false, true},
	{"http://100.127.255.255/", false, true},
	{"http://192.0.0.8/", false, true},
	{"http://192.0.2.1/", false, true},
	{"http://198.18.0.1/", false, true},
	{"http://198.51.100.1/", false, true},
	{"http://203.0.113.1/", false, true},
	{"http://240.0.0.1/", false, true},
	{"http://255.255.255.255/", false, true},
	{"http://[2001:db8::1]/", false, true},
	{"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", false, true}, // Teredo
	{"http://[100::1]/", false, true},
	{"http://[::1:2:3:4]/", false, true}, // reserved
	{"http://[64:ff9b:1::1]/", false, true},

	// Not an endpoint URL.
	{"", false, false},
	{"example.com/hook", false, false},
	{"/hook", false, false},
	{"//example.com/hook", false, false},
	{"ftp://example.com/", false, false},
	{"javascript:alert(1)", false, false},
	{"http:example.com", false, false},
	{"http:///hook", false, false},
	{"http://user:pw@example.com/", false, false},
	{"http://user@example.com/", false, false},
	{"http://@example.com/", false, false},
	{"http://example.com/" + strings.Repeat("a", 2048), false, false},
	{"http://exa mple.com/", false, false},
	{"http://ex!ample.com/", false, false},
	{"http://a..b/", false, false},
	{"http://.example.com/", false, false},
	{"http://example.com../", false, false},
	{"http://127.0.0.1%25eth0/", false, false},
	{"http://0x/", false, false},
	{"http://08.0.0.1/", false, false},
	{"http://1.2.3.4.5/", false, false},
	{"http://256.1.1.1/", false, false},
	{"http://1.2.3.256/", false, false},
	{"http://4294967296/", false, false},
	{"http://0x100000000/", false, false},
	{"http://example.123/", false, false},
	{"http://127.0.0.1.example.0x7f/", false, false},
	{"http://[127.0.0.1]/", false, false},

	// Public endpoints.
	{"http://93.184.216.34/", true, false},
	{"http://93.184.216.34:8080/hook?x=1", true, false},
	{"http://1572395042/", true, false}, // 93.184.216.34
	{"http://[2606:2800:220:1:248:1893:25c8:1946]/", true, false},
	{"http://[::ffff:93.184.216.34]/", true, false},
	{"http://[64:ff9b::5db8:d822]/", true, false}, // NAT64 of 93.184.216.34
	{"http://[2002:5db8:d822::1]/", true, false},  // 6to4 of 93.184.216.34
	{"https://example.com/", true, false},
	{"https://example.com./hook", true, false},
	{"HTTPS://Example.COM:8443/hook#x", true, false},
	{"https://hooks.example.com/a/b?c=d", true, false},
	{"https://under_score.example.com/", true, false},
	{"https://bücher.example/", true, false},
	{"https://xn--bcher-kva.example/", true, false},
	{"https://localhost.example.com/", true, false},
	{"https://0x7f.example.com/", true, false},
	{"https://127.0.0.1.example.com/", true, false},
	{"http://example.com/" + strings.Repeat("a", 2048-len("http://example.com/")), true, false},
}

func TestCheckURL(t *testing.T) {
	var g Guard
	for _, tc := range checkURLTests {
		u, err := g.CheckURL(tc.url)
		switch {
		case tc.ok && (err != nil || u == nil):
			t.Errorf("CheckURL(%q) = %v, want ok", tc.url, err)
		case !tc.ok && err == nil:
			t.Errorf("CheckURL(%q) = %v, want an error", tc.url, u)
		case !tc.ok && errors.Is(err, ErrBlocked) != tc.blocked:
			t.Errorf("CheckURL(%q) = %v, want ErrBlocked %v", tc.url, err, tc.blocked)
		case !tc.ok && u != nil:
			t.Errorf("CheckURL(%q) = %v and %v", tc.url, u, err)
		}
	}
}

func TestCheckURLAllow(t *testing.T) {
	g := Guard{Allow: loopback}
	for _, raw := range []string{
		"http://127.0.0.1:8080/hook", "http://127.9.9.9/", "http://2130706433/", "http://0x7f.1/",
		"http://[::ffff:127.0.0.1]/", "http://93.184.216.34/", "https://example.com/",
	} {
		if _, err := g.CheckURL(raw); err != nil {
			t.Errorf("CheckURL(%q) with Allow 127.0.0.0/8 = %v, want ok", raw, err)
		}
	}
	// The rest stays refused, and so do names for this machine.
	for _, raw := range []string{"http://[::1]/", "http://10.0.0.1/", "http://169.254.169.254/", "http://localhost/"} {
		if _, err := g.CheckURL(raw); !errors.Is(err, ErrBlocked) {
			t.Errorf("CheckURL(%q) with Allow 127.0.0.0/8 = %v, want ErrBlocked", raw, err)
		}
	}
}

// TestParseHost checks that the written forms mean the addresses that
// inet_aton and the WHATWG URL Standard give them.
func TestParseHost(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1":             "127.0.0.1",
		"2130706433":            "127.0.0.1",
		"0177.0.0.1":            "127.0.0.1",
		"017700000001":          "127.0.0.1",
		"0x7f.0.0.1":            "127.0.0.1",
		"0x7F000001":            "127.0.0.1",
		"0x00000000007f.1":      "127.0.0.1",
		"127.1":                 "127.0.0.1",
		"10.1.1":                "10.1.0.1",
		"1.2.3":                 "1.2.0.3",
		"1.0x10203":             "1.1.2.3",
		"0":                     "0.0.0.0",
		"00":                    "0.0.0.0",
		"4294967295":            "255.255.255.255",
		"255.16777215":          "255.255.255.255",
		"010.0.0.1":             "8.0.0.1",
		"127.0.0.1.":            "127.0.0.1",
		"１２７。０。０。１":             "127.0.0.1",
		"::ffff:127.0.0.1":      "::ffff:127.0.0.1",
		"fe80::1%eth0":          "fe80::1%eth0",
		"2606:2800:220:1::1946": "2606:2800:220:1::1946",
	} {
		a, isIP, err := parseHost(host)
		if err != nil || !isIP || a.String() != want {
			t.Errorf("parseHost(%q) = %v, %v, %v; want %s", host, a, isIP, err, want)
		}
	}
	for _, host := range []string{"example.com", "Example.COM.", "a-b_c.example", "xn--bcher-kva.example", "0x7f.example"} {
		if a, isIP, err := parseHost(host); err != nil || isIP {
			t.Errorf("parseHost(%q) = %v, %v, %v; want a name", host, a, isIP, err)
		}
	}
}

func TestCheck(t *testing.T) {
	var g Guard
	for _, tc := range []struct {
		addr string
		why  string // in the error; "" for allowed
	}{
		{"127.0.0.1", "127.0.0.1 is a loopback address"},
		{"::1", "::1 is a loopback address"},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1, a loopback address"},
		{"64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe is an IPv6 address that embeds 169.254.169.254, a link-local address"},
		{"2002:a00:1::", "2002:a00:1:: is an IPv6 address that embeds 10.0.0.1, a private address"},
		{"0.0.0.0", "0.0.0.0 is the unspecified address"},
		{"::", ":: is the unspecified address"},
		{"10.0.0.1", "10.0.0.1 is a private address"},
		{"100.64.0.1", "100.64.0.1 is a shared (carrier-grade NAT) address"},
		{"169.254.169.254", "169.254.169.254 is a link-local address"},
		{"fe80::1%eth0", "fe80::1 is a link-local address"},
		{"fc00::1", "fc00::1 is a unique local address"},
		{"fec0::1", "fec0::1 is a site-local address"},
		{"ff02::1", "ff02::1 is a multicast address"},
		{"224.0.0.251", "224.0.0.251 is a multicast address"},
		{"255.255.255.255", "255.255.255.255 is the broadcast address"},
		{"240.0.0.1", "240.0.0.1 is a reserved address"},
		{"::1:2:3:4", "outside IPv6 global unicast"},
		{"::8.8.8.8", "outside IPv6 global unicast"}, // IPv4-compatible, deprecated
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
		{"2002:808:808::1", ""},
		{"2606:4700:4700::1111", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"11.0.0.1", ""},
	} {
		err := g.Check(netip.MustParseAddr(tc.addr))
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("Check(%s) = %v, want nil", tc.addr, err)
		case tc.why != "" && (!errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "webhooks.allow_networks")):
			t.Errorf("Check(%s) = %v, want ErrBlocked saying %q", tc.addr, err, tc.why)
		}
	}
	if err := g.Check(netip.Addr{}); !errors.Is(err, ErrBlocked) {
		t.Errorf("Check(zero Addr) = %v, want ErrBlocked", err)
	}

	allow := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	for _, a := range []string{"127.0.0.1", "127.255.0.1", "::ffff:127.0.0.1", "fd00::1", "fd00::1%eth0"} {
		if err := allow.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("Check(%s) with Allow = %v, want nil", a, err)
		}
	}
	for _, a := range []string{"::1", "10.0.0.1", "fc00::1"} {
		if err := allow.Check(netip.MustParseAddr(a)); !errors.Is(err, ErrBlocked) {
			t.Errorf("Check(%s) with Allow = %v, want ErrBlocked", a, err)
		}
	}
}

// FuzzCheckURL: CheckURL never panics, and what it accepts is an http or
// https URL whose host, if an IP address in any form, is not blocked.
func FuzzCheckURL(f *testing.F) {
	for _, tc := range checkURLTests {
		f.Add(tc.url)
	}
	var g Guard
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckURL(raw)
		if err != nil {
			if u != nil {
				t.Fatalf("CheckURL(%q) = %v and %v", raw, u, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Hostname() == "" || len(raw) > MaxURLLen {
			t.Fatalf("CheckURL(%q) accepted %#v", raw, u)
		}
		host := u.Hostname()
		a, isIP, err := parseHost(host)
		if err != nil {
			t.Fatalf("CheckURL(%q) accepted host %q, which parseHost refuses: %v", raw, host, err)
		}
		if isIP && g.Check(a) != nil {
			t.Fatalf("CheckURL(%q) accepted blocked %s", raw, a)
		}
		// However the standard library reads it.
		if a, err := netip.ParseAddr(host); err == nil && g.Check(a) != nil {
			t.Fatalf("CheckURL(%q) accepted blocked %s", raw, a)
		}
		if !isIP {
			name := strings.ToLower(strings.TrimSuffix(host, "."))
			if name == "localhost" || strings.HasSuffix(name, ".localhost") {
				t.Fatalf("CheckURL(%q) accepted %q", raw, host)
			}
		}
	})
}
