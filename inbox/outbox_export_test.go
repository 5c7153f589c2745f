package inbox

import (
	"context"

	"gorm.io/gorm"
)

// EnqueueReply inserts the outbox row of an agent's email reply, as the
// append path does in the transaction that stores the reply: the outbox
// tests need one without going through the reply channel's decision.
func (s *Store) EnqueueReply(ctx context.Context, conversationID, messageID int64) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var err error
		id, err = s.enqueueOutbox(tx, OutboundReply, conversationID, &messageID, nil)
		return err
	})
	return id, err
}

// DigestScan is the query EnqueueDigests runs every second, for the test
// of its plan.
const DigestScan = digestScan
