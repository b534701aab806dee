package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// DumpForTest reads every value of every table, raw, for the secret check.
func DumpForTest(t *testing.T, st Store) [][]byte {
	t.Helper()
	switch s := st.(type) {
	case *SQLite:
		return dumpSQLite(t, s.r)
	case *Postgres:
		return dumpPostgres(t, s)
	}
	t.Fatalf("DumpForTest: unknown store %T", st)
	return nil
}

func dumpSQLite(t *testing.T, db *sql.DB) [][]byte {
	ctx := context.Background()
	tables, err := queryStrings(ctx, db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, tbl := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+tbl+`"`)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", tbl, err)
			}
			for _, v := range vals {
				out = append(out, asBytes(v))
			}
		}
		rows.Close()
	}
	return out
}

func dumpPostgres(t *testing.T, p *Postgres) [][]byte {
	ctx := context.Background()
	rows, err := p.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		tables = append(tables, s)
	}
	rows.Close()
	var out [][]byte
	for _, tbl := range tables {
		rows, err := p.pool.Query(ctx, `SELECT * FROM "`+tbl+`"`)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		for rows.Next() {
			for _, v := range rows.RawValues() {
				out = append(out, append([]byte(nil), v...))
			}
		}
		rows.Close()
	}
	return out
}

func asBytes(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	default:
		return fmt.Append(nil, v)
	}
}

// PragmasForTest reads the settings of a reader connection of a SQLite store.
func PragmasForTest(t *testing.T, st Store) map[string]string {
	s := st.(*SQLite)
	out := map[string]string{}
	for _, db := range []*sql.DB{s.w, s.r} {
		for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout"} {
			var v string
			if err := db.QueryRow("PRAGMA " + p).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", p, err)
			}
			if prev, ok := out[p]; ok && prev != v {
				t.Fatalf("PRAGMA %s differs between writer (%s) and reader (%s)", p, prev, v)
			}
			out[p] = v
		}
	}
	return out
}

// SetSynchronousForTest changes PRAGMA synchronous on the writer's one
// connection, so a benchmark can show what synchronous=FULL costs.
func SetSynchronousForTest(tb testing.TB, st Store, mode string) {
	if _, err := st.(*SQLite).w.Exec("PRAGMA synchronous = " + mode); err != nil {
		tb.Fatalf("PRAGMA synchronous = %s: %v", mode, err)
	}
}
