package mailparse

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
)

// The MIME structure (RFC 2045, 2046) is cut out of the raw message in
// memory: an entity is a sub-slice of the raw bytes, its header is read by
// go-message's textproto.ReadHeader, and its body is decoded (transfer
// encoding, then charset with go-message's charset package) only when it
// is kept. Splitting a multipart body is written here rather than done
// with go-message's MultipartReader because that reader reads each part's
// header without a bound (a part header of 50 MB of short fields costs
// gigabytes), and because cutting slices keeps the cost of a part nested
// N deep at N scans of its bytes, without copies.

// maxHeaderFields bounds the fields of one header, so that memory stays
// proportional to MaxHeaderBytes (a field costs ~300 bytes once parsed,
// whatever its size). Real mail has a few dozen, a long Received chain a
// few hundred.
const maxHeaderFields = 10000

// errHeaderLimit is splitHeader's answer to a header over its limits.
type errHeaderLimit struct{ reason string }

func (e errHeaderLimit) Error() string { return e.reason }

// splitHeader cuts an entity into its header block and its body (RFC 5322
// section 2.1). The header ends at the first empty line, or at the first
// line that is neither a field nor a folded continuation: mailers that
// forget the empty line start the body there. A leading mbox "From " line
// is skipped. It fails when the header is over max bytes or
// maxHeaderFields fields.
func splitHeader(b []byte, max int) (hdr, body []byte, fields int, err error) {
	start := 0
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && !validFieldLine(b[:i]) {
			start = i + 1
		}
	}
	pos := start
	for pos < len(b) {
		if pos-start > max {
			return nil, nil, 0, errHeaderLimit{"the header is larger than " + size(int64(max))}
		}
		end := bytes.IndexByte(b[pos:], '\n')
		next := len(b)
		if end >= 0 {
			end += pos
			next = end + 1
		} else {
			end = len(b)
		}
		line := bytes.TrimSuffix(b[pos:end], []byte("\r"))
		switch {
		case len(line) == 0:
			return b[start:pos], b[next:], fields, nil
		case line[0] == ' ' || line[0] == '\t':
			if fields == 0 {
				return b[start:pos], b[pos:], 0, nil
			}
		case validFieldLine(line):
			fields++
			if fields > maxHeaderFields {
				return nil, nil, 0, errHeaderLimit{"the header has more than " + strconv.Itoa(maxHeaderFields) + " fields"}
			}
		default:
			return b[start:pos], b[pos:], fields, nil
		}
		pos = next
	}
	if pos-start > max {
		return nil, nil, 0, errHeaderLimit{"the header is larger than " + size(int64(max))}
	}
	return b[start:], nil, fields, nil
}

// validFieldLine reports whether line starts a header field: a name of
// printable US-ASCII other than ":" (RFC 5322 section 2.2), blanks before
// the colon tolerated.
func validFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// readHeader parses a header block that splitHeader accepted.
func readHeader(hdr []byte) textproto.Header {
	// Every line is a field or a continuation, so ReadHeader does not
	// fail; were it to, the fields before the fault are kept.
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdr)))
	return h
}

// splitMultipart cuts a multipart body into its parts at the delimiter
// lines "--boundary" (RFC 2046 section 5.1.1): a part is what lies between
// two delimiter lines, without the line break before the second. The
// preamble and the epilogue are dropped. closed reports whether the close
// delimiter "--boundary--" was seen; without it the last part runs to the
// end (a mail cut short). At most max parts are returned; more reports
// whether there were others.
func splitMultipart(body []byte, boundary string, max int) (parts [][]byte, closed, more bool) {
	delim := []byte("--" + boundary)
	start := -1 // where the current part's content begins
	pos := 0
	for pos < len(body) {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		i += pos
		pos = i + 1
		if i > 0 && body[i-1] != '\n' {
			continue // not at the start of a line
		}
		rest := body[i+len(delim):]
		isClose := bytes.HasPrefix(rest, []byte("--"))
		if isClose {
			rest = rest[2:]
		}
		// "--boundary" followed by more of a name is another boundary.
		if len(rest) > 0 && !isClose && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '\r' && rest[0] != '\n' {
			continue
		}
		if start >= 0 {
			if len(parts) == max {
				return parts, false, true
			}
			parts = append(parts, trimLineBreak(body[start:i]))
		}
		if isClose {
			return parts, true, false
		}
		next := len(body)
		if j := bytes.IndexByte(body[i:], '\n'); j >= 0 {
			next = i + j + 1
		}
		start, pos = next, next
	}
	if start >= 0 && start <= len(body) {
		if len(parts) == max {
			return parts, false, true
		}
		parts = append(parts, body[start:])
	}
	return parts, false, false
}

// trimLineBreak drops the CRLF (or LF) before a delimiter line, which
// belongs to the delimiter (RFC 2046 section 5.1.1).
func trimLineBreak(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// guessBoundary finds the boundary of a multipart entity whose
// Content-Type lost it: the first line of the body that looks like a
// delimiter line.
func guessBoundary(body []byte) string {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) > 2 && len(line) <= 72 && bytes.HasPrefix(line, []byte("--")) &&
			bytes.IndexAny(line[2:], " \t") < 0 && !bytes.HasSuffix(line, []byte("--")) {
			return string(line[2:])
		}
	}
	return ""
}

// mediaType parses a Content-Type or Content-Disposition value (RFC 2045
// section 5.1, RFC 2183) leniently: the type lower-cased, and parameters
// with RFC 2231 continuations and charsets and RFC 2047 encoded words
// decoded. Go's mime.ParseMediaType is not used because it refuses the
// whole value for one bad or repeated parameter and decodes RFC 2231
// values only in UTF-8 and US-ASCII.
func mediaType(v string, dec *wordDecoder) (typ string, params map[string]string) {
	typ, rest, _ := strings.Cut(v, ";")
	typ = strings.ToLower(strings.TrimSpace(typ))
	params = map[string]string{}
	type piece struct {
		val     string
		encoded bool
	}
	var split map[string]map[int]piece // RFC 2231: name -> section -> value
	for n := 0; len(rest) > 0 && n < 100; n++ {
		var key, val string
		key, val, rest = nextParam(rest)
		if key == "" {
			continue
		}
		name, section, hasStar := strings.Cut(key, "*")
		if !hasStar {
			if _, ok := params[name]; !ok {
				params[name] = dec.decode(val)
			}
			continue
		}
		encoded := strings.HasSuffix(section, "*") || section == ""
		section = strings.TrimSuffix(section, "*")
		idx := 0
		if section != "" {
			var err error
			if idx, err = strconv.Atoi(section); err != nil || idx < 0 || idx > 99 {
				continue
			}
		}
		if split == nil {
			split = map[string]map[int]piece{}
		}
		if split[name] == nil {
			split[name] = map[int]piece{}
		}
		if _, ok := split[name][idx]; !ok {
			split[name][idx] = piece{val, encoded}
		}
	}
	for name, sections := range split {
		var raw []byte
		cs := ""
		for i := 0; ; i++ {
			p, ok := sections[i]
			if !ok {
				break
			}
			v := p.val
			if p.encoded {
				if i == 0 {
					// charset'language'value
					c, r, ok1 := strings.Cut(v, "'")
					_, r, ok2 := strings.Cut(r, "'")
					if ok1 && ok2 {
						cs, v = c, r
					}
				}
				raw = append(raw, percentDecode(v)...)
			} else {
				raw = append(raw, v...)
			}
		}
		if len(sections) > 0 && raw != nil {
			params[name] = dec.text(raw, cs) // RFC 2231 values win over plain ones
		}
	}
	return typ, params
}

// nextParam reads one ";"-separated parameter: a name, "=", and a token or
// a quoted string.
func nextParam(s string) (key, val, rest string) {
	s = strings.TrimLeft(s, " \t\r\n;")
	eq := strings.IndexAny(s, "=;")
	if eq < 0 || s[eq] == ';' {
		if eq < 0 {
			return "", "", ""
		}
		return "", "", s[eq+1:]
	}
	key = strings.ToLower(strings.TrimSpace(s[:eq]))
	s = strings.TrimLeft(s[eq+1:], " \t\r\n")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
				continue
			}
			if c == '"' {
				i++
				break
			}
			b.WriteByte(c)
		}
		rest = s[i:]
		if j := strings.IndexByte(rest, ';'); j >= 0 {
			rest = rest[j+1:]
		} else {
			rest = ""
		}
		return key, b.String(), rest
	}
	val, rest, _ = strings.Cut(s, ";")
	return key, strings.TrimSpace(val), rest
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// decodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 section 6).
// Decoding is lenient, as mail readers are: base64 ignores characters
// outside its alphabet and decodes what precedes a fault; quoted-printable
// keeps a "=" that starts no escape. damaged reports that something was
// lost; known is false for an encoding it does not know (the bytes are
// kept as they are).
func decodeTransfer(b []byte, enc string) (out []byte, damaged, known bool) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		out, damaged = decodeBase64(b)
		return out, damaged, true
	case "quoted-printable":
		return decodeQP(b), false, true
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return b, false, true
	}
	return b, false, false
}

// decodeBase64 decodes base64 skipping every byte outside the alphabet
// (line breaks, stray spaces, junk) and restarting after padding, as
// when base64 chunks were glued together. A last group of one character
// is dropped and reported. It decodes through a small buffer, so that it
// allocates the output only.
func decodeBase64(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b)/4*3+3)
	var chunk [4096]byte
	n := 0
	damaged := false
	flush := func(final bool) {
		m := n / 4 * 4
		if final {
			m = n
			if m%4 == 1 {
				damaged = true
				m--
			}
		}
		var err error
		if out, err = base64.RawStdEncoding.AppendDecode(out, chunk[:m]); err != nil {
			damaged = true
		}
		n = copy(chunk[:], chunk[m:n])
		if final {
			n = 0
		}
	}
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/':
			chunk[n] = c
			n++
			if n == len(chunk) {
				flush(false)
			}
		case c == '=':
			flush(true)
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			damaged = true
		}
	}
	flush(true)
	return out, damaged
}

// base64Size is the decoded size of base64 data, without decoding it.
func base64Size(b []byte) int64 {
	var n int64
	for _, c := range b {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			n++
		}
	}
	return n * 3 / 4
}

// decodeQP decodes quoted-printable (RFC 2045 section 6.7): "=XX" escapes,
// soft line breaks ("=" at the end of a line, blanks after it tolerated),
// trailing blanks of a line dropped; any other "=" is kept as it is.
func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line := b
		nl := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b, nl = b[:i], b[i+1:], true
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, " \t\r")
		soft := false
		if n := len(line); n > 0 && line[n-1] == '=' {
			line, soft = line[:n-1], true
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		if nl && !soft {
			out = append(out, '\n')
		}
	}
	return out
}

// toUTF8 converts text in charset cs to UTF-8 (RFC 2046 section 4.1.2),
// with the charsets of go-message's charset package. Text without a
// charset, or in US-ASCII, is UTF-8 when it is valid UTF-8 and
// windows-1252 otherwise, as is ISO-8859-1 (what mail labelled Latin-1
// means in practice, as in browsers). known is false for a charset
// nobody knows: the text is then read as UTF-8, what cannot be read
// replaced by U+FFFD.
func toUTF8(b []byte, cs string) (s string, known bool) {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unicode-1-1-utf-8", "x-unknown", "unknown-8bit", "default":
		if utf8.Valid(b) {
			return string(b), true
		}
		if cs == "utf-8" || cs == "utf8" {
			return strings.ToValidUTF8(string(b), "\uFFFD"), true
		}
		cs = "windows-1252"
	case "iso-8859-1", "iso8859-1", "latin1", "l1", "iso_8859-1", "cp819":
		cs = "windows-1252"
	}
	if cs == "windows-1252" {
		s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
		return string(s), true
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD"), false
	}
	out, err := io.ReadAll(r)
	if err != nil {
		// A decoder that gave up part way: keep what it read.
		return strings.ToValidUTF8(string(out), "\uFFFD"), true
	}
	return strings.ToValidUTF8(string(out), "\uFFFD"), true
}

// wordDecoder decodes RFC 2047 encoded words in header values, with
// go-message's charsets, and remembers the charsets it did not know.
type wordDecoder struct {
	dec     mime.WordDecoder
	unknown []string
}

func newWordDecoder() *wordDecoder {
	w := &wordDecoder{}
	w.dec.CharsetReader = func(cs string, r io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		s, known := toUTF8(b, cs)
		if !known && len(w.unknown) < 10 {
			w.unknown = append(w.unknown, cs)
		}
		return strings.NewReader(s), nil
	}
	return w
}

// decode returns v with its encoded words decoded, and raw 8-bit text
// (not allowed in headers, RFC 5322 section 2.2, but common) read as
// toUTF8 reads text without a charset.
func (w *wordDecoder) decode(v string) string {
	if strings.Contains(v, "=?") {
		if d, err := w.dec.DecodeHeader(v); err == nil {
			v = d
		}
	}
	if !utf8.ValidString(v) {
		v, _ = toUTF8([]byte(v), "")
	}
	return v
}

// text converts bytes in charset cs (RFC 2231 values) to UTF-8.
func (w *wordDecoder) text(b []byte, cs string) string {
	s, known := toUTF8(b, cs)
	if !known && len(w.unknown) < 10 {
		w.unknown = append(w.unknown, cs)
	}
	return s
}
