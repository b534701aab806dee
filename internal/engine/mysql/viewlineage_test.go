package mysql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/pingcap/tidb/pkg/parser"
)

// testCatalog builds a view catalog from "schema.name" -> definition and
// columns, as fetchViews would from information_schema.
func testCatalog(views map[string]viewInfo) *viewCatalog {
	cat := &viewCatalog{views: map[viewKey]*viewInfo{}, lower: map[string]bool{}, names: map[string]bool{},
		tables: map[string]bool{"d.t": true, "e.t": true, "e.v": true},
		cls:    sqlkind.NewMySQL(sqlkind.MySQLOptions{CacheSize: -1}),
		fetchColumns: func(schema, table string) ([]string, error) {
			if schema == "d" && table == "t" {
				return []string{"id", "ssn"}, nil
			}
			return nil, nil
		}}
	for k, v := range views {
		schema, name, _ := strings.Cut(k, ".")
		cat.views[viewKey{schema, name}] = &v
		cat.lower[strings.ToLower(k)] = true
		cat.names[strings.ToLower(name)] = true
	}
	return cat
}

// Definitions are written as MariaDB stores them (information_schema.VIEWS).
var testViews = map[string]viewInfo{
	"d.v":      {def: "select `d`.`t`.`id` AS `id`,`d`.`t`.`ssn` AS `contact`,`d`.`t`.`name` AS `name` from `d`.`t`", cols: []string{"id", "contact", "name"}},
	"d.vv":     {def: "select `v`.`contact` AS `c2`,`v`.`name` AS `n2` from `d`.`v`", cols: []string{"c2", "n2"}},
	"d.expr":   {def: "select concat(`d`.`t`.`ssn`,'') AS `a`,lcase(`d`.`t`.`name`) AS `b` from `d`.`t`", cols: []string{"a", "b"}},
	"d.un":     {def: "select `d`.`t`.`name` AS `x` from `d`.`t` union all select `d`.`t`.`ssn` AS `ssn` from `d`.`t`", cols: []string{"x"}},
	"d.fn":     {def: "select `d`.`f`(`d`.`t`.`name`) AS `fx`,`d`.`t`.`name` AS `name` from `d`.`t`", cols: []string{"fx", "name"}},
	"d.hidden": {def: "", cols: []string{"a"}},
	"d.short":  {def: "select `d`.`t`.`id` AS `id` from `d`.`t`", cols: []string{"id", "extra"}},
	"d.sub":    {def: "select (select max(`d`.`t`.`ssn`) from `d`.`t`) AS `m`,`d`.`t`.`id` AS `id` from `d`.`t`", cols: []string{"m", "id"}},
	"d.der":    {def: "select `x`.`s` AS `s` from (select `d`.`t`.`ssn` AS `s` from `d`.`t`) `x`", cols: []string{"s"}},
	"d.loop":   {def: "select `loop`.`a` AS `a` from `d`.`loop`", cols: []string{"a"}},
	"e.other":  {def: "select `v`.`name` AS `n` from `d`.`v`", cols: []string{"n"}},
}

func TestAnalyzeViews(t *testing.T) {
	t.Parallel()
	cat := testCatalog(testViews)
	tests := []struct {
		name, query string
		want        string // per column: sources joined by "+", "?" unresolved
	}{
		{"plain", "SELECT id, contact, name FROM v", "d.t.id+d.v.id | d.t.ssn+d.v.contact | d.t.name+d.v.name"},
		{"star", "SELECT * FROM v", "d.t.id+d.v.id | d.t.ssn+d.v.contact | d.t.name+d.v.name"},
		{"alias", "SELECT x.contact AS c FROM v x", "d.t.ssn+d.v.contact"},
		{"expression", "SELECT upper(contact), id + 1 FROM v", "d.t.ssn+d.v.contact | d.t.id+d.v.id"},
		{"view of a view", "SELECT c2, n2 FROM vv", "d.t.ssn+d.v.contact+d.vv.c2 | d.t.name+d.v.name+d.vv.n2"},
		{"computed in the view", "SELECT a, b FROM expr", "d.expr.a+d.t.ssn | d.expr.b+d.t.name"},
		{"union view", "SELECT x FROM un", "d.t.name+d.t.ssn+d.un.x"},
		{"stored function in the view", "SELECT fx, name FROM fn", "? | ?"},
		{"hidden definition", "SELECT a FROM hidden", "?"},
		{"columns do not line up", "SELECT id FROM short", "?"},
		{"subquery in the view", "SELECT m, id FROM sub", "? | d.sub.id+d.t.id"},
		{"derived table in the view", "SELECT s FROM der", "d.der.s+d.t.ssn"},
		{"recursion bound", "SELECT a FROM loop", "?"},
		{"other schema", "SELECT n FROM e.other", "d.t.name+d.v.name+e.other.n"},
		{"a view's name in another schema", "SELECT n FROM other", "?"},
		{"a table named like a view elsewhere, qualified", "SELECT v.x, o.n FROM e.v, e.other o", "e.v.x | d.t.name+d.v.name+e.other.n"},
		{"join with a table, qualified", "SELECT v.contact, t.name FROM v JOIN t ON v.id = t.id", "d.t.ssn+d.v.contact | d.t.name"},
		{"join with a table, unqualified", "SELECT contact FROM v JOIN t ON v.id = t.id", "?"},
		{"star over a table", "SELECT * FROM v JOIN t ON v.id = t.id", ""},
		{"natural join star", "SELECT * FROM v NATURAL JOIN vv", ""},
		{"two views, unqualified", "SELECT contact, n2 FROM v, vv", "d.t.ssn+d.v.contact | d.t.name+d.v.name+d.vv.n2"},
		{"ambiguous", "SELECT name FROM v a, v b", "?"},
		{"unknown column", "SELECT nope FROM v", "?"},
		{"cte", "WITH c AS (SELECT name FROM v) SELECT name FROM c", ""},
		{"union", "SELECT name FROM v UNION SELECT contact FROM v", "d.t.name+d.t.ssn+d.v.contact+d.v.name"},
		{"user variable", "SELECT @x := name FROM v", "?"},
		{"derived", "SELECT q FROM (SELECT contact AS q FROM v) z", "d.t.ssn+d.v.contact"},
		{"other letter case of a view", "SELECT id FROM V", "?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stmt, err := parser.New().ParseOneStmt(tc.query, "", "")
			if err != nil {
				t.Fatal(err)
			}
			n := strings.Count(tc.want, "|") + 1
			got := analyzeViews(cat, stmt, "d", n)
			if s := describe(got); s != tc.want {
				t.Fatalf("%s:\n got %q\nwant %q", tc.query, s, tc.want)
			}
		})
	}
}

func describe(cols []mask.Column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		if !c.Resolved {
			parts[i] = "?"
			continue
		}
		s := make([]string, len(c.Sources))
		for j, x := range c.Sources {
			s[j] = fmt.Sprintf("%s.%s.%s", x.Schema, x.Table, x.Column)
		}
		parts[i] = strings.Join(s, "+")
	}
	return strings.Join(parts, " | ")
}

// Any statement naming a view is traced through the text; without a
// catalog, any statement naming a relation is. A relation the cached
// catalog does not list has it reloaded: a view created since is seen.
func TestReadsView(t *testing.T) {
	t.Parallel()
	cached := testCatalog(testViews)
	withNew := map[string]viewInfo{"d.newv": {def: "select `d`.`t`.`ssn` AS `s` from `d`.`t`", cols: []string{"s"}}}
	for k, v := range testViews {
		withNew[k] = v
	}
	reloaded := testCatalog(withNew)
	loaded := func() *viewLookup {
		return &viewLookup{load: func(force bool) (*viewCatalog, error) {
			if force {
				return reloaded, nil
			}
			return cached, nil
		}}
	}
	failed := &viewLookup{load: func(bool) (*viewCatalog, error) { return nil, fmt.Errorf("down") }}
	tests := []struct {
		query        string
		views, noCat bool
	}{
		{"SELECT * FROM t", false, true},
		{"SELECT 1", false, false},
		{"SELECT 1 FROM DUAL", false, false},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM v)", true, true},
		{"SELECT * FROM e.v", false, true},
		{"SELECT * FROM other", true, true}, // e.other, if prepared in e
		{"SELECT * FROM d.v", true, true},
		{"SELECT * FROM V", true, true},
		{"SELECT * FROM (SELECT * FROM vv) x", true, true},
		{"SELECT * FROM newv", true, true},
		{"SELECT * FROM temporary_table", false, true},
		{"WITH newv AS (SELECT 1) SELECT * FROM newv", false, false},
	}
	for _, tc := range tests {
		stmt, err := parser.New().ParseOneStmt(tc.query, "", "")
		if err != nil {
			t.Fatal(err)
		}
		ctes := analyzeLineage(tc.query, "d").derived
		if got := readsView(stmt, loaded(), "d", ctes); got != tc.views {
			t.Errorf("%s: readsView %v, want %v", tc.query, got, tc.views)
		}
		if got := readsView(stmt, failed, "d", ctes); got != tc.noCat {
			t.Errorf("%s without a catalog: readsView %v, want %v", tc.query, got, tc.noCat)
		}
	}
}

// The cost of tracing a statement through a view of a view once the
// catalog holds their analyses (the statement's own parse is the masker's
// in any case and not counted).
func BenchmarkAnalyzeViews(b *testing.B) {
	cat := testCatalog(testViews)
	stmt, err := parser.New().ParseOneStmt("SELECT x.c2, upper(x.n2) FROM vv x", "", "")
	if err != nil {
		b.Fatal(err)
	}
	lookup := &viewLookup{load: func(bool) (*viewCatalog, error) { return cat, nil }}
	b.ReportAllocs()
	for b.Loop() {
		if !readsView(stmt, lookup, "d", nil) || analyzeViews(cat, stmt, "d", 2) == nil {
			b.Fatal("not traced")
		}
	}
}

// Whatever the statement, tracing it neither panics nor returns a column
// count other than asked for.
func FuzzAnalyzeViews(f *testing.F) {
	for _, q := range []string{
		"SELECT * FROM v", "SELECT x.contact FROM v x JOIN t ON x.id = t.id", "SELECT a FROM (SELECT c2 a FROM vv) d",
		"SELECT name FROM v UNION (SELECT n2 FROM vv UNION SELECT 1)", "SELECT * FROM v NATURAL JOIN t",
		"WITH c AS (SELECT * FROM v) SELECT * FROM c", "SELECT (SELECT 1), @a, s FROM der, loop",
	} {
		f.Add(q, 2)
	}
	cat := testCatalog(testViews)
	lookup := &viewLookup{load: func(bool) (*viewCatalog, error) { return cat, nil }}
	f.Fuzz(func(t *testing.T, q string, n int) {
		if n < 0 || n > 64 {
			return
		}
		stmts, _, err := parser.New().Parse(q, "", "")
		if err != nil || len(stmts) != 1 {
			return
		}
		readsView(stmts[0], lookup, "d", nil)
		if got := analyzeViews(cat, stmts[0], "d", n); got != nil && len(got) != n {
			t.Fatalf("%s: %d columns, asked for %d", q, len(got), n)
		}
	})
}
