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
	failed, _ := json.Marshal(inbox.MessageState{MessageIDs: []int64{7}, State: inbox.StateFailed, Error: "550 5.1.1 <carol@example.com>: \"no such user\" & gone"})
	paris := time.FixedZone("CET", 3600)
	for _, ev := range []inbox.Event{
		{ID: 1, ConversationID: 3, Seq: 9, Type: inbox.EventMessageAdded, Data: msg, At: time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)},
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
