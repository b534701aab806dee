package recording_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the raw connection an attacker opens on the file

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
)

// sqliteTamper is the real SQLite store, attacked with raw SQL on its file.
type sqliteTamper struct {
	store.Store
	raw    *sql.DB
	events string // table and column names, found in the schema
	cps    string
	writer string
	seq    string
	data   string
	cpW    string
	cpSeq  string
}

func newSQLiteTamper(t *testing.T) tamperStore {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	s := &sqliteTamper{Store: st, raw: raw}
	s.findSchema(t)
	return s
}

// findSchema finds the recording's tables by their columns, so the attack
// does not depend on the store's naming.
func (s *sqliteTamper) findSchema(t *testing.T) {
	rows, err := s.raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		cols := s.columns(t, tbl)
		writer, seq := pick(cols, "writer"), pick(cols, "seq")
		switch {
		case writer == "" || seq == "":
		case pick(cols, "prev_hash") != "":
			s.events, s.writer, s.seq, s.data = tbl, writer, seq, pick(cols, "data")
		case pick(cols, "signature") != "":
			s.cps, s.cpW, s.cpSeq = tbl, writer, seq
		}
	}
	if s.events == "" || s.cps == "" || s.data == "" {
		t.Fatalf("no events/checkpoints tables found among %v", tables)
	}
}

func (s *sqliteTamper) columns(t *testing.T, tbl string) []string {
	rows, err := s.raw.Query(fmt.Sprintf(`SELECT name FROM pragma_table_info('%s')`, tbl))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		cols = append(cols, n)
	}
	return cols
}

func pick(cols []string, want string) string {
	if slices.Contains(cols, want) {
		return want
	}
	for _, c := range cols {
		if strings.Contains(c, want) {
			return c
		}
	}
	return ""
}

func (s *sqliteTamper) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	res, err := s.raw.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s %v: no row changed", q, args)
	}
}

func (s *sqliteTamper) changeData(t *testing.T, w string, seq int64) {
	// One byte: the '7' of the statement text, keeping the column's type.
	s.exec(t, fmt.Sprintf(`UPDATE %[1]s SET %[2]s = CASE typeof(%[2]s)
		WHEN 'blob' THEN CAST(replace(CAST(%[2]s AS TEXT), '7', '8') AS BLOB)
		ELSE replace(%[2]s, '7', '8') END WHERE %[3]s = ? AND %[4]s = ?`, s.events, s.data, s.writer, s.seq), w, seq)
}

func (s *sqliteTamper) deleteEvent(t *testing.T, w string, seq int64) {
	s.exec(t, fmt.Sprintf(`DELETE FROM %s WHERE %s = ? AND %s = ?`, s.events, s.writer, s.seq), w, seq)
}

func (s *sqliteTamper) swapSeq(t *testing.T, w string, a, b int64) {
	q := fmt.Sprintf(`UPDATE %s SET %s = ? WHERE %s = ? AND %[2]s = ?`, s.events, s.seq, s.writer)
	s.exec(t, q, -1, w, a)
	s.exec(t, q, a, w, b)
	s.exec(t, q, b, w, -1)
}

func (s *sqliteTamper) deleteTail(t *testing.T, w string, from int64) {
	s.exec(t, fmt.Sprintf(`DELETE FROM %s WHERE %s = ? AND %s >= ?`, s.events, s.writer, s.seq), w, from)
	s.exec(t, fmt.Sprintf(`DELETE FROM %s WHERE %s = ? AND %s >= ?`, s.cps, s.cpW, s.cpSeq), w, from)
}

func (s *sqliteTamper) setMarkThrough(t *testing.T, w string, through int64) {
	s.exec(t, `UPDATE retention_marks SET through = ? WHERE writer = ?`, through, w)
}

func (s *sqliteTamper) deleteMark(t *testing.T, w string) {
	s.exec(t, `DELETE FROM retention_marks WHERE writer = ?`, w)
}

func TestTamperSQLite(t *testing.T) { runTamper(t, newSQLiteTamper) }

func TestRetentionSQLite(t *testing.T) { runRetention(t, newSQLiteTamper) }

func BenchmarkAppendDurable(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchAppend(b, st)
}

var _ recording.Store = store.Store(nil)
