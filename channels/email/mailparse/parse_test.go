package mailparse_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
)

// ownAddresses are our mailboxes in the tests.
var ownAddresses = []string{"Example Support <support@example.com>"}

// golden is what a testdata mail must parse to. Lists are compared
// exactly (nil and empty alike); the *Has fields are substrings.
type golden struct {
	messageID   string
	inReplyTo   []string
	references  []string
	from        string // "Name <addr>" or "addr"
	replyTo     string
	to, cc      []string
	recipients  []string
	subject     string
	date        string // RFC 3339; "" for none
	text        string
	fullTextHas []string
	html        []string // substrings of HTML
	htmlNot     []string // not in HTML, but in FullHTML
	atts        []string // "name|type|content-id|inline|size"
	auto        string   // AutoReason; "" when not automatic
	bounce      *inbox.Bounce
	notices     []string // substrings, one per notice, in order
}

var goldens = map[string]golden{
	"gmail-reply.eml": {
		messageID: "CAJx8W5mP0Zq=kQ2e+1wB3sTn7hLx9Fv@mail.gmail.com",
		inReplyTo: []string{"m.17.k3j4h5g6f7@example.com"}, references: []string{"m.17.k3j4h5g6f7@example.com"},
		from: "Jane Doe <jane.doe@gmail.com>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"},
		subject:    "Re: Your order #1234 [#c42-abcdefghijklmnop]", date: "2024-03-04T10:15:08+01:00",
		text:        "Hi,\n\nThanks — the parcel arrived this morning, but the blue mug is missing.\nCould you send it separately?\n\nBest,\nJane",
		fullTextHas: []string{"AM Example Support <support@example.com>\nwrote:\n\n> Hello Jane,", "> Sam from Example"},
		html:        []string{"the blue mug is missing", "<div>Jane</div>"},
		htmlNot:     []string{"has shipped", "wrote:"},
	},
	"outlook-desktop-reply.eml": {
		messageID: "DB9PR01MB1234ABCD5678EF90@DB9PR01MB1234.eurprd01.prod.outlook.com",
		inReplyTo: []string{"m.17.k3j4h5g6f7@example.com"}, references: []string{"m.17.k3j4h5g6f7@example.com"},
		from: "Doe, Jane <Jane.Doe@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"},
		subject:    "RE: Your order #1234", date: "2024-03-04T09:30:11Z",
		text:        "Hello Sam,\n\nThat’s great news – thank you.\n\nKind regards,\nJane Doe\nHead of Purchasing",
		fullTextHas: []string{"\nFrom: Example Support <support@example.com>\nSent: Monday, March 4, 2024 9:02 AM\n"},
		html:        []string{"<p>That’s great news – thank you.</p>", "Head of Purchasing"},
		htmlNot:     []string{"Sent:", "has shipped"},
	},
	"outlook-web-reply.eml": {
		messageID: "AM0PR07MB1234567890ABCDEF1234567890ABCD@AM0PR07MB1234.eurprd07.prod.outlook.com",
		inReplyTo: []string{"m.23.zz9yy8xx7w@example.com"}, references: []string{"CAJx8W5first0ne@mail.gmail.com", "m.23.zz9yy8xx7w@example.com"},
		from: "Jane Doe <jane.doe@outlook.com>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Re: Refund request", date: "2024-03-05T14:01:53Z",
		text:        "Yes, please refund to the original card.\n\nJane",
		fullTextHas: []string{"________________________________\nFrom: Example Support", "store credit?"},
		html:        []string{"Yes, please refund to the original card.", "Jane</div>"},
		htmlNot:     []string{"<hr>", "store credit", "Sent:"},
	},
	"apple-iphone-reply.eml": {
		messageID: "6B1E2F3A-4C5D-4E6F-8A9B-0C1D2E3F4A5B@icloud.com",
		inReplyTo: []string{"m.31.q1w2e3r4t5@example.com"}, references: []string{"m.31.q1w2e3r4t5@example.com"},
		from: "Jane Doe <jane.doe@icloud.com>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Re: Delivery date", date: "2024-03-06T08:12:40+01:00",
		text:        "Friday works, thank you!",
		fullTextHas: []string{"Sent from my iPhone\n\n> On 5 Mar 2024, at 17:45, Example Support <support@example.com> wrote:"},
		html:        []string{"Friday works, thank you!"},
		htmlNot:     []string{"Sent from my iPhone", "Thursday or Friday", "<blockquote>"},
	},
	"thunderbird-bottom-post.eml": {
		messageID: "a1b2c3d4-e5f6-7890-abcd-ef0123456789@customer.example",
		inReplyTo: []string{"m.40.p0o9i8u7y6@example.com"}, references: []string{"m.40.p0o9i8u7y6@example.com"},
		from: "Jane Doe <jane@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Re: Invoice copy", date: "2024-03-07T11:20:33+01:00",
		// Quoting above, a signature below, a flowed line joined.
		text:        "The one from February, number 2024-0211, for our tax advisor.\n\nThanks,\nJane",
		fullTextHas: []string{"On 07.03.24 10:05, Example Support wrote:\n> Hello Jane,\n>\n> which invoice", "-- \nJane Doe · Customer Example GmbH"},
	},
	"thunderbird-html-reply.eml": {
		messageID: "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7@customer.example",
		inReplyTo: []string{"m.44.l1k2j3h4g5@example.com"}, references: []string{"m.44.l1k2j3h4g5@example.com"},
		from: "Jane Doe <jane@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Re: Shipping address", date: "2024-03-08T09:41:02+01:00",
		text:    "Both addresses are fine, use the office one.",
		html:    []string{"<p>Both addresses are fine, use the office one.</p>"},
		htmlNot: []string{"Jane Doe", "wrote:", "home or office"},
	},
	"android-samsung-reply.eml": {
		messageID: "jq8k2n4m5b6v7c8x9z0a1s2d.1709980000123@email.android.com",
		inReplyTo: []string{"m.47.r5t6y7u8i9@example.com"}, references: []string{"m.47.r5t6y7u8i9@example.com"},
		from: "Jane Doe <jane.doe@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "RE: Order #1234", date: "2024-03-09T12:14:55+01:00",
		text:        "Great, thanks!",
		fullTextHas: []string{"Sent from my Samsung Galaxy smartphone.\n\n-------- Original message --------\nFrom: Example Support"},
	},
	"interleaved-reply.eml": {
		messageID: "20240311083000.GA1234@customer.example", inReplyTo: []string{"m.48.a1s2d3f4g5@example.com"},
		from: "Jane Doe <jane@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Re: A few questions", date: "2024-03-11T09:30:00+01:00",
		// The quotes are what the answers answer: kept.
		text: "On Mon, 11 Mar 2024 at 09:00, Example Support <support@example.com> wrote:\n> What is your order number?\n\n#1234\n\n> And the postcode for delivery?\n\n10115 Berlin\n\nJane",
	},
	"forwarded-gmail.eml": {
		messageID: "CAJx8W5nForward7x8y9z0@mail.gmail.com",
		from:      "Jane Doe <jane.doe@gmail.com>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Fwd: Damaged item", date: "2024-03-10T19:02:11+01:00",
		// A forward is content, not history.
		text: "Hi, forwarding my husband's mail, see below.\n\n---------- Forwarded message ---------\nFrom: John Doe <john.doe@customer.example>\nDate: Sun, 10 Mar 2024 at 18:22\nSubject: Damaged item\nTo: Jane Doe <jane.doe@gmail.com>\n\n\nThe lamp arrived with a cracked shade. Photo attached.",
		html: []string{"The lamp arrived with a cracked shade.", "Forwarded message"},
		atts: []string{"lamp.jpg|image/jpeg|f_lt2abc0|false|1046"},
	},
	"forwarded-as-attachment.eml": {
		messageID: "AS8PR01MB9876FEDCBA@AS8PR01MB9876.eurprd01.prod.outlook.com",
		from:      "Anna Mueller <anna@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "FW: Complaint about delivery", date: "2024-03-11T11:00:00Z",
		text: "Please see the attached complaint from one of our branches.\n\nAnna",
		atts: []string{"Complaint about delivery.eml|message/rfc822||false|331"},
	},
	"html-only.eml": {
		messageID: "form-5f4e3d2c1b@shop.example.com",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Login problem", date: "2024-03-12T08:00:00+01:00",
		text: "Hello,\n\nI can't log in to my account <https://shop.example.com/account> since Tuesday.\n\nThanks, Jane",
		html: []string{`<a href="https://shop.example.com/account" rel="noreferrer noopener" target="_blank">my account</a>`,
			`<img width="1" height="1" data-remote-src="https://tracker.example.net/open.gif?id=123">`, "<p>Thanks, Jane</p>"},
	},
	"inline-image.eml": {
		messageID: "VI1PR01MB5555AAAA@VI1PR01MB5555.eurprd01.prod.outlook.com",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Error on checkout", date: "2024-03-13T09:00:00Z",
		text: "Hello,\n\nthe error looks like this:\n\n[Screenshot]\n\nThe invoice is attached.\n\nJane",
		html: []string{`src="cid:image001.png@01DA7A1B.2C3D4E50"`},
		atts: []string{"image001.png|image/png|image001.png@01DA7A1B.2C3D4E50|true|70", "invoice-1234.pdf|application/pdf||false|142"},
	},
	"apple-mail-photo.eml": {
		messageID: "9A8B7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D@icloud.com",
		from:      "Jane Doe <jane.doe@icloud.com>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Label photo", date: "2024-03-23T10:00:00+01:00",
		// Text, photo, text: both texts, in order.
		text: "Here is a photo of the label:\n\nAnd the box.\n\nJane",
		atts: []string{"IMG_0042.jpeg|image/jpeg||true|1046"},
	},
	"rfc2231-filenames.eml": {
		messageID: "docs-0001@customer.example",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Documents", date: "2024-03-14T10:00:00+01:00",
		text: "Five documents attached.",
		atts: []string{
			"€ price list.pdf|application/pdf||false|142",
			"Résumé de la réunion.txt|text/plain||false|7",
			"A very long file name that is split over two lines.csv|text/csv||false|10",
			"Übersicht.xlsx|application/vnd.openxmlformats-officedocument.spreadsheetml.sheet||false|10",
			"請求書.pdf|application/pdf||false|142",
		},
	},
	"broken-no-end-boundary.eml": {
		messageID: "broken-1@customer.example",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Broken part photo", date: "2024-03-15T10:00:00+01:00",
		text:    "Here is the photo of the broken part.",
		atts:    []string{"part.jpg|image/jpeg||false|600"},
		notices: []string{"ends before its MIME structure does"},
	},
	"broken-base64.eml": {
		messageID: "broken-2@customer.example",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Invoice total", date: "2024-03-15T11:00:00+01:00",
		text:    "Hello, the invoice total is wrong: it says 120 EUR, it should be 100 EUR.",
		atts:    []string{"invoice.pdf|application/pdf||false|141"},
		notices: []string{"part 1 has broken base64", `attachment "invoice.pdf" has broken base64`},
	},
	"wrong-content-type.eml": {
		messageID: "broken-3@customer.example",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Receipt", date: "2024-03-15T12:00:00+01:00",
		// The boundary is found in the body; "text" is text/plain.
		text: "Please find my receipt attached.",
		atts: []string{"receipt.pdf|application/octet-stream||false|142"},
	},
	"iso-8859-1.eml": {
		messageID: "latin1-1@cliente.example",
		from:      "José García <jose@cliente.example>", to: []string{"soporte@example.com"}, recipients: []string{"soporte@example.com"},
		subject: "Problema con el envío", date: "2024-03-16T10:00:00+01:00",
		text: "Hola,\n\nEl paquete llegó dañado. ¿Pueden enviar otro?\n\nGracias,\nJosé",
	},
	"windows-1252.eml": {
		messageID: "cp1252-1@kunde.example",
		from:      "Hans Becker <hans@kunde.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Rückfrage Rechnung", date: "2024-03-16T11:00:00+01:00",
		text: "Guten Tag,\n\ndie Rechnung nennt „Expressversand“ für 12,50 € – bestellt war Standard.\n\nGrüße\nHans Becker",
	},
	"iso-2022-jp.eml": {
		messageID: "jp-1@kokyaku.example",
		from:      "山田太郎 <yamada@kokyaku.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "注文について", date: "2024-03-17T10:00:00+09:00",
		text: "お世話になっております。\n注文番号1234の件です。\nよろしくお願いいたします。",
	},
	"koi8-r.eml": {
		messageID: "koi8-1@klient.example",
		from:      "Ivan Petrov <ivan@klient.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Вопрос о доставке", date: "2024-03-17T12:00:00+03:00",
		text: "Здравствуйте!\nКогда будет доставка?\n\nИван",
	},
	"unknown-charset.eml": {
		messageID: "klingon-1@qonos.example",
		from:      "Kor <kor@qonos.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Hello there", date: "2024-03-18T10:00:00Z",
		text:    "Hello, my order 4711 arrived broken \uFFFD please help.",
		notices: []string{`part 1 is in an unknown charset "x-mac-klingon"`, `the header uses an unknown charset "x-mac-klingon"`},
	},
	"autoreply-auto-submitted.eml": {
		messageID: "4f6e5d4c3b2a@DB9PR01MB1234.eurprd01.prod.outlook.com",
		inReplyTo: []string{"m.17.k3j4h5g6f7@example.com"}, references: []string{"m.17.k3j4h5g6f7@example.com"},
		from: "Jane Doe <jane.doe@customer.example>", to: []string{"Example Support <support@example.com>"},
		recipients: []string{"support@example.com"}, subject: "Automatic reply: Your order #1234", date: "2024-03-18T09:00:01Z",
		text: "I am out of the office until 25 March with limited access to email.",
		auto: "Auto-Submitted: auto-replied",
	},
	"autoreply-x-autoreply.eml": {
		messageID: "autoreply-7@klient.example", inReplyTo: []string{"m.60.b5n6m7q8w9@example.com"},
		from: "Ivan Petrov <ivan@klient.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Auto: Re: Your order #2001", date: "2024-03-18T10:00:00+03:00",
		text: "Thank you for your message. I will answer after my holidays.",
		auto: "X-Autoreply",
	},
	"autoreply-precedence.eml": {
		messageID: "vacation-3@kunde.example",
		from:      "Hans Becker <hans@kunde.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Abwesenheitsnotiz", date: "2024-03-18T11:00:00+01:00",
		text: "Ich bin bis zum 2. April nicht im Büro.",
		auto: "Precedence: bulk",
	},
	"bounce-postfix.eml": {
		messageID: "20240319090005.4Tq7Xk0Z3Pz9sT4@mail.example.com",
		from:      "Mail Delivery System <MAILER-DAEMON@mail.example.com>", to: []string{"support@example.com"},
		recipients: []string{"support@example.com"}, subject: "Undelivered Mail Returned to Sender", date: "2024-03-19T10:00:05+01:00",
		text: "This is the mail system at host mail.example.com.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\nFor further assistance, please send mail to postmaster.\n\nIf you do so, please include this problem report. You can\ndelete your own text from the attached returned message.\n\n                   The mail system\n\n<nobody@customer.example>: host mx.customer.example[203.0.113.5] said: 550\n    5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown\n    in virtual mailbox table (in reply to RCPT TO command)",
		atts: []string{"delivery-status.txt|message/delivery-status||false|480", "original-message.eml|message/rfc822||false|533"},
		auto: "bounce",
		bounce: &inbox.Bounce{OriginalMessageID: "m.51.a9s8d7f6g5@example.com", Recipient: "nobody@customer.example", Status: "5.1.1",
			Diagnostic: "550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown in virtual mailbox table"},
	},
	"bounce-exchange.eml": {
		messageID: "7f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f@AM0PR07MB1234.eurprd07.prod.outlook.com",
		inReplyTo: []string{"m.52.h7j6k5l4z3@example.com"}, references: []string{"m.52.h7j6k5l4z3@example.com"},
		from: "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>",
		to:   []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Undeliverable: Re: Your order #1234", date: "2024-03-20T08:15:30Z",
		text: "Your message to j.smith@contoso.com couldn't be delivered.\nj.smith wasn't found at contoso.com.\n\nsupport     Office 365      j.smith\nAction Required                 Recipient\nUnknown To address",
		html: []string{"wasn&#39;t found at contoso.com"},
		atts: []string{"delivery-status.txt|message/delivery-status||false|366", "original-headers.txt|text/rfc822-headers||false|428"},
		auto: "bounce",
		bounce: &inbox.Bounce{OriginalMessageID: "m.52.h7j6k5l4z3@example.com", Recipient: "j.smith@contoso.com", Status: "5.1.10",
			Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
	},
	"dsn-delayed.eml": {
		messageID: "20240320130005.5Xy8@mail.example.com",
		from:      "Mail Delivery System <MAILER-DAEMON@mail.example.com>", to: []string{"support@example.com"},
		recipients: []string{"support@example.com"}, subject: "Delayed Mail (still being retried)", date: "2024-03-20T14:00:05+01:00",
		text: "This is the mail system at host mail.example.com.\n\n####################################################################\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n####################################################################",
		atts: []string{"delivery-status.txt|message/delivery-status||false|223", "original-headers.txt|text/rfc822-headers||false|151"},
		// A delay is automatic mail, not a failed delivery.
		auto: "report: delayed",
	},
	"list-mail.eml": {
		messageID: "pricelist-q2@customer.example",
		from:      "Jane Doe <jane.doe@customer.example>", to: []string{"partners@lists.example.org"},
		recipients: []string{"partners@lists.example.org", "support@example.com"},
		subject:    "[partners] New price list for Q2", date: "2024-03-21T10:00:00+01:00",
		text: "The new price list for Q2 is online.",
		auto: "List-Id",
	},
	"no-message-id.eml": {
		// No Message-ID: the store dedupes by RawHash. No Date: Received's.
		from: "printer@customer.example", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Scan to email", date: "2024-03-21T16:40:00+01:00",
		text: "Scanned document from the third floor printer.",
	},
	"address-junk.eml": {
		messageID: "junk-1@customer.example",
		inReplyTo: []string{"m.70.abcabcabca@example.com"}, references: []string{"m.69.first00001@example.com", "m.70.abcabcabca@example.com"},
		from:       "Doe, John <JOHN.DOE@customer.example>",
		replyTo:    "John (work) <john.doe@customer.example>",
		to:         []string{"Müller, Anna <anna@customer.example>", "support+c42-abcdefghijklmnop@example.com", "Peter Pan <peter@neverland.example>"},
		recipients: []string{"anna@customer.example", "support+c42-abcdefghijklmnop@example.com", "peter@neverland.example"},
		subject:    "Re: Termin übermorgen", date: "2024-03-22T10:00:00+01:00",
		text: "See you the day after tomorrow.",
	},
	"own-address.eml": {
		messageID: "m.71.loop000001@example.com",
		from:      "Example Support <Support@example.com>", to: []string{"jane.doe@customer.example"}, cc: []string{"support@example.com"},
		recipients: []string{"jane.doe@customer.example", "support@example.com"},
		subject:    "Re: Your order #1234", date: "2024-03-22T11:00:00+01:00",
		text: "Hello Jane, your order has shipped.",
		auto: "From our own mailbox",
	},
	"null-sender.eml": {
		messageID: "reminder-9@customer.example",
		from:      "Calendar <calendar@customer.example>", to: []string{"support@example.com"}, recipients: []string{"support@example.com"},
		subject: "Reminder: meeting at 10:00", date: "2024-03-22T09:00:00+01:00",
		text: "Reminder: product meeting at 10:00.",
		auto: "Return-Path: <>",
	},
}

func formatAddr(a inbox.Address) string {
	if a.Name == "" {
		return a.Addr
	}
	return a.Name + " <" + a.Addr + ">"
}

func formatAddrs(as []inbox.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, formatAddr(a))
	}
	return out
}

func equal(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) }

// TestTestdata parses every mail of testdata/ and checks its key fields
// against the golden values above; a file without golden values fails.
func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) < len(goldens) {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			g, ok := goldens[name]
			if !ok {
				t.Fatalf("no golden values for %s", name)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			e, err := mailparse.Parse(raw, mailparse.Options{OwnAddresses: ownAddresses})
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			checkInvariants(t, raw, e)
			sum := sha256.Sum256(raw)
			if e.RawHash != hex.EncodeToString(sum[:]) || !bytes.Equal(e.Raw, raw) {
				t.Errorf("RawHash = %s, Raw %d bytes", e.RawHash, len(e.Raw))
			}
			if e.MessageID != g.messageID {
				t.Errorf("MessageID = %q, want %q", e.MessageID, g.messageID)
			}
			if !equal(e.InReplyTo, g.inReplyTo) || !equal(e.References, g.references) {
				t.Errorf("InReplyTo = %q, References = %q, want %q, %q", e.InReplyTo, e.References, g.inReplyTo, g.references)
			}
			if got := formatAddr(e.From); got != g.from {
				t.Errorf("From = %q, want %q", got, g.from)
			}
			replyTo := ""
			if e.ReplyTo != nil {
				replyTo = formatAddr(*e.ReplyTo)
			}
			if replyTo != g.replyTo {
				t.Errorf("ReplyTo = %q, want %q", replyTo, g.replyTo)
			}
			if to, cc := formatAddrs(e.To), formatAddrs(e.Cc); !equal(to, g.to) || !equal(cc, g.cc) {
				t.Errorf("To = %q, Cc = %q, want %q, %q", to, cc, g.to, g.cc)
			}
			if !equal(e.Recipients, g.recipients) {
				t.Errorf("Recipients = %q, want %q", e.Recipients, g.recipients)
			}
			if e.Subject != g.subject {
				t.Errorf("Subject = %q, want %q", e.Subject, g.subject)
			}
			date := ""
			if !e.Date.IsZero() {
				date = e.Date.Format(time.RFC3339)
			}
			if date != g.date {
				t.Errorf("Date = %q, want %q", date, g.date)
			}
			if e.Text != g.text {
				t.Errorf("Text = %q, want %q", e.Text, g.text)
			}
			for _, s := range g.fullTextHas {
				if !strings.Contains(e.FullText, s) {
					t.Errorf("FullText = %q, want it to hold %q", e.FullText, s)
				}
			}
			for _, s := range g.html {
				if !strings.Contains(e.HTML, s) {
					t.Errorf("HTML = %q, want it to hold %q", e.HTML, s)
				}
			}
			for _, s := range g.htmlNot {
				if strings.Contains(e.HTML, s) || !strings.Contains(e.FullHTML, s) {
					t.Errorf("HTML = %q, FullHTML = %q: want %q in FullHTML only", e.HTML, e.FullHTML, s)
				}
			}
			var atts []string
			for _, a := range e.Attachments {
				atts = append(atts, fmt.Sprintf("%s|%s|%s|%t|%d", a.Name, a.ContentType, a.ContentID, a.Inline, len(a.Data)))
			}
			if !equal(atts, g.atts) {
				t.Errorf("Attachments = %q, want %q", atts, g.atts)
			}
			if e.AutoReason != g.auto || e.Auto != (g.auto != "") {
				t.Errorf("Auto = %t %q, want %q", e.Auto, e.AutoReason, g.auto)
			}
			if (e.Bounce == nil) != (g.bounce == nil) || e.Bounce != nil && *e.Bounce != *g.bounce {
				t.Errorf("Bounce = %+v, want %+v", e.Bounce, g.bounce)
			}
			if len(e.Notices) != len(g.notices) {
				t.Fatalf("Notices = %q, want %d like %q", e.Notices, len(g.notices), g.notices)
			}
			for i, s := range g.notices {
				if !strings.Contains(e.Notices[i], s) {
					t.Errorf("Notices[%d] = %q, want it to hold %q", i, e.Notices[i], s)
				}
			}
		})
	}
}

// checkInvariants holds for every parsed mail: text is valid UTF-8
// without NUL, HTML is sanitized (sanitizing it again changes nothing),
// the trimmed text is part of the full text, and the output is bounded
// by the input.
func checkInvariants(t *testing.T, raw []byte, e inbox.IncomingEmail) {
	t.Helper()
	strs := []string{e.MessageID, e.Subject, e.Text, e.FullText, e.HTML, e.FullHTML, e.AutoReason, e.From.Name, e.From.Addr}
	strs = append(strs, e.InReplyTo...)
	strs = append(strs, e.References...)
	strs = append(strs, e.Recipients...)
	strs = append(strs, e.Notices...)
	for _, as := range [][]inbox.Address{e.To, e.Cc} {
		for _, a := range as {
			strs = append(strs, a.Name, a.Addr)
		}
	}
	size := 0
	for _, a := range e.Attachments {
		strs = append(strs, a.Name, a.ContentType, a.ContentID)
		size += len(a.Data)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("Parse() gave %q: invalid UTF-8 or NUL", s)
		}
		size += len(s)
	}
	for _, h := range []string{e.HTML, e.FullHTML} {
		if again := inbox.SanitizeEmailHTML(h); again != h {
			t.Fatalf("HTML %q sanitized again is %q", h, again)
		}
	}
	if !strings.Contains(e.FullText, e.Text) {
		t.Fatalf("Text %q is not part of FullText %q", e.Text, e.FullText)
	}
	// Decoding shrinks or grows text by a small factor (a byte of a
	// legacy charset is at most 3 of UTF-8; sanitizing escapes "&" as
	// "&amp;"), and the trimmed copies add as much again.
	if size > 24*len(raw)+4096 {
		t.Fatalf("Parse() of %d bytes gave %d bytes", len(raw), size)
	}
}

// TestOwnAddressVariants checks that mail From a plus-addressed or
// differently cased form of one of our mailboxes is automatic (a loop),
// by the store's rule of what is ours (inbox.OwnMailbox).
func TestOwnAddressVariants(t *testing.T) {
	for _, from := range []string{"support@example.com", "SUPPORT@Example.COM", "support+c42-abc@example.com"} {
		raw := []byte("From: " + from + "\r\nTo: carol@customer.test\r\nSubject: x\r\n\r\nhello\r\n")
		e, err := mailparse.Parse(raw, mailparse.Options{OwnAddresses: ownAddresses})
		if err != nil || !e.Auto || e.AutoReason != "From our own mailbox" {
			t.Errorf("From %s: Auto = %t %q, %v; want From our own mailbox", from, e.Auto, e.AutoReason, err)
		}
	}
	e, _ := mailparse.Parse([]byte("From: supporter@example.com\r\nSubject: x\r\n\r\nhi\r\n"), mailparse.Options{OwnAddresses: ownAddresses})
	if e.Auto {
		t.Errorf("From supporter@example.com: Auto %q, want a customer's mail", e.AutoReason)
	}
}
