package inbox

import (
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Schema migrations, numbered and explicit. Each one declares the tables as
// they were at that step (the structs below are snapshots, never the live
// model types), so that an old database is upgraded the same way on every
// node and every dialect. Append new migrations; never edit a released one.
var migrations = []*gormigrate.Migration{
	{ID: "0001_core", Migrate: migrate0001},
	{ID: "0002_accounts", Migrate: migrate0002},
	{ID: "0003_visitors", Migrate: migrate0003},
	{ID: "0004_agent_removal", Migrate: migrate0004AgentRemoval},
	{ID: "0005_integrity", Migrate: migrate0005Integrity},
	{ID: "0006_outbox", Migrate: migrate0006Outbox},
	{ID: "0007_email", Migrate: migrate0007Email},
	{ID: "0008_outbox", Migrate: migrate0008Outbox},
	{ID: "0009_recipients", Migrate: migrate0009Recipients},
	{ID: "0011_search", Migrate: migrate0011Search},
	{ID: "0012_dashboard", Migrate: migrate0012Dashboard},
	{ID: "0013_nodes", Migrate: migrate0013Nodes},
	{ID: "0014_leases", Migrate: migrate0014Leases},
	{ID: "0015_events_bus", Migrate: migrate0015EventsBus},
	{ID: "0016_outbox_node", Migrate: migrate0016OutboxNode},
	{ID: "0017_nodes_stopped", Migrate: migrate0017NodesStopped},
	{ID: "0018_api_tokens", Migrate: migrate0018APITokens},
	{ID: "0019_webhooks", Migrate: migrate0019Webhooks},
}

// Migrate brings the schema up to date. It is safe to run on every start and
// from several nodes: on PostgreSQL an advisory lock serializes them.
func (s *Store) Migrate() error { return s.migrateTo("") }

// migrateTo migrates up to and including the migration with the given ID
// ("" for all); tests use it to build an old schema.
func (s *Store) migrateTo(id string) error {
	return s.withMigrationLock(func(db *gorm.DB) error {
		m := gormigrate.New(db, &gormigrate.Options{
			TableName:      "schema_migrations",
			IDColumnName:   "id",
			IDColumnSize:   255,
			UseTransaction: true,
		}, migrations)
		if id == "" {
			return m.Migrate()
		}
		return m.MigrateTo(id)
	})
}

func (s *Store) withMigrationLock(fn func(*gorm.DB) error) error {
	if s.dialect != dialectPostgres {
		return fn(s.db)
	}
	// A session-level advisory lock needs one connection for lock, work and
	// unlock.
	return s.db.Connection(func(db *gorm.DB) error {
		const key = 0x6d6963726f636861 // "microcha"
		if err := db.Exec("SELECT pg_advisory_lock(?)", key).Error; err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer db.Exec("SELECT pg_advisory_unlock(?)", key)
		return fn(db)
	})
}

func createTables(tx *gorm.DB, tables ...any) error {
	for _, t := range tables {
		if err := tx.Migrator().CreateTable(t); err != nil {
			return err
		}
	}
	return nil
}

func execAll(tx *gorm.DB, stmts ...string) error {
	for _, q := range stmts {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Snapshot of the schema at 0001.
type (
	contact0001 struct {
		ID         int64  `gorm:"primaryKey"`
		Name       string `gorm:"not null;default:''"`
		Email      string `gorm:"not null;default:'';index"`
		Phone      string `gorm:"not null;default:''"`
		Online     bool   `gorm:"not null;default:false"`
		LastSeenAt *time.Time
		CreatedAt  time.Time `gorm:"not null"`
	}
	conversation0001 struct {
		ID             int64  `gorm:"primaryKey"`
		ContactID      int64  `gorm:"not null;index"`
		Channel        string `gorm:"not null"`
		Status         string `gorm:"not null"`
		Subject        string `gorm:"not null;default:''"`
		Seq            int64  `gorm:"not null;default:0"`
		Token          string `gorm:"not null;uniqueIndex"`
		HasEmail       bool   `gorm:"not null;default:false"`
		LastActivityAt time.Time
		CreatedAt      time.Time `gorm:"not null"`
		ClosedAt       *time.Time
	}
	message0001 struct {
		ID             int64 `gorm:"primaryKey"`
		ConversationID int64 `gorm:"not null"`
		Seq            int64 `gorm:"not null"`
		ClientID       *string
		Author         string `gorm:"not null"`
		AgentID        *int64
		Channel        string    `gorm:"not null"`
		Text           string    `gorm:"not null;default:''"`
		HTML           string    `gorm:"column:html;not null;default:''"`
		State          string    `gorm:"not null"`
		CreatedAt      time.Time `gorm:"not null"`
	}
	attachment0001 struct {
		ID             int64 `gorm:"primaryKey"`
		ConversationID int64 `gorm:"not null;index"`
		MessageID      *int64
		Name           string    `gorm:"not null"`
		ContentType    string    `gorm:"not null"`
		Size           int64     `gorm:"not null"`
		Data           []byte    `gorm:"not null"`
		CreatedAt      time.Time `gorm:"not null"`
	}
	agent0001 struct {
		ID           int64     `gorm:"primaryKey"`
		Email        string    `gorm:"not null;uniqueIndex"`
		Name         string    `gorm:"not null"`
		Role         string    `gorm:"not null"`
		PasswordHash string    `gorm:"not null"`
		CreatedAt    time.Time `gorm:"not null"`
	}
	participant0001 struct {
		ID             int64     `gorm:"primaryKey"`
		ConversationID int64     `gorm:"not null"`
		AgentID        int64     `gorm:"not null;index"`
		Responsible    bool      `gorm:"not null;default:false"`
		JoinedAt       time.Time `gorm:"not null"`
		LeftAt         *time.Time
	}
	event0001 struct {
		ID             int64  `gorm:"primaryKey"`
		ConversationID int64  `gorm:"not null"`
		Seq            int64  `gorm:"not null"`
		Type           string `gorm:"not null"`
		MessageID      *int64
		Data           []byte
		CreatedAt      time.Time `gorm:"not null;index"`
	}
)

func (contact0001) TableName() string      { return "contacts" }
func (conversation0001) TableName() string { return "conversations" }
func (message0001) TableName() string      { return "messages" }
func (attachment0001) TableName() string   { return "attachments" }
func (agent0001) TableName() string        { return "agents" }
func (participant0001) TableName() string  { return "participants" }
func (event0001) TableName() string        { return "events" }

func migrate0001(tx *gorm.DB) error {
	if err := createTables(tx, &contact0001{}, &conversation0001{}, &message0001{},
		&attachment0001{}, &agent0001{}, &participant0001{}, &event0001{}); err != nil {
		return err
	}
	return execAll(tx,
		`CREATE INDEX conversations_list ON conversations (status, last_activity_at, id)`,
		`CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq)`,
		`CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id)`,
		`CREATE INDEX attachments_message ON attachments (message_id)`,
		`CREATE UNIQUE INDEX participants_active ON participants (conversation_id, agent_id) WHERE left_at IS NULL`,
		`CREATE INDEX participants_conversation ON participants (conversation_id)`,
		`CREATE UNIQUE INDEX events_seq ON events (conversation_id, seq)`,
	)
}

// Snapshot of the tables added at 0002.
type (
	session0002 struct {
		ID         string    `gorm:"primaryKey"`
		AgentID    int64     `gorm:"not null;index"`
		CSRFToken  string    `gorm:"column:csrf_token;not null"`
		CreatedAt  time.Time `gorm:"not null"`
		ExpiresAt  time.Time `gorm:"not null;index"`
		LastUsedAt time.Time `gorm:"not null"`
	}
	setupToken0002 struct {
		ID        string    `gorm:"primaryKey"`
		ExpiresAt time.Time `gorm:"not null"`
		CreatedAt time.Time `gorm:"not null"`
	}
	agentRead0002 struct {
		AgentID        int64 `gorm:"primaryKey;autoIncrement:false"`
		ConversationID int64 `gorm:"primaryKey;autoIncrement:false;index"`
		Seq            int64 `gorm:"not null"`
	}
	rating0002 struct {
		ID             int64     `gorm:"primaryKey"`
		ConversationID int64     `gorm:"not null;index"`
		ContactID      int64     `gorm:"not null;index"`
		Score          int       `gorm:"not null"`
		Comment        string    `gorm:"not null;default:''"`
		CreatedAt      time.Time `gorm:"not null"`
	}
	ratingAgent0002 struct {
		RatingID int64 `gorm:"primaryKey;autoIncrement:false"`
		AgentID  int64 `gorm:"primaryKey;autoIncrement:false;index"`
	}
)

func (session0002) TableName() string     { return "sessions" }
func (setupToken0002) TableName() string  { return "setup_tokens" }
func (agentRead0002) TableName() string   { return "agent_reads" }
func (rating0002) TableName() string      { return "ratings" }
func (ratingAgent0002) TableName() string { return "rating_agents" }

func migrate0002(tx *gorm.DB) error {
	return createTables(tx, &session0002{}, &setupToken0002{}, &agentRead0002{},
		&rating0002{}, &ratingAgent0002{})
}

// Snapshot of the tables added at 0003; contacts gain the visitor's facts
// and agents their presence.
type (
	visitorSession0003 struct {
		ID         string    `gorm:"primaryKey"`
		ContactID  int64     `gorm:"not null;index"`
		CreatedAt  time.Time `gorm:"not null"`
		ExpiresAt  time.Time `gorm:"not null;index"`
		LastUsedAt time.Time `gorm:"not null"`
	}
	pageView0003 struct {
		ID        int64     `gorm:"primaryKey"`
		ContactID int64     `gorm:"not null"`
		URL       string    `gorm:"column:url;not null"`
		Title     string    `gorm:"not null;default:''"`
		Referrer  string    `gorm:"not null;default:''"`
		ViewedAt  time.Time `gorm:"not null"`
	}
)

func (visitorSession0003) TableName() string { return "visitor_sessions" }
func (pageView0003) TableName() string       { return "page_views" }

func migrate0003(tx *gorm.DB) error {
	if err := createTables(tx, &visitorSession0003{}, &pageView0003{}); err != nil {
		return err
	}
	return execAll(tx,
		`CREATE INDEX page_views_contact ON page_views (contact_id, id)`,
		`ALTER TABLE contacts ADD COLUMN browser TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE contacts ADD COLUMN browser_version TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE contacts ADD COLUMN os TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE contacts ADD COLUMN ip TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE contacts ADD COLUMN country TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE agents ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline'`,
	)
}

// 0004: agents can be removed (deactivated, the row kept for their name).
type agent0004 struct {
	DeactivatedAt *time.Time
}

func (agent0004) TableName() string { return "agents" }

func migrate0004AgentRemoval(tx *gorm.DB) error {
	return tx.Migrator().AddColumn(&agent0004{}, "DeactivatedAt")
}

// 0005: a client id is unique per author, not per conversation (one
// author cannot pre-empt another's message; the author of a contact
// message is the conversation's contact), and an attachment records who
// uploaded it. Attachments already sent take their message's author;
// unsent ones of before 0005 have none and can no longer be attached.
func migrate0005Integrity(tx *gorm.DB) error {
	return execAll(tx,
		`DROP INDEX messages_client_id`,
		`CREATE UNIQUE INDEX messages_client_id_author ON messages (conversation_id, client_id, author, COALESCE(agent_id, 0))`,
		`ALTER TABLE attachments ADD COLUMN uploader TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE attachments ADD COLUMN uploader_agent_id BIGINT`,
		`UPDATE attachments SET
			uploader = COALESCE((SELECT author FROM messages WHERE messages.id = attachments.message_id), ''),
			uploader_agent_id = (SELECT agent_id FROM messages WHERE messages.id = attachments.message_id)
		WHERE message_id IS NOT NULL`,
	)
}

// 0006: the email channel's tables. The email outbox: a reply by email,
// a continuity digest or a survey is recorded here in the transaction that causes it, and a worker
// sends it (at least once: a crash after the SMTP DATA and before the
// outcome is recorded sends it again when the lease expires). State is
// pending, sending (leased until lease_until), sent or failed.
type outbox0006 struct {
	ID             int64     `gorm:"primaryKey"`
	Kind           string    `gorm:"not null"`
	ConversationID int64     `gorm:"not null;index"`
	MessageID      *int64    //
	State          string    `gorm:"not null"`
	Attempts       int       `gorm:"not null;default:0"`
	NextAttemptAt  time.Time `gorm:"not null"`
	LeaseUntil     *time.Time
	LastError      string    `gorm:"not null;default:''"`
	CreatedAt      time.Time `gorm:"not null"`
	SentAt         *time.Time
}

func (outbox0006) TableName() string { return "email_outbox" }

// serverSecret0006 holds the server's own secrets, shared by every node:
// the HMAC key of the tokens in email addresses, subjects and rating links.
type serverSecret0006 struct {
	Name      string    `gorm:"primaryKey"`
	Value     []byte    `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (serverSecret0006) TableName() string { return "server_secrets" }

// emailID0006 is every Message-ID Microchat received or sent (direction
// "in" or "out"; key is the Message-ID without brackets, or "sha256:" and
// the raw message's hash for mail without one). It is the threading index
// (rule 9) and the record that a mail was imported: it survives deleting
// the conversation (conversation_id and message_id set to NULL), so that
// deleted mail stays deleted.
type emailID0006 struct {
	Key            string    `gorm:"primaryKey"`
	ConversationID *int64    `gorm:"index"`
	MessageID      *int64    //
	Direction      string    `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null"`
}

func (emailID0006) TableName() string { return "email_ids" }

// emailMessage0006 is the envelope of an email message (rule 8): its
// headers, full body and raw source, beside the messages row.
type emailMessage0006 struct {
	MessageID  int64     `gorm:"primaryKey;autoIncrement:false"`
	Mailbox    string    `gorm:"not null;default:''"`
	HeaderID   string    `gorm:"column:header_id;not null;default:''"` // Message-ID
	InReplyTo  string    `gorm:"not null;default:''"`
	Refs       string    `gorm:"column:refs;not null;default:''"` // References, space-separated
	Subject    string    `gorm:"not null;default:''"`
	FromAddr   string    `gorm:"not null;default:''"` // JSON Address
	ToAddrs    string    `gorm:"not null;default:''"` // JSON []Address
	CcAddrs    string    `gorm:"not null;default:''"` // JSON []Address
	FullText   string    `gorm:"not null;default:''"` //
	FullHTML   string    `gorm:"column:full_html;not null;default:''"`
	Trimmed    bool      `gorm:"not null;default:false"` // text differs from full_text
	Auto       bool      `gorm:"not null;default:false"` // automatic mail (rule 8 of issue 12)
	AutoReason string    `gorm:"not null;default:''"`    //
	Notices    string    `gorm:"not null;default:''"`    // JSON []string
	Raw        []byte    //
	CreatedAt  time.Time `gorm:"not null"`
}

func (emailMessage0006) TableName() string { return "email_messages" }

func migrate0006Outbox(tx *gorm.DB) error {
	if err := createTables(tx, &outbox0006{}, &serverSecret0006{}, &emailID0006{}, &emailMessage0006{}); err != nil {
		return err
	}
	return execAll(tx,
		`CREATE INDEX email_outbox_due ON email_outbox (state, next_attempt_at)`,
		`CREATE INDEX email_outbox_message ON email_outbox (message_id)`,
		`ALTER TABLE messages ADD COLUMN error TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE email_outbox_messages (outbox_id BIGINT NOT NULL, message_id BIGINT NOT NULL, PRIMARY KEY (outbox_id, message_id))`,
		`CREATE INDEX email_outbox_messages_message ON email_outbox_messages (message_id)`,
		`CREATE TABLE imap_checkpoints (mailbox TEXT NOT NULL, folder TEXT NOT NULL, uid_validity BIGINT NOT NULL, last_uid BIGINT NOT NULL, updated_at `+tsType(tx)+` NOT NULL, PRIMARY KEY (mailbox, folder))`,
		`ALTER TABLE contacts ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false`,
		`CREATE TABLE email_quarantine (id `+autoID(tx)+`, mailbox TEXT NOT NULL, folder TEXT NOT NULL,
			uid_validity BIGINT NOT NULL, uid BIGINT NOT NULL, reason TEXT NOT NULL, size BIGINT NOT NULL,
			raw `+blobType(tx)+` NOT NULL, created_at `+tsType(tx)+` NOT NULL)`,
	)
}

// 0007: a mail quarantined twice (fetched again after a crash between
// storing and checkpointing, or by a second fetcher) is one row: unique
// by its place in the mailbox, when it has one (a UID is never 0, RFC
// 9051 section 2.3.1.1).
func migrate0007Email(tx *gorm.DB) error {
	return execAll(tx,
		`CREATE UNIQUE INDEX email_quarantine_uid ON email_quarantine (mailbox, folder, uid_validity, uid) WHERE uid > 0`,
	)
}

// 0008: what the outbox keeps of each mail once built, and what
// continuity reads every second.
//
//   - email_outbox.header_id and .mailbox: our Message-ID and the mailbox
//     it goes from, fixed when the row is first claimed, so that every
//     attempt sends the same Message-ID (a duplicate after a crash is
//     recognisable) from the same mailbox.
//   - email_outbox.rated_at: when a survey's rating link was used; its
//     links are single-use (RateByToken).
//   - messages_continuity: the agent chat messages not yet read (queued,
//     sent or delivered), by time, which EnqueueDigests scans every second
//     (rule 7). Reading a message takes it out of the index.
func migrate0008Outbox(tx *gorm.DB) error {
	return execAll(tx,
		`ALTER TABLE email_outbox ADD COLUMN header_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_outbox ADD COLUMN mailbox TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_outbox ADD COLUMN rated_at `+tsType(tx),
		`CREATE INDEX messages_continuity ON messages (created_at) WHERE author = 'agent' AND channel = 'chat' AND state IN ('queued', 'sent', 'delivered')`,
	)
}

// 0009: where mail goes and whether it got there.
//
//   - email_messages.reply_to: the Reply-To of an incoming mail (JSON
//     Address, empty when it had none), where our answers go (RFC 5322
//     section 3.6.2).
//   - email_outbox.to_addr and .to_name: the address a mail was last
//     tried to, fixed at each claim (recipient).
//   - email_outbox.bounced_at: when the recipient's side refused the mail
//     (a 5xx answer) or reported it undeliverable (a bounce, RFC 3464):
//     no automatic mail goes to that address again until the contact
//     writes.
func migrate0009Recipients(tx *gorm.DB) error {
	return execAll(tx,
		`ALTER TABLE email_messages ADD COLUMN reply_to TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_outbox ADD COLUMN to_addr TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_outbox ADD COLUMN to_name TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_outbox ADD COLUMN bounced_at `+tsType(tx),
	)
}

// 0012: what the agents' dashboard keeps (issue 13).
//
//   - agents.notifications and .sound: the agent's own settings
//     (AgentSettings), "all" and true for everyone until they change them.
//   - saved_replies: the team's saved replies, by a unique shortcut.
//   - participants.first_reply_at: when the agent first replied within
//     a participation that ended (the first response of the operator
//     report, reports.go), NULL if they did not; filled here for the
//     participations that ended before.
//   - participants_joined, ratings_created and messages_agent_replies: the
//     indexes the operator report reads: joins and ratings of a period by
//     time, and each agent's replies in a conversation by time, without
//     private notes (channel "note"), which never answer anyone. Its
//     condition names agent_id, which every agent message has, so that
//     only queries by agent can use it: the digest scan keeps its own
//     index (messages_continuity).
type savedReply0012 struct {
	ID        int64     `gorm:"primaryKey"`
	Shortcut  string    `gorm:"not null;uniqueIndex:saved_replies_shortcut"`
	Title     string    `gorm:"not null"`
	Text      string    `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

func (savedReply0012) TableName() string { return "saved_replies" }

func migrate0012Dashboard(tx *gorm.DB) error {
	if err := createTables(tx, &savedReply0012{}); err != nil {
		return err
	}
	return execAll(tx,
		`ALTER TABLE agents ADD COLUMN notifications TEXT NOT NULL DEFAULT 'all'`,
		`ALTER TABLE agents ADD COLUMN sound BOOLEAN NOT NULL DEFAULT true`,
		`ALTER TABLE participants ADD COLUMN first_reply_at `+tsType(tx),
		`CREATE INDEX participants_joined ON participants (joined_at, agent_id, conversation_id, left_at, first_reply_at)`,
		`CREATE INDEX ratings_created ON ratings (created_at)`,
		`CREATE INDEX messages_agent_replies ON messages (conversation_id, agent_id, created_at) WHERE author = 'agent' AND agent_id IS NOT NULL AND channel <> 'note'`,
		`UPDATE participants SET first_reply_at = (SELECT MIN(m.created_at) FROM messages m
			WHERE m.conversation_id = participants.conversation_id AND m.agent_id = participants.agent_id
				AND m.author = 'agent' AND m.agent_id IS NOT NULL AND m.channel <> 'note'
				AND m.created_at >= participants.joined_at AND m.created_at <= participants.left_at)
		WHERE left_at IS NOT NULL`,
	)
}

// migrate0015EventsBus indexes events by created_at on PostgreSQL: a node
// that lost its listening connection reads the events created since
// shortly before (PGBus), and the retention prune finds the old ones. On
// SQLite (one node) nothing: the index would cost every append.
func migrate0015EventsBus(tx *gorm.DB) error {
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	return execAll(tx, `CREATE INDEX events_created ON events (created_at)`)
}

// 0014: what several nodes on one database share (issue 14, the leases
// part): login_attempts, each key's login attempt budget (attempts.go).
// The worker locks need no table: they are advisory locks.
func migrate0014Leases(tx *gorm.DB) error {
	return execAll(tx, `CREATE TABLE login_attempts (name TEXT NOT NULL PRIMARY KEY, tat BIGINT NOT NULL)`)
}

// autoID is an auto-incrementing primary key column in tx's dialect.
func autoID(tx *gorm.DB) string {
	if tx.Dialector.Name() == "postgres" {
		return "BIGSERIAL PRIMARY KEY"
	}
	return "INTEGER PRIMARY KEY AUTOINCREMENT"
}

// blobType is a byte string column type in tx's dialect.
func blobType(tx *gorm.DB) string {
	if tx.Dialector.Name() == "postgres" {
		return "BYTEA"
	}
	return "BLOB"
}

// tsType is the column type gorm gives a time.Time in tx's dialect.
func tsType(tx *gorm.DB) string {
	if tx.Dialector.Name() == "postgres" {
		return "TIMESTAMPTZ"
	}
	return "DATETIME"
}

// migrate0013Nodes adds the nodes' liveness rows and each node's presence
// rows (nodes.go). Presence stored before is nobody's: no node counts it,
// so everyone starts offline, as after a restart of one node.
func migrate0013Nodes(tx *gorm.DB) error {
	ts := tsType(tx)
	return execAll(tx,
		`CREATE TABLE nodes (id TEXT PRIMARY KEY, started_at `+ts+` NOT NULL, seen_at `+ts+` NOT NULL)`,
		`CREATE TABLE contact_nodes (
			contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
			node_id TEXT NOT NULL,
			PRIMARY KEY (contact_id, node_id))`,
		`CREATE INDEX contact_nodes_node ON contact_nodes (node_id)`,
		`CREATE TABLE agent_nodes (
			agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
			node_id TEXT NOT NULL,
			presence TEXT NOT NULL,
			PRIMARY KEY (agent_id, node_id))`,
		`CREATE INDEX agent_nodes_node ON agent_nodes (node_id)`,
		`UPDATE contacts SET online = false WHERE online`,
		`UPDATE agents SET presence = 'offline' WHERE presence <> 'offline'`,
	)
}

// migrate0016OutboxNode records which node claimed an outbox row
// (email_outbox.claimed_by, a Store's NodeID), so that the node that
// reaps a dead one ends that node's claims at once (nodes.go) instead of
// leaving its mail to wait for the lease: a node killed in the middle of
// an SMTP send has its mail sent again within the dead-node interval.
func migrate0016OutboxNode(tx *gorm.DB) error {
	return execAll(tx, `ALTER TABLE email_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT ''`)
}

// migrate0017NodesStopped records when a node stopped (nodes.stopped_at,
// NULL while it runs): a node that stops gracefully leaves its presence
// rows for the grace period instead of deleting them, so that its
// visitors and agents reconnecting to another node never show offline,
// and the reaper removes them grace after stopped_at (nodes.go). A node
// restarted with the same node_id moves its predecessor's rows aside
// under a retired id with stopped_at set.
func migrate0017NodesStopped(tx *gorm.DB) error {
	return execAll(tx, `ALTER TABLE nodes ADD COLUMN stopped_at `+tsType(tx))
}

// migrate0018APITokens adds the agents' personal API tokens (issue 15,
// part 5; apitokens.go): each kept by the hex SHA-256 of its value, as
// sessions are, never the value itself. A token goes with its agent's
// row; agents are disabled rather than deleted, so the cascade is for
// a database cleaned by hand. api_tokens_agent serves the agent's list,
// newest first.
func migrate0018APITokens(tx *gorm.DB) error {
	ts := tsType(tx)
	return execAll(tx,
		`CREATE TABLE api_tokens (
			id `+autoID(tx)+`,
			agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
			name TEXT NOT NULL,
			token_hash TEXT NOT NULL UNIQUE,
			created_at `+ts+` NOT NULL,
			expires_at `+ts+` NOT NULL,
			last_used_at `+ts+`,
			revoked_at `+ts+`)`,
		`CREATE INDEX api_tokens_agent ON api_tokens (agent_id, id)`,
	)
}

// migrate0019Webhooks adds outgoing webhooks (issue 15; webhooks.go) and
// their deliveries. A delivery names the stored event it tells (no
// foreign key: PruneEvents keeps what deliveries need, and a deleted
// conversation takes its deliveries along) or, for a contact event,
// carries its data. webhook_deliveries_due serves the worker's due
// deliveries and the admins' lists; webhook_deliveries_stream the first
// pending delivery of each stream (conversation, or minus a contact).
func migrate0019Webhooks(tx *gorm.DB) error {
	ts := tsType(tx)
	return execAll(tx,
		`CREATE TABLE webhooks (
			id `+autoID(tx)+`,
			name TEXT NOT NULL UNIQUE,
			url TEXT NOT NULL,
			events TEXT NOT NULL,
			enabled BOOLEAN NOT NULL,
			secret TEXT NOT NULL,
			previous_secret TEXT NOT NULL DEFAULT '',
			previous_secret_until `+ts+`,
			from_config BOOLEAN NOT NULL DEFAULT false,
			created_at `+ts+` NOT NULL,
			updated_at `+ts+` NOT NULL,
			last_success_at `+ts+`,
			last_failure_at `+ts+`,
			last_error TEXT NOT NULL DEFAULT '')`,
		`CREATE TABLE webhook_deliveries (
			id `+autoID(tx)+`,
			webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
			type TEXT NOT NULL,
			event_id BIGINT,
			stream BIGINT NOT NULL,
			ord BIGINT NOT NULL,
			data TEXT,
			state TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_at `+ts+` NOT NULL,
			created_at `+ts+` NOT NULL,
			last_at `+ts+`,
			last_status INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '',
			last_body TEXT NOT NULL DEFAULT '')`,
		`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, state, next_at, id)`,
		`CREATE INDEX webhook_deliveries_stream ON webhook_deliveries (webhook_id, state, stream, ord, id)`,
	)
}
