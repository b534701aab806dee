package lineage

import (
	"context"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// FuzzAnalyze: no input makes Analyze panic, and a result always says
// something for every column (a column is either resolved or not; never
// resolved with lineage that was cut short).
func FuzzAnalyze(f *testing.F) {
	for _, tc := range lineageCases {
		f.Add(tc.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		res, err := Analyze(sql, testCat)
		if err != nil {
			return
		}
		for _, c := range res.Columns {
			if c.Name == "" && c.Resolved && len(c.Sources) > 0 {
				t.Errorf("%q: column with sources but no name", sql)
			}
		}
		_ = res.ColumnsFor(len(res.Columns) + 1)
	})
}

// TestDeepNesting: nesting beyond the analyzer's bound leaves the value
// unresolved instead of recursing without limit.
func TestDeepNesting(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{50, 400} {
		sql := "SELECT " + strings.Repeat("upper(", depth) + "email" + strings.Repeat(")", depth) + " FROM users"
		res, err := Analyze(sql, testCat)
		if err != nil {
			continue // the parser's own stack limit refused it: fail closed too
		}
		c := res.Columns[0]
		if depth < maxDepth && (!c.Resolved || len(c.Sources) != 1) {
			t.Errorf("depth %d: got %+v, want resolved to users.email", depth, c)
		}
		if depth > maxDepth && c.Resolved {
			t.Errorf("depth %d: got %+v, want unresolved", depth, c)
		}
	}
	sub := "SELECT email FROM users"
	for range 300 {
		sub = "SELECT * FROM (" + sub + ") s"
	}
	if res, err := Analyze(sub, testCat); err == nil && res.Columns[0].Resolved {
		t.Errorf("300 nested subqueries: got %+v, want unresolved", res.Columns[0])
	}
}

// BenchmarkAnalyzeStmt: the same without parsing (most of the cost).
func BenchmarkAnalyzeStmt(b *testing.B) {
	tree, err := pg.Parse(benchSQL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnalyzeStmt(context.Background(), tree.Stmts[0].Stmt, testCat); err != nil {
			b.Fatal(err)
		}
	}
}

const benchSQL = `SELECT u.id, upper(u.email) AS e, c.ssn FROM users u JOIN customers c ON c.id = u.id WHERE u.name = $1`

// BenchmarkAnalyze: a typical 3-column SELECT with a warm catalog cache.
func BenchmarkAnalyze(b *testing.B) {
	const sql = benchSQL
	if _, err := Analyze(sql, testCat); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(sql, testCat); err != nil {
			b.Fatal(err)
		}
	}
}
