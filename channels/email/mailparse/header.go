package mailparse

import (
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/microdeets/microchat/inbox"
)

// maxReferences is how many Message-IDs of References are kept: the first
// (the thread's root) and the newest, as RFC 5322 section 3.6.4 suggests
// when trimming; enough to thread, bounded for the store's lookups.
const maxReferences = 100

// maxAddresses bounds an address field (To, Cc and the others) as kept.
const maxAddresses = 1000

// envelope fills the fields of in that come from the header.
func (p *parser) envelope(in *inbox.IncomingEmail, h textproto.Header) {
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		in.MessageID = ids[0]
	}
	in.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	if len(in.InReplyTo) > maxReferences {
		in.InReplyTo = in.InReplyTo[:maxReferences]
	}
	refs := msgIDs(h.Get("References"))
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	in.References = refs

	from := p.addresses(h, "From")
	for _, k := range []string{"Sender", "Reply-To", "Return-Path"} {
		if len(from) > 0 {
			break
		}
		from = p.addresses(h, k)
	}
	if len(from) > 0 {
		in.From = from[0]
	}
	if rt := p.addresses(h, "Reply-To"); len(rt) > 0 {
		in.ReplyTo = &rt[0]
	}
	in.To = p.addresses(h, "To")
	in.Cc = p.addresses(h, "Cc")

	seen := map[string]bool{}
	add := func(as []inbox.Address) {
		for _, a := range as {
			if k := strings.ToLower(a.Addr); !seen[k] && len(in.Recipients) < maxAddresses {
				seen[k] = true
				in.Recipients = append(in.Recipients, a.Addr)
			}
		}
	}
	add(in.To)
	add(in.Cc)
	for _, k := range []string{"Delivered-To", "X-Original-To", "Envelope-To"} {
		for _, v := range h.Values(k) {
			add(parseList(v, p.words))
		}
	}

	in.Subject = clip(inbox.CleanLine(p.words.decode(h.Get("Subject"))), 1000)
	in.Date = date(h)
}

// addresses parses every field k of h (a header may repeat From or To).
func (p *parser) addresses(h textproto.Header, k string) []inbox.Address {
	var out []inbox.Address
	for _, v := range h.Values(k) {
		out = append(out, parseList(v, p.words)...)
		if len(out) >= maxAddresses {
			return out[:maxAddresses]
		}
	}
	return out
}

// msgIDs reads the Message-IDs of a Message-ID, In-Reply-To or References
// field (RFC 5322 section 3.6.4), without angle brackets, in order. It is
// lenient: comments and words between ids are skipped ("<a@b> (Joe's
// message of Monday)"), folding white space inside an id is removed, and
// a field with no brackets at all is read as white-space separated ids
// (those that have an "@", or the whole field when it is one word).
func msgIDs(v string) []string {
	var ids []string
	if !strings.Contains(v, "<") {
		words := strings.Fields(v)
		for _, w := range words {
			if strings.Contains(w, "@") || len(words) == 1 {
				ids = appendID(ids, w)
			}
		}
		return ids
	}
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		v = v[i+1:]
		j := strings.IndexByte(v, '>')
		if j < 0 {
			return appendID(ids, v)
		}
		id := v[:j]
		if k := strings.LastIndexByte(id, '<'); k >= 0 {
			id = id[k+1:]
		}
		ids = appendID(ids, id)
		v = v[j+1:]
	}
}

func appendID(ids []string, id string) []string {
	id = strings.Join(strings.Fields(inbox.CleanLine(id)), "")
	id = strings.Trim(id, "<>")
	if id == "" || len(id) > 998 {
		return ids
	}
	return append(ids, id)
}

// date reads the Date field (RFC 5322 section 3.6.1) with net/mail, which
// knows the obsolete forms; without a readable one, the date of the
// newest Received field (RFC 5321 section 4.4), else zero.
func date(h textproto.Header) time.Time {
	if t, err := mail.ParseDate(strings.TrimSpace(h.Get("Date"))); err == nil {
		return t
	}
	if r := h.Get("Received"); r != "" {
		if i := strings.LastIndexByte(r, ';'); i >= 0 {
			if t, err := mail.ParseDate(strings.TrimSpace(r[i+1:])); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}
