package inbox

import (
	"encoding/json"
	"slices"
	"testing"
)

// hookRowsOf: which stored events make which webhook events, in their
// stream's order.
func TestHookRowsOf(t *testing.T) {
	data := func(v any) json.RawMessage {
		b, _ := json.Marshal(v)
		return b
	}
	evs := []Event{
		{ID: 1, ConversationID: 7, Seq: 1, Type: EventConversationCreated},
		{ID: 2, ConversationID: 7, Seq: 2, Type: EventJoined, Data: data(Joined{AgentID: 3, Reopened: true})},
		{ID: 3, ConversationID: 7, Seq: 3, Type: EventMessageState, Data: data(MessageState{MessageIDs: []int64{9}, State: StateFailed, Error: "550"})},
		{ID: 4, ConversationID: 7, Seq: 4, Type: EventMessageState, Data: data(MessageState{MessageIDs: []int64{9}, State: StateDelivered})},
		{ID: 5, ConversationID: 7, Seq: 5, Type: EventMessagesRead},
		{ID: 6, ConversationID: 7, Seq: 6, Type: EventRated},
		{ID: 7, ConversationID: 7, Seq: 7, Type: EventClosed},
		{ConversationID: 7, Type: EventTyping},
		{ID: 8, ConversationID: 7, Seq: 8, Type: EventMessageAdded, Data: data(MessageAdded{Reopened: true})},
	}
	var got []string
	var ords []int64
	for _, r := range hookRowsOf(evs, nil) {
		got = append(got, r.typ)
		ords = append(ords, r.ord)
		if r.stream != 7 || r.event == nil {
			t.Fatalf("row %+v: want stream 7 and its event", r)
		}
	}
	want := []string{HookConversationCreated, HookConversationReopened, HookConversationAssigned, HookMessageFailed,
		HookRatingCreated, HookConversationClosed, HookConversationReopened, HookMessageCreated}
	if !slices.Equal(got, want) || !slices.IsSorted(ords) {
		t.Fatalf("hookRowsOf() = %v (ords %v), want %v in order", got, ords, want)
	}
}

// message.failed's body names the messages and the server's answer.
func TestHookBodyFailed(t *testing.T) {
	id := int64(3)
	ev := Event{ID: id, ConversationID: 7, Seq: 3, Type: EventMessageState,
		Data: json.RawMessage(`{"message_ids":[9],"state":"failed","error":"550 5.1.1 user unknown"}`)}
	body, err := hookBody(Delivery{Type: HookMessageFailed, EventID: &id}, map[int64]Event{id: ev})
	if err != nil {
		t.Fatalf("hookBody() = %v", err)
	}
	var p struct {
		Type string
		Data HookMessageFailedData
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Type != HookMessageFailed || p.Data.ConversationID != 7 || p.Data.Seq != 3 ||
		!slices.Equal(p.Data.MessageIDs, []int64{9}) || p.Data.Error != "550 5.1.1 user unknown" {
		t.Fatalf("hookBody() = %s, %v", body, err)
	}
	if _, err := hookBody(Delivery{Type: HookMessageFailed, EventID: &id}, nil); err != errEventGone {
		t.Fatalf("hookBody(event gone) = %v, want errEventGone", err)
	}
}
