package inbox_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"golang.org/x/net/html"
)

// xssCorpus is HTML that tries to run script, load something or escape
// the message's box once shown with innerHTML in the dashboard.
var xssCorpus = []string{
	`<script>alert(1)</script>`,
	`<SCRIPT SRC=https://evil.example/x.js></SCRIPT>`,
	`<<script>script>alert(1)<</script>/script>`,
	`<scr<script>ipt>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`<img src=x:alert(1) onerror=eval(src)>`,
	`<IMG SRC="javascript:alert('XSS');">`,
	`<IMG SRC=JaVaScRiPt:alert('XSS')>`,
	`<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>`,
	`<IMG SRC="jav&#x09;ascript:alert('XSS');">`,
	`<img srcset="javascript:alert(1) 1x">`,
	`<img src="https://ok.example/a.png" srcset="https://evil.example/x.png 2x">`,
	`<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">`,
	`<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">`,
	`<img data-remote-src="javascript:alert(1)">`,
	`<img src="//evil.example/track.png">`,
	`<a href="javascript:alert(1)">x</a>`,
	`<a href=" javascript:alert(1)">x</a>`,
	`<a href="java
script:alert(1)">x</a>`,
	`<a href="&#14;javascript:alert(1)">x</a>`,
	`<a href="jav&#x0A;ascript:alert(1)">x</a>`,
	`<a href="vbscript:msgbox(1)">x</a>`,
	`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`,
	`<a href="data:image/png;base64,iVBORw0KGgo=">x</a>`,
	`<a href="https://ok.example/" onclick="alert(1)" target="_self" rel="opener">x</a>`,
	`<a href="http://x.example/"><a href="javascript:alert(1)">y</a></a>`,
	`<svg onload=alert(1)>`,
	`<svg><script>alert(1)</script></svg>`,
	`<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>`,
	`<svg><animate onbegin=alert(1) attributeName=x dur=1s>`,
	`<svg><set attributeName="href" to="javascript:alert(1)"/></svg>`,
	`<math href="javascript:alert(1)">x</math>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	`<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>`,
	`<p><svg><style><a id="</style><img src=1 onerror=alert(1)>">`,
	`<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>`,
	`<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>`,
	`<template><s><template><style><img src=x onerror=alert(1)>`,
	`<xmp><img src=x onerror=alert(1)></xmp>`,
	`<textarea><img src=x onerror=alert(1)></textarea>`,
	`<!--<img src=x onerror=alert(1)>-->`,
	`<form action="javascript:alert(1)"><input type=submit><button formaction="javascript:alert(1)">b</button></form>`,
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<iframe srcdoc="<script>alert(1)</script>"></iframe>`,
	`<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">`,
	`<base href="javascript:alert(1)//">`,
	`<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`,
	`<link rel=stylesheet href="https://evil.example/x.css">`,
	`<style>@import 'https://evil.example/x.css'; body{background:url(https://evil.example/t.png)}</style>`,
	`<body onload=alert(1) background="https://evil.example/t.png">`,
	`<table background="https://evil.example/t.png"><tr><td background="https://evil.example/t.png">x</td></tr></table>`,
	`<div style="background:url(javascript:alert(1))">x</div>`,
	`<div style="background-image: url('https://evil.example/track.png')">x</div>`,
	`<div style="width: expression(alert(1))">x</div>`,
	`<p style="color: expression(alert(1))">x</p>`,
	`<p style="color: red; behavior: url(x.htc); -moz-binding: url(x.xml#xss)">x</p>`,
	`<p style="background-color: rgb(1,1,1) url(https://evil.example/t.png)">x</p>`,
	`<p style="color: \75 rl(https://evil.example/t.png)">x</p>`,
	`<p style="font-family: 'x', url(https://evil.example/f.woff)">x</p>`,
	`<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9999">x</div>`,
	`<details open ontoggle=alert(1)>x</details>`,
	`<video><source onerror=alert(1)></video>`,
	`<p id="logout" name="x" class="button-primary">x</p>`,
	`<a href="https://ok.example/" style="position:absolute;top:0">x</a>`,
}

// forbidden are the elements no sanitized HTML may hold once a browser
// has parsed it.
var forbidden = map[string]bool{"script": true, "style": true, "iframe": true, "frame": true,
	"object": true, "embed": true, "form": true, "input": true, "button": true, "textarea": true,
	"select": true, "svg": true, "math": true, "base": true, "meta": true, "link": true,
	"template": true, "noscript": true, "video": true, "audio": true, "source": true, "details": true}

func TestSanitizeEmailHTMLCorpus(t *testing.T) {
	for _, in := range xssCorpus {
		out := inbox.SanitizeEmailHTML(in)
		checkSafeHTML(t, in, out)
		if again := inbox.SanitizeEmailHTML(out); again != out {
			t.Errorf("SanitizeEmailHTML(%q) = %q, and sanitized again %q", in, out, again)
		}
	}
}

// checkSafeHTML parses out as a browser would and fails on anything
// that could run script, load a resource or leave the message's box.
func checkSafeHTML(t *testing.T, in, out string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("html.Parse(%q) = %v", out, err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if forbidden[n.Data] || n.Namespace != "" {
				t.Errorf("SanitizeEmailHTML(%q) = %q: has <%s>", in, out, n.Data)
			}
			for _, a := range n.Attr {
				key, val := strings.ToLower(a.Key), strings.ToLower(a.Val)
				switch {
				case strings.HasPrefix(key, "on"), key == "id", key == "name", key == "class", key == "srcset",
					key == "background", key == "action", key == "formaction":
					t.Errorf("SanitizeEmailHTML(%q) = %q: has %s=%q", in, out, a.Key, a.Val)
				case key == "style":
					for _, bad := range []string{"url", "expression", "position", "\\", "behavior", "binding", "z-index"} {
						if strings.Contains(val, bad) {
							t.Errorf("SanitizeEmailHTML(%q) = %q: style has %q", in, out, bad)
						}
					}
				case key == "href":
					u, err := url.Parse(a.Val)
					if err != nil || !map[string]bool{"http": true, "https": true, "mailto": true, "tel": true, "cid": true}[u.Scheme] {
						t.Errorf("SanitizeEmailHTML(%q) = %q: link to %q", in, out, a.Val)
					}
				case key == "src":
					if n.Data != "img" || !(strings.HasPrefix(val, "cid:") || strings.HasPrefix(val, "data:image/png;") ||
						strings.HasPrefix(val, "data:image/jpeg;") || strings.HasPrefix(val, "data:image/gif;") || strings.HasPrefix(val, "data:image/webp;")) {
						t.Errorf("SanitizeEmailHTML(%q) = %q: loads %q", in, out, a.Val)
					}
				case key == "data-remote-src":
					if !strings.HasPrefix(val, "http://") && !strings.HasPrefix(val, "https://") {
						t.Errorf("SanitizeEmailHTML(%q) = %q: remote image %q", in, out, a.Val)
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

func TestSanitizeEmailHTMLKeeps(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<p>Hello <b>world</b></p>`, `<p>Hello <b>world</b></p>`},
		// Remote images wait for an agent; tracking pixels too.
		{`<img src="https://tracker.example/p.gif?u=42" width="1" height="1" alt="">`,
			`<img width="1" height="1" alt="" data-remote-src="https://tracker.example/p.gif?u=42">`},
		{`<img src="HTTP://Pics.example/a.png">`, `<img data-remote-src="HTTP://Pics.example/a.png">`},
		// Inline images of the mail keep their cid: for the store.
		{`<img src="cid:image001.png@01DA0000.00000000" alt="logo">`, `<img alt="logo" src="cid:image001.png@01DA0000.00000000">`},
		{`<img src="data:image/png;base64,iVBORw0KGgo=">`, `<img src="data:image/png;base64,iVBORw0KGgo=">`},
		{`<a href="https://example.com/x?a=1&amp;b=2">x</a>`, `<a href="https://example.com/x?a=1&amp;b=2" rel="noreferrer noopener" target="_blank">x</a>`},
		{`<a href="mailto:a@example.com">a</a>`, `<a href="mailto:a@example.com" rel="noreferrer">a</a>`},
		{`<p style="color: #ff0000; font-weight: bold; position: fixed">red</p>`, `<p style="color: #ff0000; font-weight: bold">red</p>`},
		{`<table border="0" cellpadding="2"><tr><td bgcolor="#eeeeee" align="center">x</td></tr></table>`,
			`<table border="0" cellpadding="2"><tr><td bgcolor="#eeeeee" align="center">x</td></tr></table>`},
		{`<blockquote type="cite"><div class="moz-cite-prefix">On Monday</div></blockquote>`, `<blockquote><div>On Monday</div></blockquote>`},
		{"plain text, no markup", "plain text, no markup"},
		{"bad \xff utf-8 and \x00 nul", "bad  utf-8 and  nul"},
	} {
		if got := inbox.SanitizeEmailHTML(c.in); got != c.want {
			t.Errorf("SanitizeEmailHTML(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSanitizeEmailHTMLLinear: a border value that bluemonday's check
// takes exponential time on (it hangs with border allowed) is not
// checked at all.
func TestSanitizeEmailHTMLLinear(t *testing.T) {
	vals := strings.Repeat("1px ", 40) + "x"
	in := strings.Repeat(`<p style="border: `+vals+`; margin: `+vals+`; padding: `+vals+`; text-decoration: `+vals+`">x</p>`, 100)
	start := time.Now()
	out := inbox.SanitizeEmailHTML(in)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("SanitizeEmailHTML took %v", d)
	}
	if strings.Contains(out, "style") {
		t.Fatalf("SanitizeEmailHTML kept %q", out[:100])
	}
}

// TestSanitizeEmailHTMLConcurrent: the policy is built once and shared
// by every goroutine (run with -race).
func TestSanitizeEmailHTMLConcurrent(t *testing.T) {
	in := `<p onclick="x()">Hi <img src="https://example.com/a.png"><a href="https://example.com/">x</a></p>`
	want := `<p>Hi <img data-remote-src="https://example.com/a.png"><a href="https://example.com/" rel="noreferrer noopener" target="_blank">x</a></p>`
	done := make(chan string)
	for range 8 {
		go func() { done <- inbox.SanitizeEmailHTML(in) }()
	}
	for range 8 {
		if got := <-done; got != want {
			t.Errorf("SanitizeEmailHTML(%q) = %q, want %q", in, got, want)
		}
	}
}
