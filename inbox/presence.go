package inbox

import (
	"context"
	"encoding/json"

	"gorm.io/gorm"
)

// Presence (rule 6) is stored on transitions only: the caller (package
// presence) counts sockets and waits out the grace period in memory, and
// calls these methods when a contact or an agent actually comes or goes.
// Each transition is also announced as a transient event, so that agents
// and visitors see it at once.

// ContactOnline is one contact's online transition.
type ContactOnline struct {
	ContactID int64
	Online    bool
}

// SetContactOnline stores one contact's online state; see SetContactsOnline.
func (s *Store) SetContactOnline(ctx context.Context, id int64, online bool) error {
	n, err := s.SetContactsOnline(ctx, []ContactOnline{{ContactID: id, Online: online}})
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// SetContactsOnline stores online transitions of several contacts in one
// transaction and returns how many contacts exist of them. A contact who
// comes online gets their queued chat replies (rule 5): they turn sent,
// with a message_state event in each conversation. A reply being stored
// at the same time (AddReply) either is committed first, and delivered
// here, or sees the contact online. Every transition is
// announced by a transient EventContactPresence in the contact's newest
// conversation (conversation 0 when they have none).
func (s *Store) SetContactsOnline(ctx context.Context, changes []ContactOnline) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	found := 0
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		found = 0
		now := s.now()
		if s.dialect == dialectPostgres {
			// The contacts first, in ascending id order, as the appender
			// reads them FOR SHARE before it locks their conversations
			// (append.go): a reply being stored and this transition
			// wait for each other, never in a cycle.
			ids := make([]int64, 0, len(changes))
			for _, c := range changes {
				ids = append(ids, c.ContactID)
			}
			if err := tx.Exec(`SELECT id FROM contacts WHERE id IN ? ORDER BY id FOR NO KEY UPDATE`, ids).Error; err != nil {
				return err
			}
		}
		// One UPDATE for those coming online and one for those going
		// offline (a burst of connects is hundreds of contacts); RETURNING
		// tells which contacts still exist.
		ids := make([]int64, 0, len(changes))
		var comingOnline []int64
		for _, online := range []bool{true, false} {
			var want []int64
			for _, c := range changes {
				if c.Online == online {
					want = append(want, c.ContactID)
				}
			}
			if len(want) == 0 {
				continue
			}
			var got []int64
			if err := tx.Raw(`UPDATE contacts SET online = ?, last_seen_at = ? WHERE id IN ? RETURNING id`, online, now, want).
				Scan(&got).Error; err != nil {
				return err
			}
			found += len(got)
			ids = append(ids, got...)
			if online {
				comingOnline = append(comingOnline, got...)
			}
		}
		if len(ids) == 0 {
			return errNoop
		}
		if len(comingOnline) > 0 {
			if err := s.deliverQueued(tx, comingOnline, evs); err != nil {
				return err
			}
		}
		current, err := newestConversations(tx, ids)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if !contains(ids, c.ContactID) {
				continue
			}
			data, _ := json.Marshal(ContactPresence{ContactID: c.ContactID, Online: c.Online})
			*evs = append(*evs, Event{ConversationID: current[c.ContactID], Type: EventContactPresence, Data: data, At: now})
		}
		return nil
	})
	return found, err
}

func contains(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// newestConversations maps contacts to their newest chat conversation's
// id, the one their widget shows (CurrentConversation).
func newestConversations(tx *gorm.DB, contactIDs []int64) (map[int64]int64, error) {
	var rows []struct{ ContactID, ID int64 }
	if err := tx.Raw(`SELECT contact_id, MAX(id) AS id FROM conversations WHERE contact_id IN ? AND channel = ? GROUP BY contact_id`, contactIDs, ChannelChat).
		Scan(&rows).Error; err != nil {
		return nil, err
	}
	m := make(map[int64]int64, len(rows))
	for _, r := range rows {
		m[r.ContactID] = r.ID
	}
	return m, nil
}

// deliverQueued turns the queued chat replies to these contacts sent: they
// are online now, and their widget receives the messages.
func (s *Store) deliverQueued(tx *gorm.DB, contactIDs []int64, evs *[]Event) error {
	var rows []struct{ ID, ConversationID int64 }
	if err := tx.Raw(`SELECT m.id, m.conversation_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE c.contact_id IN ? AND m.state = ? AND m.channel = ? ORDER BY m.conversation_id, m.id`,
		contactIDs, StateQueued, ChannelChat).Scan(&rows).Error; err != nil {
		return err
	}
	for i := 0; i < len(rows); {
		conv := rows[i].ConversationID
		var ids []int64
		for ; i < len(rows) && rows[i].ConversationID == conv; i++ {
			ids = append(ids, rows[i].ID)
		}
		if err := s.changeState(tx, conv, ids, StateSent, evs); err != nil {
			return err
		}
	}
	return nil
}

// changeState moves messages to a state and adds the message_state event,
// in the caller's transaction.
func (s *Store) changeState(tx *gorm.DB, conversationID int64, ids []int64, state string, evs *[]Event) error {
	if _, err := s.addEvent(tx, conversationID, EventMessageState, MessageState{MessageIDs: ids, State: state}, evs); err != nil {
		return err
	}
	return tx.Model(&Message{}).Where("id IN ?", ids).Update("state", state).Error
}

// SetAgentPresence stores an agent's presence (online, idle, offline) if it
// changed, and then announces it with a transient EventPresence in every
// conversation the agent takes part in, for the visitors there, and once
// without a conversation (ConversationID 0), which only subscribers of
// every conversation (the agents' sockets) receive, for the dashboard's
// colleagues. It returns whether it changed.
func (s *Store) SetAgentPresence(ctx context.Context, agentID int64, presence string) (bool, error) {
	switch presence {
	case PresenceOnline, PresenceIdle, PresenceOffline:
	default:
		return false, invalid("presence", "must be online, idle or offline")
	}
	changed := false
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		res := tx.Model(&Agent{}).Where("id = ? AND presence <> ?", agentID, presence).Update("presence", presence)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errNoop
		}
		changed = true
		var agent Agent
		if err := tx.First(&agent, agentID).Error; err != nil {
			return err
		}
		var convs []int64
		if err := tx.Model(&Participant{}).Where("agent_id = ? AND left_at IS NULL", agentID).
			Order("conversation_id").Pluck("conversation_id", &convs).Error; err != nil {
			return err
		}
		data, _ := json.Marshal(AgentPresence{AgentID: agentID, Name: agent.Name, Presence: presence})
		now := s.now()
		for _, id := range append(convs, 0) {
			*evs = append(*evs, Event{ConversationID: id, Type: EventPresence, Data: data, At: now})
		}
		return nil
	})
	return changed, err
}

// PublishTyping announces that someone is typing in a conversation, or
// stopped. It is transient: nothing is stored, and its Seq is 0.
func (s *Store) PublishTyping(conversationID int64, t Typing) {
	data, _ := json.Marshal(t)
	s.pub.Publish([]Event{{ConversationID: conversationID, Type: EventTyping, Data: data, At: s.now()}})
}
