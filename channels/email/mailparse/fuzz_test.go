package mailparse_test

import (
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
)

// Fuzz targets for every parser of untrusted input. The seeds (testdata/
// and a few edge cases) run in plain go test; go test -fuzz=FuzzParse
// explores from them.

// maxFuzzTime bounds one input of a few KB: far above what a linear parse
// takes on any machine, far below what a quadratic one takes on a crafted
// input.
const maxFuzzTime = 2 * time.Second

func addTestdata(f *testing.F) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		f.Fatalf("testdata: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}

func FuzzParse(f *testing.F) {
	addTestdata(f)
	f.Add([]byte(head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b"))
	f.Add([]byte(head + "Content-Type: text/html\r\n\r\n<blockquote type=cite><div class=gmail_quote>x</div></blockquote><p>y"))
	f.Add([]byte(head + "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b\r\nStatus: 5.0.0\r\n--b--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		e, err := mailparse.Parse(raw, mailparse.Options{OwnAddresses: ownAddresses, MaxAttachmentBytes: 1 << 20})
		if d := time.Since(start); d > maxFuzzTime {
			t.Fatalf("Parse() of %d bytes took %v", len(raw), d)
		}
		if err != nil {
			var pe *mailparse.ParseError
			if !errors.As(err, &pe) || pe.Reason == "" || !utf8.ValidString(pe.Reason) {
				t.Fatalf("Parse() = %v, want a *ParseError with a reason", err)
			}
			return
		}
		if e.From.Addr == "" {
			t.Fatalf("Parse() gave no From address")
		}
		checkInvariants(t, raw, e)
	})
}

func FuzzTrimQuoted(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		if e, err := mailparse.Parse(raw, mailparse.Options{}); err == nil {
			f.Add(e.FullText)
		}
	}
	f.Add("Thanks!\n\nOn Mon, 4 Mar 2024, Support wrote:\n> Hi\n")
	f.Add("> a\nb\n> c\n-- \nsig\nSent from my iPhone")
	f.Add("x\nFrom: a\nSent: b\nTo: c\nSubject: FW: d\n")
	f.Fuzz(func(t *testing.T, text string) {
		start := time.Now()
		out := mailparse.TrimQuoted(text)
		if d := time.Since(start); d > maxFuzzTime {
			t.Fatalf("TrimQuoted() of %d bytes took %v", len(text), d)
		}
		// Trimming cuts lines off, it never makes text up, and it never
		// leaves nothing of something.
		if !strings.Contains(text, out) {
			t.Fatalf("TrimQuoted(%q) = %q, not part of it", text, out)
		}
		if strings.TrimSpace(text) != "" && strings.TrimSpace(out) == "" {
			t.Fatalf("TrimQuoted(%q) = %q", text, out)
		}
		// The HTML trimmer and converter on the same input: no panic,
		// bounded.
		h := mailparse.TrimQuotedHTML(text)
		if len(h) > 4*len(text)+64 {
			t.Fatalf("TrimQuotedHTML(%d bytes) = %d bytes", len(text), len(h))
		}
		s := inbox.SanitizeEmailHTML(h)
		if inbox.SanitizeEmailHTML(s) != s {
			t.Fatalf("SanitizeEmailHTML(%q) = %q is not stable", h, s)
		}
		_ = mailparse.HTMLToText(text)
		if d := time.Since(start); d > maxFuzzTime {
			t.Fatalf("HTML of %d bytes took %v", len(text), d)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"jane@example.com", "Jane Doe <Jane@Example.COM>", `"Doe, Jane" <jane@example.com>`,
		"Doe, Jane <jane@example.com>", "=?UTF-8?Q?M=C3=BCller=2C_Anna?= <anna@x.example>; Peter Pan peter@x.example",
		"jane@example.com (Jane Doe)", "undisclosed-recipients:;", "Friends: a@x.example, b@x.example;, c@x.example",
		"support+c42-abc@example.com", "<a@b@c>", "(((((", `"\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		list := mailparse.ParseAddressList(s)
		a, err := mailparse.ParseAddress(s)
		if d := time.Since(start); d > maxFuzzTime {
			t.Fatalf("ParseAddress() of %d bytes took %v", len(s), d)
		}
		if (err == nil) != (len(list) > 0) || err == nil && a != list[0] {
			t.Fatalf("ParseAddress(%q) = %+v, %v; ParseAddressList = %+v", s, a, err, list)
		}
		for _, a := range list {
			at := strings.LastIndexByte(a.Addr, '@')
			if at <= 0 || at == len(a.Addr)-1 || strings.ContainsAny(a.Addr, " \t\r\n<>,;()\x00") || !utf8.ValidString(a.Addr) {
				t.Fatalf("ParseAddressList(%q) gave address %q", s, a.Addr)
			}
			if d := a.Addr[at+1:]; d != strings.ToLower(d) {
				t.Fatalf("ParseAddressList(%q) gave domain %q", s, d)
			}
			if inbox.CleanLine(a.Name) != a.Name || len(a.Name) > 200 {
				t.Fatalf("ParseAddressList(%q) gave name %q", s, a.Name)
			}
			// What we read, written back the standard way, reads the same.
			written := (&mail.Address{Name: a.Name, Address: a.Addr}).String()
			if again, err := mailparse.ParseAddress(written); err != nil || again.Addr != a.Addr {
				t.Fatalf("ParseAddress(%q) = %+v, %v; it was %+v (from %q)", written, again, err, a, s)
			}
			token, ok := mailparse.PlusToken(a.Addr, "support@example.com")
			if ok != (token != "") || ok && !strings.HasSuffix(a.Addr[:at], "+"+token) {
				t.Fatalf("PlusToken(%q) = %q, %t", a.Addr, token, ok)
			}
		}
	})
}
