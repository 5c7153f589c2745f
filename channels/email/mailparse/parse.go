package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/microdeets/microchat/inbox"

	_ "github.com/emersion/go-message/charset" // every charset go-message knows, for its readers too
)

// Default limits of Options (issue 12, item 3).
const (
	DefaultMaxSize            = 50 << 20
	DefaultMaxParts           = 10000
	DefaultMaxDepth           = 100
	DefaultMaxHeaderBytes     = 2 << 20
	DefaultMaxAttachmentBytes = 10 << 20 // config's default limits.max_upload_bytes
)

// Options bound what Parse reads; a zero field means its default.
type Options struct {
	// MaxSize is the largest mail parsed, in bytes (50 MB); a bigger one
	// is a ParseError with TooLarge.
	MaxSize int64
	// MaxParts is how many MIME parts are read (10,000); the rest are
	// left out with a notice.
	MaxParts int
	// MaxDepth is how deep multiparts nest (100); deeper parts are left
	// out with a notice.
	MaxDepth int
	// MaxHeaderBytes bounds the header of the mail and of each part, in
	// bytes (2 MB). The mail's own header over it is a ParseError with
	// TooLarge; a part's leaves the part out with a notice.
	MaxHeaderBytes int
	// MaxAttachmentBytes is the largest attachment kept, decoded, in
	// bytes: the caller passes limits.max_upload_bytes (default 10 MiB).
	// A bigger one is left out with a notice naming it and its size.
	MaxAttachmentBytes int64
	// OwnAddresses are the addresses of our own mailboxes: mail From one
	// of them is automatic (a loop; issue 12 item 8).
	OwnAddresses []string
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxAttachmentBytes <= 0 {
		o.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	return o
}

// ParseError is a mail Parse cannot make a message of: not a mail at all
// (no header), no sender address, or over a limit that makes the whole
// mail unusable (TooLarge: its size, or its header's). The caller keeps
// it raw in the quarantine with Reason.
type ParseError struct {
	Reason   string
	TooLarge bool
}

func (e *ParseError) Error() string { return "mailparse: " + e.Reason }

// Parse reads one raw RFC 5322 mail into an IncomingEmail: every field
// that comes from the mail itself (not Mailbox, Folder, UIDValidity,
// UID). Damage that leaves something to read (a broken part, bad base64,
// an unknown charset, a MIME structure cut short, a limit on parts or
// nesting) keeps what can be read and adds a notice; the other faults are
// a *ParseError. Text and FullText are valid UTF-8 without NUL; HTML and
// FullHTML are sanitized (inbox.SanitizeEmailHTML); Text and HTML have
// quoted history and signatures trimmed (TrimQuoted, TrimQuotedHTML).
//
// Memory and time are linear in len(raw), times the nesting depth for the
// bytes of nested parts. raw is not modified; Raw is raw itself, not a
// copy, so the caller must not reuse it.
func Parse(raw []byte, opt Options) (inbox.IncomingEmail, error) {
	opt = opt.withDefaults()
	if int64(len(raw)) > opt.MaxSize {
		return inbox.IncomingEmail{}, &ParseError{Reason: "the mail is larger than " + size(opt.MaxSize) + " (" + size(int64(len(raw))) + ")", TooLarge: true}
	}
	hdr, body, fields, err := splitHeader(raw, opt.MaxHeaderBytes)
	if err != nil {
		return inbox.IncomingEmail{}, &ParseError{Reason: err.Error(), TooLarge: true}
	}
	if fields == 0 {
		return inbox.IncomingEmail{}, &ParseError{Reason: "not a mail: it does not start with header fields"}
	}
	sum := sha256.Sum256(raw)
	p := &parser{opt: opt, words: newWordDecoder()}
	h := readHeader(hdr)
	in := inbox.IncomingEmail{RawHash: hex.EncodeToString(sum[:]), Raw: raw}
	p.envelope(&in, h)
	if in.From.Addr == "" {
		return inbox.IncomingEmail{}, &ParseError{Reason: "no sender: From, Sender, Reply-To and Return-Path hold no address"}
	}

	top := p.entity(h, body, "1", "")
	c := p.walk(top, 0, "")
	if p.unclosed {
		p.notice("the mail ends before its MIME structure does: it may be cut short")
	}
	p.body(&in, c)
	in.Attachments = p.atts
	p.automatic(&in, h)
	for _, cs := range p.words.unknown {
		p.notice(fmt.Sprintf("the header uses an unknown charset %q: what could not be read shows as \uFFFD", clip(cs, 40)))
	}
	in.Notices = p.notices
	return in, nil
}

// parser is the state of one Parse.
type parser struct {
	opt      Options
	words    *wordDecoder
	parts    int
	atts     []inbox.IncomingAttachment
	notices  []string
	noticed  map[string]bool
	unclosed bool
	tooDeep  bool
	tooMany  bool
	report   report
}

// maxNotices bounds the notices of one mail; a mail with thousands of
// broken parts says so in the first ones.
const maxNotices = 50

func (p *parser) notice(s string) {
	if p.noticed[s] || len(p.notices) >= maxNotices {
		return
	}
	if p.noticed == nil {
		p.noticed = map[string]bool{}
	}
	p.noticed[s] = true
	p.notices = append(p.notices, inbox.CleanLine(s))
}

// part is one MIME entity: its parsed header fields and its raw body.
type part struct {
	path       string // IMAP-style section number, "1.2"
	typ        string // "text/plain", lower case
	params     map[string]string
	disp       string // "inline", "attachment" or ""
	dispParams map[string]string
	encoding   string // Content-Transfer-Encoding
	contentID  string // without brackets
	body       []byte
}

// entity reads the MIME fields of a header (RFC 2045). A missing or
// unusable Content-Type is text/plain (RFC 2045 section 5.2), or
// message/rfc822 in a multipart/digest (RFC 2046 section 5.1.5).
func (p *parser) entity(h textproto.Header, body []byte, path, parent string) part {
	e := part{path: path, body: body}
	e.typ, e.params = mediaType(h.Get("Content-Type"), p.words)
	if !validMediaType(e.typ) {
		switch {
		case e.typ == "text":
			e.typ = "text/plain"
		case parent == "multipart/digest":
			e.typ = "message/rfc822"
		default:
			e.typ = "text/plain"
		}
	}
	if v := h.Get("Content-Disposition"); v != "" {
		e.disp, e.dispParams = mediaType(v, p.words)
	}
	e.encoding = h.Get("Content-Transfer-Encoding")
	e.contentID = inbox.CleanLine(strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>"))
	if len(e.contentID) > 250 {
		e.contentID = ""
	}
	return e
}

func validMediaType(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c >= 127 || strings.ContainsRune(`()<>@,;:\"[]?=`, c) {
			return false
		}
	}
	return true
}

// content is what a subtree of the MIME tree shows: its text and HTML
// bodies in order. Pieces are joined once, at the top, so that a body
// nested deep is not copied at every level.
type content struct {
	text, html []string
}

// walk reads one entity and what it contains.
func (p *parser) walk(e part, depth int, parent string) content {
	switch {
	case strings.HasPrefix(e.typ, "multipart/"):
		return p.multipart(e, depth)
	case e.typ == "message/delivery-status" || e.typ == "message/global-delivery-status":
		p.deliveryStatus(e)
		p.attachment(e, "delivery-status.txt")
	case e.typ == "text/rfc822-headers" || e.typ == "message/global-headers":
		if parent == "multipart/report" {
			p.originalHeaders(e)
		}
		p.attachment(e, "original-headers.txt")
	case e.typ == "message/rfc822" || e.typ == "message/global":
		name := "original-message.eml"
		if parent == "multipart/report" {
			p.originalHeaders(e)
		} else {
			name = p.messageName(e)
		}
		p.attachment(e, name)
	case (e.typ == "text/plain" || e.typ == "text/html") && e.disp != "attachment" && e.dispParams["filename"] == "":
		s := p.text(e)
		if e.typ == "text/html" {
			return content{html: []string{s}}
		}
		return content{text: []string{s}}
	default:
		p.attachment(e, "")
	}
	return content{}
}

// multipart reads the parts of a multipart entity (RFC 2046 section 5.1):
// of an alternative the last text and the last HTML (the richest, section
// 5.1.4), of any other kind all of them in order.
func (p *parser) multipart(e part, depth int) content {
	if depth >= p.opt.MaxDepth {
		if !p.tooDeep {
			p.tooDeep = true
			p.notice(fmt.Sprintf("MIME parts nested deeper than %d levels were left out", p.opt.MaxDepth))
		}
		return content{}
	}
	boundary := e.params["boundary"]
	if boundary == "" || len(boundary) > 200 {
		boundary = guessBoundary(e.body)
	}
	var raws [][]byte
	if boundary != "" {
		var closed, more bool
		raws, closed, more = splitMultipart(e.body, boundary, p.opt.MaxParts-p.parts)
		p.parts += len(raws)
		if more && !p.tooMany {
			p.tooMany = true
			p.notice(fmt.Sprintf("the mail has more than %d MIME parts: the rest were left out", p.opt.MaxParts))
		}
		if !closed && !more && len(raws) > 0 {
			p.unclosed = true
		}
	}
	if len(raws) == 0 {
		if p.tooMany {
			return content{}
		}
		p.notice(fmt.Sprintf("part %s is %s without parts: shown as text", e.path, e.typ))
		e.typ, e.params = "text/plain", map[string]string{"charset": e.params["charset"]}
		return p.walk(e, depth, "")
	}
	var c content
	for i, raw := range raws {
		path := fmt.Sprintf("%s.%d", e.path, i+1)
		if depth == 0 {
			path = fmt.Sprint(i + 1)
		}
		hdr, body, _, err := splitHeader(raw, p.opt.MaxHeaderBytes)
		if err != nil {
			p.notice(fmt.Sprintf("part %s was left out: %v", path, err))
			continue
		}
		child := p.walk(p.entity(readHeader(hdr), body, path, e.typ), depth+1, e.typ)
		if e.typ == "multipart/alternative" {
			if len(child.text) > 0 {
				c.text = child.text
			}
			if len(child.html) > 0 {
				c.html = child.html
			}
			continue
		}
		c.text = append(c.text, child.text...)
		c.html = append(c.html, child.html...)
	}
	return c
}

// text decodes a text part to clean UTF-8.
func (p *parser) text(e part) string {
	data, damaged, known := decodeTransfer(e.body, e.encoding)
	if damaged {
		p.notice(fmt.Sprintf("part %s has broken base64: what could be decoded is shown", e.path))
	}
	if !known {
		p.notice(fmt.Sprintf("part %s has an unknown Content-Transfer-Encoding %q: shown as it is", e.path, clip(e.encoding, 40)))
	}
	s, ok := toUTF8(data, e.params["charset"])
	if !ok {
		p.notice(fmt.Sprintf("part %s is in an unknown charset %q: what could not be read shows as \uFFFD", e.path, clip(e.params["charset"], 40)))
	}
	s = cleanText(s)
	if e.typ == "text/plain" && strings.EqualFold(e.params["format"], "flowed") {
		s = unflow(s, strings.EqualFold(e.params["delsp"], "yes"))
	}
	return s
}

// messageName names a forwarded mail attached without a file name after
// its subject.
func (p *parser) messageName(e part) string {
	data, _, _ := decodeTransfer(e.body, e.encoding)
	hdr, _, _, err := splitHeader(data, p.opt.MaxHeaderBytes)
	if err != nil {
		return "forwarded-message.eml"
	}
	h := readHeader(hdr)
	if subject := fileName(p.words.decode(h.Get("Subject"))); subject != "" {
		return clip(subject, 200) + ".eml"
	}
	return "forwarded-message.eml"
}

// attachment keeps e as an attachment, or leaves it out with a notice when
// it is over MaxAttachmentBytes (no silent cap, issue 12 item 3).
// fallback names a part that has no name of its own.
func (p *parser) attachment(e part, fallback string) {
	name := e.dispParams["filename"]
	if name == "" {
		name = e.params["name"]
	}
	name = fileName(name)
	if name == "" {
		name = fallback
	}
	if name == "" {
		name = fmt.Sprintf("attachment-%d%s", len(p.atts)+1, extension(e.typ))
	}
	var n int64
	if strings.EqualFold(strings.TrimSpace(e.encoding), "base64") {
		n = base64Size(e.body)
	} else if enc := strings.ToLower(strings.TrimSpace(e.encoding)); enc != "quoted-printable" {
		n = int64(len(e.body))
	}
	if n > p.opt.MaxAttachmentBytes {
		p.notice(fmt.Sprintf("attachment %q (%s) was left out: it is larger than the limit of %s", name, size(n), size(p.opt.MaxAttachmentBytes)))
		return
	}
	data, damaged, _ := decodeTransfer(e.body, e.encoding)
	if int64(len(data)) > p.opt.MaxAttachmentBytes {
		p.notice(fmt.Sprintf("attachment %q (%s) was left out: it is larger than the limit of %s", name, size(int64(len(data))), size(p.opt.MaxAttachmentBytes)))
		return
	}
	if damaged {
		p.notice(fmt.Sprintf("attachment %q has broken base64: it may be incomplete", name))
	}
	if len(data) > 0 && len(e.body) > 0 && &data[0] == &e.body[0] {
		data = bytes.Clone(data) // not encoded: do not share raw's memory
	}
	typ := e.typ
	if !validMediaType(typ) {
		typ = "application/octet-stream"
	}
	p.atts = append(p.atts, inbox.IncomingAttachment{
		Name:        name,
		ContentType: typ,
		ContentID:   e.contentID,
		Inline:      e.disp == "inline" || e.disp == "" && e.contentID != "",
		Data:        data,
	})
}

// body fills the text and HTML fields from the bodies found.
func (p *parser) body(in *inbox.IncomingEmail, c content) {
	html := strings.Join(c.html, "\n")
	if strings.TrimSpace(html) != "" {
		in.FullHTML = strings.TrimSpace(inbox.SanitizeEmailHTML(html))
		in.HTML = in.FullHTML
		if trimmed := TrimQuotedHTML(html); trimmed != html {
			in.HTML = strings.TrimSpace(inbox.SanitizeEmailHTML(trimmed))
		}
	}
	var text []string
	for _, t := range c.text {
		if t = strings.Trim(t, "\n"); t != "" {
			text = append(text, t)
		}
	}
	in.FullText = strings.Join(text, "\n\n")
	if in.FullText == "" && html != "" {
		in.FullText = cleanText(HTMLToText(html))
	}
	in.Text = TrimQuoted(in.FullText)
}

// cleanText makes text safe to store and compare: valid UTF-8, LF line
// ends, no NUL and no other hidden control characters (inbox.MultiLine).
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsAny(s, "\r\x00") {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
		s = strings.ReplaceAll(s, "\x00", "")
	}
	s, _ = inbox.MultiLine("text", s) // cannot fail: no NUL, valid UTF-8
	return s
}

// fileName cleans an attachment's name: one line, no directory, at most
// 255 bytes.
func fileName(s string) string {
	s = inbox.CleanLine(s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	return clip(s, 255)
}

// extension names a part without a name by its type.
func extension(typ string) string {
	switch typ {
	case "image/png":
		return ".png"
	case "image/jpeg", "image/jpg", "image/pjpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "application/pdf":
		return ".pdf"
	case "message/rfc822", "message/global":
		return ".eml"
	case "text/plain":
		return ".txt"
	case "text/html":
		return ".html"
	case "text/calendar":
		return ".ics"
	}
	return ""
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// size formats a byte count for a notice: "31.2 MB", "512 KB", "80 bytes".
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
