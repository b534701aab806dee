package sqlkind

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Statements that look like reads but run code the text does not name:
// each must give the catalog check (Resolve) something to look up, or the
// user code it may run is never seen.
func TestReviewHiddenNamesAreCollected(t *testing.T) {
	tests := []struct {
		name, sql           string
		operators, types    []string
		attrs               []string
		objects, notObjects []string
	}{
		// PostgreSQL compares with the = its search_path finds, which may
		// be a user's = (SET search_path = public, pg_catalog).
		{name: "simple CASE", sql: "SELECT CASE x WHEN 1 THEN 'a' END FROM t", operators: []string{"="}},
		{name: "JOIN USING", sql: "SELECT * FROM a JOIN b USING (id)", operators: []string{"="}},
		{name: "NATURAL JOIN", sql: "SELECT * FROM a NATURAL JOIN b", operators: []string{"="}},
		{name: "IN sub-select", sql: "SELECT 1 WHERE 1 IN (SELECT 1)", operators: []string{"="}},
		{name: "NOT IN sub-select", sql: "SELECT 1 WHERE 1 NOT IN (SELECT 1)", operators: []string{"="}},
		// Converting input into a type runs a domain's CHECK.
		{name: "column definition list", sql: `SELECT * FROM jsonb_to_record('{}') AS r(a dom)`, types: []string{"dom"}},
		{name: "ROWS FROM column definitions", sql: `SELECT * FROM ROWS FROM (jsonb_to_record('{}') AS (a dom))`, types: []string{"dom"}},
		{name: "XMLTABLE column", sql: `SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS b dom PATH 'b')`, types: []string{"dom"}},
		{name: "XMLSERIALIZE target", sql: `SELECT XMLSERIALIZE(CONTENT '<a/>' AS dom)`, types: []string{"dom"}},
		{name: "PREPARE parameter types", sql: "PREPARE p(dom, int) AS SELECT 1", types: []string{"dom", "pg_catalog.int4"}},
		// a.b.c may call b(a) or c(a.b).
		{name: "three-part column reference", sql: "SELECT x.y.z FROM t x", attrs: []string{"y", "z"}},
		// The table a statement changes is never a CTE of the same name.
		{name: "DELETE from a table a CTE shadows", sql: "WITH t AS (SELECT 1) DELETE FROM t", objects: []string{"t"}},
		{name: "UPDATE of a table a CTE shadows", sql: "WITH t AS (SELECT 1) UPDATE t SET x = 1", objects: []string{"t"}},
		{name: "INSERT into a table a CTE shadows", sql: "WITH t AS (SELECT 1) INSERT INTO t SELECT * FROM t", objects: []string{"t"}},
		{name: "MERGE into a table a CTE shadows", sql: "WITH t AS (SELECT 1 AS x) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", objects: []string{"s", "t"}},
		{name: "a CTE read is still not a table", sql: "WITH t AS (SELECT 1) SELECT * FROM t", notObjects: []string{"t"}},
	}
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := p.Classify(tt.sql)
			if c.Kind == Unknown && c.pending == Unknown {
				t.Fatalf("%s: unknown without a catalog check: %s", tt.sql, c.Reason)
			}
			for _, want := range [][2][]string{{tt.operators, c.Operators}, {tt.types, c.Types}, {tt.attrs, c.attrs}, {tt.objects, c.Objects}} {
				for _, n := range want[0] {
					if !slices.Contains(want[1], n) {
						t.Errorf("%s: %q missing from %q", tt.sql, n, want[1])
					}
				}
			}
			for _, n := range tt.notObjects {
				if slices.Contains(c.Objects, n) {
					t.Errorf("%s: %q is a CTE, not a relation: %q", tt.sql, n, c.Objects)
				}
			}
		})
	}
}

// fakeCatalog answers from maps; every function in it is a stable
// built-in unless listed in user.
type fakeCatalog struct {
	user    map[string]bool
	views   map[string][]string
	casts   []string
	missing map[string]bool // relations not in the catalog
}

func (f fakeCatalog) Functions(_ context.Context, names []string) (map[string]FuncInfo, error) {
	out := map[string]FuncInfo{}
	for _, n := range names {
		out[n] = FuncInfo{Volatility: Stable, BuiltIn: !f.user[n]}
	}
	return out, nil
}

func (f fakeCatalog) Operators(_ context.Context, names []string) (map[string]FuncInfo, error) {
	out := map[string]FuncInfo{}
	for _, n := range names {
		out[n] = FuncInfo{Volatility: Immutable, BuiltIn: !strings.Contains(n, ".") || strings.HasPrefix(n, "pg_catalog.")}
	}
	return out, nil
}

func (f fakeCatalog) Types(_ context.Context, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func (f fakeCatalog) Relations(_ context.Context, names []string) (map[string]RelationInfo, error) {
	out := map[string]RelationInfo{}
	for _, n := range names {
		if !f.missing[n] {
			out[n] = RelationInfo{Views: f.views[n]}
		}
	}
	return out, nil
}

type checkedCatalog struct {
	fakeCatalog
	checks map[string][]string
}

func (f checkedCatalog) Relations(_ context.Context, names []string) (map[string]RelationInfo, error) {
	out := map[string]RelationInfo{}
	for _, n := range names {
		out[n] = RelationInfo{Checks: f.checks[n]}
	}
	return out, nil
}

type castingCatalog struct{ fakeCatalog }

func (f castingCatalog) UserImplicitCasts(context.Context) ([]string, error) { return f.casts, nil }

func TestReviewResolveFailsClosed(t *testing.T) {
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	plain := fakeCatalog{views: map[string][]string{"public.v": {"SELECT 1"}},
		missing: map[string]bool{"pg_temp.v": true, "made_in_this_tx": true}}
	casting := castingCatalog{fakeCatalog{casts: []string{"mood -> text"}}}
	user := map[string]bool{"claims": true, "validates": true}
	checked := checkedCatalog{fakeCatalog{user: user}, map[string][]string{
		"folds":    {"((x > 0) AND (claims() > 0))"},
		"folds_op": {"(x > 0)", "(1 OPERATOR(public.===) 2)"},
		"columns":  {"validates(x)", "(x + validates(x + 1))"},
	}}
	tests := []struct {
		name, sql string
		cat       Catalog
		want      Kind
		reason    string
	}{
		{"database-qualified relation", "SELECT * FROM app.public.v", plain, Unknown, "names a database"},
		{"schema-qualified relation", "SELECT * FROM public.v", plain, Read, ""},
		{"the pg_temp alias", "SELECT * FROM pg_temp.v", plain, Unknown, "not in the upstream catalog"},
		{"a relation the catalog cannot see", "SELECT * FROM made_in_this_tx", plain, Unknown, "not in the upstream catalog"},
		{"a write keeps its kind", "INSERT INTO made_in_this_tx VALUES (1)", plain, Write, ""},
		{"a migration keeps its kind", "CREATE TABLE made_in_this_tx (x int); INSERT INTO made_in_this_tx VALUES (1)", plain, Schema, ""},
		{"table_to_xml reads a relation named by a string", "SELECT table_to_xml('v', true, false, '')", plain, Unknown, "named at run time"},
		{"qualified schema_to_xml", "SELECT pg_catalog.schema_to_xml('public', true, false, '')", plain, Unknown, "named at run time"},
		{"database_to_xml", "SELECT database_to_xml(true, false, '')", plain, Unknown, "named at run time"},
		{"populate a row type", "SELECT jsonb_populate_record(t, '{}') FROM t", plain, Unknown, "domain checks"},
		{"populate a record set", "SELECT * FROM json_populate_recordset(NULL::t, '[]')", plain, Unknown, "domain checks"},
		{"record_in of a row type", "SELECT record_in('(x)'::cstring, 'has_checked'::regtype, -1)", plain, Unknown, "domain checks"},
		{"array_in of a domain", "SELECT array_in('{x}'::cstring, 'checked'::regtype, -1)", plain, Unknown, "domain checks"},
		{"domain_in", "SELECT pg_catalog.domain_in('x'::cstring, 'checked'::regtype, -1) IS NULL", plain, Unknown, "domain checks"},
		{"functional notation of nextval", "SELECT (x).nextval FROM (SELECT 'sq'::text AS x) s", plain, Unknown, "changes state"},
		{"functional notation of an advisory lock", "SELECT s.pg_advisory_lock FROM (SELECT 42::bigint) s", plain, Unknown, "changes state"},
		{"a constant call in a constraint is folded", "SELECT * FROM folds WHERE x = 1", checked, Unknown, "planning folds"},
		{"a constant operator in a constraint is folded", "SELECT * FROM folds_op", checked, Unknown, "planning folds"},
		{"calls taking a column are not folded", "SELECT * FROM columns WHERE x = 1", checked, Read, ""},
		{"implicit cast in the database", "SELECT lower(m) FROM moods", casting, Unknown, "mood -> text"},
		{"implicit cast, no value reached", "SELECT 1", casting, Read, ""},
		{"no implicit cast", "SELECT lower(m) FROM moods", plain, Read, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Resolve(context.Background(), p.Classify(tt.sql), tt.cat)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("%s: got %v (%s), want %v (%s)", tt.sql, got.Kind, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

// The target of a write is in Objects however the text is shaped, so
// "audit changes --object t" finds it.
func TestReviewWriteTargetObjects(t *testing.T) {
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	got := p.Classify("WITH t AS (SELECT 1), d AS (DELETE FROM t RETURNING 1) SELECT * FROM d").Objects
	if !reflect.DeepEqual(got, []string{"t"}) {
		t.Errorf("objects %q, want [t]", got)
	}
}

// EXPLAIN EXECUTE p plans p (folding its immutable calls, evaluating its
// parameters), so it is as dangerous as p: it takes p's classification,
// and an EXPLAIN of a name the session does not know is unknown.
func TestReviewExplainExecuteTakesThePrepared(t *testing.T) {
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	prepared := map[string]Classification{
		"del": p.Classify("PREPARE del AS DELETE FROM t"),
		"sel": p.Classify("PREPARE sel AS SELECT 1"),
		"usr": p.Classify("PREPARE usr AS SELECT lies()"),
	}
	lookup := func(name string) (Classification, bool) { c, ok := prepared[name]; return c, ok }
	tests := []struct {
		sql  string
		want Kind
	}{
		{"EXPLAIN EXECUTE sel", Read},
		{"EXPLAIN EXECUTE del", Write},
		{"EXPLAIN EXECUTE usr", Unknown},
		{"EXPLAIN EXECUTE missing", Unknown},
		{"EXPLAIN (ANALYZE) EXECUTE del", Write},
		{"EXPLAIN ANALYZE EXECUTE sel", Read},
		{"EXPLAIN (COSTS OFF) EXECUTE sel(lower('a'))", Read},
	}
	for _, tt := range tests {
		if got := p.ClassifyWithPrepared(tt.sql, lookup); got.Kind != tt.want {
			t.Errorf("%q: got %v (%s), want %v", tt.sql, got.Kind, got.Reason, tt.want)
		}
	}
	if got := p.Classify("EXPLAIN EXECUTE sel"); got.Kind != Unknown {
		t.Errorf("EXPLAIN EXECUTE without a lookup is %v", got.Kind)
	}
}
