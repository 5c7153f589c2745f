package inbox

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// User text: the one validation every entry point applies (HTTP, both
// sockets, the CLI, the bootstrap, and later email) before text is stored
// or compared with stored text.
//
//   - Refused everywhere, with an InvalidError naming the field: invalid
//     UTF-8, and NUL, which PostgreSQL cannot store in text (SQLSTATE
//     22021) and SQLite would store silently. Both databases therefore
//     answer the same 400.
//   - Single-line fields (names, email addresses, phone numbers, subjects,
//     page titles and URLs, client ids, file names) lose C0 and C1
//     control characters (CR, LF, ESC, BEL...), bidirectional embeddings,
//     overrides and isolates (U+202A-U+202E, U+2066-U+2069) and
//     zero-width and other invisible format characters (U+200B...; not
//     the joiners that scripts and emoji need), and are trimmed: what
//     another person sees is what was typed, without line breaks,
//     terminal escapes or text that reads backwards.
//   - Multi-line text (message text, a rating's comment) keeps line feeds
//     and tabs; a CR LF becomes LF, and the other control characters go.
//     Format characters stay: right-to-left writing needs its marks.

// SingleLine returns s cleaned as a single-line field (see above), or an
// InvalidError for field if s holds NUL or is not valid UTF-8. It does not
// check the length: callers bound the cleaned text.
func SingleLine(field, s string) (string, error) {
	if err := checkText(field, s); err != nil {
		return "", err
	}
	return CleanLine(s), nil
}

// CleanLine returns s as a single-line field shows it (see above), never
// failing: invalid UTF-8 and NUL are dropped with the other control
// characters. For text that is shown but was not checked on its way in,
// such as a stored file name sent back in a header; SingleLine is the
// check of input.
func CleanLine(s string) string {
	if !strings.ContainsFunc(s, hiddenInLine) && utf8.ValidString(s) {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if hiddenInLine(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "")))
}

// MultiLine returns s cleaned as multi-line text (see above), or an
// InvalidError for field if s holds NUL or is not valid UTF-8. Leading
// and trailing white space is kept: callers that want it gone trim.
func MultiLine(field, s string) (string, error) {
	if err := checkText(field, s); err != nil {
		return "", err
	}
	if !strings.ContainsFunc(s, hiddenInText) {
		return s, nil
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if hiddenInText(r) {
			return -1
		}
		return r
	}, s), nil
}

func checkText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "must not contain NUL characters")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	return nil
}

// hiddenInLine reports whether a single-line field loses r: control
// characters and format characters (Unicode category Cf: the bidi
// embeddings, overrides, isolates and marks, U+200B, U+2060-U+2064,
// U+FEFF, U+00AD...), except those that writing needs: the zero-width
// non-joiner and joiner (Persian and Indic names, emoji sequences) and
// the tag characters of subdivision flags.
func hiddenInLine(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u200c', r == '\u200d', r >= 0xE0020 && r <= 0xE007F:
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// hiddenInText reports whether multi-line text loses r: control
// characters other than tab and line feed. A CR counts: a CR LF has been
// made an LF before.
func hiddenInText(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n'
}
