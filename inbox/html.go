package inbox

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// The HTML of a message (an email's body, or HTML an agent sends) is shown
// in the agents' dashboard, so it is sanitized before it is stored and
// again on every way in, by one policy (SanitizeEmailHTML):
//
//   - Kept: text formatting, lists, tables, quotes, links and images, with
//     a few presentational attributes (align, width, colors) and a few
//     inline styles whose values bluemonday checks (colors, fonts, text
//     alignment). Styles that take a url() (background, list-style,
//     border-image) or can move content out of the message's box
//     (position, margin, transform) are dropped, and so is border, whose
//     bluemonday check backtracks exponentially (twenty "1px" take
//     seconds).
//   - Dropped: script, style, forms, iframes, objects, svg and math, base,
//     meta, link, event handlers (on*), id, name and class (which could
//     clobber the dashboard's own DOM or borrow its CSS), and every URL
//     that is not http, https, mailto or tel, except images below.
//   - Links get rel="noreferrer noopener" and target="_blank" (mailto and
//     tel links only rel="noreferrer").
//   - Images: a remote image is not loaded until an agent asks for it, so
//     that a sender learns nothing (tracking pixels) from an agent opening
//     the mail: <img src="https://..."> becomes <img
//     data-remote-src="https://..."> without src, and the dashboard sets
//     src on request. "cid:" images (inline images of the mail) keep their
//     src, and the store rewrites them to attachment URLs; data: URLs are
//     kept on images only, and only for PNG, JPEG, GIF and WebP.
//
// The result is stable: sanitizing it again changes nothing, so the store
// can sanitize whatever a caller hands it.

var (
	emailPolicyOnce sync.Once
	emailPolicy     *bluemonday.Policy

	// remoteImageURL is what a data-remote-src may hold.
	remoteImageURL = regexp.MustCompile(`^(?i:https?)://[^\s"'<>]+$`)
	// dataImageURL is the only kind of data: URL kept, on img src.
	dataImageURL = regexp.MustCompile(`^(?i:data:image/(?:png|jpeg|gif|webp);base64,)`)
)

// SanitizeEmailHTML returns s made safe to show in the agents' dashboard
// by the policy above. Invalid UTF-8 and NUL are dropped first. It is
// idempotent: SanitizeEmailHTML(SanitizeEmailHTML(s)) ==
// SanitizeEmailHTML(s).
func SanitizeEmailHTML(s string) string {
	emailPolicyOnce.Do(func() { emailPolicy = newHTMLPolicy() })
	if !strings.ContainsAny(s, "<>&\"'\r\x00") && utf8.ValidString(s) {
		return s // plain text, which bluemonday would copy as it is
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	return emailPolicy.Sanitize(rewriteURLs(s))
}

func newHTMLPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "div", "span", "br", "hr", "b", "i", "u", "s", "strike", "strong", "em",
		"small", "big", "sub", "sup", "mark", "del", "ins", "abbr", "cite", "q", "dfn", "kbd",
		"samp", "var", "tt", "code", "pre", "blockquote", "address", "center", "font", "wbr",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd",
		"table", "caption", "thead", "tbody", "tfoot", "tr", "td", "th", "colgroup", "col")
	p.AllowAttrs("dir").Matching(bluemonday.Direction).Globally()
	p.AllowAttrs("lang").Matching(regexp.MustCompile(`^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$`)).Globally()
	p.AllowAttrs("title").Matching(bluemonday.Paragraph).Globally()
	p.AllowAttrs("align").Matching(regexp.MustCompile(`^(?i:left|right|center|justify|middle|top|bottom)$`)).Globally()
	p.AllowAttrs("valign").Matching(regexp.MustCompile(`^(?i:top|middle|bottom|baseline)$`)).OnElements("td", "th", "tr", "tbody", "thead", "tfoot", "col", "colgroup")
	p.AllowAttrs("width", "height").Matching(bluemonday.NumberOrPercent).OnElements("img", "table", "td", "th", "col", "colgroup", "hr")
	p.AllowAttrs("colspan", "rowspan", "span").Matching(bluemonday.Integer).OnElements("td", "th", "col", "colgroup")
	p.AllowAttrs("border", "cellpadding", "cellspacing").Matching(bluemonday.Integer).OnElements("table")
	color := regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,20})$`)
	p.AllowAttrs("bgcolor").Matching(color).OnElements("table", "tr", "td", "th")
	p.AllowAttrs("color").Matching(color).OnElements("font")
	p.AllowAttrs("face").Matching(regexp.MustCompile(`^[a-zA-Z0-9 ,\-']{1,200}$`)).OnElements("font")
	p.AllowAttrs("size").Matching(regexp.MustCompile(`^[+-]?[1-7]$`)).OnElements("font")
	p.AllowAttrs("start").Matching(bluemonday.Integer).OnElements("ol")
	p.AllowAttrs("type").Matching(regexp.MustCompile(`^(?i:[1aio]|disc|circle|square)$`)).OnElements("ol", "ul", "li")
	// Styles whose default bluemonday checks accept no url() and do not
	// backtrack (border's and text-decoration's do: text-decoration gets
	// an enum instead).
	p.AllowStyles("color", "background-color", "font-family", "font-size", "font-style",
		"font-weight", "text-align", "line-height", "vertical-align", "white-space").Globally()
	p.AllowStyles("text-decoration").MatchingEnum("none", "underline", "line-through", "overline").Globally()

	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("src", "alt").OnElements("img")
	p.AllowAttrs("data-remote-src").Matching(remoteImageURL).OnElements("img")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("http", "https", "mailto", "tel", "cid")
	p.AllowDataURIImages() // on img only: rewriteURLs removes data: elsewhere
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

// rewriteURLs applies what bluemonday cannot say per element: an img's
// http(s) src moves to data-remote-src, an img keeps a data: src only for
// raster images, and a data: URL anywhere else goes. Tokens it does not
// change are copied byte for byte, so bluemonday then reads the same
// document.
func rewriteURLs(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	var out bytes.Buffer
	out.Grow(len(s))
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			// io.EOF, or the tokenizer's own limit: either way the
			// rest is unread, and bluemonday would stop there too.
			return out.String()
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			out.Write(z.Raw())
			continue
		}
		raw := z.Raw()
		tok := z.Token()
		attrs, changed := rewriteAttrs(tok.Data, tok.Attr)
		if !changed {
			out.Write(raw)
			continue
		}
		tok.Attr = attrs
		out.WriteString(tok.String())
	}
}

func rewriteAttrs(element string, attrs []html.Attribute) ([]html.Attribute, bool) {
	changed := false
	kept := attrs[:0:0]
	if element == "img" {
		var src string
		haveSrc := false
		for _, a := range attrs {
			switch a.Key {
			case "src":
				if !haveSrc {
					src, haveSrc = strings.TrimSpace(a.Val), true
				}
				changed = true
			case "data-remote-src":
				changed = true
			default:
				kept = append(kept, a)
			}
		}
		if !changed {
			return attrs, false
		}
		switch scheme := urlScheme(src); {
		case scheme == "http" || scheme == "https":
			kept = append(kept, html.Attribute{Key: "data-remote-src", Val: src})
		case scheme == "cid" || scheme == "data" && dataImageURL.MatchString(src):
			kept = append(kept, html.Attribute{Key: "src", Val: src})
		}
		if !haveSrc {
			// A data-remote-src of a stored mail: keep the first.
			for _, a := range attrs {
				if a.Key == "data-remote-src" {
					kept = append(kept, a)
					break
				}
			}
		}
		return kept, true
	}
	for _, a := range attrs {
		if urlAttrs[a.Key] && urlScheme(a.Val) == "data" {
			changed = true
			continue
		}
		kept = append(kept, a)
	}
	if !changed {
		return attrs, false
	}
	return kept, true
}

// urlAttrs are the attributes a browser reads as a URL to load or follow.
var urlAttrs = map[string]bool{"href": true, "src": true, "cite": true, "action": true,
	"formaction": true, "background": true, "poster": true, "srcset": true, "data": true,
	"longdesc": true, "lowsrc": true, "dynsrc": true, "xlink:href": true}

// urlScheme returns the lower-cased scheme of a URL attribute as a browser
// reads it (surrounding white space ignored), or "" for none.
func urlScheme(v string) string {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, ':')
	if i <= 0 {
		return ""
	}
	if u, err := url.Parse(v); err == nil {
		return strings.ToLower(u.Scheme)
	}
	return strings.ToLower(v[:i])
}
