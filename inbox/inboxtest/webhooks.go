package inboxtest

import (
	"context"
	"strconv"
	"testing"

	"github.com/microdeets/microchat/inbox"
)

// FailDeliveries gives up every delivery of the webhook that is due now,
// as the webhook worker does after its last attempt: each answered
// status with body, and no retry (failed, for admins to replay). It
// returns their ids, in the order they were due.
func FailDeliveries(t testing.TB, s *inbox.Store, webhookID int64, status int, body string) []int64 {
	t.Helper()
	ctx := context.Background()
	runs, err := s.DueDeliveries(ctx, webhookID, nil, 1000, 1000)
	if err != nil {
		t.Fatalf("DueDeliveries() = %v", err)
	}
	var ids []int64
	var outs []inbox.DeliveryOutcome
	for _, run := range runs {
		for _, d := range run {
			ids = append(ids, d.ID)
			outs = append(outs, inbox.DeliveryOutcome{ID: d.ID, At: s.Now(), Status: status, Error: "answered HTTP " + strconv.Itoa(status), Body: body})
		}
	}
	if err := s.RecordDeliveries(ctx, webhookID, outs); err != nil {
		t.Fatalf("RecordDeliveries() = %v", err)
	}
	return ids
}
