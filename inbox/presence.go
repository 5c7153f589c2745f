package inbox

import (
	"context"
	"encoding/json"
	"strings"

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

// SetContactsOnline stores this node's online transitions of several
// contacts (Store.NodeID: a row in contact_nodes while the node counts
// the contact online) in one transaction, and returns how many contacts
// exist of them. A contact is online while any node counts them
// (nodes.go); only a change of that, not of this node's row, updates
// contacts.online and last_seen_at and is announced by a transient
// EventContactPresence in the contact's newest conversation (conversation
// 0 when they have none). A contact who comes online gets their queued
// chat replies (rule 5): they turn sent, with a message_state event in
// each conversation. A reply being stored at the same time (AddReply)
// either is committed first, and delivered here, or sees the contact
// online. ErrNodeReaped if this node was found dead: nothing is stored,
// and the caller writes again everything it counts.
func (s *Store) SetContactsOnline(ctx context.Context, changes []ContactOnline) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	if err := s.ensureNode(ctx); err != nil {
		return 0, err
	}
	found := 0
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		found = 0
		if err := s.lockOwnNode(tx); err != nil {
			return err
		}
		ids := make([]int64, 0, len(changes))
		for _, c := range changes {
			ids = append(ids, c.ContactID)
		}
		// The contacts first, in ascending id order, as the appender
		// reads them FOR SHARE before it locks their conversations
		// (append.go): a reply being stored and this transition wait for
		// each other, never in a cycle. The aggregate below is decided
		// under these locks.
		q := `SELECT id FROM contacts WHERE id IN ? ORDER BY id`
		if s.dialect == dialectPostgres {
			q += ` FOR NO KEY UPDATE`
		}
		var existing []int64
		if err := tx.Raw(q, ids).Scan(&existing).Error; err != nil {
			return err
		}
		if len(existing) == 0 {
			return errNoop
		}
		found = len(existing)
		var on, off []int64
		for _, c := range changes {
			if !contains(existing, c.ContactID) {
				continue
			}
			if c.Online {
				on = append(on, c.ContactID)
			} else {
				off = append(off, c.ContactID)
			}
		}
		now := s.now()
		var comingOnline, goingOffline []int64
		if len(on) > 0 {
			rows := make([]string, len(on))
			args := make([]any, 0, 2*len(on))
			for i, id := range on {
				rows[i] = "(?, ?)"
				args = append(args, id, s.opts.NodeID)
			}
			if err := tx.Exec(`INSERT INTO contact_nodes (contact_id, node_id) VALUES `+strings.Join(rows, ", ")+
				` ON CONFLICT DO NOTHING`, args...).Error; err != nil {
				return err
			}
			if err := tx.Raw(`UPDATE contacts SET online = true, last_seen_at = ? WHERE id IN ? AND NOT online RETURNING id`, now, on).
				Scan(&comingOnline).Error; err != nil {
				return err
			}
		}
		if len(off) > 0 {
			if err := tx.Exec(`DELETE FROM contact_nodes WHERE node_id = ? AND contact_id IN ?`, s.opts.NodeID, off).Error; err != nil {
				return err
			}
			if err := tx.Raw(`UPDATE contacts SET online = false, last_seen_at = ? WHERE id IN ? AND online
				AND NOT EXISTS (SELECT 1 FROM contact_nodes o WHERE o.contact_id = contacts.id) RETURNING id`, now, off).
				Scan(&goingOffline).Error; err != nil {
				return err
			}
		}
		if len(comingOnline) > 0 {
			if err := s.deliverQueued(tx, comingOnline, evs); err != nil {
				return err
			}
		}
		if err := s.announceContacts(tx, comingOnline, true, now, evs); err != nil {
			return err
		}
		return s.announceContacts(tx, goingOffline, false, now, evs)
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

// SetAgentPresence stores what this node says of an agent (online, idle,
// or offline: a row in agent_nodes while online or idle) and then the
// agent's presence, the aggregate of every node's (online if any node
// says online, else idle if any says idle, else offline; nodes.go). When
// that changed it announces it with a transient EventPresence in every
// conversation the agent takes part in, for the visitors there, and once
// without a conversation (ConversationID 0), which only subscribers of
// every conversation (the agents' sockets) receive, for the dashboard's
// colleagues. It returns whether the aggregate changed. ErrNodeReaped if
// this node was found dead: nothing is stored, and the caller writes
// again everything it counts.
func (s *Store) SetAgentPresence(ctx context.Context, agentID int64, presence string) (bool, error) {
	switch presence {
	case PresenceOnline, PresenceIdle, PresenceOffline:
	default:
		return false, invalid("presence", "must be online, idle or offline")
	}
	if err := s.ensureNode(ctx); err != nil {
		return false, err
	}
	changed := false
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		changed = false
		if err := s.lockOwnNode(tx); err != nil {
			return err
		}
		q := `SELECT id FROM agents WHERE id = ?`
		if s.dialect == dialectPostgres {
			q += ` FOR NO KEY UPDATE`
		}
		var ids []int64
		if err := tx.Raw(q, agentID).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return errNoop
		}
		var err error
		if presence == PresenceOffline {
			err = tx.Exec(`DELETE FROM agent_nodes WHERE agent_id = ? AND node_id = ?`, agentID, s.opts.NodeID).Error
		} else {
			err = tx.Exec(`INSERT INTO agent_nodes (agent_id, node_id, presence) VALUES (?, ?, ?)
				ON CONFLICT (agent_id, node_id) DO UPDATE SET presence = excluded.presence`, agentID, s.opts.NodeID, presence).Error
		}
		if err != nil {
			return err
		}
		changed, err = s.settleAgent(tx, agentID, evs)
		return err
	})
	return changed, err
}

// PublishTyping announces that someone is typing in a conversation, or
// stopped. It is transient: nothing is stored, and its Seq is 0.
func (s *Store) PublishTyping(conversationID int64, t Typing) {
	data, _ := json.Marshal(t)
	s.pub.Publish([]Event{{ConversationID: conversationID, Type: EventTyping, Data: data, At: s.now()}})
}
