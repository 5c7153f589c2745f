package inbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
)

// The SQLite writer's connection keeps every statement it has prepared
// (stmtConn), and each use of a statement borrows a prepared copy of it
// for as long as it runs. database/sql prepares a statement again for
// every use inside a transaction once gorm has cached it as belonging to
// an earlier one (Tx.StmtContext re-prepares a statement from another
// transaction), and SQLite's parser was a fifth of the CPU of a mailbox's
// first import, which runs a dozen gorm statements per mail in one
// transaction per batch (docs/benchmarks.md).

// maxCachedQueries bounds the distinct statements one connection keeps
// (statements with IN lists vary in length), and maxCopies the prepared
// copies of one statement (as many as run at once: a query whose rows
// are still open while the same one runs again).
const (
	maxCachedQueries = 512
	maxCopies        = 4
)

// stmtConnector opens SQLite connections that keep their statements; d
// is modernc.org/sqlite's driver as registered ("sqlite").
type stmtConnector struct {
	dsn string
	d   driver.Driver
}

func (c stmtConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.d.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, errors.New("inbox: the SQLite driver's connection lacks a method the statement cache needs")
	}
	return &stmtConn{sqliteConn: inner, free: map[string][]driver.Stmt{}}, nil
}

func (c stmtConnector) Driver() driver.Driver { return c.d }

// sqliteConn is what modernc.org/sqlite's connection implements and
// stmtConn passes on. ExecContext and QueryContext are left out on
// purpose: without them database/sql prepares every statement, which
// stmtConn serves from its cache.
type sqliteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.SessionResetter
	driver.Validator
	driver.Pinger
}

// stmtConn is a connection with its prepared statements, free for use,
// by query. database/sql uses a connection from one goroutine at a time;
// the mutex covers the Close of rows or statements from another one.
type stmtConn struct {
	sqliteConn
	mu   sync.Mutex
	free map[string][]driver.Stmt
}

// borrow returns a prepared copy of query that nothing else uses until it
// is given back.
func (c *stmtConn) borrow(ctx context.Context, query string) (driver.Stmt, error) {
	c.mu.Lock()
	if copies := c.free[query]; len(copies) > 0 {
		s := copies[len(copies)-1]
		c.free[query] = copies[:len(copies)-1]
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	return c.sqliteConn.PrepareContext(ctx, query)
}

// giveBack keeps s for the next use of query, or closes it when the cache
// is full.
func (c *stmtConn) giveBack(query string, s driver.Stmt) {
	c.mu.Lock()
	copies, known := c.free[query]
	if len(copies) < maxCopies && (known || len(c.free) < maxCachedQueries) {
		c.free[query] = append(copies, s)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	s.Close()
}

func (c *stmtConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares query (or finds it prepared), so that a
// mistake in it is reported here, and returns a statement that borrows a
// prepared copy at each use. (Keeping the copy for the first use would
// save a prepare only for statements beyond maxCachedQueries, and cost
// one for each statement gorm prepares in a transaction and then hands
// to Tx.StmtContext, which prepares it again while the first is open.)
func (c *stmtConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.borrow(ctx, query)
	if err != nil {
		return nil, err
	}
	n := s.NumInput()
	c.giveBack(query, s)
	return &cachedStmt{c: c, query: query, inputs: n}, nil
}

// Close closes the statements kept and the connection.
func (c *stmtConn) Close() error {
	c.mu.Lock()
	free := c.free
	c.free = nil
	c.mu.Unlock()
	for _, copies := range free {
		for _, s := range copies {
			s.Close()
		}
	}
	return c.sqliteConn.Close()
}

// cachedStmt is a statement of a stmtConn; it holds no prepared copy
// between uses, so database/sql may keep any number of them open.
type cachedStmt struct {
	c      *stmtConn
	query  string
	inputs int
}

func (s *cachedStmt) Close() error  { return nil }
func (s *cachedStmt) NumInput() int { return s.inputs }

func (s *cachedStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("inbox: Exec without a context") // database/sql uses ExecContext
}

func (s *cachedStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, errors.New("inbox: Query without a context") // database/sql uses QueryContext
}

func (s *cachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	p, err := s.c.borrow(ctx, s.query)
	if err != nil {
		return nil, err
	}
	defer s.c.giveBack(s.query, p)
	return p.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *cachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	p, err := s.c.borrow(ctx, s.query)
	if err != nil {
		return nil, err
	}
	rows, err := p.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		s.c.giveBack(s.query, p)
		return nil, err
	}
	r, ok := rows.(sqliteRows)
	if !ok {
		rows.Close()
		s.c.giveBack(s.query, p)
		return nil, errors.New("inbox: the SQLite driver's rows lack a method the statement cache needs")
	}
	return &cachedRows{sqliteRows: r, release: func() { s.c.giveBack(s.query, p) }}, nil
}

// sqliteRows is what modernc.org/sqlite's rows implement.
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows gives its statement's copy back when closed.
type cachedRows struct {
	sqliteRows
	release func()
}

func (r *cachedRows) Close() error {
	err := r.sqliteRows.Close()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return err
}

var (
	_ driver.Connector          = stmtConnector{}
	_ driver.StmtExecContext    = (*cachedStmt)(nil)
	_ driver.StmtQueryContext   = (*cachedStmt)(nil)
	_ driver.ConnPrepareContext = (*stmtConn)(nil)
	_ io.Closer                 = (*cachedRows)(nil)
)
