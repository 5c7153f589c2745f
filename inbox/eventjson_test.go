package inbox_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// AppendFrame writes what encoding/json writes for the sockets' event
// frames, byte for byte.
func TestEventAppendFrame(t *testing.T) {
	msg, _ := json.Marshal(inbox.MessageAdded{Message: inbox.Message{ID: 7, ConversationID: 3, Seq: 9, Author: "contact",
		Text: "<script>alert('x')</script> & \"quotes\" \u2028 é", CreatedAt: time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)}})
	email, _ := json.Marshal(inbox.MessageAdded{Message: inbox.Message{ID: 8, ConversationID: 3, Seq: 12, Author: "agent",
		Channel: inbox.ChannelEmail, Text: "Hi <Ann>", HTML: `<p>Hi &lt;Ann&gt; <a href="https://x.test/?a=1&b=2">x</a></p>`,
		State: inbox.StateFailed, Error: "550 5.1.1 <ann@customer.test>: \"no such user\"",
		CreatedAt: time.Date(2026, 11, 23, 12, 0, 1, 0, time.UTC),
		Email: &inbox.EmailInfo{Subject: "Re: [#c3-abc] \u00e9t\u00e9 <ok> & \"done\"", From: inbox.Address{Name: "Support \"Team\"", Addr: "support@example.com"},
			To: []inbox.Address{{Name: "Ann <A>", Addr: "ann@customer.test"}}, Cc: []inbox.Address{{Addr: "dave@customer.test"}},
			Trimmed: true, Auto: true, Notices: []string{"an attachment of 60 MB was left out", "\u2028<b>"}}}})
	failed, _ := json.Marshal(inbox.MessageState{MessageIDs: []int64{7}, State: inbox.StateFailed, Error: "550 5.1.1 <carol@example.com>: \"no such user\" & gone"})
	paris := time.FixedZone("CET", 3600)
	for _, ev := range []inbox.Event{
		{ID: 1, ConversationID: 3, Seq: 9, Type: inbox.EventMessageAdded, Data: msg, At: time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)},
		{ID: 5, ConversationID: 3, Seq: 12, Type: inbox.EventMessageAdded, Data: email, At: time.Date(2026, 11, 23, 12, 0, 1, 0, time.UTC)},
		{ID: 2, ConversationID: 3, Seq: 10, Type: inbox.EventClosed, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{ID: 3, ConversationID: 3, Seq: 11, Type: inbox.EventMessageState, Data: failed, At: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)},
		{ConversationID: 3, Type: inbox.EventTyping, Data: []byte(`{"author":"agent","typing":true}`), At: time.Date(2026, 1, 2, 3, 4, 5, 100, paris)},
		{ID: -4, Type: "odd \"type\" <&>\n", Data: []byte(`[]`)},
	} {
		want, err := json.Marshal(struct {
			Type  string       `json:"type"`
			Event *inbox.Event `json:"event"`
		}{"event", &ev})
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.AppendFrame(nil); string(got) != string(want) {
			t.Errorf("AppendFrame =\n%s\nwant\n%s", got, want)
		}
	}
}
