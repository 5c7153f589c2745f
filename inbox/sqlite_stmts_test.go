package inbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// countingDriver counts the statements SQLite prepares.
type countingDriver struct {
	driver.Driver
	prepares *atomic.Int64
}

func (d countingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return countingConn{c.(sqliteConn), d.prepares}, nil
}

type countingConn struct {
	sqliteConn
	prepares *atomic.Int64
}

func (c countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.prepares.Add(1)
	return c.sqliteConn.PrepareContext(ctx, query)
}

// openCached opens a SQLite file through stmtConnector, as the store's
// writer, counting what SQLite prepares.
func openCached(t *testing.T) (*sql.DB, *atomic.Int64) {
	t.Helper()
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	var n atomic.Int64
	db := sql.OpenDB(stmtConnector{dsn: "file:" + filepath.Join(t.TempDir(), "s.db") + "?_txlock=immediate",
		d: countingDriver{probe.Driver(), &n}})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, &n
}

// gorm, with its statements prepared, prepares a statement once per
// connection, not once per use in a transaction (database/sql prepares a
// statement cached by an earlier transaction again at every use).
func TestWriterPreparesOnce(t *testing.T) {
	db, prepares := openCached(t)
	g, err := gorm.Open(sqlite.Dialector{DriverName: "sqlite", Conn: db}, preparing(gormConfig()))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID int64
		V  string
	}
	before := prepares.Load()
	for range 3 {
		err := g.Transaction(func(tx *gorm.DB) error {
			for i := range 20 {
				if err := tx.Table("t").Create(&row{V: fmt.Sprint(i)}).Error; err != nil {
					return err
				}
				var got []row
				if err := tx.Table("t").Where("v = ?", fmt.Sprint(i)).Find(&got).Error; err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Transaction() = %v", err)
		}
	}
	got := prepares.Load() - before
	var n int64
	g.Table("t").Count(&n)
	// The INSERT and the SELECT, each once (BEGIN and COMMIT are not
	// prepared through database/sql).
	if n != 60 || got != 2 {
		t.Fatalf("60 inserts and 60 selects in 3 transactions prepared %d statements (%d rows), want 2", got, n)
	}
}

// A query whose rows are still open while the same query runs again gets
// a prepared copy of its own; a mistake is reported at Prepare; a
// connection keeps at most maxCachedQueries statements.
func TestWriterStatementCopies(t *testing.T) {
	db, prepares := openCached(t)
	ctx := context.Background()
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT v FROM t WHERE id >= ? ORDER BY id`
	outer, err := tx.Query(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var v string
		outer.Scan(&v)
		var inner []string
		rows, err := tx.Query(q, 2)
		if err != nil {
			t.Fatalf("the same query while its rows are open: %v", err)
		}
		for rows.Next() {
			var w string
			rows.Scan(&w)
			inner = append(inner, w)
		}
		rows.Close()
		got = append(got, v+fmt.Sprint(inner))
	}
	outer.Close()
	if fmt.Sprint(got) != "[0[1 2] 1[1 2] 2[1 2]]" {
		t.Fatalf("nested queries read %v", got)
	}
	if _, err := tx.Prepare(`SELEKT 1`); err == nil {
		t.Fatal("Prepare() of a mistake = nil")
	}
	tx.Rollback()

	before := prepares.Load()
	for i := range maxCachedQueries + 10 {
		if _, err := db.Exec(fmt.Sprintf(`SELECT %d`, i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.Raw(func(dc any) error {
		if n := len(dc.(*stmtConn).free); n > maxCachedQueries {
			t.Errorf("the connection keeps %d statements, over %d", n, maxCachedQueries)
		}
		return nil
	})
	conn.Close()
	// Each once; those beyond the bound twice (checked at Prepare, not
	// kept, prepared again to run).
	if n := prepares.Load() - before; n > maxCachedQueries+10+20 {
		t.Errorf("%d distinct queries prepared %d statements", maxCachedQueries+10, n)
	}
	// What is kept is used again.
	before = prepares.Load()
	for range 10 {
		db.Exec(`SELECT 1`)
	}
	if n := prepares.Load() - before; n != 0 {
		t.Errorf("a kept statement prepared %d times again", n)
	}
}
