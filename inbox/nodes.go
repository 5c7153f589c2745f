package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"time"

	"gorm.io/gorm"
)

// Nodes: several processes (nodes) may serve one database. Presence is
// the union of what they count (package presence counts the sockets of
// one node):
//
//   - nodes holds one row per running node: its id (Options.NodeID),
//     when it started and when it last said it is alive (seen_at, written
//     every NodeHeartbeat by Heartbeat: one UPDATE per node, whatever its
//     sockets).
//   - contact_nodes holds a row (contact_id, node_id) while the node
//     counts the contact online (a socket open or its grace running);
//     agent_nodes a row (agent_id, node_id, presence) while the node
//     counts the agent online or idle. A node writes its own rows only,
//     on its own transitions (SetContactsOnline, SetAgentPresence).
//   - contacts.online is true while any node has a row for the contact;
//     agents.presence is online if any node says online, else idle if any
//     says idle, else offline. Both change, with their transient events,
//     only when that aggregate changes, decided in the transaction that
//     changes a row, under the contact's or agent's row lock on
//     PostgreSQL.
//   - A node whose seen_at is older than the caller's bound is dead:
//     ReapNodes, which every node runs every NodeHeartbeat, deletes its
//     nodes row and its presence rows in one transaction and settles the
//     aggregates of its contacts and agents (exactly once: the DELETE of
//     the nodes row decides who reaps). A node that stops deletes its own
//     (LeaveNode); a node that starts reaps what an earlier process with
//     its id left (after kill -9), then inserts its row.
//
// Locks on PostgreSQL, in this order: the nodes row (a presence write
// holds its own node's FOR KEY SHARE, so that it never writes a row for a
// node being reaped; the reaper deletes the dead node's row first), then
// contacts in ascending id order, then conversations (queued replies
// delivered), or agents.
//
// Node clocks (Options.Now) must agree to within a few seconds: a node
// compares another's seen_at with its own clock.

// NodeHeartbeat is how often a node writes its liveness row and looks for
// dead nodes.
const NodeHeartbeat = 2 * time.Second

// NodeDeadAfter is how old a node's liveness row is when the node counts
// as dead: five missed heartbeats.
const NodeDeadAfter = 10 * time.Second

// ErrNodeReaped means another node found this one dead (no heartbeat for
// longer than the bound it reaps by) and removed its presence rows: its
// contacts and agents are offline unless another node has them. The next
// presence write or Heartbeat adds the node again; the caller writes again
// everything it counts (presence.Tracker does).
var ErrNodeReaped = errors.New("inbox: this node was found dead and its presence removed")

// newNodeID returns hostname-XXXXXXXX, 8 random hex digits after the host
// name, so that two processes on one host differ.
func newNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// NodeID returns this node's id (Options.NodeID, or the one Open made).
func (s *Store) NodeID() string { return s.opts.NodeID }

// ensureNode adds this node's row, once, reaping first what an earlier
// process with the same id left behind.
func (s *Store) ensureNode(ctx context.Context) error {
	if s.nodeJoined.Load() {
		return nil
	}
	s.nodeMu.Lock()
	defer s.nodeMu.Unlock()
	if s.nodeJoined.Load() {
		return nil
	}
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		if err := s.reapNodeTx(tx, s.opts.NodeID, time.Time{}, evs); err != nil && !errors.Is(err, errNoop) {
			return err
		}
		now := s.now()
		return tx.Exec(`INSERT INTO nodes (id, started_at, seen_at) VALUES (?, ?, ?)`, s.opts.NodeID, now, now).Error
	})
	if err != nil {
		return err
	}
	s.nodeJoined.Store(true)
	return nil
}

// lockOwnNode holds this node's row against a reaper for the rest of the
// transaction (FOR KEY SHARE on PostgreSQL; SQLite has one writer). Its
// absence means the node was reaped: ErrNodeReaped.
func (s *Store) lockOwnNode(tx *gorm.DB) error {
	q := `SELECT id FROM nodes WHERE id = ?`
	if s.dialect == dialectPostgres {
		q += ` FOR KEY SHARE`
	}
	var ids []string
	if err := tx.Raw(q, s.opts.NodeID).Scan(&ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		s.nodeJoined.Store(false)
		return ErrNodeReaped
	}
	return nil
}

// Heartbeat records that this node is alive: one UPDATE of its nodes row
// (adding it first if it is not there yet). ErrNodeReaped if another node
// had found it dead meanwhile; the next call adds it again.
func (s *Store) Heartbeat(ctx context.Context) error {
	if err := s.ensureNode(ctx); err != nil {
		return err
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE nodes SET seen_at = ? WHERE id = ?`, s.now(), s.opts.NodeID)
	if res.Error != nil {
		return dbErr(res.Error)
	}
	if res.RowsAffected == 0 {
		s.nodeJoined.Store(false)
		return ErrNodeReaped
	}
	return nil
}

// NodeStatus is what ReapNodes saw.
type NodeStatus struct {
	// Live is how many nodes wrote their row within NodeDeadAfter, this
	// one included.
	Live int
	// Reaped are the ids of the nodes this call found dead and removed.
	Reaped []string
}

// ReapNodes reads the nodes rows (one SELECT) and removes each other node
// whose seen_at is older than deadAfter (at least NodeDeadAfter; a
// presence tracker passes max(grace, NodeDeadAfter), so that a dead node's
// visitors keep their grace to reconnect elsewhere): its nodes row and its
// presence rows go in one transaction per node, and its contacts and
// agents that no other node has go offline, with their events. Several
// nodes reaping at once remove each dead node once.
func (s *Store) ReapNodes(ctx context.Context, deadAfter time.Duration) (NodeStatus, error) {
	deadAfter = max(deadAfter, NodeDeadAfter)
	var rows []struct {
		ID     string
		SeenAt time.Time
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT id, seen_at FROM nodes`).Scan(&rows).Error; err != nil {
		return NodeStatus{}, dbErr(err)
	}
	now := s.now()
	st := NodeStatus{Live: 1}
	for _, r := range rows {
		if r.ID == s.opts.NodeID {
			continue
		}
		if !r.SeenAt.Before(now.Add(-NodeDeadAfter)) {
			st.Live++
		}
		if cutoff := now.Add(-deadAfter); r.SeenAt.Before(cutoff) {
			reaped := false
			err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
				reaped = false
				if err := s.reapNodeTx(tx, r.ID, cutoff, evs); err != nil {
					return err
				}
				reaped = true
				return nil
			})
			if err != nil {
				return st, err
			}
			if reaped {
				s.log.Warn("node found dead: its visitors and agents are offline unless another node has them",
					"node", r.ID, "seen_at", r.SeenAt)
				st.Reaped = append(st.Reaped, r.ID)
			}
		}
	}
	return st, nil
}

// LeaveNode removes this node's row and presence rows, settling its
// contacts and agents (offline unless another node has them): a node
// that stops calls it once it has stopped counting sockets.
func (s *Store) LeaveNode(ctx context.Context) error {
	s.nodeMu.Lock()
	defer s.nodeMu.Unlock()
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		return s.reapNodeTx(tx, s.opts.NodeID, time.Time{}, evs)
	})
	s.nodeJoined.Store(false)
	return err
}

// reapNodeTx deletes node id's row, if its seen_at is before cutoff (zero:
// whatever it is; errNoop if there is none to delete with a cutoff), and
// its presence rows, and settles the aggregates of its contacts and
// agents.
func (s *Store) reapNodeTx(tx *gorm.DB, id string, cutoff time.Time, evs *[]Event) error {
	var gone []string
	q, args := `DELETE FROM nodes WHERE id = ? RETURNING id`, []any{id}
	if !cutoff.IsZero() {
		q, args = `DELETE FROM nodes WHERE id = ? AND seen_at < ? RETURNING id`, []any{id, cutoff}
	}
	if err := tx.Raw(q, args...).Scan(&gone).Error; err != nil {
		return err
	}
	if len(gone) == 0 && !cutoff.IsZero() {
		return errNoop // reaped by another node, or alive again
	}
	// Its rows cannot change meanwhile: the node's own writes wait for
	// its nodes row, deleted (locked) above.
	if s.dialect == dialectPostgres {
		if err := tx.Exec(`SELECT id FROM contacts WHERE id IN (SELECT contact_id FROM contact_nodes WHERE node_id = ?) ORDER BY id FOR NO KEY UPDATE`, id).Error; err != nil {
			return err
		}
	}
	now := s.now()
	var offline []int64
	if err := tx.Raw(`UPDATE contacts SET online = false, last_seen_at = ?
		WHERE online AND id IN (SELECT contact_id FROM contact_nodes WHERE node_id = ?)
			AND NOT EXISTS (SELECT 1 FROM contact_nodes o WHERE o.contact_id = contacts.id AND o.node_id <> ?)
		RETURNING id`, now, id, id).Scan(&offline).Error; err != nil {
		return err
	}
	if err := tx.Exec(`DELETE FROM contact_nodes WHERE node_id = ?`, id).Error; err != nil {
		return err
	}
	if err := s.announceContacts(tx, offline, false, now, evs); err != nil {
		return err
	}
	var agents []int64
	lock := ""
	if s.dialect == dialectPostgres {
		lock = ` FOR NO KEY UPDATE`
	}
	if err := tx.Raw(`SELECT id FROM agents WHERE id IN (SELECT agent_id FROM agent_nodes WHERE node_id = ?) ORDER BY id`+lock, id).
		Scan(&agents).Error; err != nil {
		return err
	}
	if err := tx.Exec(`DELETE FROM agent_nodes WHERE node_id = ?`, id).Error; err != nil {
		return err
	}
	// The mail the dead node was sending: its claims end now, so that a
	// live node's Worker sends it again at its next claim rather than
	// when the lease ends (ClaimOutbox; at most one duplicate, as with
	// any lease that ends while its mail is on the wire).
	if err := tx.Exec(`UPDATE email_outbox SET lease_until = ? WHERE state = ? AND claimed_by = ?`,
		now.Add(-time.Second), outboxSending, id).Error; err != nil {
		return err
	}
	for _, a := range agents {
		if _, err := s.settleAgent(tx, a, evs); err != nil {
			return err
		}
	}
	return nil
}

// announceContacts adds the transient EventContactPresence of each
// contact, in their newest chat conversation (0 when they have none).
func (s *Store) announceContacts(tx *gorm.DB, ids []int64, online bool, now time.Time, evs *[]Event) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 1000)]
		ids = ids[len(chunk):]
		current, err := newestConversations(tx, chunk)
		if err != nil {
			return err
		}
		for _, id := range chunk {
			data, _ := json.Marshal(ContactPresence{ContactID: id, Online: online})
			*evs = append(*evs, Event{ConversationID: current[id], Type: EventContactPresence, Data: data, At: now})
		}
	}
	return nil
}

// settleAgent sets the agent's presence to the aggregate of the nodes'
// rows (online if any says online, else idle if any says idle, else
// offline) and announces it if it changed.
func (s *Store) settleAgent(tx *gorm.DB, agentID int64, evs *[]Event) (bool, error) {
	var says []string
	if err := tx.Raw(`SELECT presence FROM agent_nodes WHERE agent_id = ?`, agentID).Scan(&says).Error; err != nil {
		return false, err
	}
	presence := PresenceOffline
	for _, p := range says {
		if p == PresenceOnline {
			presence = PresenceOnline
			break
		}
		if p == PresenceIdle {
			presence = PresenceIdle
		}
	}
	res := tx.Model(&Agent{}).Where("id = ? AND presence <> ?", agentID, presence).Update("presence", presence)
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	var agent Agent
	if err := tx.First(&agent, agentID).Error; err != nil {
		return false, err
	}
	var convs []int64
	if err := tx.Model(&Participant{}).Where("agent_id = ? AND left_at IS NULL", agentID).
		Order("conversation_id").Pluck("conversation_id", &convs).Error; err != nil {
		return false, err
	}
	data, _ := json.Marshal(AgentPresence{AgentID: agentID, Name: agent.Name, Presence: presence})
	now := s.now()
	for _, id := range append(convs, 0) {
		*evs = append(*evs, Event{ConversationID: id, Type: EventPresence, Data: data, At: now})
	}
	return true, nil
}
