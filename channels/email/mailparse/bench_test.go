package mailparse_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/microdeets/microchat/channels/email/mailparse"
)

// reply4K is a Gmail reply of about 4 KB: a short answer above a quoted
// history, as text and HTML, the shape of a third of a support mailbox.
func reply4K() []byte {
	var quoted, quotedHTML strings.Builder
	for i := 0; quoted.Len() < 1100; i++ {
		fmt.Fprintf(&quoted, "> Line %d of what we wrote before, about the order and its delivery.\n", i)
		fmt.Fprintf(&quotedHTML, "Line %d of what we wrote before, about the order and its delivery.<br>", i)
	}
	return []byte(strings.ReplaceAll(`Return-Path: <jane.doe@gmail.com>
Delivered-To: support@example.com
Received: from mail-sor-f41.google.com (mail-sor-f41.google.com [209.85.220.41])
        by mx.example.com with ESMTPS id x12 for <support@example.com>;
        Mon, 04 Mar 2024 10:15:22 +0100
MIME-Version: 1.0
References: <m.16.a1b2c3d4e5@example.com> <m.17.k3j4h5g6f7@example.com>
In-Reply-To: <m.17.k3j4h5g6f7@example.com>
From: Jane Doe <jane.doe@gmail.com>
Date: Mon, 4 Mar 2024 10:15:08 +0100
Message-ID: <CAJx8W5mP0Zq=kQ2e+1wB3sTn7hLx9Fv@mail.gmail.com>
Subject: Re: Your order #1234 [#c42-abcdefghijklmnop]
To: Example Support <support+c42-abcdefghijklmnop@example.com>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

--000000000000a1b2c3d4e5f60718
Content-Type: text/plain; charset="UTF-8"

Hi,

Thanks, the parcel arrived this morning, but the blue mug is missing.
Could you send it separately?

Best,
Jane

On Mon, Mar 4, 2024 at 9:02 AM Example Support <support@example.com> wrote:

`+quoted.String()+`
--000000000000a1b2c3d4e5f60718
Content-Type: text/html; charset="UTF-8"

<div dir="ltr"><div>Hi,</div><div><br></div><div>Thanks, the parcel arrived this morning, but the blue mug is missing.</div><div>Could you send it separately?</div><div><br></div><div>Best,</div><div>Jane</div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Mar 4, 2024 at 9:02 AM Example Support &lt;<a href="mailto:support@example.com">support@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`+quotedHTML.String()+`</blockquote></div>
--000000000000a1b2c3d4e5f60718--
`, "\n", "\r\n"))
}

// BenchmarkParse is the parse of one ~4 KB reply: the part of importing
// a mailbox that is this package's (issue 12, speed).
func BenchmarkParse(b *testing.B) {
	raw := reply4K()
	e, err := mailparse.Parse(raw, mailparse.Options{})
	if err != nil || e.Text != "Hi,\n\nThanks, the parcel arrived this morning, but the blue mug is missing.\nCould you send it separately?\n\nBest,\nJane" || strings.Contains(e.HTML, "Line 1 ") {
		b.Fatalf("Parse() = %q, %q, %v", e.Text, e.HTML, err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mailparse.Parse(raw, mailparse.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
