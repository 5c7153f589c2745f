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
//   - nodes holds one row per node: its id (Options.NodeID), when it
//     started, when it last said it is alive (seen_at, written every
//     NodeHeartbeat by Heartbeat: one UPDATE per node, whatever its
//     sockets) and, once it stopped, when (stopped_at; NULL while it
//     runs).
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
//   - A node's rows run out as its sockets' grace does (spec rule 6: a
//     contact stays online for the grace period, offline_after, after
//     their last socket closed). A node that stops (StopNode) keeps its
//     presence rows and sets stopped_at: each of its sockets counts as
//     closed at that moment, so that a visitor or agent who reconnects to
//     another node within the grace never shows offline and no event is
//     sent. A node whose seen_at is older than max(grace, NodeDeadAfter)
//     is dead (killed, or stalled: the bound leaves it room to beat
//     again). ReapNodes, which every node runs every NodeHeartbeat,
//     removes a stopped node once grace has passed since its stopped_at,
//     and a dead one at that bound: its nodes row and its presence rows
//     in one transaction, settling the aggregates of its contacts and
//     agents (exactly once: the DELETE of the nodes row decides who
//     reaps). grace is the reaping node's offline_after, which every node
//     of a cluster shares. A node stopping without a grace removes its
//     rows at once (LeaveNode).
//   - A node that starts with the id of a row still there (a restart with
//     a fixed node_id, after a stop or a kill -9) retires that row before
//     it adds its own: the row and its presence rows move to a retired
//     id, "<id>~" and 8 random hex digits, stopped at the predecessor's
//     stop or, if it was killed, at its last heartbeat. They then run out
//     by the rule above, reaped by any node, this one included, and never
//     mix with the new process's rows under the id.
//   - Only running nodes are live (NodeStatus.Live): a stopped node's row
//     stays for the grace, but the node does not count.
//   - When the last node of a cluster (or SQLite's one node) stops,
//     nobody is left to reap: its rows, and its contacts and agents
//     online, stay until a node starts, whose first heartbeat reaps them
//     by the same rule (at once if the grace has passed since the stop).
//
// Locks on PostgreSQL, in this order: the nodes row (a presence write
// holds its own node's FOR KEY SHARE, so that it never writes a row for a
// node being reaped or retired; the reaper deletes the expired node's row
// first, the retiring node renames its predecessor's first), then contacts
// in ascending id order, then conversations (queued replies delivered), or
// agents. Retiring locks no contact or agent: the presence rows change
// node id and no aggregate changes.
//
// Node clocks (Options.Now) must agree to within a few seconds: a node
// compares another's seen_at and stopped_at with its own clock.

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
// everything it counts (presence.Tracker does). A node that stopped
// (StopNode) gets it too: a write after the stop joins again, as a new
// process with the same id would, retiring the stopped rows.
var ErrNodeReaped = errors.New("inbox: this node was found dead and its presence removed")

// newNodeID returns hostname-XXXXXXXX, 8 random hex digits after the host
// name, so that two processes on one host differ.
func newNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + randomHex()
}

// randomHex returns 8 random hex digits.
func randomHex() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NodeID returns this node's id (Options.NodeID, or the one Open made).
func (s *Store) NodeID() string { return s.opts.NodeID }

// ensureNode adds this node's row, once, retiring first what an earlier
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
	retired := ""
	var running []time.Time // the earlier process's last heartbeat, if it had not stopped
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		running = nil
		if err := tx.Raw(`SELECT seen_at FROM nodes WHERE id = ? AND stopped_at IS NULL`, s.opts.NodeID).Scan(&running).Error; err != nil {
			return err
		}
		var err error
		if retired, err = s.retireNodeTx(tx, s.opts.NodeID); err != nil {
			return err
		}
		now := s.now()
		return tx.Exec(`INSERT INTO nodes (id, started_at, seen_at) VALUES (?, ?, ?)`, s.opts.NodeID, now, now).Error
	})
	if err != nil {
		return err
	}
	if retired != "" {
		s.log.Info("an earlier process with this node id left its presence rows: they run out after the grace, under a retired id",
			"node", s.opts.NodeID, "retired", retired)
	}
	// A row that beat within two heartbeats and never stopped: either a
	// process killed a moment ago, or one still running with the same
	// node_id, whose presence this one has just retired.
	if len(running) == 1 && s.now().Sub(running[0]) < 2*NodeHeartbeat {
		s.log.Warn("another process may be running with this node_id: it wrote its heartbeat moments ago and never stopped; if it was killed just now (a crash, kill -9), ignore this; else give each node its own node_id (docs/scaling.md)",
			"node", s.opts.NodeID, "heartbeat_ago", s.now().Sub(running[0]).Round(time.Millisecond))
	}
	s.nodeJoined.Store(true)
	return nil
}

// retireNodeTx moves node id's row, if there is one (an earlier process
// with this id stopped or was killed), and its presence rows to a
// retired id of their own, id~XXXXXXXX (8 random hex digits), stopped at
// its stop or, if it was killed, at its last heartbeat (seen_at); it
// returns that id, or "" when there was no row. The rows then run out as
// any stopped node's (ReapNodes), beside the new process's under id. The
// predecessor's outbox claims end, as a reaped node's do.
func (s *Store) retireNodeTx(tx *gorm.DB, id string) (string, error) {
	retired := id + "~" + randomHex()
	var moved []string
	if err := tx.Raw(`UPDATE nodes SET id = ?, stopped_at = COALESCE(stopped_at, seen_at) WHERE id = ? RETURNING id`, retired, id).
		Scan(&moved).Error; err != nil {
		return "", err
	}
	if len(moved) == 0 {
		return "", nil
	}
	// The nodes row, renamed above, is locked: a reaper of id waits for
	// it and then finds no row with id to delete.
	if err := movePresence(tx, id, retired, nil, nil); err != nil {
		return "", err
	}
	return retired, s.endClaims(tx, id)
}

// movePresence moves node from's presence rows to node to: those of the
// contacts and agents given, or every one when both are nil.
func movePresence(tx *gorm.DB, from, to string, contacts, agents []int64) error {
	all := contacts == nil && agents == nil
	for _, t := range []struct {
		table, column string
		ids           []int64
	}{{"contact_nodes", "contact_id", contacts}, {"agent_nodes", "agent_id", agents}} {
		q, args := `UPDATE `+t.table+` SET node_id = ? WHERE node_id = ?`, []any{to, from}
		switch {
		case all:
		case len(t.ids) == 0:
			continue
		default:
			q, args = q+` AND `+t.column+` IN ?`, append(args, t.ids)
		}
		if err := tx.Exec(q, args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// lockOwnNode holds this node's row against a reaper for the rest of the
// transaction (FOR KEY SHARE on PostgreSQL; SQLite has one writer). Its
// absence means the node was reaped (or it stopped): ErrNodeReaped.
func (s *Store) lockOwnNode(tx *gorm.DB) error {
	q := `SELECT id FROM nodes WHERE id = ? AND stopped_at IS NULL`
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
// had found it dead meanwhile, or it stopped; the next call adds it again.
func (s *Store) Heartbeat(ctx context.Context) error {
	if err := s.ensureNode(ctx); err != nil {
		return err
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE nodes SET seen_at = ? WHERE id = ? AND stopped_at IS NULL`, s.now(), s.opts.NodeID)
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
	// Live is how many running nodes (no stopped_at) wrote their row
	// within NodeDeadAfter, this one included.
	Live int
	// Reaped are the ids of the nodes this call found dead, or stopped
	// for longer than the grace, and removed.
	Reaped []string
}

// ReapNodes reads the nodes rows (one SELECT) and removes each other node
// whose presence has run out: a running node whose seen_at is older than
// max(grace, NodeDeadAfter) (dead: its visitors keep their grace to
// reconnect elsewhere, and a stalled node its room to beat again), a
// stopped one once grace has passed since its stopped_at (its sockets
// closed then; spec rule 6). grace is offline_after, 0 for none. The
// node's nodes row and presence rows go in one transaction per node, and
// its contacts and agents that no other node has go offline, with their
// events. Several nodes reaping at once remove each node once.
func (s *Store) ReapNodes(ctx context.Context, grace time.Duration) (NodeStatus, error) {
	grace = max(grace, 0)
	var rows []struct {
		ID        string
		SeenAt    time.Time
		StoppedAt *time.Time
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT id, seen_at, stopped_at FROM nodes`).Scan(&rows).Error; err != nil {
		return NodeStatus{}, dbErr(err)
	}
	now := s.now()
	due := &expiry{dead: now.Add(-max(grace, NodeDeadAfter)), stopped: now.Add(-grace)}
	st := NodeStatus{Live: 1}
	for _, r := range rows {
		if r.ID == s.opts.NodeID {
			continue
		}
		if r.StoppedAt == nil && !r.SeenAt.Before(now.Add(-NodeDeadAfter)) {
			st.Live++
		}
		if !due.reached(r.SeenAt, r.StoppedAt) {
			continue
		}
		reaped := false
		err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
			reaped = false
			if err := s.reapNodeTx(tx, r.ID, due, evs); err != nil {
				return err
			}
			reaped = true
			return nil
		})
		if err != nil {
			return st, err
		}
		if !reaped {
			continue
		}
		if r.StoppedAt != nil {
			s.log.Info("a stopped node's grace ended: its visitors and agents are offline unless another node has them",
				"node", r.ID, "stopped_at", *r.StoppedAt)
		} else {
			s.log.Warn("node found dead: its visitors and agents are offline unless another node has them",
				"node", r.ID, "seen_at", r.SeenAt)
		}
		st.Reaped = append(st.Reaped, r.ID)
	}
	return st, nil
}

// expiry is when nodes' presence runs out: a running node's once its
// seen_at is before dead, a stopped node's once its stopped_at is at or
// before stopped.
type expiry struct{ dead, stopped time.Time }

func (e *expiry) reached(seenAt time.Time, stoppedAt *time.Time) bool {
	if stoppedAt != nil {
		return !stoppedAt.After(e.stopped)
	}
	return seenAt.Before(e.dead)
}

// StopNode marks this node stopped (nodes.stopped_at, its clock's now)
// and ends its outbox claims; its presence rows stay. A node that stops
// calls it once it has stopped counting sockets and written its last
// transitions: each of its sockets counts as closed at the stop, so its
// contacts and agents stay online for the grace period (spec rule 6) and
// then a running node's ReapNodes, or when none is left the next node to
// start, removes its rows (offline, announced, unless another node has
// them meanwhile: a visitor who reconnected elsewhere never shows
// offline). A stopped node does not count as live. LeaveNode is the stop
// without a grace.
//
// left are the contacts and agents whose last socket here had closed
// before the stop, with when (their grace was running): their rows move
// to retired ids (this node's id, "~" and 8 hex digits) stopped at that
// moment (rounded up to the second), so that their grace runs out when
// it would have, not a whole grace after the stop.
func (s *Store) StopNode(ctx context.Context, left ...PresenceLeft) error {
	s.nodeMu.Lock()
	defer s.nodeMu.Unlock()
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		if err := tx.Exec(`UPDATE nodes SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL`, s.now(), s.opts.NodeID).Error; err != nil {
			return err
		}
		if err := s.retireLeftTx(tx, left); err != nil {
			return err
		}
		return s.endClaims(tx, s.opts.NodeID)
	})
	s.nodeJoined.Store(false)
	return err
}

// PresenceLeft is a contact (or an agent) whose last socket on this node
// closed at At, still online for its grace: see StopNode.
type PresenceLeft struct {
	Agent bool
	ID    int64
	At    time.Time
}

// retireLeftTx moves the presence rows of left to retired node rows, one
// per second of At, stopped then (StopNode).
func (s *Store) retireLeftTx(tx *gorm.DB, left []PresenceLeft) error {
	type group struct{ contacts, agents []int64 }
	groups := map[time.Time]*group{}
	for _, l := range left {
		at := l.At.UTC().Truncate(time.Second)
		if at.Before(l.At) {
			at = at.Add(time.Second) // never before their grace ends
		}
		g := groups[at]
		if g == nil {
			g = &group{}
			groups[at] = g
		}
		if l.Agent {
			g.agents = append(g.agents, l.ID)
		} else {
			g.contacts = append(g.contacts, l.ID)
		}
	}
	for at, g := range groups {
		retired := s.opts.NodeID + "~" + randomHex()
		if err := tx.Exec(`INSERT INTO nodes (id, started_at, seen_at, stopped_at) VALUES (?, ?, ?, ?)`, retired, at, at, at).Error; err != nil {
			return err
		}
		if err := movePresence(tx, s.opts.NodeID, retired, g.contacts, g.agents); err != nil {
			return err
		}
	}
	return nil
}

// LeaveNode removes this node's row and presence rows, settling its
// contacts and agents (offline unless another node has them): the stop
// of a node without a grace period (offline_after 0). With one, StopNode
// leaves them their grace.
func (s *Store) LeaveNode(ctx context.Context) error {
	s.nodeMu.Lock()
	defer s.nodeMu.Unlock()
	err := s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		return s.reapNodeTx(tx, s.opts.NodeID, nil, evs)
	})
	s.nodeJoined.Store(false)
	return err
}

// reapNodeTx deletes node id's row, if its presence has run out by due
// (nil: whatever its state; errNoop if there is none to delete with a
// due), and its presence rows, and settles the aggregates of its contacts
// and agents.
func (s *Store) reapNodeTx(tx *gorm.DB, id string, due *expiry, evs *[]Event) error {
	var gone []string
	q, args := `DELETE FROM nodes WHERE id = ? RETURNING id`, []any{id}
	if due != nil {
		q = `DELETE FROM nodes WHERE id = ? AND ((stopped_at IS NULL AND seen_at < ?) OR stopped_at <= ?) RETURNING id`
		args = []any{id, due.dead, due.stopped}
	}
	if err := tx.Raw(q, args...).Scan(&gone).Error; err != nil {
		return err
	}
	if len(gone) == 0 && due != nil {
		return errNoop // reaped by another node, retired, or alive again
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
	if err := s.endClaims(tx, id); err != nil {
		return err
	}
	for _, a := range agents {
		if _, err := s.settleAgent(tx, a, evs); err != nil {
			return err
		}
	}
	return nil
}

// endClaims ends node id's outbox claims: the mail a dead or stopped node
// was sending is sent again by a live node's Worker at its next claim
// rather than when the lease ends (ClaimOutbox; at most one duplicate, as
// with any lease that ends while its mail is on the wire).
func (s *Store) endClaims(tx *gorm.DB, id string) error {
	return tx.Exec(`UPDATE email_outbox SET lease_until = ? WHERE state = ? AND claimed_by = ?`,
		s.now().Add(-time.Second), outboxSending, id).Error
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
