package inbox

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SQLite: one immediate transaction on the single writer connection and
// five statements per batch, whatever its size: read the batch's
// conversations, read the client ids already stored, insert the messages,
// insert their events, update the conversations. Sequence numbers are
// given here: the transaction holds SQLite's only write lock from BEGIN,
// and every write of this store goes through the same connection. The
// statements are prepared once per batch size. Per message, SQLite's
// statement overhead (binding, stepping, resetting through database/sql)
// cost more than the rows themselves.
//
// A batch with agent replies (private notes aside) reads their contacts
// too, in the same transaction, and decides each reply's channel (rule 5)
// with them: SetContactsOnline, a write, runs before or after the whole
// batch, never between the decision and the commit.
func (a *appender) execSQLite(ctx context.Context, batch []*appendReq, cs *channelSet) error {
	tx, err := a.s.sqlW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b := sqliteBatch{a: a, ctx: ctx, tx: tx, reqs: batch, cs: cs}
	if err := b.run(); err != nil {
		return err
	}
	if err := a.s.testBeforeCommit(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, r := range batch {
		if r.created && len(r.in.AttachmentIDs) > 0 {
			r.msg.Attachments, _ = a.s.attachmentsOf(ctx, []int64{r.msg.ID})
		}
	}
	return nil
}

// sqliteConv is a conversation as the batch changes it.
type sqliteConv struct {
	id      int64
	status  string
	seq     int64
	changed bool
	at      time.Time // its new last_activity_at; zero: unchanged (only notes)
	open    bool      // a contact wrote: open it
	email   bool
}

// clientKey is a message's idempotency key: a client id is its author's
// own, in one conversation (the contact of a conversation is one author,
// each agent another).
type clientKey struct {
	conversationID int64
	clientID       string
	author         string
	agentID        int64 // 0 unless author is an agent
}

func keyOf(m NewMessage) clientKey {
	k := clientKey{conversationID: m.ConversationID, clientID: m.ClientID, author: m.Author}
	if m.AgentID != nil {
		k.agentID = *m.AgentID
	}
	return k
}

type sqliteBatch struct {
	a    *appender
	ctx  context.Context
	tx   *sql.Tx
	reqs []*appendReq
	cs   *channelSet

	convs map[int64]*sqliteConv
	order []*sqliteConv // in first-seen order, for the update
}

func (b *sqliteBatch) run() error {
	if err := b.readConversations(); err != nil {
		return err
	}
	stored, storedAtts, err := b.readClientIDs()
	if err != nil {
		return err
	}
	var contacts map[int64]Contact
	replies := hasReplies(b.reqs)
	if replies {
		if contacts, err = b.readContacts(); err != nil {
			return err
		}
	}
	// Decide each message in order: a stored or earlier key (client id
	// and author) with the same content is a duplicate, with other
	// content a conflict; an agent message gets its channel; the others
	// get the next sequence number.
	var fresh []*appendReq
	first := map[clientKey]*appendReq{}
	dupOf := map[*appendReq]*appendReq{}
	for _, r := range b.reqs {
		m := r.in
		c := b.convs[m.ConversationID]
		if c == nil {
			r.err = ErrNotFound
			continue
		}
		if m.ClientID != "" {
			k := keyOf(m)
			if msg, ok := stored[k]; ok {
				if !sameContent(m, msg.Channel, msg.Text, msg.HTML, storedAtts[msg.ID]) {
					r.err = reusedClientID()
					continue
				}
				r.retried(msg)
				continue
			}
			if f, ok := first[k]; ok {
				if !sameContent(m, f.in.Channel, f.in.Text, f.in.HTML, f.in.AttachmentIDs) {
					r.err = reusedClientID()
					continue
				}
				dupOf[r] = f
				continue
			}
		}
		if r.decidedWithContact() && r.decide(b.cs, contacts[m.ConversationID]) != nil {
			continue // the request's own error, set by decide
		}
		if m.ClientID != "" {
			first[keyOf(m)] = r
		}
		contact := m.Author == AuthorContact
		c.seq++
		r.result(0, c.seq, true, c.status)
		if contact {
			c.status, c.open = StatusOpen, true
		}
		c.email = c.email || r.reply.Channel == ChannelEmail
		if r.reply.Channel != ChannelNote {
			c.at = r.at // a note is not the contact's activity
		}
		c.changed = true
		fresh = append(fresh, r)
	}
	if replies {
		b.a.s.testAfterDecide()
	}
	if len(fresh) > 0 {
		if err := b.insertMessages(fresh); err != nil {
			return err
		}
		if err := b.insertOutbox(fresh); err != nil {
			return err
		}
		if err := b.insertEvents(fresh); err != nil {
			return err
		}
		if err := b.insertHooks(fresh); err != nil {
			return err
		}
		if err := b.updateConversations(); err != nil {
			return err
		}
		for _, r := range fresh {
			if err := b.claimAttachments(r); err != nil {
				return err
			}
		}
	}
	for r, f := range dupOf {
		r.retried(f.msg)
	}
	return nil
}

// readContacts returns the contacts of the batch's replies'
// conversations, by conversation id, as this transaction reads them.
func (b *sqliteBatch) readContacts() (map[int64]Contact, error) {
	var ids []any
	seen := map[int64]bool{}
	for _, r := range b.reqs {
		id := r.in.ConversationID
		if r.decidedWithContact() && !seen[id] && b.convs[id] != nil {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	contacts := make(map[int64]Contact, len(ids))
	if len(ids) == 0 {
		return contacts, nil
	}
	rows, err := b.padded(stmtContacts, ids, 1, int64(0))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			conv int64
			c    Contact
		)
		if err := rows.Scan(&conv, &c.ID, &c.Name, &c.Online, &c.Email); err != nil {
			return nil, err
		}
		contacts[conv] = c
	}
	return contacts, rows.Err()
}

// insertOutbox records the outbox row of each reply by email (migration
// 0006), due at once: the outbox worker sends it.
func (b *sqliteBatch) insertOutbox(fresh []*appendReq) error {
	for _, r := range fresh {
		if r.in.Author != AuthorAgent || r.reply.Channel != ChannelEmail {
			continue
		}
		if _, err := b.tx.ExecContext(b.ctx, `INSERT INTO email_outbox (kind, conversation_id, message_id, state, attempts, next_attempt_at, last_error, created_at)
			VALUES ('reply', ?, ?, 'pending', 0, ?, '', ?)`, r.in.ConversationID, r.msg.ID, r.at, r.at); err != nil {
			return err
		}
	}
	return nil
}

// readConversations reads the batch's conversations; b.convs first
// serves to list each id once, then holds those found.
func (b *sqliteBatch) readConversations() error {
	b.convs = make(map[int64]*sqliteConv, len(b.reqs))
	var ids []any
	for _, r := range b.reqs {
		id := r.in.ConversationID
		if _, ok := b.convs[id]; !ok {
			b.convs[id] = nil
			ids = append(ids, id)
		}
	}
	clear(b.convs)
	rows, err := b.padded(stmtConversations, ids, 1, int64(0))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		c := new(sqliteConv)
		if err := rows.Scan(&c.id, &c.status, &c.seq); err != nil {
			return err
		}
		b.convs[c.id] = c
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if c := b.convs[id.(int64)]; c != nil {
			b.order = append(b.order, c)
		}
	}
	return nil
}

// readClientIDs returns the batch's messages already stored by key, and
// the attachment ids of each (by message id) to compare a retry with.
func (b *sqliteBatch) readClientIDs() (map[clientKey]Message, map[int64][]int64, error) {
	type convClient struct {
		conversationID int64
		clientID       string
	}
	var args []any
	seen := map[convClient]bool{}
	for _, r := range b.reqs {
		k := convClient{r.in.ConversationID, r.in.ClientID}
		if k.clientID == "" || seen[k] || b.convs[k.conversationID] == nil {
			continue
		}
		seen[k] = true
		args = append(args, k.conversationID, k.clientID)
	}
	if len(args) == 0 {
		return nil, nil, nil
	}
	rows, err := b.padded(stmtClientIDs, args, 2, int64(0), "")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	stored := map[clientKey]Message{}
	var atts map[int64][]int64
	for rows.Next() {
		var (
			m        Message
			clientID string
			agentID  sql.NullInt64
			attIDs   sql.NullString
		)
		if err := rows.Scan(&m.ConversationID, &clientID, &m.ID, &m.Seq, &m.Author, &agentID, &m.Channel, &m.Text, &m.HTML, &m.State, &m.CreatedAt, &attIDs); err != nil {
			return nil, nil, err
		}
		m.ClientID = &clientID
		k := clientKey{conversationID: m.ConversationID, clientID: clientID, author: m.Author}
		if agentID.Valid {
			m.AgentID = &agentID.Int64
			k.agentID = agentID.Int64
		}
		m.CreatedAt = m.CreatedAt.UTC()
		stored[k] = m
		if attIDs.Valid {
			ids, err := parseIDList(attIDs.String)
			if err != nil {
				return nil, nil, err
			}
			if atts == nil {
				atts = map[int64][]int64{}
			}
			atts[m.ID] = ids
		}
	}
	return stored, atts, rows.Err()
}

// parseIDList parses group_concat's comma-separated ids, sorted.
func parseIDList(s string) ([]int64, error) {
	var ids []int64
	for f := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inbox: attachment id list %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (b *sqliteBatch) insertMessages(fresh []*appendReq) error {
	args := make([]any, 0, 10*len(fresh))
	for _, r := range fresh {
		m := r.in
		args = append(args, m.ConversationID, r.msg.Seq, nullString(m.ClientID), m.Author,
			nullInt(m.AgentID), r.reply.Channel, m.Text, m.HTML, r.reply.State, r.at)
	}
	return b.insertReturning(stmtInsertMessages, args, 10, fresh, "messages", func(r *appendReq, id int64) { r.msg.ID = id })
}

// insertEvents inserts the message_added events of the new messages and
// keeps their ids, which the published events carry as their replays do.
func (b *sqliteBatch) insertEvents(fresh []*appendReq) error {
	args := make([]any, 0, 5*len(fresh))
	for _, r := range fresh {
		var data any
		if r.reopened {
			data = reopenedData
		}
		args = append(args, r.in.ConversationID, r.msg.Seq, r.msg.ID, data, r.at)
	}
	return b.insertReturning(stmtInsertEvents, args, 5, fresh, "events", func(r *appendReq, id int64) { r.eventID = id })
}

// insertHooks inserts the webhook deliveries of the new messages, if
// any webhook may want them (webhooks.go).
func (b *sqliteBatch) insertHooks(fresh []*appendReq) error {
	if !b.a.s.hooksMaybe() {
		return nil
	}
	rows := messageHookRows(fresh)
	for chunk := range slices.Chunk(rows, maxHookRows) {
		if _, err := b.tx.ExecContext(b.ctx, hookInsertSQL(false, len(chunk)), hookArgs(chunk)...); err != nil {
			return err
		}
	}
	return nil
}

// insertReturning runs an insert of one row per message of fresh whose
// rows return (id, conversation_id, seq), and calls set with each
// message's new id. RETURNING gives no order: the ids are matched by
// (conversation, seq). what names the rows in the error of a row count
// that is not len(fresh).
func (b *sqliteBatch) insertReturning(kind sqliteStmtKind, args []any, width int, fresh []*appendReq, what string, set func(r *appendReq, id int64)) error {
	byKey := make(map[convSeq]*appendReq, len(fresh))
	for _, r := range fresh {
		byKey[convSeq{r.in.ConversationID, r.msg.Seq}] = r
	}
	n := 0
	err := b.chunked(kind, args, width, func(rows *sql.Rows) error {
		var k convSeq
		var id int64
		if err := rows.Scan(&id, &k.conv, &k.seq); err != nil {
			return err
		}
		if r := byKey[k]; r != nil {
			set(r, id)
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n != len(fresh) {
		return fmt.Errorf("inbox: %d of %d %s inserted", n, len(fresh), what)
	}
	return nil
}

func (b *sqliteBatch) updateConversations() error {
	var args []any
	for _, c := range b.order {
		if c.changed {
			var at any // NULL keeps last_activity_at
			if !c.at.IsZero() {
				at = c.at
			}
			args = append(args, c.id, c.seq, at, c.open, c.email)
		}
	}
	rows, err := b.padded(stmtUpdateConversations, args, 5, int64(0), int64(0), time.Time{}, false, false)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// claimAttachments makes a message's uploads its own; one that is unknown,
// already sent or uploaded by someone else fails the batch, which run then
// retries one message at a time.
func (b *sqliteBatch) claimAttachments(r *appendReq) error {
	ids := r.in.AttachmentIDs
	if len(ids) == 0 {
		return nil
	}
	k := keyOf(r.in)
	q, args := inInts(`UPDATE attachments SET message_id = ? WHERE conversation_id = ? AND message_id IS NULL
		AND uploader = ? AND COALESCE(uploader_agent_id, 0) = ? AND id IN (%s)`, ids, r.msg.ID, r.in.ConversationID, k.author, k.agentID)
	res, err := b.tx.ExecContext(b.ctx, q, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != int64(len(ids)) {
		return setErr(r, errForeignAttachment)
	}
	return nil
}

// The batch statements, each with n rows of placeholders.
type sqliteStmtKind int

const (
	stmtConversations sqliteStmtKind = iota
	stmtClientIDs
	stmtInsertMessages
	stmtInsertEvents
	stmtUpdateConversations
	stmtContacts
	stmtKinds // the number of kinds
)

func sqliteStmtText(kind sqliteStmtKind, n int) string {
	rows := func(row string) string {
		return strings.TrimSuffix(strings.Repeat(row+",", n), ",")
	}
	switch kind {
	case stmtConversations:
		return `SELECT id, status, seq FROM conversations WHERE id IN (` + rows("?") + `)`
	case stmtContacts:
		return `SELECT v.id, c.id, c.name, c.online, c.email FROM conversations v
			JOIN contacts c ON c.id = v.contact_id WHERE v.id IN (` + rows("?") + `)`
	case stmtClientIDs:
		// Every author's message under the client id; the index
		// messages_client_id_author starts with (conversation_id,
		// client_id).
		return `SELECT conversation_id, client_id, id, seq, author, agent_id, channel, text, html, state, created_at,
				(SELECT group_concat(a.id) FROM attachments a WHERE a.message_id = messages.id)
			FROM messages WHERE (conversation_id, client_id) IN (VALUES ` + rows("(?, ?)") + `)`
	case stmtInsertMessages:
		return `INSERT INTO messages (conversation_id, seq, client_id, author, agent_id, channel, text, html, state, created_at)
			VALUES ` + rows("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") + ` RETURNING id, conversation_id, seq`
	case stmtInsertEvents:
		return `INSERT INTO events (conversation_id, seq, type, message_id, data, created_at)
			VALUES ` + rows("(?, ?, 'message_added', ?, ?, ?)") + ` RETURNING id, conversation_id, seq`
	case stmtUpdateConversations:
		// VALUES names its columns column1, column2...: id, seq, at (NULL
		// when only private notes were added), open, email.
		return `UPDATE conversations SET seq = v.column2, last_activity_at = COALESCE(v.column3, last_activity_at),
			status = CASE WHEN v.column4 THEN 'open' ELSE status END,
			closed_at = CASE WHEN v.column4 THEN NULL ELSE closed_at END,
			has_email = has_email OR v.column5
			FROM (VALUES ` + rows("(?, ?, ?, ?, ?)") + `) AS v WHERE conversations.id = v.column1`
	}
	panic("inbox: unknown statement kind")
}

// Batch statements come in sizes of powers of two up to sqliteMaxRows,
// all prepared when the store opens (the writer's only connection is held
// by the transaction during a batch). Reads and the update are padded up
// to the next size with rows that match nothing; inserts are split into
// chunks of these sizes. 256 rows of the widest statement (the messages'
// insert, 10 values a row) bind 2,560 values, under SQLite's 32,766.
// Batches of 256 (issue 14): past about 8,000 messages/s the writer ran
// full batches of 64, and the commit (its log pages and fsync) is
// shared by the whole batch.
const sqliteMaxRows = 256

type sqliteStmts [stmtKinds][]*sql.Stmt

func (st *sqliteStmts) prepare(db *sql.DB) error {
	for kind := range st {
		for n := 1; n <= sqliteMaxRows; n *= 2 {
			q := sqliteStmtText(sqliteStmtKind(kind), n)
			s, err := db.Prepare(q)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", q, err)
			}
			st[kind] = append(st[kind], s)
		}
	}
	return nil
}

// size returns the statement size for n rows: the next power of two for a
// padded statement, the largest power of two not over n for a chunk.
func size(n int, pad bool) int {
	s := 1
	for s < n && s < sqliteMaxRows {
		s *= 2
	}
	if !pad && s > n {
		s /= 2
	}
	return s
}

// stmt returns the statement of kind for size rows (a power of two),
// bound to the batch's transaction.
func (b *sqliteBatch) stmt(kind sqliteStmtKind, rows int) *sql.Stmt {
	i := bits.TrailingZeros(uint(rows))
	return b.tx.StmtContext(b.ctx, b.a.stmts[kind][i])
}

// padded runs a padded statement: args has n rows of width values; the
// missing rows repeat pad.
func (b *sqliteBatch) padded(kind sqliteStmtKind, args []any, width int, pad ...any) (*sql.Rows, error) {
	n := len(args) / width
	for s := size(n, true); n < s; n++ {
		args = append(args, pad...)
	}
	if n > sqliteMaxRows {
		return nil, fmt.Errorf("inbox: %d rows in one statement, at most %d", n, sqliteMaxRows)
	}
	return b.stmt(kind, n).QueryContext(b.ctx, args...)
}

// chunked runs an insert for rows of width values in chunks of the
// prepared sizes, calling each for its result rows.
func (b *sqliteBatch) chunked(kind sqliteStmtKind, args []any, width int, each func(*sql.Rows) error) error {
	for len(args) > 0 {
		n := size(len(args)/width, false)
		rows, err := b.stmt(kind, n).QueryContext(b.ctx, args[:n*width]...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if each != nil {
				if err := each(rows); err != nil {
					rows.Close()
					return err
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}
