package inbox_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/microdeets/microchat/inbox"
)

func TestSingleLine(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "  Eve Smith ", want: "Eve Smith"},
		{in: "Eve\r\nSmith", want: "EveSmith"},
		{in: "\x1b[2J\aEve\x7f\u0085", want: "[2JEve"},
		{in: "\u202eevE\u202c", want: "evE"},
		{in: "\u2066Eve\u2069 \u202a\u202b\u202d", want: "Eve"},
		{in: "E\u200bv\ufeffe\u00ad\u2060", want: "Eve"},
		{in: "\u200e\u200fEve\u061c", want: "Eve"},
		{in: "محمد", want: "محمد"},
		{in: "می\u200cخواهم", want: "می\u200cخواهم"}, // ZWNJ of Persian
		{in: "👩\u200d💻 Eve", want: "👩\u200d💻 Eve"},   // ZWJ of emoji
		{in: "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", want: "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"},
		{in: "Eve\x00", bad: true},
		{in: "\x00", bad: true},
		{in: "Ev\xffe", bad: true},
		{in: "", want: ""},
	} {
		got, err := inbox.SingleLine("name", tc.in)
		var inv *inbox.InvalidError
		switch {
		case tc.bad && (!errors.As(err, &inv) || inv.Field != "name"):
			t.Errorf("SingleLine(%q) = %q, %v; want an InvalidError on name", tc.in, got, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("SingleLine(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMultiLine(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "one\ntwo\tthree", want: "one\ntwo\tthree"},
		{in: "one\r\ntwo\rthree", want: "one\ntwothree"},
		{in: "bell\a esc\x1b[0m del\x7f", want: "bell esc[0m del"},
		{in: "\u202eRTL override stays in text", want: "\u202eRTL override stays in text"},
		{in: "  keeps spaces  ", want: "  keeps spaces  "},
		{in: "nul\x00", bad: true},
		{in: "bad\xc3", bad: true},
	} {
		got, err := inbox.MultiLine("text", tc.in)
		var inv *inbox.InvalidError
		switch {
		case tc.bad && (!errors.As(err, &inv) || inv.Field != "text"):
			t.Errorf("MultiLine(%q) = %q, %v; want an InvalidError on text", tc.in, got, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("MultiLine(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzUserText checks the validators' promises on any input: text with
// NUL or invalid UTF-8 is refused; what is accepted is valid UTF-8 without
// NUL; a single line has no control or bidi override character and no
// surrounding space; multi-line text has no control character but tab and
// line feed; cleaning is idempotent.
func FuzzUserText(f *testing.F) {
	for _, s := range []string{"Eve", "a\x00b", "\u202eevil\r\n", "\xff", "👩\u200d💻", "x\r\n\ty", " \u200b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		refuse := strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
		line, err := inbox.SingleLine("f", s)
		if refuse != (err != nil) {
			t.Fatalf("SingleLine(%q) error = %v, refuse = %v", s, err, refuse)
		}
		if err == nil {
			if line != strings.TrimSpace(line) {
				t.Fatalf("SingleLine(%q) = %q, not trimmed", s, line)
			}
			for _, r := range line {
				if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200b {
					t.Fatalf("SingleLine(%q) = %q keeps %U", s, line, r)
				}
			}
			if again, err := inbox.SingleLine("f", line); err != nil || again != line {
				t.Fatalf("SingleLine(SingleLine(%q)) = %q, %v; want %q", s, again, err, line)
			}
		}
		text, err := inbox.MultiLine("f", s)
		if refuse != (err != nil) {
			t.Fatalf("MultiLine(%q) error = %v, refuse = %v", s, err, refuse)
		}
		if err == nil {
			for _, r := range text {
				if unicode.IsControl(r) && r != '\n' && r != '\t' {
					t.Fatalf("MultiLine(%q) = %q keeps %U", s, text, r)
				}
			}
			if again, err := inbox.MultiLine("f", text); err != nil || again != text {
				t.Fatalf("MultiLine(MultiLine(%q)) = %q, %v; want %q", s, again, err, text)
			}
		}
	})
}
