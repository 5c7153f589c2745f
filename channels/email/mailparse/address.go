package mailparse

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"

	"github.com/microdeets/microchat/inbox"
)

// Addresses (RFC 5322 section 3.4) as mail really writes them. A field is
// read with net/mail (encoded words decoded with go-message's charsets);
// when net/mail refuses it, a lenient reader takes what it can: display
// names with unquoted commas ("Doe, John <john@example.com>"), addresses
// without angle brackets after a name ("John Doe john@example.com"),
// stray semicolons, groups. Every address comes out with its domain in
// lower case (domains are case-insensitive, RFC 5321 section 2.4; the
// local part is kept as written), its name one clean line.

// maxFieldBytes bounds what is read of one address field.
const maxFieldBytes = 256 << 10

// ErrNoAddress is ParseAddress's answer for text that holds no address.
var ErrNoAddress = errors.New("mailparse: no mail address")

// ParseAddress reads one address, "Name <user@example.com>" or a bare
// "user@example.com", leniently (see above); the first when s holds
// several. ErrNoAddress when it holds none.
func ParseAddress(s string) (inbox.Address, error) {
	as := parseList(s, newWordDecoder())
	if len(as) == 0 {
		return inbox.Address{}, ErrNoAddress
	}
	return as[0], nil
}

// ParseAddressList reads an address field (From, To, Cc, Reply-To...)
// leniently (see above); what holds no address is dropped.
func ParseAddressList(s string) []inbox.Address {
	return parseList(s, newWordDecoder())
}

func parseList(s string, dec *wordDecoder) []inbox.Address {
	s = clip(s, maxFieldBytes)
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []inbox.Address
	parser := mail.AddressParser{WordDecoder: &dec.dec}
	if list, err := parser.ParseList(s); err == nil {
		for _, a := range list {
			if addr, ok := cleanAddr(a.Address); ok {
				out = append(out, inbox.Address{Name: cleanName(a.Name, addr), Addr: addr})
			}
		}
		return capList(out)
	}
	for _, item := range splitAddressList(s) {
		if a, ok := lenientAddress(item, dec); ok {
			out = append(out, a)
		}
	}
	return capList(out)
}

func capList(as []inbox.Address) []inbox.Address {
	if len(as) > maxAddresses {
		return as[:maxAddresses]
	}
	return as
}

// splitAddressList cuts a field into items at commas and semicolons
// outside quotes, comments and angle brackets, but only once the item
// holds an address: the comma in "Doe, John <john@example.com>" is part
// of the name. A group's "name:" starts a new item.
func splitAddressList(s string) []string {
	var items []string
	start := 0
	quoted, angle, comment := false, false, 0
	hasAddr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (quoted || comment > 0):
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
		case comment > 0:
			if c == '(' {
				comment++
			} else if c == ')' {
				comment--
			}
		case angle:
			if c == '@' {
				hasAddr = true
			}
			if c == '>' {
				angle = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			comment = 1
		case c == '<':
			angle = true
		case c == '@':
			hasAddr = true
		case c == ':' && !hasAddr:
			start = i + 1 // a group's name
		case (c == ',' || c == ';') && hasAddr:
			items = append(items, s[start:i])
			start, hasAddr = i+1, false
		}
	}
	if start < len(s) {
		items = append(items, s[start:])
	}
	return items
}

// lenientAddress reads one item of splitAddressList: the address in angle
// brackets, else the word with an "@"; the rest (without quotes and
// comments, unless the name is only a comment) is the name.
func lenientAddress(item string, dec *wordDecoder) (inbox.Address, bool) {
	var addr string
	name := item
	if i := strings.LastIndexByte(item, '<'); i >= 0 {
		j := strings.IndexByte(item[i:], '>')
		if j < 0 {
			j = len(item) - i
		}
		addr = item[i+1 : i+j]
		name = item[:i] + item[min(i+j+1, len(item)):]
	} else {
		words := strings.Fields(strings.NewReplacer("(", " (", ")", ") ", ",", " ", ";", " ").Replace(item))
		for k, w := range words {
			if strings.Contains(w, "@") && !strings.HasPrefix(w, "(") {
				addr = w
				words = append(words[:k:k], words[k+1:]...)
				break
			}
		}
		name = strings.Join(words, " ")
	}
	addr, ok := cleanAddr(addr)
	if !ok {
		return inbox.Address{}, false
	}
	name = strings.TrimSpace(name)
	name = strings.Trim(name, ",; \t")
	if strings.HasPrefix(name, "(") && strings.HasSuffix(name, ")") {
		name = name[1 : len(name)-1]
	}
	name = strings.ReplaceAll(strings.ReplaceAll(name, `\"`, "\x01"), `"`, "")
	name = strings.ReplaceAll(name, "\x01", `"`)
	return inbox.Address{Name: cleanName(dec.decode(name), addr), Addr: addr}, true
}

// cleanAddr checks and normalises an addr-spec: local@domain, no white
// space or control characters, at most 320 bytes (RFC 5321 section
// 4.5.3.1: 64 for the local part, 255 for the domain), the domain in
// lower case.
func cleanAddr(a string) (string, bool) {
	a = strings.Trim(strings.TrimSpace(a), "<>")
	if len(a) > 2 && (a[0] == '\'' || a[0] == '"') && a[len(a)-1] == a[0] {
		a = a[1 : len(a)-1]
	}
	a = strings.TrimPrefix(strings.TrimPrefix(a, "mailto:"), "MAILTO:")
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || len(a) > 320 {
		return "", false
	}
	for _, c := range a {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '(' || c == ')' || c == 0xFFFD {
			return "", false
		}
	}
	local, domain := a[:at], strings.ToLower(strings.TrimSuffix(a[at+1:], "."))
	if !validDomain(domain) || !validLocal(local) {
		return "", false
	}
	if inbox.CleanLine(a) != a {
		return "", false
	}
	return local + "@" + domain, true
}

// validDomain accepts a host name of letters (any script), digits, "-",
// "_" and dots, or a domain literal "[192.0.2.1]".
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") && len(d) > 2 {
		return !strings.ContainsAny(d[1:len(d)-1], "[]\\\"")
	}
	if d == "" || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, r := range d {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '.' && r != '_' {
			return false
		}
	}
	return true
}

// validLocal accepts a local part without quotes or backslashes, or one
// quoted whole ("john.doe"@example.com) without quotes inside.
func validLocal(l string) bool {
	if len(l) > 2 && l[0] == '"' && l[len(l)-1] == '"' {
		l = l[1 : len(l)-1]
	}
	return l != "" && !strings.ContainsAny(l, "\"\\@")
}

// cleanName makes a display name one clean line, and drops one that only
// repeats the address.
func cleanName(name, addr string) string {
	name = strings.Trim(inbox.CleanLine(name), `'" `)
	name = strings.TrimSpace(clip(strings.Join(strings.Fields(name), " "), 200))
	if strings.EqualFold(name, addr) {
		return ""
	}
	return name
}

// PlusToken returns the tag of a plus address of a mailbox: for the
// mailbox "support@example.com", "support+c42-abc@example.com" gives
// "c42-abc" (a subaddress, RFC 5233). ok is false when addr is not the
// mailbox's address with a non-empty tag. Local parts and domains are
// compared without case; the tag is returned as written (the store
// checks its signature, rule 9). Both may be bare or "Name <addr>".
func PlusToken(addr, mailboxAddr string) (token string, ok bool) {
	a, err := ParseAddress(addr)
	if err != nil {
		return "", false
	}
	m, err := ParseAddress(mailboxAddr)
	if err != nil {
		return "", false
	}
	at := strings.LastIndexByte(a.Addr, '@')
	mat := strings.LastIndexByte(m.Addr, '@')
	if !strings.EqualFold(a.Addr[at+1:], m.Addr[mat+1:]) {
		return "", false
	}
	local, mlocal := a.Addr[:at], m.Addr[:mat]
	if len(local) < len(mlocal)+2 || local[len(mlocal)] != '+' || !strings.EqualFold(local[:len(mlocal)], mlocal) {
		return "", false
	}
	return local[len(mlocal)+1:], true
}
