package email

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
)

var testMailbox = config.Mailbox{
	Name:        "support",
	Address:     "support@example.com",
	DisplayName: "Example Support",
	SMTP:        config.SMTP{Host: "127.0.0.1", TLS: config.TLSNone},
}

var testDate = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// testReply is an agent's reply by email in a thread the contact started.
func testReply() inbox.OutboundEmail {
	return inbox.OutboundEmail{
		ID:             7,
		Kind:           inbox.OutboundReply,
		ConversationID: 42,
		Mailbox:        "support",
		MessageID:      "m.7.abcdef0123@example.com",
		InReplyTo:      "CAF=x2@mail.gmail.com",
		References:     []string{"first@mail.example.org", "CAF=x2@mail.gmail.com"},
		To:             inbox.Address{Name: "Zoë Customer", Addr: "zoe@example.org"},
		Cc:             []inbox.Address{{Name: "Colleague", Addr: "col@example.org"}},
		Subject:        "Where is my order?",
		ReplyTo:        "support+c42-ABCDEFGH23456789@example.com",
		AgentName:      "Alice",
		Token:          "c42-ABCDEFGH23456789",
		Messages: []inbox.OutboundMessage{{
			ID:        100,
			AgentName: "Alice",
			Text:      "Hi Zoë,\nyour order <#42> & the \"gift\" ship today.\n\nAlice",
			CreatedAt: testDate,
			Attachments: []inbox.Attachment{
				{Name: "label.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 label")},
				{Name: "Rechnung März.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("Summe: 12 €\r\n")},
			},
		}},
	}
}

// parsedMail is a composed mail read back with go-message.
type parsedMail struct {
	raw         []byte
	keys        []string // header field names in order
	header      mail.Header
	text, html  string
	attachments []parsedAttachment
}

type parsedAttachment struct {
	name, contentType string
	data              []byte
}

// parseMail reads raw back, failing the test if it is not a well-formed
// mail whose header lines all fit RFC 5322's 998 characters.
func parseMail(t testing.TB, raw []byte) parsedMail {
	t.Helper()
	p := parsedMail{raw: raw}
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for l := range strings.SplitSeq(string(head), "\r\n") {
		if len(l) > 998 {
			t.Fatalf("header line of %d characters: %.100q", len(l), l)
		}
		if strings.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("bare CR, LF or NUL in header line %q", l)
		}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("header does not parse: %v\n%s", err, head)
	}
	for f := h.Fields(); f.Next(); {
		p.keys = append(p.keys, f.Key())
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mail does not parse: %v", err)
	}
	p.header = r.Header
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart() = %v", err)
		}
		b, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatalf("part body: %v", err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			typ, params, _ := h.ContentType()
			if params["charset"] != "utf-8" {
				t.Errorf("%s part charset %q, want utf-8", typ, params["charset"])
			}
			// Text travels with CRLF line ends (RFC 2045 section 6.7).
			text := strings.ReplaceAll(string(b), "\r\n", "\n")
			switch typ {
			case "text/plain":
				p.text = text
			case "text/html":
				p.html = text
			default:
				t.Errorf("unexpected inline part %s", typ)
			}
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			if err != nil {
				t.Errorf("attachment file name: %v (%q)", err, h.Get("Content-Disposition"))
			}
			typ, _, _ := h.ContentType()
			p.attachments = append(p.attachments, parsedAttachment{name, typ, b})
		}
	}
	return p
}

func (p parsedMail) get(t testing.TB, key string) string {
	t.Helper()
	v, err := p.header.Text(key)
	if err != nil {
		t.Errorf("%s: %v", key, err)
	}
	return v
}

func (p parsedMail) addresses(t testing.TB, key string) []*mail.Address {
	t.Helper()
	l, err := p.header.AddressList(key)
	if err != nil {
		t.Fatalf("%s %q: %v", key, p.header.Get(key), err)
	}
	return l
}

func sortedKeys(l []string) []string {
	l = slices.Clone(l)
	for i := range l {
		l[i] = strings.ToLower(l[i])
	}
	slices.Sort(l)
	return l
}

// replyKeys are the header fields of a reply with Cc and a thread.
var replyKeys = []string{"From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-Id", "In-Reply-To", "References", "Mime-Version", "Content-Type"}

func TestComposeReply(t *testing.T) {
	m := testReply()
	raw, err := Compose(m, testMailbox, "https://chat.example.com", testDate)
	if err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	p := parseMail(t, raw)
	if got, want := sortedKeys(p.keys), sortedKeys(replyKeys); !slices.Equal(got, want) {
		t.Errorf("header fields %v, want %v", got, want)
	}
	from := p.addresses(t, "From")
	if len(from) != 1 || from[0].Name != "Alice via Example Support" || from[0].Address != "support@example.com" {
		t.Errorf("From = %v, want \"Alice via Example Support\" <support@example.com>", from)
	}
	to := p.addresses(t, "To")
	if len(to) != 1 || to[0].Name != "Zoë Customer" || to[0].Address != "zoe@example.org" {
		t.Errorf("To = %v", to)
	}
	if cc := p.addresses(t, "Cc"); len(cc) != 1 || cc[0].Address != "col@example.org" {
		t.Errorf("Cc = %v", cc)
	}
	if rt := p.addresses(t, "Reply-To"); len(rt) != 1 || rt[0].Address != m.ReplyTo {
		t.Errorf("Reply-To = %v, want %s", rt, m.ReplyTo)
	}
	if s := p.get(t, "Subject"); s != "Re: Where is my order?" {
		t.Errorf("Subject = %q", s)
	}
	if id, _ := p.header.MessageID(); id != m.MessageID {
		t.Errorf("Message-ID = %q, want %q", id, m.MessageID)
	}
	if l, _ := p.header.MsgIDList("In-Reply-To"); !slices.Equal(l, []string{m.InReplyTo}) {
		t.Errorf("In-Reply-To = %q", l)
	}
	if l, _ := p.header.MsgIDList("References"); !slices.Equal(l, m.References) {
		t.Errorf("References = %q, want %q", l, m.References)
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(testDate) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if p.header.Has("Auto-Submitted") {
		t.Errorf("a reply is not automatic, yet Auto-Submitted: %s", p.header.Get("Auto-Submitted"))
	}
	if want := m.Messages[0].Text + "\n"; p.text != want {
		t.Errorf("text part = %q, want %q", p.text, want)
	}
	if !strings.Contains(p.html, "Hi Zoë,<br>your order &lt;#42&gt; &amp; the &#34;gift&#34; ship today.<br><br>Alice") {
		t.Errorf("HTML part does not hold the escaped text:\n%s", p.html)
	}
	if len(p.attachments) != 2 {
		t.Fatalf("%d attachments, want 2", len(p.attachments))
	}
	for i, a := range m.Messages[0].Attachments {
		got := p.attachments[i]
		typ, _, _ := strings.Cut(a.ContentType, ";")
		if got.name != a.Name || got.contentType != typ || !bytes.Equal(got.data, a.Data) {
			t.Errorf("attachment %d = %q %s %q, want %q %s %q", i, got.name, got.contentType, got.data, a.Name, typ, a.Data)
		}
	}
	if !bytes.Contains(raw, []byte(`filename*=utf-8''Rechnung%20M%C3%A4rz.txt`)) {
		t.Errorf("the non-ASCII file name is not in RFC 2231 form:\n%s", raw)
	}
}

func TestComposeReplySubject(t *testing.T) {
	for _, c := range []struct{ subject, want string }{
		{"Order", "Re: Order"},
		{"RE: Order", "RE: Order"},
		{"re:Order", "re:Order"},
		{"", "[#c42-ABCDEFGH23456789] Message from Example Support"},
		{"  Two\r\n  lines ", "Re: Two lines"},
	} {
		m := testReply()
		m.Subject = c.subject
		raw, err := Compose(m, testMailbox, "", testDate)
		if err != nil {
			t.Fatalf("Compose() = %v", err)
		}
		if got := parseMail(t, raw).get(t, "Subject"); got != c.want {
			t.Errorf("subject %q: Subject = %q, want %q", c.subject, got, c.want)
		}
	}
}

func TestComposeNoAttachments(t *testing.T) {
	m := testReply()
	m.Messages[0].Attachments = nil
	raw, err := Compose(m, testMailbox, "", testDate)
	if err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	p := parseMail(t, raw)
	if typ, _, _ := p.header.ContentType(); typ != "multipart/alternative" {
		t.Errorf("Content-Type %s, want multipart/alternative without attachments", typ)
	}
	if p.text == "" || p.html == "" || len(p.attachments) != 0 {
		t.Errorf("text %q, html %q, %d attachments", p.text, p.html, len(p.attachments))
	}
}

func testDigest() inbox.OutboundEmail {
	return inbox.OutboundEmail{
		ID: 8, Kind: inbox.OutboundDigest, ConversationID: 42, Mailbox: "support",
		MessageID: "m.8.0123456789@example.com",
		To:        inbox.Address{Name: "Zoë", Addr: "zoe@example.org"},
		ReplyTo:   "support+c42-ABCDEFGH23456789@example.com",
		Token:     "c42-ABCDEFGH23456789",
		Context:   "Is the blue one in stock?\nSize M please.",
		Messages: []inbox.OutboundMessage{
			{ID: 101, AgentName: "Alice", Text: "Let me check.", CreatedAt: testDate},
			{ID: 102, AgentName: "Bob", Text: "Yes, <b>M</b> is in stock!", CreatedAt: testDate.Add(3 * time.Minute)},
		},
	}
}

func TestComposeDigest(t *testing.T) {
	raw, err := Compose(testDigest(), testMailbox, "https://chat.example.com", testDate)
	if err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	p := parseMail(t, raw)
	if v := p.header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted = %q, want auto-generated (RFC 3834)", v)
	}
	if s := p.get(t, "Subject"); s != "[#c42-ABCDEFGH23456789] New messages from Example Support" {
		t.Errorf("Subject = %q", s)
	}
	if from := p.addresses(t, "From"); from[0].Name != "Example Support" {
		t.Errorf("From = %v, want the team's name", from)
	}
	for _, want := range []string{
		"You wrote:\n> Is the blue one in stock?\n> Size M please.",
		"Alice, Sun 1 Mar 2026 09:30 UTC:\nLet me check.",
		"Bob, Sun 1 Mar 2026 09:33 UTC:\nYes, <b>M</b> is in stock!",
		"Reply to this email to continue the conversation.",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("text part lacks %q:\n%s", want, p.text)
		}
	}
	for _, want := range []string{"Size M please.</blockquote>", "Bob, Sun 1 Mar 2026 09:33 UTC:", "Yes, &lt;b&gt;M&lt;/b&gt; is in stock!", "Reply to this email to continue the conversation."} {
		if !strings.Contains(p.html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, p.html)
		}
	}
}

func testSurvey() inbox.OutboundEmail {
	return inbox.OutboundEmail{
		ID: 9, Kind: inbox.OutboundSurvey, ConversationID: 42, Mailbox: "support",
		MessageID:    "m.9.0123456789@example.com",
		To:           inbox.Address{Addr: "zoe@example.org"},
		Token:        "c42-ABCDEFGH23456789",
		RatingTokens: []string{"r1-AAAA", "r2-BBBB", "r3-CCCC", "r4-DDDD", "r5-EEEE"},
	}
}

func TestComposeSurvey(t *testing.T) {
	raw, err := Compose(testSurvey(), testMailbox, "https://chat.example.com/", testDate)
	if err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	p := parseMail(t, raw)
	if v := p.header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted = %q, want auto-generated (RFC 3834)", v)
	}
	if s := p.get(t, "Subject"); !strings.HasPrefix(s, "[#c42-ABCDEFGH23456789] ") {
		t.Errorf("Subject = %q, want the conversation token first", s)
	}
	if rt := p.addresses(t, "Reply-To"); len(rt) != 1 || rt[0].Address != "support@example.com" {
		t.Errorf("Reply-To = %v, want the mailbox's address when the row names none", rt)
	}
	for i, tok := range testSurvey().RatingTokens {
		link := "https://chat.example.com/rate/" + tok
		if !strings.Contains(p.text, ratingLabels[i]+": "+link+"\n") {
			t.Errorf("text part lacks the link for %d, %s:\n%s", i+1, link, p.text)
		}
		if !strings.Contains(p.html, `<a href="`+link+`"`) || !strings.Contains(p.html, ">"+ratingLabels[i]+"</a>") {
			t.Errorf("HTML part lacks the link for %d, %s:\n%s", i+1, link, p.html)
		}
	}

	if _, err := Compose(testSurvey(), testMailbox, "", testDate); !errors.Is(err, ErrCompose) {
		t.Errorf("survey without base_url: Compose() = %v, want ErrCompose", err)
	}
	short := testSurvey()
	short.RatingTokens = short.RatingTokens[:4]
	if _, err := Compose(short, testMailbox, "https://chat.example.com", testDate); !errors.Is(err, ErrCompose) {
		t.Errorf("survey with 4 tokens: Compose() = %v, want ErrCompose", err)
	}
}

// evil are texts that would add a header or break one if copied raw.
var evil = []string{
	"x\r\nBcc: x@evil.example",
	"\r\nBcc: x@evil.example",
	"x\nBcc: x@evil.example",
	"x\rBcc: x@evil.example",
	"x\x00Bcc: x@evil.example",
	"x\u2028Bcc: x@evil.example\u2029",
	"x\u0085Bcc: x@evil.example",
	"x\r\n\r\nbody in the header",
	"=?utf-8?q?=0D=0ABcc:_x@evil.example?=",
	"\"quoted\" <and> (comment) ; , : @ \\",
	"\xff\xfe invalid UTF-8 \xc3",
	"\t\v\f",
	strings.Repeat("A", 5000),
	strings.Repeat("long name ", 500),
	strings.Repeat("é", 3000),
}

// checkInjection fails the test when raw has other header fields than
// want (each once), or a decoded field holds a control character.
func checkInjection(t testing.TB, raw []byte, want []string) parsedMail {
	t.Helper()
	p := parseMail(t, raw)
	if got, w := sortedKeys(p.keys), sortedKeys(want); !slices.Equal(got, w) {
		t.Fatalf("header fields %v, want %v\n%s", got, w, raw)
	}
	bad := func(key, v string) {
		if strings.IndexFunc(v, func(r rune) bool {
			return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
		}) >= 0 {
			t.Fatalf("%s reads %q, with a control character or line separator", key, v)
		}
	}
	for f := p.header.Fields(); f.Next(); {
		bad(f.Key(), f.Value())
	}
	// Decoded as a mail client would (RFC 2047): the unstructured Subject
	// and the display names.
	bad("Subject", p.get(t, "Subject"))
	for _, key := range []string{"From", "To", "Cc", "Reply-To"} {
		for _, a := range p.addresses(t, key) {
			bad(key, a.Name)
		}
	}
	return p
}

func TestComposeHeaderInjection(t *testing.T) {
	for _, s := range evil {
		for field, set := range map[string]func(*inbox.OutboundEmail, *config.Mailbox){
			"agent name":        func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.AgentName = s },
			"display name":      func(_ *inbox.OutboundEmail, mb *config.Mailbox) { mb.DisplayName = s },
			"mailbox name":      func(_ *inbox.OutboundEmail, mb *config.Mailbox) { mb.DisplayName, mb.Name = "", s },
			"subject":           func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Subject = s },
			"to name":           func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.To.Name = s },
			"cc name":           func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Cc[0].Name = s },
			"token":             func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Token, m.Subject = s, "" },
			"attachment name":   func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Messages[0].Attachments[0].Name = s },
			"attachment type":   func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Messages[0].Attachments[0].ContentType = s },
			"text":              func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Messages[0].Text = s },
			"in-reply-to":       func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.InReplyTo = "a@b" + s },
			"references":        func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.References = []string{"ok@x", s + "@y", "ok2@x"} },
			"digest agent name": func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Messages[0].AgentName = s },
		} {
			m, mb := testReply(), testMailbox
			set(&m, &mb)
			raw, err := Compose(m, mb, "https://chat.example.com", testDate)
			if err != nil {
				t.Fatalf("%s %.40q: Compose() = %v", field, s, err)
			}
			want := replyKeys
			if field == "in-reply-to" {
				want = slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == "In-Reply-To" })
			}
			p := checkInjection(t, raw, want)
			if from := p.addresses(t, "From"); len(from) != 1 || from[0].Address != "support@example.com" {
				t.Errorf("%s %.40q: From = %v", field, s, from)
			}
			if field == "references" {
				if l, _ := p.header.MsgIDList("References"); !slices.Equal(l, []string{"ok@x", "ok2@x"}) {
					t.Errorf("References = %q, want the valid ones", l)
				}
			}
		}
	}
}

func TestComposeRefusesBadAddresses(t *testing.T) {
	for _, s := range append(slices.Clone(evil), "", "no-at-sign", "a@b c", "<a@b>", "Name <a@b>", "a@b,c@d", "zoë@example.org") {
		for field, set := range map[string]func(*inbox.OutboundEmail, *config.Mailbox){
			"to":         func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.To.Addr = s },
			"cc":         func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.Cc[0].Addr = s },
			"reply-to":   func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.ReplyTo = s },
			"mailbox":    func(_ *inbox.OutboundEmail, mb *config.Mailbox) { mb.Address = s },
			"message-id": func(m *inbox.OutboundEmail, _ *config.Mailbox) { m.MessageID = s },
		} {
			if field == "reply-to" && s == "" {
				continue // empty means the mailbox's address
			}
			m, mb := testReply(), testMailbox
			set(&m, &mb)
			if raw, err := Compose(m, mb, "", testDate); !errors.Is(err, ErrCompose) {
				t.Errorf("%s %.40q: Compose() = %v, want ErrCompose\n%s", field, s, err, raw)
			}
		}
	}
}

func TestHeaderText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"  Alice \t Smith\r\n", 64, "Alice Smith"},
		{"a\x00b\u2028c", 64, "a b c"},
		{"abcdef", 4, "abc…"},
		{"ab  cdef", 4, "ab…"},
		{"\xffx", 64, "\uFFFDx"},
	} {
		if got := headerText(c.in, c.max); got != c.want {
			t.Errorf("headerText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func FuzzCompose(f *testing.F) {
	for _, s := range evil {
		f.Add(s, "Example Support", s, "Zoë", s, "c42-X", "a.pdf", "text")
	}
	f.Add("Alice", "", "Re: x", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, agent, display, subject, toName, ccName, token, filename, text string) {
		m, mb := testReply(), testMailbox
		m.AgentName, mb.DisplayName, m.Subject, m.To.Name, m.Cc[0].Name, m.Token = agent, display, subject, toName, ccName, token
		m.Messages[0].Attachments[0].Name, m.Messages[0].Text = filename, text
		for _, kind := range []string{inbox.OutboundReply, inbox.OutboundDigest} {
			m.Kind = kind
			raw, err := Compose(m, mb, "https://chat.example.com", testDate)
			if err != nil {
				t.Fatalf("Compose() = %v", err)
			}
			want := replyKeys
			if kind == inbox.OutboundDigest {
				want = append(slices.Clone(want), "Auto-Submitted", "X-Auto-Response-Suppress")
			}
			p := checkInjection(t, raw, want)
			if from := p.addresses(t, "From"); len(from) != 1 || from[0].Address != mb.Address {
				t.Fatalf("From = %v", from)
			}
			if to := p.addresses(t, "To"); len(to) != 1 || to[0].Address != m.To.Addr {
				t.Fatalf("To = %v", to)
			}
			if len(p.attachments) != 2 || !bytes.Equal(p.attachments[0].data, m.Messages[0].Attachments[0].Data) {
				t.Fatalf("attachments do not read back")
			}
		}
	})
}

// BenchmarkCompose composes a reply with one 100 KB attachment.
func BenchmarkCompose(b *testing.B) {
	m := testReply()
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	m.Messages[0].Attachments = []inbox.Attachment{{Name: "photo.jpg", ContentType: "image/jpeg", Data: data}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compose(m, testMailbox, "https://chat.example.com", testDate); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFileName(t *testing.T) {
	long := strings.Repeat("é", 80) + ".pdf"
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", ".._.._etc_passwd"},
		{"a\r\nb.txt", "a b.txt"},
		{"\x00", "attachment"},
		{long, strings.Repeat("é", 46) + "…" + ".pdf"},
	} {
		got := fileName(c.in)
		if got != c.want {
			t.Errorf("fileName(%.30q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > maxFilenameBytes {
			t.Errorf("fileName(%.30q) is %d bytes long", c.in, len(got))
		}
	}
}

// TestComposeReferencesTrimmed: a long thread keeps its first Message-ID
// and the newest ones (RFC 5322 section 3.6.4).
func TestComposeReferencesTrimmed(t *testing.T) {
	m := testReply()
	m.References = nil
	for i := range 30 {
		m.References = append(m.References, fmt.Sprintf("r%d@example.org", i))
	}
	raw, err := Compose(m, testMailbox, "", testDate)
	if err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	h := parseMail(t, raw).header
	got, _ := h.MsgIDList("References")
	want := append([]string{"r0@example.org"}, m.References[30-maxReferences+1:]...)
	if !slices.Equal(got, want) {
		t.Errorf("References = %q, want %q", got, want)
	}
}
