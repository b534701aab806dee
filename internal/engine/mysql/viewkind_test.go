package mysql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
)

// viewKindConn is a connection of an engine with the real classifier
// whose kept view catalog is cat (as loaded now): viewClass uses it
// without an upstream.
func viewKindConn(cat *viewCatalog) *conn {
	cat.at = time.Now()
	e := &Engine{o: Options{Classifier: sqlkind.NewMySQL(sqlkind.MySQLOptions{})}}
	return &conn{e: e, res: &config.Resource{Name: "r"}, viewCat: cat}
}

// viewKindOf is the kind viewClass gives text in schema d.
func viewKindOf(c *conn, text string) sqlkind.Classification {
	class, _, stmts := c.e.classifySession(text, nil)
	op := c.newOperation("COM_QUERY", text, nil, class)
	op.g.State.Schema = "d"
	c.viewClass(op, stmts)
	return op.g.Class
}

// Views the engine cannot see to the end of are unknown: a cycle, a
// nesting deeper than maxViewDepth, a definition that does not parse or
// is hidden; views over tables and built-ins stay reads, and a name is
// checked in every reading a dotted object and a USE allow.
func TestViewClass(t *testing.T) {
	views := map[string]viewInfo{
		"d.plain":  {def: "select `d`.`t`.`id` AS `id` from `d`.`t`"},
		"d.fn":     {def: "select `d`.`f`() AS `x`"},
		"d.cyc1":   {def: "select `x` AS `x` from `d`.`cyc2`"},
		"d.cyc2":   {def: "select `x` AS `x` from `d`.`cyc1`"},
		"d.hidden": {def: ""},
		"d.bad":    {def: "select frobnicate from where"},
		"e.fn":     {def: "select `e`.`f`() AS `x`"},
		"d.a.b":    {def: "select `d`.`f`() AS `x`"}, // a view named "a.b"
		"d.lid":    {def: "select last_insert_id(5) AS `x`"},
	}
	for i := 0; i < maxViewDepth+2; i++ {
		views[fmt.Sprintf("d.deep%d", i)] = viewInfo{def: fmt.Sprintf("select `x` AS `x` from `d`.`deep%d`", i+1)}
	}
	views[fmt.Sprintf("d.deep%d", maxViewDepth+2)] = viewInfo{def: "select 1 AS `x`"}
	for i := 0; i < 4; i++ {
		views[fmt.Sprintf("d.near%d", i)] = viewInfo{def: fmt.Sprintf("select `x` AS `x` from `d`.`near%d`", i+1)}
	}
	views["d.near4"] = viewInfo{def: "select upper('a') AS `x`, now() AS `y`"}
	c := viewKindConn(testCatalog(views))
	tests := []struct {
		text string
		kind sqlkind.Kind
		why  string
	}{
		{"SELECT * FROM t", sqlkind.Read, ""},
		{"SELECT * FROM plain", sqlkind.Read, ""},
		{"SELECT * FROM near0", sqlkind.Read, ""},
		{"SELECT * FROM fn", sqlkind.Unknown, "reads view d.fn, whose definition calls d.f()"},
		{"SELECT * FROM D.FN", sqlkind.Unknown, "reads view d.fn"},
		{"SELECT * FROM e.fn", sqlkind.Unknown, "reads view e.fn"},
		{"USE e; SELECT * FROM fn", sqlkind.Unknown, "reads view"},
		{"SELECT * FROM cyc1", sqlkind.Unknown, "reads that view again"},
		{"SELECT * FROM deep0", sqlkind.Unknown, "nested more than"},
		{"SELECT * FROM hidden", sqlkind.Unknown, "SHOW VIEW"},
		{"SELECT * FROM bad", sqlkind.Unknown, "reads view d.bad, whose definition is of kind unknown"},
		{"SELECT * FROM `a.b`", sqlkind.Unknown, "reads view d.a.b"},
		{"SELECT * FROM lid", sqlkind.Write, "reads view d.lid, whose definition is of kind write"},
		{"INSERT INTO t SELECT * FROM fn", sqlkind.Unknown, "reads view d.fn"},
		{"SELECT * FROM (SELECT 1) AS fn", sqlkind.Read, ""}, // an alias, not the view
	}
	for _, tc := range tests {
		got := viewKindOf(c, tc.text)
		if got.Kind != tc.kind || !strings.Contains(got.Reason, tc.why) {
			t.Errorf("%q: %s (%s), want %s (%s)", tc.text, got.Kind, got.Reason, tc.kind, tc.why)
		}
	}
	// The classifier's own (cached) classification is left as it was.
	if k := c.e.o.Classifier.Classify("SELECT * FROM fn").Kind; k != sqlkind.Read {
		t.Fatalf("the classifier's cached classification changed to %s", k)
	}
}

// BenchmarkViewClassTable is the cost viewClass adds to a point select
// over a table (no view named): a map lookup or two, no allocation.
func BenchmarkViewClassTable(b *testing.B) {
	c := viewKindConn(testCatalog(testViews))
	text := "SELECT c FROM t WHERE id = 1"
	class, _, stmts := c.e.classifySession(text, nil)
	op := c.newOperation("COM_QUERY", text, nil, class)
	op.g.State.Schema = "d"
	b.ReportAllocs()
	for b.Loop() {
		c.viewClass(op, stmts)
	}
	if op.g.Class.Kind != sqlkind.Read {
		b.Fatal(op.g.Class.Reason)
	}
}
