package inbox

import (
	"context"
	"database/sql"
	"sync"
)

// hotStmts holds the prepared statements of the reads every widget
// connect runs (VisitorAuthConversation, ConversationStart), which run
// through database/sql directly: gorm's statement building and
// reflection cost several times what SQLite spends on a primary-key read
// (BenchmarkConnectReads). One per query text, prepared on first use on
// the read pool (database/sql prepares it again on each connection).
type hotStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// hot returns the prepared statement of q, written with ? placeholders
// (numbered $n on PostgreSQL). On SQLite, run it with readCtx.
func (s *Store) hot(ctx context.Context, q string) (*sql.Stmt, error) {
	s.hotStmts.mu.Lock()
	defer s.hotStmts.mu.Unlock()
	if st, ok := s.hotStmts.m[q]; ok {
		return st, nil
	}
	text := q
	if s.dialect == dialectPostgres {
		text = numberPlaceholders(q)
	}
	st, err := s.sqlR.PrepareContext(ctx, text)
	if err != nil {
		return nil, dbErr(err)
	}
	if s.hotStmts.m == nil {
		s.hotStmts.m = map[string]*sql.Stmt{}
	}
	s.hotStmts.m[q] = st
	return st, nil
}

// closeHot closes the prepared statements, before the databases.
func (s *Store) closeHot() {
	s.hotStmts.mu.Lock()
	defer s.hotStmts.mu.Unlock()
	for _, st := range s.hotStmts.m {
		st.Close()
	}
	s.hotStmts.m = nil
}

// readCtx is the context of a read: on SQLite without its cancellation,
// as for every read (Store.query; modernc.org/sqlite watches a
// cancellable context with a goroutine per statement).
func (s *Store) readCtx(ctx context.Context) context.Context {
	if s.dialect == dialectPostgres {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
