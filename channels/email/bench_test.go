package email

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// Benchmarks of the whole IMAP import (issue 12, "Speed"), measured in
// docs/benchmarks.md:
//
//	MICROCHAT_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  CGO_ENABLED=0 go test ./channels/email/ -run '^$' -bench MailboxImport -benchtime 1x -count 3
//
// They are benchmarks, not tests: nothing in them asserts a speed.

// Shape of the imported mailbox: importMails mails of about importSize
// bytes, every third a reply to an earlier mail of the set (In-Reply-To
// and References), from importSenders customers.
const (
	importMails   = 10_000
	importSize    = 4000
	importSenders = 2000
)

// importSet returns the mails of the benchmark mailbox and how many
// conversations they make once threaded: each mail not a reply starts
// one; a reply, from the same customer as the mail it answers, joins
// that mail's conversation.
func importSet() (mails [][]byte, conversations int) {
	r := rand.New(rand.NewPCG(12, 12))
	root := make([]int, importMails) // the mail that started i's conversation
	refs := make([][]string, importMails)
	mails = make([][]byte, importMails)
	for i := range importMails {
		id := fmt.Sprintf("bench.%d@customer.test", i)
		if i%3 != 2 {
			root[i] = i
			refs[i] = []string{id}
			mails[i] = benchMail(i, i%importSenders, fmt.Sprintf("Order #%d: a question", 10_000+i), id, "", nil)
			conversations++
			continue
		}
		// A reply to one of the last 300 mails, as a busy mailbox has.
		k := i - 1 - r.IntN(min(i, 300))
		root[i] = root[k]
		chain := refs[k][max(0, len(refs[k])-10):]
		refs[i] = append(append([]string{}, chain...), id)
		mails[i] = benchMail(i, root[k]%importSenders, fmt.Sprintf("Re: Order #%d: a question", 10_000+root[k]), id,
			refs[k][len(refs[k])-1], chain)
	}
	return mails, conversations
}

// benchMail is a multipart/alternative mail of about importSize bytes
// from customer n: a new question, or a reply (inReplyTo set) above a
// quoted history, as a mail client writes them.
func benchMail(i, n int, subject, id, inReplyTo string, references []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <customer%d@customer.test>\r\nReceived: from mx.customer.test (mx.customer.test [192.0.2.%d])\r\n\tby mx.example.com with ESMTPS id b%d for <support@example.com>;\r\n\tMon, 30 Nov 2026 10:15:22 +0000\r\n", n, i%250+1, i)
	fmt.Fprintf(&b, "From: Customer %d <customer%d@customer.test>\r\nTo: Example Support <support@example.com>\r\nSubject: %s\r\nDate: Mon, 30 Nov 2026 10:15:08 +0000\r\nMessage-ID: <%s>\r\n", n, n, subject, id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, strings.Join(references, "> <"))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"000000000000a1b2c3d4e5f6\"\r\n\r\n")
	var text, html strings.Builder
	fmt.Fprintf(&text, "Hello,\r\n\r\nThis is mail %d. The parcel arrived this morning, but the blue mug is missing.\r\nCould you send it separately?\r\n\r\nBest,\r\nCustomer %d\r\n", i, n)
	fmt.Fprintf(&html, "<div dir=\"ltr\"><div>Hello,</div><div><br></div><div>This is mail %d. The parcel arrived this morning, but the blue mug is missing.</div><div>Could you send it separately?</div><div><br></div><div>Best,</div><div>Customer %d</div></div>", i, n)
	if inReplyTo != "" {
		text.WriteString("\r\nOn Mon, Nov 30, 2026 at 9:02 AM Example Support <support@example.com> wrote:\r\n\r\n")
		html.WriteString(`<br><div class="gmail_quote"><div class="gmail_attr">On Mon, Nov 30, 2026 at 9:02 AM Example Support wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`)
	}
	for j := 0; b.Len()+text.Len()+html.Len() < importSize-200; j++ {
		line := fmt.Sprintf("Line %d about the order, its delivery and what is in the box.", j)
		if inReplyTo != "" {
			fmt.Fprintf(&text, "> %s\r\n", line)
		} else {
			fmt.Fprintf(&text, "%s\r\n", line)
		}
		fmt.Fprintf(&html, "<div>%s</div>", line)
	}
	if inReplyTo != "" {
		html.WriteString("</blockquote></div>")
	}
	fmt.Fprintf(&b, "--000000000000a1b2c3d4e5f6\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\n%s\r\n", text.String())
	fmt.Fprintf(&b, "--000000000000a1b2c3d4e5f6\r\nContent-Type: text/html; charset=\"UTF-8\"\r\n\r\n%s\r\n", html.String())
	b.WriteString("--000000000000a1b2c3d4e5f6--\r\n")
	return b.Bytes()
}

// BenchmarkMailboxImport imports a folder of 10,000 mails of about 4 KB,
// a third of them replies, from imapmemserver on loopback into threaded
// conversations: the Ingester (first sync), the StoreSink (mailparse and
// inbox.Store.IngestEmail) and the store on a new database each run
// (SQLite: a file in a temporary directory, as in production). In the
// same run, the baseline: a bare go-imap UID FETCH of the whole folder
// with mailparse.Parse of each mail. Metrics: import_s and baseline_s,
// the seconds of each; ratio, import over baseline; mails/s of the
// import. Issue 12's target: the import within 5 s on SQLite.
func BenchmarkMailboxImport(b *testing.B) {
	mails, conversations := importSet()
	var total int
	for _, m := range mails {
		total += len(m)
	}
	srv := emailtest.StartIMAP(b, nil)
	now := time.Now()
	for i, m := range mails {
		srv.Append(b, "", m, now.Add(-time.Duration(importMails-i)*time.Second))
	}
	b.Logf("%d mails, %d bytes on average, %d conversations once threaded", len(mails), total/len(mails), conversations)
	for _, engine := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", inboxtest.SQLiteURL}, {"postgres", inboxtest.PostgresURL}} {
		b.Run(engine.name, func(b *testing.B) {
			var importTime, baseTime time.Duration
			for b.Loop() {
				baseTime += baselineImport(b, srv)
				b.StopTimer()
				st := inboxtest.Open(b, engine.url(b), nil)
				b.StartTimer()
				importTime += storeImport(b, srv, st)
				b.StopTimer()
				checkImported(b, st, conversations)
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(importTime.Seconds()/n, "import_s")
			b.ReportMetric(baseTime.Seconds()/n, "baseline_s")
			b.ReportMetric(importTime.Seconds()/baseTime.Seconds(), "ratio")
			b.ReportMetric(float64(importMails)*n/importTime.Seconds(), "mails/s")
		})
	}
}

// baselineImport fetches the whole folder with one UID FETCH over a new
// connection and parses each mail as it arrives, and returns how long
// that took.
func baselineImport(b *testing.B, srv *emailtest.IMAPServer) time.Duration {
	start := time.Now()
	c := srv.Dial(b)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	fetchAll(b, c, importMails, func(uid imap.UID, body []byte) {
		if _, err := mailparse.Parse(body, mailparse.Options{}); err != nil {
			b.Fatalf("Parse(UID %d) = %v", uid, err)
		}
	})
	return time.Since(start)
}

// storeImport runs an Ingester with the production Sink on st until it
// has synced the folder and waits in IDLE, and returns how long that
// took.
func storeImport(b *testing.B, srv *emailtest.IMAPServer, st *inbox.Store) time.Duration {
	mb := srv.Mailbox("support")
	sink := &StoreSink{Store: st, Logger: quietLogger(), Parse: mailparse.Options{OwnAddresses: []string{mb.Address}}}
	g := NewIngester(mb, sink, &IngestOptions{Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	for !g.Idling() {
		select {
		case <-done:
			b.Fatal("the Ingester stopped")
		case <-time.After(time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatal("no sync within 10 min")
		}
	}
	d := time.Since(start)
	cancel()
	<-done
	return d
}

// checkImported fails the benchmark unless every mail is a message and
// the replies joined their conversations.
func checkImported(b *testing.B, st *inbox.Store, conversations int) {
	var msgs, convs, quarantined int
	db := st.DB()
	for q, n := range map[string]*int{
		`SELECT COUNT(*) FROM messages WHERE channel = 'email'`: &msgs,
		`SELECT COUNT(*) FROM conversations`:                    &convs,
		`SELECT COUNT(*) FROM email_quarantine`:                 &quarantined,
	} {
		if err := db.QueryRow(q).Scan(n); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	if msgs != importMails || convs != conversations || quarantined != 0 {
		b.Fatalf("imported %d messages in %d conversations, %d quarantined; want %d in %d", msgs, convs, quarantined, importMails, conversations)
	}
}
