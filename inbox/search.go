package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Search (GET /api/v1/conversations?q=): the conversations whose contact's
// name or email address, or one of whose messages (private notes
// included), holds every word of the search text.
//
//   - Words are as searchtoken.go splits them: runs of letters and digits
//     of any script between spaces, punctuation and symbols, compared
//     without case ("Müller", "MÜLLER" and "müller" are one word; "Muller"
//     is another: accents count). The last word matches any word it
//     begins ("prin" finds "printer"), unless the text ends with a space
//     or punctuation. Scripts written without spaces are one word per
//     run: "東京" finds "東京" and "東京都新宿区" (it begins it), not
//     "新宿" in the middle of one.
//   - All the words in the contact (name and address together), or all
//     in one message; words spread over two messages do not match.
//   - At most searchMaxWords words and searchMaxBytes bytes.
//
// Two ways to the same answer (searchHits): asking the index for every
// match and sorting their conversations, quick when few match; or walking
// the column in its order and testing each conversation's contact and
// messages, quick when many do ("the", "t"). The index: on SQLite two
// FTS5 tables over the rows of messages and contacts (external content:
// the index alone is stored, rowid = the row's id), kept by triggers in
// the transaction of every write; on PostgreSQL two GIN indexes over
// microchat_search_vector() of the text (pgMessageVector). Deleting a
// message, a conversation or a contact takes it out of the index in the
// same transaction.
const (
	searchMaxWords = 8
	searchMaxBytes = 256
)

// SearchMatch is the message a search matched in a conversation: the
// newest one.
type SearchMatch struct {
	MessageID int64 `json:"message_id"`
	// Text is a snippet of its text (plain text, at most about
	// snippetRunes characters) around the first word that matched.
	Text string `json:"text"`
}

// searchQuery is a parsed search text.
type searchQuery struct {
	words  []string // folded (searchWords)
	raw    []string // as typed: PostgreSQL folds them itself
	prefix bool     // the last word is a prefix
}

func parseSearch(text string) (searchQuery, error) {
	var q searchQuery
	if len(text) > searchMaxBytes {
		return q, invalid("q", "is longer than %d bytes", searchMaxBytes)
	}
	// A word at the very end is still being typed.
	r, _ := utf8.DecodeLastRuneInString(text)
	q.prefix = !classify(r).sep
	text = CleanLine(text)
	for start, end := nextWord(text, 0); start >= 0; start, end = nextWord(text, end) {
		q.raw = append(q.raw, text[start:end])
		q.words = append(q.words, foldWord(text[start:end]))
	}
	switch {
	case len(q.words) == 0:
		return q, invalid("q", "has no word to search for")
	case len(q.words) > searchMaxWords:
		return q, invalid("q", "has more than %d words", searchMaxWords)
	}
	return q, nil
}

// ftsMatch is the query in FTS5's syntax: `"w1" "w2"*`.
func (q searchQuery) ftsMatch() string {
	var b strings.Builder
	for i, w := range q.words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"` + w + `"`) // a word has no quote: it is a separator
	}
	if q.prefix {
		b.WriteByte('*')
	}
	return b.String()
}

// pattern is the query for microchat_match (matchPattern).
func (q searchQuery) pattern() string {
	p := strings.Join(q.words, " ")
	if q.prefix {
		p += "*"
	}
	return p
}

// tsquery is the query for PostgreSQL's to_tsquery: `'w1' & 'w2':*`.
func (q searchQuery) tsquery() string {
	var b strings.Builder
	for i, w := range q.raw {
		if i > 0 {
			b.WriteString(" & ")
		}
		b.WriteString("'" + w + "'") // a word has no quote or backslash
	}
	if q.prefix {
		b.WriteString(":*")
	}
	return b.String()
}

// searchHit is a conversation that matched, in list order: Message is
// the id of its newest matching message, 0 when only its contact matched.
type searchHit struct {
	ID      int64
	At      time.Time
	Message int64
}

// Walking: the first chunk of conversations, then larger ones while at
// least searchDense of those walked matched; below that, the index.
const (
	searchFirstChunk = 256
	searchMaxChunk   = 4096
	searchDense      = 0.03
)

// searchTuning replaces searchFirstChunk and searchDense when set
// (tests: the walk alone, or the index after one conversation).
type searchTuning struct {
	first   int
	dense   float64
	indexed bool
}

// search is ListConversations with a search text.
func (s *Store) search(ctx context.Context, q ListQuery) (ConversationPage, error) {
	sq, err := parseSearch(q.Search)
	if err != nil {
		return ConversationPage{}, err
	}
	filter, args, err := columnSQL(q.Column, q.AgentID)
	if err != nil {
		return ConversationPage{}, err
	}
	var after *listCursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return ConversationPage{}, err
		}
		after = &c
	}
	var hits []searchHit
	err = s.searchRead(ctx, func(db querier) error {
		var err error
		hits, err = s.searchHits(ctx, db, sq, filter, args, after, q.Limit+1)
		return err
	})
	if err != nil {
		return ConversationPage{}, dbErr(err)
	}
	page := ConversationPage{Items: []ConversationItem{}}
	if len(hits) > q.Limit {
		hits = hits[:q.Limit]
		page.NextCursor = encodeCursor(hits[len(hits)-1].At, hits[len(hits)-1].ID)
	}
	if len(hits) == 0 {
		return page, nil
	}
	ids := make([]int64, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	var convs []Conversation
	if err := s.rdb.WithContext(ctx).Where("id IN ?", ids).Find(&convs).Error; err != nil {
		return ConversationPage{}, dbErr(err)
	}
	byID := map[int64]Conversation{}
	for _, c := range convs {
		byID[c.ID] = c
	}
	convs = convs[:0]
	for _, id := range ids {
		if c, ok := byID[id]; ok { // deleted meanwhile: left out
			convs = append(convs, c)
		}
	}
	items, err := s.items(ctx, convs, q.AgentID)
	if err != nil {
		return ConversationPage{}, err
	}
	matches, err := s.searchMatches(ctx, hits, sq)
	if err != nil {
		return ConversationPage{}, err
	}
	for i := range items {
		items[i].Match = matches[items[i].ID]
	}
	page.Items = items
	return page, nil
}

// searchHits returns up to n conversations that match, in list order
// after the cursor: from the index when it holds few matches, else
// walking the list while matches are dense, then the index for what is
// left.
func (s *Store) searchHits(ctx context.Context, db querier, sq searchQuery, filter string, args []any, after *listCursor, n int) ([]searchHit, error) {
	walked, chunk, dense := 0, searchFirstChunk, searchDense
	indexed := false
	if t := s.searchTuning; t.first > 0 {
		chunk, dense, indexed = t.first, t.dense, t.indexed
	} else {
		msgs, contacts, err := s.searchEstimate(ctx, db, sq)
		if err != nil {
			return nil, err
		}
		if msgs < searchFewMatches && contacts < searchFewContacts {
			return s.searchIndex(ctx, db, sq, filter, args, after, n)
		}
		indexed = msgs < searchManyMatches
	}
	var hits []searchHit
	for {
		found, seen, last, err := s.searchWalk(ctx, db, sq, filter, args, after, chunk, n-len(hits), indexed)
		if err != nil {
			return nil, err
		}
		hits = append(hits, found...)
		walked += seen
		if len(hits) >= n || seen < chunk {
			return hits, nil // enough, or the end of the list
		}
		after = &last
		if float64(len(hits)) < dense*float64(walked) {
			break
		}
		chunk = min(chunk*4, searchMaxChunk)
	}
	rest, err := s.searchIndex(ctx, db, sq, filter, args, after, n-len(hits))
	return append(hits, rest...), err
}

// searchFewMatches is the most messages that match for the index to be
// asked at once: sorting their conversations costs less than walking to
// the first page would (a microsecond or two for each match on SQLite,
// and PostgreSQL reads each matching message's row, against tens of
// microseconds for each conversation walked). searchFewContacts is the
// same for contacts, which cost less: an index gives their
// conversations.
const searchFewMatches = 5000

const searchFewContacts = 20_000

// searchManyMatches is, on PostgreSQL, the fewest matching messages for
// which walking tests each message itself rather than ask the index which
// messages of a chunk of conversations match: the index would gather too
// many.
const searchManyMatches = 50_000

// searchEstimate returns how many messages and contacts match. On SQLite
// it counts them, up to searchFewMatches and searchFewContacts, unless
// the query ends with a short prefix ("t", "pr", "the"), for which FTS5
// would first gather every word it begins (such prefixes begin many
// words): then it says searchManyMatches. On PostgreSQL it takes the
// planner's estimates, from the statistics of the indexes' expressions
// (migration 0011 and autovacuum gather them).
func (s *Store) searchEstimate(ctx context.Context, db querier, sq searchQuery) (msgs, contacts int, err error) {
	if s.dialect == dialectPostgres {
		rows, err := s.query(ctx, db, `EXPLAIN (FORMAT JSON) SELECT 1 FROM messages m WHERE `+pgMessageVector("m.")+` @@ `+pgQuery+`
			UNION ALL SELECT 1 FROM contacts ct WHERE `+pgContactVector("ct.")+` @@ `+pgQuery, sq.tsquery(), sq.tsquery())
		if err != nil {
			return 0, 0, err
		}
		defer rows.Close()
		type node struct {
			Rows  float64 `json:"Plan Rows"`
			Plans []node
		}
		var plan []struct{ Plan node }
		var js []byte
		if rows.Next() {
			if err := rows.Scan(&js); err != nil {
				return 0, 0, err
			}
		}
		if err := rows.Err(); err != nil {
			return 0, 0, err
		}
		if err := json.Unmarshal(js, &plan); err != nil || len(plan) != 1 {
			return 0, 0, fmt.Errorf("inbox: search estimate %q: %v", js, err)
		}
		if p := plan[0].Plan.Plans; len(p) == 2 {
			return int(min(p[0].Rows, 1e9)), int(min(p[1].Rows, 1e9)), nil
		}
		all := int(min(plan[0].Plan.Rows, 1e9)) // another plan's shape: the sum for both
		return all, all, nil
	}
	if sq.prefix {
		last := []rune(sq.words[len(sq.words)-1])
		if len(last) < 4 && !(len(last) >= 2 && unicode.In(last[0], unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)) {
			return searchManyMatches, searchFewContacts, nil
		}
	}
	rows, err := s.query(ctx, db, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)),
		(SELECT count(*) FROM (SELECT 1 FROM contacts_fts WHERE contacts_fts MATCH ? LIMIT ?))`,
		sq.ftsMatch(), searchFewMatches, sq.ftsMatch(), searchFewContacts)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&msgs, &contacts); err != nil {
			return 0, 0, err
		}
	}
	return msgs, contacts, rows.Err()
}

// querier is what the search's reads run on: the read pool, or a
// transaction on PostgreSQL.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// searchRead runs fn's reads: on SQLite on the read pool; on PostgreSQL
// in a read-only transaction without JIT compilation, whose tens of
// milliseconds the planner would spend on these queries' large cost
// estimates for nothing, nor parallel workers, which hash whole tables
// where a few thousand rows are looked up and only take cores from the
// other requests.
func (s *Store) searchRead(ctx context.Context, fn func(querier) error) error {
	if s.dialect != dialectPostgres {
		return fn(s.sqlR)
	}
	tx, err := s.sqlR.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// query runs q (with ? placeholders) on db, numbering the placeholders
// for PostgreSQL. On SQLite the context's cancellation is dropped, as for
// every read (uncancellable).
func (s *Store) query(ctx context.Context, db querier, q string, args ...any) (*sql.Rows, error) {
	if s.dialect == dialectPostgres {
		return db.QueryContext(ctx, numberPlaceholders(q), args...)
	}
	return db.QueryContext(context.WithoutCancel(ctx), q, args...)
}

// numberPlaceholders turns each ? outside a string literal into $1, $2...
func numberPlaceholders(q string) string {
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// afterSQL is the keyset condition of a page after cursor c.
func afterSQL(c *listCursor) (string, []any) {
	if c == nil {
		return "", nil
	}
	return " AND (c.last_activity_at, c.id) < (?, ?)", []any{c.At, c.ID}
}

// searchWalk tests the next chunk conversations of the list after the
// cursor, in order, and returns those that match, at most need of them;
// how many it tested; and the last one tested. Each conversation's
// messages are tested one by one, newest first, unless indexed: then
// PostgreSQL's index says which messages of the chunk match (SQLite
// always tests them one by one).
func (s *Store) searchWalk(ctx context.Context, db querier, sq searchQuery, filter string, fargs []any, after *listCursor, chunk, need int, indexed bool) ([]searchHit, int, listCursor, error) {
	cond, cargs := afterSQL(after)
	chunkSQL := `SELECT c.id, c.contact_id, c.last_activity_at FROM conversations c WHERE ` + filter + cond + `
		ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
	chunkArgs := append(append(append([]any{}, fargs...), cargs...), chunk)
	var q string
	var args []any
	switch {
	case s.dialect == dialectPostgres:
		// The contact: the quick test first (pgHas), then the index's
		// expression.
		var cpre strings.Builder
		var words []any
		for _, w := range sq.raw {
			cpre.WriteString(" AND " + pgHas("ct.name || ' ' || ct.email"))
			words = append(words, w)
		}
		contact := `COALESCE(true` + cpre.String() + ` AND ` + pgContactVector("ct.") + ` @@ ` + pgQuery + `, false)`
		if indexed {
			// The chunk and its contacts' matches; then below the
			// index's matches among the chunk's messages, which
			// PostgreSQL finds with a BitmapAnd of the two indexes
			// when it is given the ids themselves.
			q = `SELECT c.id, c.last_activity_at, NULL::bigint, ` + contact + `
				FROM (` + chunkSQL + `) c LEFT JOIN contacts ct ON ct.id = c.contact_id
				ORDER BY c.last_activity_at DESC, c.id DESC`
			args = append(append(append([]any{}, words...), sq.tsquery()), chunkArgs...)
			break
		}
		// Each conversation's messages, newest first: the quick test,
		// then the index's expression on the text || '', which
		// PostgreSQL cannot match with the index: asked for each
		// conversation, the index would gather all the messages with
		// the query's words each time.
		var pre strings.Builder
		for range sq.raw {
			pre.WriteString(" AND " + pgHas("m.text"))
		}
		q = `SELECT c.id, c.last_activity_at, h.id, ` + contact + `
			FROM (` + chunkSQL + `) c
			LEFT JOIN contacts ct ON ct.id = c.contact_id
			LEFT JOIN LATERAL (SELECT m.id FROM messages m WHERE m.conversation_id = c.id` + pre.String() + `
				AND microchat_search_vector(m.text || '') @@ ` + pgQuery + ` ORDER BY m.seq DESC LIMIT 1) h ON true
			ORDER BY c.last_activity_at DESC, c.id DESC`
		args = append(append(append(append(append([]any{}, words...), sq.tsquery()), chunkArgs...), words...), sq.tsquery())
	default:
		p := sq.pattern()
		q = `SELECT c.id, c.last_activity_at,
				(SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND microchat_match(m.text, ?) ORDER BY m.seq DESC LIMIT 1),
				COALESCE(microchat_match(ct.name || ' ' || ct.email, ?), 0)
			FROM (` + chunkSQL + `) c
			LEFT JOIN contacts ct ON ct.id = c.contact_id
			ORDER BY c.last_activity_at DESC, c.id DESC`
		args = append([]any{p, p}, chunkArgs...)
	}
	type walked struct {
		searchHit
		message sql.NullInt64
		contact bool
	}
	var chunkRows []walked
	rows, err := s.query(ctx, db, q, args...)
	if err != nil {
		return nil, 0, listCursor{}, err
	}
	found := 0
	for found < need && rows.Next() {
		var w walked
		if err := rows.Scan(&w.ID, &w.At, &w.message, &w.contact); err != nil {
			rows.Close()
			return nil, 0, listCursor{}, err
		}
		chunkRows = append(chunkRows, w)
		if !indexed && (w.message.Valid || w.contact) {
			found++ // SQLite tests the next conversation only when asked
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, listCursor{}, err
	}
	if indexed && s.dialect == dialectPostgres && len(chunkRows) > 0 {
		ids := make([]int64, len(chunkRows))
		at := map[int64]int{}
		for i, w := range chunkRows {
			ids[i], at[w.ID] = w.ID, i
		}
		rows, err := s.query(ctx, db, `SELECT m.conversation_id, max(m.id) FROM messages m
			WHERE m.conversation_id = ANY(?) AND `+pgMessageVector("m.")+` @@ `+pgQuery+` GROUP BY m.conversation_id`, ids, sq.tsquery())
		if err != nil {
			return nil, 0, listCursor{}, err
		}
		defer rows.Close()
		for rows.Next() {
			var id, msg int64
			if err := rows.Scan(&id, &msg); err != nil {
				return nil, 0, listCursor{}, err
			}
			chunkRows[at[id]].message = sql.NullInt64{Int64: msg, Valid: true}
		}
		if err := rows.Err(); err != nil {
			return nil, 0, listCursor{}, err
		}
	}
	var hits []searchHit
	for _, w := range chunkRows {
		if !w.message.Valid && !w.contact {
			continue
		}
		w.Message = w.message.Int64
		hits = append(hits, w.searchHit)
		if len(hits) == need {
			// Nothing after this one is needed: the caller stops here.
			return hits, chunk, listCursor{At: w.At, ID: w.ID}, nil
		}
	}
	var last listCursor
	if n := len(chunkRows); n > 0 {
		last = listCursor{At: chunkRows[n-1].At, ID: chunkRows[n-1].ID}
	}
	return hits, len(chunkRows), last, nil
}

// searchIndex returns up to n conversations after the cursor that match,
// from the index: every match, sorted.
func (s *Store) searchIndex(ctx context.Context, db querier, sq searchQuery, filter string, fargs []any, after *listCursor, n int) ([]searchHit, error) {
	cond, cargs := afterSQL(after)
	var q string
	var args []any
	if s.dialect == dialectPostgres {
		q = `WITH hits AS (
				SELECT m.conversation_id AS id, max(m.id) AS msg FROM messages m
				WHERE ` + pgMessageVector("m.") + ` @@ ` + pgQuery + ` GROUP BY m.conversation_id
				UNION ALL
				SELECT v.id, NULL FROM contacts ct JOIN conversations v ON v.contact_id = ct.id
				WHERE ` + pgContactVector("ct.") + ` @@ ` + pgQuery + `)
			SELECT c.id, c.last_activity_at, max(h.msg) FROM hits h JOIN conversations c ON c.id = h.id
			WHERE ` + filter + cond + `
			GROUP BY c.id, c.last_activity_at ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
		args = []any{sq.tsquery(), sq.tsquery()}
	} else {
		q = `WITH hits (id, msg) AS (
				SELECT m.conversation_id, m.id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ?
				UNION ALL
				SELECT v.id, NULL FROM contacts_fts JOIN conversations v ON v.contact_id = contacts_fts.rowid
				WHERE contacts_fts MATCH ?)
			SELECT c.id, c.last_activity_at, max(h.msg) FROM hits h JOIN conversations c ON c.id = h.id
			WHERE ` + filter + cond + `
			GROUP BY c.id ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?`
		args = []any{sq.ftsMatch(), sq.ftsMatch()}
	}
	args = append(append(append(args, fargs...), cargs...), n)
	rows, err := s.query(ctx, db, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hits []searchHit
	for rows.Next() {
		var h searchHit
		var msg sql.NullInt64
		if err := rows.Scan(&h.ID, &h.At, &msg); err != nil {
			return nil, err
		}
		h.Message = msg.Int64
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// searchMatches returns the matched message of each hit that has one, by
// conversation id, with a snippet of its text.
func (s *Store) searchMatches(ctx context.Context, hits []searchHit, sq searchQuery) (map[int64]*SearchMatch, error) {
	var ids []int64
	for _, h := range hits {
		if h.Message > 0 {
			ids = append(ids, h.Message)
		}
	}
	out := map[int64]*SearchMatch{}
	if len(ids) == 0 {
		return out, nil
	}
	var msgs []Message
	if err := s.rdb.WithContext(ctx).Select("id", "conversation_id", "text").Where("id IN ?", ids).Find(&msgs).Error; err != nil {
		return nil, dbErr(err)
	}
	for _, m := range msgs {
		out[m.ConversationID] = &SearchMatch{MessageID: m.ID, Text: snippet(m.Text, sq)}
	}
	return out, nil
}

// snippetRunes is about how long a snippet is.
const snippetRunes = 120

// snippet returns about snippetRunes characters of text on one line,
// starting a little before the first word that matches one of the
// query's, with "…" where it was cut.
func snippet(text string, sq searchQuery) string {
	text = strings.Join(strings.Fields(text), " ")
	at := 0
	for start, end := nextWord(text, 0); start >= 0; start, end = nextWord(text, end) {
		found := false
		for i, w := range sq.words {
			if wordIs(text, start, end, w, sq.prefix && i == len(sq.words)-1) {
				found = true
				break
			}
		}
		if found {
			at = start
			break
		}
	}
	// Up to a fifth of the snippet before the word, from a word's start.
	from := at
	for back := 0; from > 0 && back < snippetRunes/5; back++ {
		_, n := utf8.DecodeLastRuneInString(text[:from])
		from -= n
	}
	if from > 0 {
		if i := strings.IndexByte(text[from:at], ' '); i >= 0 {
			from += i + 1
		}
	}
	to, count := from, 0
	for to < len(text) && count < snippetRunes {
		_, n := utf8.DecodeRuneInString(text[to:])
		to += n
		count++
	}
	if to < len(text) {
		if i := strings.LastIndexByte(text[from:to], ' '); i > len(text[from:to])/2 {
			to = from + i
		}
	}
	out := text[from:to]
	if from > 0 {
		out = "…" + out
	}
	if to < len(text) {
		out += "…"
	}
	return out
}

// migrate0011Search adds the search index and the indexes that keep the
// dashboard's list quick with many conversations (list.go):
//
//   - conversations_activity: all conversations by last activity, the
//     order of a search without a column;
//   - participants_open and participants_agent_open: the current
//     participations, by conversation (Unassigned, Mine, and the count of
//     conversations with a participant) and by agent (Mine's count),
//     with left_at so that SQLite reads them alone.
//
// On PostgreSQL the GIN indexes are built with more memory than the
// default for maintenance, which shortens it on a large database.
func migrate0011Search(tx *gorm.DB) error {
	common := []string{
		`CREATE INDEX conversations_activity ON conversations (last_activity_at, id)`,
		`CREATE INDEX participants_open ON participants (conversation_id, agent_id, left_at) WHERE left_at IS NULL`,
		`CREATE INDEX participants_agent_open ON participants (agent_id, conversation_id, left_at) WHERE left_at IS NULL`,
	}
	if tx.Dialector.Name() == "postgres" {
		return migrate0011PG(tx, common)
	}
	return execAll(tx, append(common,
		`CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id', columnsize=0, tokenize='`+ftsTokenizer+`')`,
		`CREATE VIRTUAL TABLE contacts_fts USING fts5(name, email, content='contacts', content_rowid='id', columnsize=0, tokenize='`+ftsTokenizer+`')`,
		`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`,
		`INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild')`,
		`CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
			INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
		END`,
		`CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
			INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
		END`,
		`CREATE TRIGGER messages_fts_update AFTER UPDATE OF id, text ON messages BEGIN
			INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
			INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
		END`,
		`CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
			INSERT INTO contacts_fts (rowid, name, email) VALUES (new.id, new.name, new.email);
		END`,
		`CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
			INSERT INTO contacts_fts (contacts_fts, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);
		END`,
		`CREATE TRIGGER contacts_fts_update AFTER UPDATE OF id, name, email ON contacts BEGIN
			INSERT INTO contacts_fts (contacts_fts, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);
			INSERT INTO contacts_fts (rowid, name, email) VALUES (new.id, new.name, new.email);
		END`,
	)...)
}

// PostgreSQL's index is on microchat_search_vector(text) (migration
// 0011): the text lowered by ICU's root locale (collation "und-x-icu",
// whatever the database's own locale, which may be C and fold only A-Z),
// pgSeparators turned into spaces, then to_tsvector('simple'). The
// queries fold their words the same way (pgQuery, pgHas) and call the
// function as the index does, for PostgreSQL to use it.
func pgMessageVector(t string) string { return `microchat_search_vector(` + t + `text)` }

func pgContactVector(t string) string {
	return `microchat_search_vector(` + t + `name || ' ' || ` + t + `email)`
}

// pgQuery is the tsquery of a search (searchQuery.tsquery, a parameter).
const pgQuery = `to_tsquery('simple', lower(? COLLATE "und-x-icu"))`

// pgHas is the quick test that a word (a parameter) is in a text, which
// every message that matches passes: the word, folded, is in the folded
// text.
func pgHas(text string) string {
	return `strpos(lower((` + text + `) COLLATE "und-x-icu"), lower(? COLLATE "und-x-icu")) > 0`
}

// pgSeparators are the separators (ftsSeparators) that PostgreSQL's
// index turns into spaces before its parser: ASCII punctuation, which
// its parser would otherwise keep in email addresses, URLs, paths and
// hyphenated words, and the common punctuation of other scripts, which a
// database in the C locale would take for letters ("東京。北京" would be
// one word). A regular expression's bracket: the wider it is, the slower.
const pgSeparators = `[\u0001-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u00A9\u00AB-\u00B1\u00B4\u00B6-\u00B8\u00BB\u00BF\u00D7\u00F7` +
	`\u060C\u061B\u061F\u0964\u0965\u2000-\u2064\u206A-\u206F\u3000-\u3004\u3008-\u3020\u3030\u303D-\u303F` +
	`\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]`

// migrate0011PG is migration 0011 on PostgreSQL; it fails, saying why,
// on a server without ICU.
func migrate0011PG(tx *gorm.DB, common []string) error {
	var icu int64
	if err := tx.Raw(`SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&icu).Error; err != nil {
		return err
	}
	if icu == 0 {
		return errors.New(`0011_search: this PostgreSQL server has no ICU collation "und-x-icu" (it was built without ICU): ` +
			`search folds case with it, the same way whatever the database's locale; use a server built with ICU (Debian's and the official images are)`)
	}
	if err := execAll(tx, append(common,
		`CREATE FUNCTION microchat_search_vector(t text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
			SELECT to_tsvector('simple'::regconfig, regexp_replace(lower(t COLLATE "und-x-icu"), '`+pgSeparators+`', ' ', 'g'))
		$$`,
		`SET LOCAL maintenance_work_mem = '256MB'`,
		`CREATE INDEX messages_search ON messages USING gin (`+pgMessageVector("")+`)`,
		`CREATE INDEX contacts_search ON contacts USING gin (`+pgContactVector("")+`)`,
	)...); err != nil {
		return err
	}
	// On a database in use, the statistics of the indexed expressions,
	// for the planner's estimates (searchEstimate) from the start; an
	// empty one has nothing to count, and autovacuum will.
	var used bool
	if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM messages)`).Scan(&used).Error; err != nil || !used {
		return err
	}
	return execAll(tx, `ANALYZE messages`, `ANALYZE contacts`)
}
