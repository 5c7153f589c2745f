package email

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"mime"
	netmail "net/mail"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

// Limits of what Compose copies into headers: a name or subject longer
// than this many runes is cut with "…" rather than folded over many lines.
const (
	maxNameRunes    = 64
	maxSubjectRunes = 200
	// maxFilenameBytes bounds an attachment's name in bytes of UTF-8.
	maxFilenameBytes = 100
	// maxReferences is how many Message-IDs the References header keeps: the
	// first of the thread and the newest ones (RFC 5322 section 3.6.4
	// allows trimming; long threads would otherwise grow without bound).
	maxReferences = 20
	// maxMsgIDLen bounds a Message-ID, which is never folded: real ones
	// are well under 100 characters.
	maxMsgIDLen = 250
)

// ErrCompose wraps every error of Compose: the mail cannot be built from
// what it was given (an invalid address, a survey without base_url), so
// sending it again cannot help.
var ErrCompose = errors.New("cannot compose the mail")

// Compose builds the raw RFC 5322 message of one outgoing email, a pure
// function of the outbox row m, the mailbox mb it is sent from, the
// server's public baseURL (for survey rating links) and the Date header's
// time. The message is:
//
//   - From "Agent Name via <display name>" <mailbox address> (the mailbox's
//     display_name, else its name; just the team for mail without an
//     agent), To, Cc, Reply-To (m.ReplyTo, else the mailbox address),
//     Message-ID <m.MessageID>, In-Reply-To, References (RFC 5322 section
//     3.6.4), Date, MIME-Version;
//   - Subject: a reply's is "Re: " + the conversation's subject; a digest's
//     and a survey's carry the conversation token "[#c42-...]" (rule 9);
//   - Auto-Submitted: auto-generated (RFC 3834 section 5) on automatic mail
//     (digest, survey), never on a reply;
//   - a multipart/alternative of text/plain and text/html (the HTML is
//     built from the text with html/template, so text is always escaped),
//     inside a multipart/mixed with the attachments when there are any
//     (file names RFC 2231-encoded).
//
// Names and subjects are RFC 2047-encoded after every control character
// and line or paragraph separator became a space, and addresses and
// Message-IDs are checked, so no text of a contact or agent can add a
// header. Errors wrap ErrCompose.
func Compose(m inbox.OutboundEmail, mb config.Mailbox, baseURL string, date time.Time) ([]byte, error) {
	from, err := addrSpec(mb.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: mailbox %q address: %v", ErrCompose, mb.Name, err)
	}
	to, err := address(m.To)
	if err != nil {
		return nil, fmt.Errorf("%w: To: %v", ErrCompose, err)
	}
	cc := make([]*mail.Address, 0, len(m.Cc))
	for _, a := range m.Cc {
		c, err := address(a)
		if err != nil {
			return nil, fmt.Errorf("%w: Cc: %v", ErrCompose, err)
		}
		cc = append(cc, c)
	}
	replyTo := from
	if m.ReplyTo != "" {
		if replyTo, err = addrSpec(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("%w: Reply-To: %v", ErrCompose, err)
		}
	}
	if !validMsgID(m.MessageID) {
		return nil, fmt.Errorf("%w: Message-ID %q is not a msg-id", ErrCompose, m.MessageID)
	}
	auto := m.Kind == inbox.OutboundDigest || m.Kind == inbox.OutboundSurvey
	if m.Kind != inbox.OutboundReply && !auto {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrCompose, m.Kind)
	}
	team := headerText(mb.DisplayName, maxNameRunes)
	if team == "" {
		team = headerText(mb.Name, maxNameRunes)
	}
	b, err := buildBody(m, team, baseURL)
	if err != nil {
		return nil, err
	}

	// go-message writes the fields last added first.
	var h mail.Header
	if auto {
		// Exchange's own switch for its out-of-office replies, which
		// predate RFC 3834.
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Auto-Submitted", "auto-generated")
	}
	h.Set("MIME-Version", "1.0")
	if refs := msgIDs(m.References, maxReferences); len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	if irt := msgIDs([]string{m.InReplyTo}, 1); len(irt) > 0 {
		h.SetMsgIDList("In-Reply-To", irt)
	}
	h.SetMessageID(m.MessageID)
	h.SetDate(date)
	if subj := subject(m, team); strings.Contains(subj, "=?") {
		// Text that looks like an encoded word would be decoded by the
		// reader: encode it all, which mime.QEncoding does only for text
		// that is not plain ASCII.
		h.Set("Subject", qEncodeAll(subj))
	} else {
		h.SetSubject(subj)
	}
	h.SetAddressList("Reply-To", []*mail.Address{{Address: replyTo}})
	h.SetAddressList("Cc", cc)
	h.SetAddressList("To", []*mail.Address{to})
	h.SetAddressList("From", []*mail.Address{{Name: fromName(m.AgentName, team), Address: from}})

	var buf bytes.Buffer
	buf.Grow(4096 + 4*b.attachmentBytes/3)
	if len(b.attachments) == 0 {
		w, err := mail.CreateInlineWriter(&buf, h)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCompose, err)
		}
		if err := writeAlternatives(w, b); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompose, err)
	}
	iw, err := w.CreateInline()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompose, err)
	}
	if err := writeAlternatives(iw, b); err != nil {
		return nil, err
	}
	for _, a := range b.attachments {
		if err := writeAttachment(w, a); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompose, err)
	}
	return buf.Bytes(), nil
}

// qEncodeAll encodes s as RFC 2047 Q encoded words of UTF-8, every one
// of them, each at most 75 characters long (section 2), split between
// runes (section 5).
func qEncodeAll(s string) string {
	const prefix, suffix, room = "=?utf-8?q?", "?=", 75 - len("=?utf-8?q?") - len("?=")
	var words []string
	var w strings.Builder
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			var b [utf8.UTFMax]byte
			for _, c := range b[:utf8.EncodeRune(b[:], r)] {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if w.Len()+len(enc) > room {
			words = append(words, prefix+w.String()+suffix)
			w.Reset()
		}
		w.WriteString(enc)
	}
	return strings.Join(append(words, prefix+w.String()+suffix), " ")
}

// fromName is the From display name: "Agent via Team", or the team alone
// for mail no agent wrote (a survey).
func fromName(agent, team string) string {
	agent = headerText(agent, maxNameRunes)
	switch {
	case agent == "":
		return team
	case team == "":
		return agent
	}
	return agent + " via " + team
}

// subject is the Subject of m: "Re: " + the conversation's subject for a
// reply; for automatic mail a fixed one with the conversation's token in
// brackets, which threads the contact's answer back (rule 9).
func subject(m inbox.OutboundEmail, team string) string {
	tag := ""
	if m.Token != "" {
		tag = "[#" + headerText(m.Token, maxNameRunes) + "] "
	}
	switch m.Kind {
	case inbox.OutboundDigest:
		return tag + "New messages from " + team
	case inbox.OutboundSurvey:
		return tag + "How did we do? Rate your conversation with " + team
	}
	s := headerText(m.Subject, maxSubjectRunes)
	if s == "" {
		return tag + "Message from " + team
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// headerText makes s safe and short for a header: invalid UTF-8 replaced,
// every control character (C0, DEL, C1: CR, LF, NUL, TAB...) and line or
// paragraph separator (U+2028, U+2029) turned into a space, runs of spaces
// collapsed, and the result cut to max runes. Encoding (RFC 2047) is left
// to the header writer.
func headerText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) { // IsSpace: U+2028, U+2029, U+0085 too
			return ' '
		}
		return r
	}, s) // and invalid UTF-8 became U+FFFD
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimRight(string([]rune(s)[:max-1]), " ") + "…"
	}
	return s
}

// address checks a and returns it for a header, its name made safe.
func address(a inbox.Address) (*mail.Address, error) {
	spec, err := addrSpec(a.Addr)
	if err != nil {
		return nil, err
	}
	return &mail.Address{Name: headerText(a.Name, maxNameRunes), Address: spec}, nil
}

// addrSpec checks that s is a bare addr-spec (RFC 5322 section 3.4.1) of
// printable ASCII, "user@example.com", which goes into a header and the
// SMTP envelope as it is.
func addrSpec(s string) (string, error) {
	if !printableASCII(s) {
		return "", fmt.Errorf("%q is not an address", s)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return "", fmt.Errorf("%q is not an address", s)
	}
	return s, nil
}

// validMsgID reports whether id can stand between the angle brackets of a
// msg-id (RFC 5322 section 3.6.4): id-left "@" id-right, of atext and dots,
// or a domain literal on the right, at most maxMsgIDLen long. Nothing that looks like an encoded
// word ("=?", RFC 2047) passes either, for mailers that would decode it.
func validMsgID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	if !ok || len(id) > maxMsgIDLen || left == "" || right == "" || strings.Contains(id, "=?") {
		return false
	}
	if strings.HasPrefix(right, "[") && strings.HasSuffix(right, "]") {
		right = right[1 : len(right)-1]
		return !strings.ContainsAny(right, "[]\\") && printableASCII(right) && dotAtom(left)
	}
	return dotAtom(left) && dotAtom(right)
}

// dotAtom reports whether s is made of atext and dots (RFC 5322 section
// 3.2.3).
func dotAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// msgIDs returns the valid ids of l (other mailers' Message-IDs are not
// ours to trust), keeping the first and the newest when there are more
// than max.
func msgIDs(l []string, max int) []string {
	var ok []string
	for _, id := range l {
		if validMsgID(id) {
			ok = append(ok, id)
		}
	}
	if len(ok) > max && max > 1 {
		ok = append(ok[:1], ok[len(ok)-max+1:]...)
	}
	return ok
}

// body is what the text and HTML parts of a mail say.
type body struct {
	// Intro is the first paragraph.
	Intro string
	// Context is the contact's own last message, quoted (digest).
	Context string
	// Messages are the carried agent messages.
	Messages []bodyMessage
	// Authors shows each message's author and time (digest).
	Authors bool
	// Ratings are the survey's links, 1 to 5.
	Ratings []rating
	// Outro is the last paragraph.
	Outro string

	attachments     []inbox.Attachment
	attachmentBytes int
}

type bodyMessage struct {
	Author, Time, Text string
}

type rating struct {
	Label, URL string
}

// ratingLabels are the survey's scores 1 to 5 (RatingTokens in order).
var ratingLabels = [5]string{"1 (very poor)", "2 (poor)", "3 (fair)", "4 (good)", "5 (excellent)"}

// buildBody decides the words of m's mail.
func buildBody(m inbox.OutboundEmail, team, baseURL string) (body, error) {
	var b body
	for _, msg := range m.Messages {
		b.Messages = append(b.Messages, bodyMessage{
			Author: msg.AgentName,
			Time:   msg.CreatedAt.UTC().Format("Mon 2 Jan 2006 15:04 MST"),
			Text:   msg.Text,
		})
		for _, a := range msg.Attachments {
			b.attachments = append(b.attachments, a)
			b.attachmentBytes += len(a.Data)
		}
	}
	switch m.Kind {
	case inbox.OutboundDigest:
		b.Intro = "You have new messages from " + team + " that you have not read yet:"
		b.Context = m.Context
		b.Authors = true
		b.Outro = "Reply to this email to continue the conversation."
	case inbox.OutboundSurvey:
		if len(m.RatingTokens) != len(ratingLabels) {
			return b, fmt.Errorf("%w: a survey needs %d rating tokens, not %d", ErrCompose, len(ratingLabels), len(m.RatingTokens))
		}
		base := strings.TrimRight(baseURL, "/")
		if u, err := url.Parse(base); base == "" || err != nil || u.Host == "" {
			return b, fmt.Errorf("%w: a survey's rating links need base_url (got %q)", ErrCompose, baseURL)
		}
		b.Intro = "Thank you for contacting " + team + ". How would you rate the help you got? Choose a score:"
		for i, tok := range m.RatingTokens {
			b.Ratings = append(b.Ratings, rating{Label: ratingLabels[i], URL: base + "/rate/" + url.PathEscape(tok)})
		}
		b.Outro = "Or reply to this email to tell us more."
	}
	return b, nil
}

// text renders b as the text/plain part.
func (b body) text() string {
	var s strings.Builder
	para := func(p string) {
		if s.Len() > 0 {
			s.WriteString("\n\n")
		}
		s.WriteString(p)
	}
	if b.Intro != "" {
		para(b.Intro)
	}
	if b.Context != "" {
		para("You wrote:\n" + quote(b.Context))
	}
	for _, m := range b.Messages {
		if b.Authors {
			para(m.Author + ", " + m.Time + ":\n" + m.Text)
		} else {
			para(m.Text)
		}
	}
	for i, r := range b.Ratings {
		if i == 0 {
			para("")
		} else {
			s.WriteString("\n")
		}
		s.WriteString(r.Label + ": " + r.URL)
	}
	if b.Outro != "" {
		para(b.Outro)
	}
	s.WriteString("\n")
	return s.String()
}

// quote prefixes every line of s with "> ".
func quote(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n")
}

// htmlPart is the text/html part: the same words as text(), every one of
// them escaped by html/template.
var htmlPart = template.Must(template.New("html").Funcs(template.FuncMap{
	"lines": func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body style="font-family: sans-serif; line-height: 1.4">
{{- if .Intro}}
<p>{{.Intro}}</p>
{{- end}}
{{- if .Context}}
<p style="color: #555">You wrote:</p>
<blockquote style="margin: 0 0 1em; padding-left: 1em; border-left: 3px solid #ccc; color: #555">{{range $i, $l := lines .Context}}{{if $i}}<br>{{end}}{{$l}}{{end}}</blockquote>
{{- end}}
{{- range .Messages}}
{{- if $.Authors}}
<p style="margin-bottom: 0; color: #555; font-size: 90%">{{.Author}}, {{.Time}}:</p>
{{- end}}
<p style="margin-top: 0">{{range $i, $l := lines .Text}}{{if $i}}<br>{{end}}{{$l}}{{end}}</p>
{{- end}}
{{- if .Ratings}}
<p>{{range .Ratings}}<a href="{{.URL}}" style="display: inline-block; margin: 0 .5em .5em 0; padding: .4em .8em; border: 1px solid #888; border-radius: 4px; text-decoration: none">{{.Label}}</a> {{end}}</p>
{{- end}}
{{- if .Outro}}
<p>{{.Outro}}</p>
{{- end}}
</body></html>
`))

// writeAlternatives writes b's text/plain and text/html parts to w.
func writeAlternatives(w *mail.InlineWriter, b body) error {
	var html bytes.Buffer
	if err := htmlPart.Execute(&html, b); err != nil {
		return fmt.Errorf("%w: %v", ErrCompose, err)
	}
	for _, p := range []struct {
		typ  string
		data []byte
	}{{"text/plain", []byte(b.text())}, {"text/html", html.Bytes()}} {
		var h mail.InlineHeader
		h.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(h)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCompose, err)
		}
		if _, err := pw.Write(p.data); err != nil {
			return fmt.Errorf("%w: %v", ErrCompose, err)
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("%w: %v", ErrCompose, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%w: %v", ErrCompose, err)
	}
	return nil
}

// fileName makes an attachment's name safe for its header: one line
// without path separators, at most maxFilenameBytes of UTF-8 (so that its
// RFC 2231 form, up to three characters a byte, fits a header line),
// shortened in the middle to keep the extension.
func fileName(s string) string {
	name := strings.NewReplacer("/", "_", "\\", "_").Replace(headerText(s, maxFilenameBytes))
	if len(name) > maxFilenameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		cut := maxFilenameBytes - len(ext) - len("…")
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "…" + ext
	}
	if name == "" {
		name = "attachment"
	}
	return name
}

// writeAttachment writes a as an attachment part of w, its name in the
// RFC 2231 form that mime.FormatMediaType uses for non-ASCII names (and
// also as the Content-Type name parameter, for older clients).
func writeAttachment(w *mail.Writer, a inbox.Attachment) error {
	name := fileName(a.Name)
	typ, _, err := mime.ParseMediaType(a.ContentType)
	if err != nil || strings.HasPrefix(typ, "multipart/") || strings.HasPrefix(typ, "message/") {
		typ = "application/octet-stream"
	}
	var h mail.AttachmentHeader
	h.Set("Content-Type", mime.FormatMediaType(typ, map[string]string{"name": name}))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Transfer-Encoding", "base64")
	aw, err := w.CreateAttachment(h)
	if err != nil {
		return fmt.Errorf("%w: attachment %q: %v", ErrCompose, name, err)
	}
	if _, err := aw.Write(a.Data); err != nil {
		return fmt.Errorf("%w: attachment %q: %v", ErrCompose, name, err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("%w: attachment %q: %v", ErrCompose, name, err)
	}
	return nil
}
