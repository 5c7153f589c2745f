package inboxtest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// InsertRows inserts rows (each a value per column of cols, a
// comma-separated list) into table in one multi-row INSERT on tx, with
// the placeholders of the engine ($1... on PostgreSQL, ? on SQLite): a
// test-only shortcut around the store, for seeding a benchmark's large
// database in seconds. Keep rows*columns under 32,766 (SQLite's variable
// limit; PostgreSQL's is 65,535). An error fails tb.
func InsertRows(tb testing.TB, tx *sql.Tx, postgres bool, table, cols string, rows [][]any) {
	tb.Helper()
	if len(rows) == 0 {
		return
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "INSERT INTO %s (%s) VALUES ", table, cols)
	args := make([]any, 0, len(rows)*len(rows[0]))
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(")
		for j, v := range r {
			if j > 0 {
				sb.WriteString(",")
			}
			args = append(args, v)
			if postgres {
				fmt.Fprintf(&sb, "$%d", len(args))
			} else {
				sb.WriteString("?")
			}
		}
		sb.WriteString(")")
	}
	if _, err := tx.ExecContext(context.Background(), sb.String(), args...); err != nil {
		tb.Fatalf("insert into %s: %v", table, err)
	}
}
