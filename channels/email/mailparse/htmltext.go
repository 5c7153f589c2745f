package mailparse

import (
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToText returns the text an HTML mail shows, for mail that has no
// plain-text part: paragraphs and line breaks kept, blockquotes as "> "
// lines (so that TrimQuoted finds quoted history), list items as "- ",
// the address of a link after its text when they differ; scripts, styles
// and the title left out. Linear in len(s) (a tokenizer, no tree).
func HTMLToText(s string) string {
	var w textWriter
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0
	var href string
	linkStart := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		name, hasAttr := z.TagName()
		a := atom.Lookup(name)
		switch tt {
		case html.TextToken:
			if skip == 0 {
				w.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			switch a {
			case atom.Script, atom.Style, atom.Title, atom.Template, atom.Noscript:
				if tt == html.StartTagToken {
					skip++
				}
			case atom.Br:
				w.lineBreak()
			case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table, atom.Ul, atom.Ol, atom.Dl, atom.Hr:
				w.paragraph()
			case atom.Div, atom.Tr, atom.Dt, atom.Dd, atom.Center, atom.Address, atom.Section, atom.Article, atom.Header, atom.Footer:
				w.block()
			case atom.Li:
				w.block()
				w.word("- ")
			case atom.Td, atom.Th:
				w.space()
			case atom.Blockquote:
				w.paragraph()
				w.quote++
			case atom.Pre:
				w.paragraph()
				w.pre++
			case atom.A:
				href = ""
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = strings.TrimSpace(string(v))
					}
				}
				linkStart = w.b.Len()
			}
		case html.EndTagToken:
			switch a {
			case atom.Script, atom.Style, atom.Title, atom.Template, atom.Noscript:
				skip = max(skip-1, 0)
			case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table, atom.Ul, atom.Ol, atom.Dl:
				w.paragraph()
			case atom.Div, atom.Tr, atom.Li, atom.Dt, atom.Dd, atom.Center, atom.Address, atom.Section, atom.Article, atom.Header, atom.Footer:
				w.block()
			case atom.Blockquote:
				w.paragraph()
				w.quote = max(w.quote-1, 0)
				w.lineDepth = min(w.lineDepth, w.quote)
			case atom.Pre:
				w.paragraph()
				w.pre = max(w.pre-1, 0)
			case atom.A:
				if u, err := url.Parse(href); err == nil && (u.Scheme == "http" || u.Scheme == "https") && len(href) <= 2000 &&
					!strings.Contains(w.b.String()[min(linkStart, w.b.Len()):], href) {
					w.word(" <" + href + ">")
				}
				href = ""
			}
		}
	}
	return strings.TrimSpace(w.b.String())
}

// textWriter builds text line by line: white space collapsed (outside
// <pre>), at most one empty line in a row, quoted lines prefixed. Line
// breaks are owed and written before the next text, so that they get the
// quote depth of where the text is.
type textWriter struct {
	b         strings.Builder
	quote     int  // blockquote depth
	pre       int  // <pre> depth
	lineOpen  bool // a line has been started
	lineDepth int  // the quote depth of that line
	breaks    int  // line breaks owed: 1 ends the line, 2 adds an empty one
	pendSpace bool // a space owed before the next word
}

func (w *textWriter) word(s string) {
	if w.breaks > 0 && w.b.Len() > 0 {
		w.b.WriteByte('\n')
		if w.breaks > 1 {
			if w.quote > 0 && w.lineDepth == w.quote {
				w.b.WriteString(strings.TrimRight(strings.Repeat("> ", w.quote), " "))
			}
			w.b.WriteByte('\n')
		}
		w.lineOpen = false
	}
	w.breaks = 0
	if !w.lineOpen {
		w.b.WriteString(strings.Repeat("> ", w.quote))
		w.lineOpen, w.lineDepth, w.pendSpace = true, w.quote, false
	}
	if w.pendSpace {
		w.b.WriteByte(' ')
		w.pendSpace = false
	}
	w.b.WriteString(s)
}

func (w *textWriter) space() {
	if w.lineOpen && w.breaks == 0 {
		w.pendSpace = true
	}
}

func (w *textWriter) text(s string) {
	if w.pre > 0 {
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.lineBreak()
			}
			if line != "" {
				w.word(line)
			}
		}
		return
	}
	if s == "" {
		return
	}
	if isSpaceByte(s[0]) {
		w.space()
	}
	fields := strings.Fields(strings.ReplaceAll(s, "\u00a0", " "))
	for i, f := range fields {
		if i > 0 {
			w.space()
		}
		w.word(f)
	}
	if len(fields) > 0 && isSpaceByte(s[len(s)-1]) {
		w.space()
	}
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// lineBreak is a <br>: it ends the line, a second one leaves it empty.
func (w *textWriter) lineBreak() {
	w.breaks = min(w.breaks+1, 2)
	w.pendSpace = false
}

// block ends the current line.
func (w *textWriter) block() {
	if w.lineOpen {
		w.breaks = max(w.breaks, 1)
		w.pendSpace = false
	}
}

// paragraph ends the current line and leaves an empty one.
func (w *textWriter) paragraph() {
	if w.lineOpen {
		w.breaks = 2
		w.pendSpace = false
	}
}
