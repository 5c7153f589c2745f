package email

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// StoreSink stores a fetched batch in as few transactions as it can, in
// UID order: what cannot be a message (not a mail, a sender the store
// refuses, too large) is quarantined where it stands, the mails before it
// stored first, so that no checkpoint ever passes a mail not stored; a
// reply threads into the conversation a mail of the same batch started.
func TestStoreSinkBatch(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		st := inboxtest.Open(t, url, nil)
		sink := &StoreSink{Store: st, Logger: testLogger(t)}
		ctx := context.Background()
		fetched := func(uid uint32, raw string) Fetched {
			return Fetched{Mailbox: "support", Folder: "INBOX", UIDValidity: 3, UID: uid, Raw: []byte(raw),
				Size: int64(len(raw)), InternalDate: time.Now()}
		}
		mail := func(id, from, extra string) string {
			return "From: " + from + "\r\nTo: support@example.com\r\nSubject: Order\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\n" + id + "\r\n"
		}
		tooLarge := fetched(5, "From: dan@customer.test\r\nSubject: Big\r\n\r\n")
		tooLarge.TooLarge, tooLarge.Size = true, MaxMessageSize+1
		batch := []Fetched{
			fetched(1, mail("one@customer.test", "ann@customer.test", "")),
			fetched(2, "this is not a mail\r\n"),
			fetched(3, mail("three@customer.test", "ann@customer.test", "In-Reply-To: <one@customer.test>\r\n")),
			fetched(4, mail("four@customer.test", "<"+strings.Repeat("a", 300)+"@customer.test>", "")),
			tooLarge,
			fetched(6, mail("six@customer.test", "bob@customer.test", "")),
		}
		if err := sink.Import(ctx, batch); err != nil {
			t.Fatalf("Import() = %v", err)
		}
		cp, err := st.IMAPCheckpoint(ctx, "support", "INBOX")
		if err != nil || cp != (inbox.IMAPCheckpoint{UIDValidity: 3, LastUID: 6}) {
			t.Fatalf("IMAPCheckpoint() = %+v, %v; want UID 6", cp, err)
		}
		q, err := st.ListQuarantine(ctx)
		if err != nil || len(q) != 3 || q[2].UID != 2 || q[1].UID != 4 || q[0].UID != 5 ||
			!strings.Contains(q[1].Reason, "from") || !strings.Contains(q[0].Reason, "over the limit") {
			t.Fatalf("ListQuarantine() = %+v, %v; want UIDs 2, 4 and 5 with their reasons", q, err)
		}
		// What each mail became, and when: in UID order.
		var stored []struct {
			HeaderID       string
			ConversationID int64
			CreatedAt      time.Time
		}
		rows, err := st.DB().QueryContext(ctx, `SELECT e.header_id, m.conversation_id, m.created_at FROM email_messages e
			JOIN messages m ON m.id = e.message_id ORDER BY m.id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r struct {
				HeaderID       string
				ConversationID int64
				CreatedAt      time.Time
			}
			if err := rows.Scan(&r.HeaderID, &r.ConversationID, &r.CreatedAt); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, r)
		}
		rows.Close()
		if len(stored) != 3 || stored[0].HeaderID != "one@customer.test" || stored[1].HeaderID != "three@customer.test" ||
			stored[2].HeaderID != "six@customer.test" || stored[1].ConversationID != stored[0].ConversationID ||
			stored[2].ConversationID == stored[0].ConversationID {
			t.Fatalf("stored %+v; want one and its reply three in a conversation, six in another", stored)
		}
		quarantined := func(uid uint32) time.Time {
			for _, e := range q {
				if e.UID == uid {
					return e.CreatedAt
				}
			}
			return time.Time{}
		}
		order := []time.Time{stored[0].CreatedAt, quarantined(2), stored[1].CreatedAt, quarantined(4), quarantined(5), stored[2].CreatedAt}
		for i := 1; i < len(order); i++ {
			if order[i].Before(order[i-1]) {
				t.Fatalf("UID %d was stored at %v, before UID %d at %v: a checkpoint passed a mail not yet stored", i+1, order[i], i, order[i-1])
			}
		}
	})
}
