package mailparse_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
)

const head = "From: Jane Doe <jane@customer.example>\r\nTo: support@example.com\r\nSubject: Test\r\nMessage-ID: <t@customer.example>\r\nMIME-Version: 1.0\r\n"

// allocated returns the bytes f allocates (the heap's total, so a
// concurrent goroutine's allocations count too: bounds are loose).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func parseError(t *testing.T, raw []byte, opt mailparse.Options) *mailparse.ParseError {
	t.Helper()
	_, err := mailparse.Parse(raw, opt)
	var pe *mailparse.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse() = %v, want a *ParseError", err)
	}
	return pe
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		raw      string
		opt      mailparse.Options
		reason   string
		tooLarge bool
	}{
		{"empty", "", mailparse.Options{}, "not a mail", false},
		{"no header", "Hello, this is just text.\r\nNo header at all.\r\n", mailparse.Options{}, "not a mail", false},
		{"binary", "\x00\x01\x02\xff\xfe", mailparse.Options{}, "not a mail", false},
		{"no sender", "To: support@example.com\r\nSubject: Who?\r\n\r\nHi\r\n", mailparse.Options{}, "no sender", false},
		{"junk sender", "From: nobody\r\nSubject: Who?\r\n\r\nHi\r\n", mailparse.Options{}, "no sender", false},
		{"too large", head + "\r\n" + strings.Repeat("x", 2000), mailparse.Options{MaxSize: 1000}, "larger than 1000 bytes", true},
		{"header too large", head + "X-Junk: " + strings.Repeat("y", 3000) + "\r\n\r\nHi\r\n", mailparse.Options{MaxHeaderBytes: 1000}, "header is larger than", true},
		{"too many fields", head + strings.Repeat("X-A: b\r\n", 10001) + "\r\nHi\r\n", mailparse.Options{}, "more than 10000 fields", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			pe := parseError(t, []byte(c.raw), c.opt)
			if !strings.Contains(pe.Reason, c.reason) || pe.TooLarge != c.tooLarge {
				t.Fatalf("ParseError = %+v, want reason %q, TooLarge %t", pe, c.reason, c.tooLarge)
			}
		})
	}
}

// TestParseDefaultLimits: a mail one byte over 50 MB is refused before
// anything is read of it; one of 2 MB of header too.
func TestParseDefaultLimits(t *testing.T) {
	raw := make([]byte, mailparse.DefaultMaxSize+1)
	copy(raw, head+"\r\n")
	if pe := parseError(t, raw, mailparse.Options{}); !pe.TooLarge || !strings.Contains(pe.Reason, "50 MB") {
		t.Fatalf("ParseError = %+v", pe)
	}
	raw = []byte(head + "X-Junk: " + strings.Repeat("y", mailparse.DefaultMaxHeaderBytes) + "\r\n\r\nHi\r\n")
	if pe := parseError(t, raw, mailparse.Options{}); !pe.TooLarge || !strings.Contains(pe.Reason, "2 MB") {
		t.Fatalf("ParseError = %+v", pe)
	}
}

func multipartMail(parts ...string) []byte {
	var b strings.Builder
	b.WriteString(head + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	for _, p := range parts {
		b.WriteString("--b\r\n" + p + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String())
}

func attachmentPart(name string, data []byte) string {
	return "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + name +
		"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrap(base64.StdEncoding.EncodeToString(data))
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// TestParseHugeAttachment: an attachment over MaxAttachmentBytes is left
// out with a notice that names it and its size (never silently), without
// being decoded; the rest of the mail is kept.
func TestParseHugeAttachment(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 12<<20)
	small := bytes.Repeat([]byte{0xCD}, 5<<20)
	raw := multipartMail("Content-Type: text/plain\r\n\r\nTwo files.", attachmentPart("big.bin", big), attachmentPart("small.bin", small))
	var e inbox.IncomingEmail
	var err error
	n := allocated(func() { e, err = mailparse.Parse(raw, mailparse.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != 1 || e.Attachments[0].Name != "small.bin" || !bytes.Equal(e.Attachments[0].Data, small) {
		t.Fatalf("Attachments = %d, want small.bin only", len(e.Attachments))
	}
	want := `attachment "big.bin" (12 MB) was left out: it is larger than the limit of 10 MB`
	if len(e.Notices) != 1 || e.Notices[0] != want || e.Text != "Two files." {
		t.Fatalf("Notices = %q, Text = %q, want %q", e.Notices, e.Text, want)
	}
	// The big one is measured, not decoded: what is allocated is about
	// the small one's 5 MB, not 17.
	if n > uint64(len(raw))/2 {
		t.Fatalf("Parse() of %d bytes allocated %d bytes", len(raw), n)
	}

	// A caller's limit (limits.max_upload_bytes) applies instead.
	e, _ = mailparse.Parse(raw, mailparse.Options{MaxAttachmentBytes: 20 << 20})
	if len(e.Attachments) != 2 || len(e.Notices) != 0 {
		t.Fatalf("with a 20 MB limit: %d attachments, notices %q", len(e.Attachments), e.Notices)
	}
}

// nested returns a mail with its text part depth multiparts deep.
func nested(depth int, text string) []byte {
	var b bytes.Buffer
	b.WriteString(head + "Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\n%s\r\n", depth-1, text)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

// TestParseDeepNesting: parts nested deeper than MaxDepth are left out
// with a notice; up to it they are read, and a big part deep down is not
// copied at each level.
func TestParseDeepNesting(t *testing.T) {
	e, err := mailparse.Parse(nested(150, "lost"), mailparse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Text != "" || len(e.Notices) != 1 || !strings.Contains(e.Notices[0], "nested deeper than 100 levels") {
		t.Fatalf("150 deep: Text = %q, Notices = %q", e.Text, e.Notices)
	}

	body := strings.Repeat("All work and no play makes Jack a dull boy.\r\n", 100000) // 4.5 MB
	raw := nested(100, body)
	n := allocated(func() { e, err = mailparse.Parse(raw, mailparse.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Notices) != 0 || !strings.HasPrefix(e.Text, "All work") || len(e.FullText) < 4<<20 {
		t.Fatalf("100 deep: %d bytes of text, notices %q", len(e.FullText), e.Notices)
	}
	// The text is decoded and cleaned a few times over, but not once per
	// level (that would be 450 MB).
	if n > 12*uint64(len(raw)) {
		t.Fatalf("Parse() of %d bytes allocated %d bytes", len(raw), n)
	}
}

func TestParseTooManyParts(t *testing.T) {
	parts := make([]string, mailparse.DefaultMaxParts+50)
	for i := range parts {
		parts[i] = "Content-Type: application/octet-stream\r\n\r\nx"
	}
	parts[0] = "Content-Type: text/plain\r\n\r\nMany parts."
	e, err := mailparse.Parse(multipartMail(parts...), mailparse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != mailparse.DefaultMaxParts-1 || e.Text != "Many parts." {
		t.Fatalf("%d attachments, Text %q", len(e.Attachments), e.Text)
	}
	if len(e.Notices) != 1 || e.Notices[0] != "the mail has more than 10000 MIME parts: the rest were left out" {
		t.Fatalf("Notices = %q", e.Notices)
	}
}

// TestParseDamagedParts: a part whose header is over the limit is left
// out, the others are read.
func TestParseDamagedParts(t *testing.T) {
	raw := multipartMail("Content-Type: text/plain\r\n\r\nFirst.",
		"Content-Type: text/plain\r\nX-Junk: "+strings.Repeat("z", 2000)+"\r\n\r\nSecond.",
		"Content-Type: text/plain\r\n\r\nThird.")
	e, err := mailparse.Parse(raw, mailparse.Options{MaxHeaderBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if e.Text != "First.\n\nThird." || len(e.Notices) != 1 || !strings.HasPrefix(e.Notices[0], "part 2 was left out: the header is larger than") {
		t.Fatalf("Text = %q, Notices = %q", e.Text, e.Notices)
	}
}

// TestParseReferences: of a long References field the first (the root
// of the thread) and the newest are kept, 100 in all.
func TestParseReferences(t *testing.T) {
	var refs []string
	for i := range 150 {
		refs = append(refs, fmt.Sprintf("<m.%d@example.com>", i))
	}
	raw := []byte(head + "References: " + strings.Join(refs, "\r\n ") + "\r\n\r\nHi\r\n")
	e, err := mailparse.Parse(raw, mailparse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.References) != 100 || e.References[0] != "m.0@example.com" || e.References[1] != "m.51@example.com" || e.References[99] != "m.149@example.com" {
		t.Fatalf("References = %q", e.References)
	}
}

// TestParseAutomatic checks each signal of automatic mail alone.
func TestParseAutomatic(t *testing.T) {
	for _, c := range []struct{ header, reason string }{
		{"", ""},
		{"Auto-Submitted: no\r\n", ""},
		{"Auto-Submitted: No (a person)\r\n", ""},
		{"Auto-Submitted: auto-generated\r\n", "Auto-Submitted: auto-generated"},
		{"Auto-Submitted: auto-notified; owner-email=x@example.com\r\n", "Auto-Submitted: auto-notified"},
		{"X-Autorespond: yes\r\n", "X-Autorespond"},
		{"X-Autoreply: no\r\n", ""},
		{"Precedence: junk\r\n", "Precedence: junk"},
		{"Precedence: list\r\n", "Precedence: list"},
		{"Precedence: first-class\r\n", ""},
		{"List-Unsubscribe: <mailto:leave@lists.example.org>\r\n", "List-Unsubscribe"},
		{"Return-Path: < >\r\n", "Return-Path: <>"},
		{"Return-Path: <bounce@example.org>\r\n", ""},
		{"X-Failed-Recipients: nobody@example.org\r\n", "X-Failed-Recipients"},
	} {
		raw := []byte(c.header + head + "Content-Type: text/plain\r\n\r\nHi\r\n")
		e, err := mailparse.Parse(raw, mailparse.Options{OwnAddresses: ownAddresses})
		if err != nil {
			t.Fatal(err)
		}
		if e.AutoReason != c.reason || e.Auto != (c.reason != "") {
			t.Errorf("%q: Auto = %t %q, want %q", c.header, e.Auto, e.AutoReason, c.reason)
		}
	}
}
