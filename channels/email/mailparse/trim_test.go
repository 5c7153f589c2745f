package mailparse_test

import (
	"strings"
	"testing"

	"github.com/microdeets/microchat/channels/email/mailparse"
)

func TestTrimQuoted(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"nothing to trim", "Hello,\n\nmy order is late.\n\nJane", "Hello,\n\nmy order is late.\n\nJane"},
		{"gmail below", "Thanks!\n\nOn Mon, 4 Mar 2024 at 10:00, Support <s@example.com> wrote:\n\n> Hi\n> there\n", "Thanks!"},
		{"gmail wrapped attribution", "Thanks!\n\nOn Mon, Mar 4, 2024 at 10:00 AM Example Support <\nsupport@example.com> wrote:\n\n> Hi\n", "Thanks!"},
		{"thunderbird name only", "Yes.\n\nExample Support wrote:\n> Is it fixed?\n", "Yes."},
		{"quote above", "On 07.03.24 10:05, Support wrote:\n> Which invoice?\n\nThe February one.\n", "The February one."},
		{"quote above without attribution", "> Which invoice?\n>\n\nThe February one.", "The February one."},
		{"quoted block at the end", "Fine.\n\n> Shall we ship?\n>\n> Sam\n", "Fine."},
		{"interleaved kept", "> Q1?\nA1\n> Q2?\nA2", "> Q1?\nA1\n> Q2?\nA2"},
		{"outlook header", "OK.\n\nFrom: Support <s@example.com>\nSent: Monday, March 4, 2024 9:02 AM\nTo: Jane\nSubject: RE: x\n\nold", "OK."},
		{"outlook bold", "OK.\n\n*From:* Support <s@example.com>\n*Sent:* Monday\n*To:* Jane\n*Subject:* x\n\nold", "OK."},
		{"outlook web rule", "OK.\n\n________________________________\nFrom: Support\nSent: Monday\nTo: Jane\nSubject: x\n\nold", "OK."},
		{"outlook german", "Danke.\n\nVon: Support <s@example.com>\nGesendet: Montag, 4. März 2024 09:02\nAn: Jane\nBetreff: AW: x\n\nalt", "Danke."},
		{"outlook french", "Merci.\n\nDe : Support <s@example.com>\nEnvoyé : lundi 4 mars 2024 09:02\nÀ : Jane\nObjet : RE: x\n\nvieux", "Merci."},
		{"original message", "Sure.\n\n-----Original Message-----\nFrom: Support\nold text", "Sure."},
		{"samsung", "Great!\n\n\nSent from my Samsung Galaxy smartphone.\n\n-------- Original message --------\nFrom: x\n", "Great!"},
		{"french attribution", "Merci !\n\nLe lun. 4 mars 2024 à 10:00, Support <s@example.com> a écrit :\n> Bonjour\n", "Merci !"},
		{"german attribution", "Danke!\n\nAm 04.03.2024 um 10:00 schrieb Support:\n> Hallo\n", "Danke!"},
		{"attribution, history not quoted", "Thanks.\n\nOn Mon, 4 Mar 2024, Support wrote:\nHello Jane, it shipped.", "Thanks."},
		{"signature", "See you.\n\n-- \nJane Doe\nACME Corp\n+1 555 0100", "See you."},
		{"signature without blank", "See you.\n--\nJane", "See you."},
		{"iphone", "Yes please.\n\nSent from my iPhone", "Yes please."},
		{"outlook mobile", "Yes please.\n\nGet Outlook for Android", "Yes please."},
		{"iphone then quote", "Yes please.\n\nSent from my iPhone\n\n> On 5 Mar 2024, at 17:45, Support <s@example.com> wrote:\n>\n> Deliver Friday?", "Yes please."},
		{"forward kept", "FYI\n\n---------- Forwarded message ---------\nFrom: John <j@example.com>\nDate: Sun\nSubject: Lamp\nTo: Jane\n\nThe lamp is broken.", "FYI\n\n---------- Forwarded message ---------\nFrom: John <j@example.com>\nDate: Sun\nSubject: Lamp\nTo: Jane\n\nThe lamp is broken."},
		{"apple forward kept", "FYI\n\nBegin forwarded message:\n\n> From: John <j@example.com>\n> Subject: Lamp\n>\n> Broken.", "FYI\n\nBegin forwarded message:\n\n> From: John <j@example.com>\n> Subject: Lamp\n>\n> Broken."},
		{"outlook forward kept", "FYI\n\nFrom: John <j@example.com>\nSent: Sunday\nTo: Jane\nSubject: FW: Lamp\n\nBroken.", "FYI\n\nFrom: John <j@example.com>\nSent: Sunday\nTo: Jane\nSubject: FW: Lamp\n\nBroken."},
		{"only quotes kept whole", "> Hi\n> there", "> Hi\n> there"},
		{"only signature kept whole", "-- \nJane", "-- \nJane"},
		{"a From line in the text", "From: my experience, this never works.\nCan you check?", "From: my experience, this never works.\nCan you check?"},
		{"a wrote line in the text", "My colleague wrote:\nplease call back.\n\nJane", "My colleague wrote:\nplease call back.\n\nJane"},
		{"dashes far from the end", "Intro\n--\n" + strings.Repeat("line\n", 25) + "end", "Intro\n--\n" + strings.Repeat("line\n", 25) + "end"},
		{"verb before name needs quotes", "Thanks.\n\nOn Monday you wrote to us about the refund, my answer:\nYes.", "Thanks.\n\nOn Monday you wrote to us about the refund, my answer:\nYes."},
		{"crlf", "Thanks!\r\n\r\nOn Mon, 4 Mar 2024, Support wrote:\r\n> Hi\r\n", "Thanks!"},
	} {
		if got := mailparse.TrimQuoted(c.in); got != c.want {
			t.Errorf("%s: TrimQuoted(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestTrimQuotedHTML(t *testing.T) {
	for _, c := range []struct{ name, in, keep, drop string }{
		{"gmail", `<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Support wrote:<br></div><blockquote class="gmail_quote">Old</blockquote></div>`,
			"Thanks!", "Old"},
		{"gmail signature", `<div dir="ltr">Thanks!<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">Jane Doe<br>ACME</div></div>`,
			"Thanks!", "-- "},
		{"gmail signature text", `<div dir="ltr">Thanks!<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">Jane Doe<br>ACME</div></div>`,
			"Thanks!", "ACME"},
		{"apple", `<body dir="auto">Friday!<br><br><div dir="ltr">Sent from my iPhone</div><div dir="ltr"><br><blockquote type="cite">On 5 Mar 2024, Support wrote:<br></blockquote></div><blockquote type="cite"><div dir="ltr">Old</div></blockquote></body>`,
			"Friday!", "Sent from my iPhone"},
		{"thunderbird", `<p>Yes.</p><div class="moz-cite-prefix">On 08.03.24, Support wrote:<br></div><blockquote type="cite">Old</blockquote>`,
			"Yes.", "wrote:"},
		{"thunderbird above", `<div class="moz-cite-prefix">On 08.03.24, Support wrote:<br></div><blockquote type="cite">Old</blockquote><p>Yes.</p>`,
			"Yes.", "Old"},
		{"interleaved kept", `<blockquote type="cite">Q1?</blockquote><p>A1</p><blockquote type="cite">Q2?</blockquote><p>A2</p>`,
			"Q1?", ""},
		{"outlook web", `<div>OK.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> S<br><b>Sent:</b> Monday<br><b>To:</b> J<br><b>Subject:</b> Re: x</div><div>Old</div>`,
			"OK.", "Old"},
		{"outlook web forward kept", `<div>FYI</div><hr><div id="divRplyFwdMsg"><b>From:</b> S<br><b>Sent:</b> Monday<br><b>To:</b> J<br><b>Subject:</b> FW: x</div><div>Forwarded body</div>`,
			"Forwarded body", ""},
		{"outlook desktop", `<p>OK.</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> S<br><b>Sent:</b> Monday<br><b>To:</b> J<br><b>Subject:</b> RE: x</p></div></div><p>Old</p>`,
			"OK.", "Old"},
		{"original message", `<div>Sure.</div><div>-----Original Message-----<br>From: S<br>Old</div>`,
			"Sure.", "Old"},
		{"attribution outside the quote", `<p>Yes.</p><p>On Mon, 4 Mar 2024, <a href="mailto:s@example.com">Support</a> wrote:</p><blockquote type="cite">Old</blockquote>`,
			"Yes.", "wrote:"},
		{"gmail forward kept", `<div>FYI<div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------<br>From: J</div><div>Lamp broken</div></div></div>`,
			"Lamp broken", ""},
		{"only a quote kept whole", `<blockquote type="cite">Only old</blockquote>`, "Only old", ""},
	} {
		got := mailparse.TrimQuotedHTML(c.in)
		if !strings.Contains(got, c.keep) || c.drop != "" && strings.Contains(got, c.drop) {
			t.Errorf("%s: TrimQuotedHTML(%q) = %q, want %q kept and %q gone", c.name, c.in, got, c.keep, c.drop)
		}
		if c.drop == "" && got != c.in {
			t.Errorf("%s: TrimQuotedHTML(%q) = %q, want it unchanged", c.name, c.in, got)
		}
	}
	if in := "no markup at all"; mailparse.TrimQuotedHTML(in) != in {
		t.Errorf("TrimQuotedHTML(%q) changed it", in)
	}
}

func TestHTMLToText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<p>Hello,</p><p>second   paragraph<br>next line</p>`, "Hello,\n\nsecond paragraph\nnext line"},
		{`<div>a</div><div>b</div>`, "a\nb"},
		{`<ul><li>one</li><li>two</li></ul>`, "- one\n- two"},
		{`<p>Hi</p><blockquote><p>old</p><p>older</p></blockquote><p>new</p>`, "Hi\n\n> old\n>\n> older\n\nnew"},
		{`<a href="https://example.com/x">the page</a> and <a href="https://example.com/y">https://example.com/y</a>`, "the page <https://example.com/x> and https://example.com/y"},
		{`<style>p{}</style><script>x()</script><title>T</title><p>&lt;b&gt; &amp; caf&eacute;&nbsp;ok</p>`, "<b> & café ok"},
		{"<pre>  keep\n    indent</pre>", "keep\n    indent"},
		{`<b>Hel</b>lo world`, "Hello world"},
	} {
		if got := mailparse.HTMLToText(c.in); got != c.want {
			t.Errorf("HTMLToText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
