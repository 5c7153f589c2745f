package inbox

import (
	"strings"
	"sync"

	"gorm.io/gorm"
)

// CountStatements makes the store record the SQL of every statement it
// runs through gorm, on its write and read pools, from now on; the
// returned function lists them (oldest first) and forgets them. Tests
// count what a heartbeat costs.
func (s *Store) CountStatements() (take func() []string) {
	var mu sync.Mutex
	var stmts []string
	record := func(tx *gorm.DB) {
		mu.Lock()
		stmts = append(stmts, strings.Join(strings.Fields(tx.Statement.SQL.String()), " "))
		mu.Unlock()
	}
	dbs := []*gorm.DB{s.db}
	if s.rdb != s.db {
		dbs = append(dbs, s.rdb)
	}
	for _, db := range dbs {
		cb := db.Callback()
		cb.Query().After("gorm:query").Register("test:count", record)
		cb.Row().After("gorm:row").Register("test:count", record)
		cb.Raw().After("gorm:raw").Register("test:count", record)
		cb.Create().After("gorm:create").Register("test:count", record)
		cb.Update().After("gorm:update").Register("test:count", record)
		cb.Delete().After("gorm:delete").Register("test:count", record)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := stmts
		stmts = nil
		return got
	}
}
