package config

import (
	"strings"
	"testing"
	"time"
)

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"100B", 100, true},
		{"512KiB", 512 << 10, true},
		{"10MiB", 10 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1KB", 1000, true},
		{"1MB", 1_000_000, true},
		{"2GB", 2_000_000_000, true},
		{"10 mib", 10 << 20, true},
		{" 7 ", 7, true},
		{"8191PiB", 0, false},
		{"9999999999TiB", 0, false},
		{"99999999999999999999", 0, false},
		{"-1", 0, false},
		{"-1MiB", 0, false},
		{"1.5MiB", 0, false},
		{"ten", 0, false},
		{"MiB", 0, false},
		{"10MiBs", 0, false},
		{"", 0, false},
		{"0x10", 0, false},
		{"1e6", 0, false},
	}
	for _, tt := range tests {
		var s Size
		err := s.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || s != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, ok %v", tt.in, s, err, tt.want, tt.ok)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		s    Size
		want string
	}{
		{0, "0"},
		{1 << 20, "1MiB"},
		{16 << 10, "16KiB"},
		{1_000_000, "1MB"},
		{100, "100B"},
		{1 << 40, "1TiB"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.s), got, tt.want)
		}
		var back Size
		if err := back.UnmarshalText([]byte(tt.want)); err != nil || back != tt.s {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %d", tt.want, back, err, int64(tt.s))
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		str  string
		ok   bool
	}{
		{"30s", 30 * time.Second, "30s", true},
		{"5m", 5 * time.Minute, "5m", true},
		{"720h", 720 * time.Hour, "720h", true},
		{"1h30m", 90 * time.Minute, "1h30m", true},
		{"1h0m1s", time.Hour + time.Second, "1h0m1s", true},
		{"1.5s", 1500 * time.Millisecond, "1.5s", true},
		{"0", 0, "0s", true},
		{"-1s", -time.Second, "-1s", true}, // rejected by validation, not parsing
		{"30", 0, "", false},
		{"30d", 0, "", false},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || d.D() != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, ok %v", tt.in, d.D(), err, tt.want, tt.ok)
		}
		if tt.ok && d.String() != tt.str {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.want, d.String(), tt.str)
		}
	}
}

func TestTLSMode(t *testing.T) {
	for in, want := range map[string]TLSMode{"implicit": TLSImplicit, "STARTTLS": TLSStartTLS, "none": TLSNone} {
		var m TLSMode
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("UnmarshalText(%q) = %q, %v", in, m, err)
		}
	}
	var m TLSMode
	if err := m.UnmarshalText([]byte("ssl")); err == nil {
		t.Errorf("UnmarshalText(ssl) = nil, want error")
	}
}

func TestSQLiteDSN(t *testing.T) {
	tests := []struct{ url, dsn string }{
		{"", "data/microchat.db"},
		{"sqlite:/var/lib/m.db", "/var/lib/m.db"},
		{"sqlite://rel/m.db", "rel/m.db"},
		{"sqlite:///abs/m.db", "/abs/m.db"},
		{"file:m.db?_pragma=busy_timeout(5000)", "file:m.db?_pragma=busy_timeout(5000)"},
	}
	for _, tt := range tests {
		c := Defaults()
		c.Database.URL = tt.url
		if dsn, ok := c.SQLiteDSN(); !ok || dsn != tt.dsn {
			t.Errorf("SQLiteDSN() for %q = %q, %v; want %q", tt.url, dsn, ok, tt.dsn)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Defaults()
	c.Database.URL = "postgres://microchat:s3cret@db:5432/chat?sslmode=disable"
	c.Mailboxes = []Mailbox{
		{Name: "a", IMAP: IMAP{Username: "u", Password: "imap-secret"}, SMTP: SMTP{Username: "u", Password: "smtp-secret"}},
		{Name: "b", IMAP: IMAP{Password: "other"}},
	}
	r := c.Redacted()
	if s := strings.Join([]string{r.Database.URL, r.Mailboxes[0].IMAP.Password, r.Mailboxes[0].SMTP.Password, r.Mailboxes[1].IMAP.Password}, " "); strings.Contains(s, "secret") || strings.Contains(s, "other") {
		t.Fatalf("Redacted() leaks a password: %s", s)
	}
	if r.Mailboxes[0].IMAP.Password != "[redacted]" || r.Mailboxes[1].SMTP.Password != "" || r.Mailboxes[0].IMAP.Username != "u" {
		t.Fatalf("Redacted() = %+v", r.Mailboxes)
	}
	if r.Database.URL != "postgres://microchat:xxxxx@db:5432/chat?sslmode=disable" {
		t.Fatalf("Redacted().Database.URL = %q", r.Database.URL)
	}
	if c.Mailboxes[0].IMAP.Password != "imap-secret" || c.Database.URL != "postgres://microchat:s3cret@db:5432/chat?sslmode=disable" {
		t.Fatalf("Redacted() changed its receiver: %+v", c)
	}
	c.Database.URL = "postgres://db/chat?user=u&password=s3cret"
	if r := c.Redacted(); strings.Contains(r.Database.URL, "s3cret") {
		t.Fatalf("Redacted().Database.URL = %q", r.Database.URL)
	}
	c.Database.URL = "sqlite:./x.db"
	if r := c.Redacted(); r.Database.URL != c.Database.URL {
		t.Fatalf("Redacted().Database.URL = %q, want unchanged", r.Database.URL)
	}
}
