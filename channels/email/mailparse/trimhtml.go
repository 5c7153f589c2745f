package mailparse

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Quoted history in HTML is marked up by each client its own way; what
// TrimQuotedHTML removes:
//
//   - from Outlook's reply header to the end: #divRplyFwdMsg (with the
//     #appendonsend and rule before it), #mail-editor-reference-message-container,
//     the desktop client's header box (a div with a top border whose text
//     is a From/Sent/To block), "-----Original Message-----";
//   - quote containers when they close (or open) the mail: Gmail's
//     .gmail_quote (its attribution inside), Apple Mail's and Thunderbird's
//     blockquote type="cite" and Thunderbird's .moz-cite-prefix, Yahoo's
//     .yahoo_quoted, Proton's .protonmail_quote; those between parts of the
//     reply (interleaved) stay, like their plain-text kin;
//   - signatures: .gmail_signature, .moz-signature, Outlook's #Signature,
//     iOS's #AppleMailSignature and Outlook mobile's signature, and a last
//     "Sent from my iPhone" line;
//   - an attribution line left last ("On ..., X wrote:").
//
// Forwards are kept (a Gmail quote or Outlook header of a forward). When
// nothing visible would remain, the HTML is kept whole. The result is the
// re-serialized document, to be sanitized (inbox.SanitizeEmailHTML) like
// the input.

// TrimQuotedHTML returns the part of an HTML mail that its sender wrote
// (see above); s itself when nothing is trimmed, trimming would leave
// nothing, or s cannot be parsed within x/net/html's limits.
func TrimQuotedHTML(s string) string {
	if len(s) > 2*maxTrimBytes || !strings.Contains(s, "<") {
		return s
	}
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return s
	}
	changed := cutOutlookHistory(doc)
	changed = removeSignatures(doc) || changed
	changed = removeQuoteContainers(doc) || changed
	changed = removeTrailingLines(doc) || changed
	if !changed || !hasVisible(doc) {
		return s
	}
	var b bytes.Buffer
	if err := html.Render(&b, doc); err != nil {
		return s
	}
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if strings.EqualFold(c, class) {
			return true
		}
	}
	return false
}

// What a walkNodes callback asks for next.
const (
	walkInto = iota // the node's children next
	walkOver        // not its children
	walkStop        // nothing more
)

// walkNodes calls f for every node under n in document order, as f asks.
// It is iterative: the tree may be 512 deep (x/net/html's limit).
func walkNodes(n *html.Node, f func(*html.Node) int) {
	for c := n.FirstChild; c != nil; {
		next := f(c)
		if next == walkStop {
			return
		}
		if next == walkInto && c.FirstChild != nil {
			c = c.FirstChild
			continue
		}
		for c != nil && c.NextSibling == nil {
			c = c.Parent
			if c == n {
				return
			}
		}
		if c == nil {
			return
		}
		c = c.NextSibling
	}
}

// nodeText is the text of n with line breaks at <br> and blocks, about
// limit bytes at most.
func nodeText(n *html.Node, limit int) string {
	var b strings.Builder
	walkNodes(n, func(c *html.Node) int {
		switch {
		case b.Len() > limit:
			return walkStop
		case c.Type == html.TextNode:
			b.WriteString(c.Data[:min(len(c.Data), limit+1)])
		case c.Type == html.ElementNode && (c.DataAtom == atom.Br || c.DataAtom == atom.P || c.DataAtom == atom.Div):
			b.WriteByte('\n')
		}
		return walkInto
	})
	return b.String()
}

// outlookHeaderText reports the kind of Outlook header block at the start
// of text.
func outlookHeaderText(text string) int {
	lines := strings.Split(strings.ReplaceAll(text, "\u00a0", " "), "\n")
	i := nextNonBlank(lines, 0)
	if i == len(lines) {
		return headerNone
	}
	return outlookHeader(lines, i)
}

// cutOutlookHistory removes the first Outlook history marker and all that
// follows it in document order.
func cutOutlookHistory(doc *html.Node) bool {
	var cut *html.Node
	walkNodes(doc, func(n *html.Node) int {
		switch {
		case n.Type == html.TextNode:
			if isOriginalMessage(n.Data) {
				cut = n
			}
		case n.Type != html.ElementNode:
		case attr(n, "id") == "divRplyFwdMsg":
			if outlookHeaderText(nodeText(n, 4000)) == headerForward {
				return walkOver
			}
			cut = n
			// The empty #appendonsend and the rule Outlook puts before it.
			for p := n.PrevSibling; p != nil; p = p.PrevSibling {
				if p.Type == html.TextNode && strings.TrimSpace(p.Data) == "" || p.DataAtom == atom.Hr || attr(p, "id") == "appendonsend" {
					cut = p
					continue
				}
				break
			}
		case attr(n, "id") == "mail-editor-reference-message-container":
			if outlookHeaderText(nodeText(n, 4000)) == headerForward {
				return walkOver
			}
			cut = n
		case n.DataAtom == atom.Div && strings.Contains(strings.ToLower(attr(n, "style")), "border-top"):
			switch outlookHeaderText(nodeText(n, 4000)) {
			case headerReply:
				cut = n
			case headerForward:
				return walkOver
			}
		}
		if cut != nil {
			return walkStop
		}
		return walkInto
	})
	if cut == nil {
		return false
	}
	removeFrom(cut)
	return true
}

// removeFrom removes n and everything after it in document order, to
// the end of the body.
func removeFrom(n *html.Node) {
	for a := n; a.Parent != nil && a.Type != html.DocumentNode && a.DataAtom != atom.Body && a.DataAtom != atom.Html; a = a.Parent {
		for s := a.NextSibling; s != nil; {
			next := s.NextSibling
			a.Parent.RemoveChild(s)
			s = next
		}
	}
	n.Parent.RemoveChild(n)
}

func isSignature(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch attr(n, "id") {
	case "Signature", "AppleMailSignature", "ms-outlook-mobile-signature", "ms-outlook-ios-signature", "ms-outlook-android-signature":
		return true
	}
	return hasClass(n, "gmail_signature") || hasClass(n, "gmail_signature_prefix") || hasClass(n, "moz-signature") || attr(n, "data-smartmail") == "gmail_signature"
}

func removeSignatures(doc *html.Node) bool {
	var sigs []*html.Node
	walkNodes(doc, func(n *html.Node) int {
		if isSignature(n) {
			sigs = append(sigs, n)
			return walkOver
		}
		return walkInto
	})
	for _, n := range sigs {
		n.Parent.RemoveChild(n)
	}
	return len(sigs) > 0
}

// isQuoteContainer reports the elements that hold quoted history, but not
// a forwarded mail.
func isQuoteContainer(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch {
	case n.DataAtom == atom.Blockquote && strings.EqualFold(attr(n, "type"), "cite"),
		hasClass(n, "gmail_quote"), hasClass(n, "gmail_quote_container"), hasClass(n, "moz-cite-prefix"),
		hasClass(n, "yahoo_quoted"), hasClass(n, "protonmail_quote"):
	default:
		return false
	}
	lines := strings.Split(nodeText(n, 400), "\n")
	if i := nextNonBlank(lines, 0); i < len(lines) && isForwardMarker(lines[i]) {
		return false
	}
	return true
}

// visible is a piece of what a reader sees: a text with more than white
// space, or an image; quote is the index of the outermost quote
// container it is in, or -1.
type visible struct {
	n     *html.Node
	quote int
}

// visibleNodes lists the visible pieces under doc in document order and,
// when quotes is set, the outermost quote containers with the range of
// pieces each holds (recursive: x/net/html keeps trees 512 deep).
func visibleNodes(doc *html.Node, quotes bool) (pieces []visible, containers []*html.Node, spans [][2]int) {
	var walk func(n *html.Node, quote int)
	walk = func(n *html.Node, quote int) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.TextNode:
				if strings.TrimSpace(strings.ReplaceAll(c.Data, "\u00a0", " ")) != "" {
					pieces = append(pieces, visible{c, quote})
				}
			case c.Type != html.ElementNode:
			case c.DataAtom == atom.Script || c.DataAtom == atom.Style || c.DataAtom == atom.Title || c.DataAtom == atom.Template:
			case c.DataAtom == atom.Img:
				pieces = append(pieces, visible{c, quote})
			case quotes && quote < 0 && isQuoteContainer(c):
				k := len(containers)
				containers = append(containers, c)
				start := len(pieces)
				walk(c, k)
				spans = append(spans, [2]int{start, len(pieces)})
			default:
				walk(c, quote)
			}
		}
	}
	walk(doc, -1)
	return pieces, containers, spans
}

// removeQuoteContainers removes the quote containers after the last piece
// of the reply, and those before its first one unless others sit between
// its pieces (an interleaved reply).
func removeQuoteContainers(doc *html.Node) bool {
	pieces, containers, spans := visibleNodes(doc, true)
	first, last := -1, -1
	for i, p := range pieces {
		if p.quote < 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return false // nothing but quotes
	}
	var leading, trailing []*html.Node
	middle := false
	for k, c := range containers {
		switch s := spans[k]; {
		case s[0] > last:
			trailing = append(trailing, c)
		case s[1] <= first:
			leading = append(leading, c)
		default:
			middle = true
		}
	}
	if middle {
		leading = nil
	}
	for _, c := range append(leading, trailing...) {
		c.Parent.RemoveChild(c)
	}
	return len(leading)+len(trailing) > 0
}

// removeTrailingLines removes a last attribution line ("On ..., X
// wrote:") left by clients that put it outside the quote, and a last
// "Sent from my iPhone": the block (p or div) of the last text, when that
// block is one such line.
func removeTrailingLines(doc *html.Node) bool {
	changed := false
	for range 2 {
		pieces, _, _ := visibleNodes(doc, false)
		if len(pieces) < 2 || pieces[len(pieces)-1].n.Type != html.TextNode {
			return changed
		}
		n := pieces[len(pieces)-1].n
		for b := n.Parent; b != nil && b.Type == html.ElementNode; b = b.Parent {
			if b.DataAtom == atom.P || b.DataAtom == atom.Div {
				n = b
				break
			}
			if b.DataAtom == atom.Body || b.DataAtom == atom.Td || b.DataAtom == atom.Blockquote {
				break
			}
		}
		text := n.Data
		if n.Type == html.ElementNode {
			text = nodeText(n, 500)
		}
		lines := []string{strings.Join(strings.Fields(strings.ReplaceAll(text, "\u00a0", " ")), " ")}
		if len(lines[0]) > 400 {
			return changed
		}
		if end, _ := attribution(lines, 0); end < 0 && mobileSignatureCut(lines) != 0 {
			return changed
		}
		if n.Type == html.ElementNode && hasImage(n) {
			return changed
		}
		n.Parent.RemoveChild(n)
		changed = true
	}
	return changed
}

func hasImage(n *html.Node) bool {
	found := false
	walkNodes(n, func(c *html.Node) int {
		if c.DataAtom == atom.Img {
			found = true
			return walkStop
		}
		return walkInto
	})
	return found
}

func hasVisible(doc *html.Node) bool {
	pieces, _, _ := visibleNodes(doc, false)
	return len(pieces) > 0
}
