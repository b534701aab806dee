package lineage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/mask"
)

// A case lists each output column as "name=src,src" (sources as
// schema.table.column, "u." for public.users, "c." for public.customers),
// with "!" after "=" when the column is unresolved; filters the same way.
type lineageCase struct {
	name    string
	sql     string
	cols    []string
	filters string
	unres   bool // FilterUnresolved
}

var lineageCases = []lineageCase{
	// Output lineage: the dodges of issue 6.
	{"alias", `SELECT email AS e FROM users u`, []string{"e=u.email"}, "", false},
	{"upper", `SELECT upper(email) FROM users`, []string{"upper=u.email"}, "", false},
	{"substr", `SELECT substr(ssn, 1, 3) FROM customers`, []string{"substr=c.ssn"}, "", false},
	{"concat op", `SELECT email || '' FROM users`, []string{"?column?=u.email"}, "", false},
	{"row_to_json", `SELECT row_to_json(c) FROM customers c`, []string{"row_to_json=c.email,c.id,c.note,c.ssn"}, "", false},
	{"to_jsonb", `SELECT to_jsonb(c) FROM customers c`, []string{"to_jsonb=c.email,c.id,c.note,c.ssn"}, "", false},
	{"row_to_json star", `SELECT row_to_json(c.*) FROM customers c`, []string{"row_to_json=c.email,c.id,c.note,c.ssn"}, "", false},
	{"whole row cast", `SELECT c::text FROM customers c`, []string{"c=c.email,c.id,c.note,c.ssn"}, "", false},
	{"table as value", `SELECT users FROM users`, []string{"users=u.email,u.id,u.name"}, "", false},
	{"cast", `SELECT ssn::int FROM customers`, []string{"ssn=c.ssn"}, "c.ssn", false},
	{"string_agg", `SELECT string_agg(email, ',') FROM users`, []string{"string_agg=u.email"}, "", false},
	{"array_agg", `SELECT array_agg(ssn) FROM customers`, []string{"array_agg=c.ssn"}, "", false},
	{"json_agg whole row", `SELECT json_agg(u) FROM users u`, []string{"json_agg=u.email,u.id,u.name"}, "", false},
	{"coalesce", `SELECT coalesce(name, email) FROM users`, []string{"coalesce=u.email,u.name"}, "", false},
	{"greatest", `SELECT greatest(email, name) FROM users`, []string{"greatest=u.email,u.name"}, "u.email,u.name", false},
	{"case then", `SELECT CASE WHEN id > 1 THEN email ELSE 'x' END FROM users`, []string{"case=u.email,u.id"}, "u.id", false},
	{"case simple", `SELECT CASE ssn WHEN '1' THEN 'a' END FROM customers`, []string{"case=c.ssn"}, "c.ssn", false},
	{"scalar subquery", `SELECT (SELECT email FROM users LIMIT 1)`, []string{"email=u.email"}, "", false},
	{"correlated subquery", `SELECT (SELECT max(ssn) FROM customers c WHERE c.id = u.id) FROM users u`, []string{"max=c.ssn"}, "c.id,c.ssn,u.id", false},
	{"array subquery", `SELECT ARRAY(SELECT email FROM users)`, []string{"array=u.email"}, "", false},
	{"window", `SELECT id, row_number() OVER (PARTITION BY email ORDER BY name) FROM users`, []string{"id=u.id", "row_number="}, "u.email,u.name", false},
	{"window value", `SELECT lag(ssn) OVER w FROM customers WINDOW w AS (ORDER BY id)`, []string{"lag=c.ssn"}, "c.id", false},
	{"subquery in from", `SELECT * FROM (SELECT email FROM users) s`, []string{"email=u.email"}, "", false},
	{"subquery renamed", `SELECT s.e FROM (SELECT email AS e FROM users) AS s WHERE s.e LIKE 'a%'`, []string{"e=u.email"}, "u.email", false},
	{"subquery column aliases", `SELECT x FROM (SELECT ssn FROM customers) AS s(x)`, []string{"x=c.ssn"}, "", false},
	{"cte", `WITH x AS (SELECT ssn FROM customers) SELECT ssn FROM x`, []string{"ssn=c.ssn"}, "", false},
	{"cte renamed", `WITH x(a) AS (SELECT ssn FROM customers) SELECT upper(a) FROM x AS y`, []string{"upper=c.ssn"}, "", false},
	{"recursive cte", `WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM users UNION ALL SELECT n + 1, e FROM r WHERE n < 3) SELECT e FROM r`, []string{"e=u.email"}, "", false},
	{"union", `SELECT email FROM users UNION SELECT ssn FROM customers`, []string{"email=c.ssn,u.email"}, "c.ssn,u.email", false},
	{"intersect", `SELECT email FROM users INTERSECT SELECT email FROM customers`, []string{"email=c.email,u.email"}, "c.email,u.email", false},
	{"union order by", `SELECT id, email FROM users UNION ALL SELECT id, ssn FROM customers ORDER BY 2`, []string{"id=c.id,u.id", "email=c.ssn,u.email"}, "c.ssn,u.email", false},
	{"count star", `SELECT count(*) FROM users`, []string{"count="}, "", false},
	{"constants", `SELECT 1, 'a', $1::text`, []string{"?column?=", "?column?=", "text="}, "", false},
	{"values", `VALUES (1, 'a'), (2, 'b')`, []string{"column1=", "column2="}, "", false},
	{"star", `SELECT * FROM users`, []string{"id=u.id", "email=u.email", "name=u.name"}, "", false},
	{"star two tables", `SELECT * FROM users, other.users`, []string{"id=u.id", "email=u.email", "name=u.name", "id=other.users.id", "secret=other.users.secret"}, "", false},
	{"qualified star", `SELECT u.* FROM users u JOIN customers c ON c.email = u.email`, []string{"id=u.id", "email=u.email", "name=u.name"}, "c.email,u.email", false},
	{"schema qualified column", `SELECT public.users.email FROM public.users`, []string{"email=u.email"}, "", false},
	{"other schema", `SELECT secret FROM other.users`, []string{"secret=other.users.secret"}, "", false},
	{"quoted names", `SELECT "Col" FROM "Odd Name"`, []string{"Col=public.Odd Name.Col"}, "", false},
	{"field of whole row", `SELECT (c).ssn FROM customers c`, []string{"ssn=c.email,c.id,c.note,c.ssn"}, "", false},
	{"xmlelement", `SELECT xmlelement(name x, ssn) FROM customers`, []string{"xmlelement=c.ssn"}, "", false},
	{"json_object", `SELECT json_object('a': ssn) FROM customers`, []string{"json_object=c.ssn"}, "", false},
	{"json_arrayagg", `SELECT json_arrayagg(ssn ORDER BY id) FROM customers`, []string{"json_arrayagg=c.ssn"}, "c.id", false},
	{"lateral unnest", `SELECT t.x FROM users u, LATERAL unnest(ARRAY[u.email]) AS t(x)`, []string{"x=u.email"}, "", false},
	{"jsonb_each", `SELECT j.value FROM customers c, jsonb_each(to_jsonb(c)) j`, []string{"value=c.email,c.id,c.note,c.ssn"}, "", false},
	{"unnest constant", `SELECT * FROM unnest(ARRAY['a']) AS t(x)`, []string{"x="}, "", false},
	{"lateral subquery", `SELECT * FROM users u JOIN LATERAL (SELECT ssn FROM customers c WHERE c.email = u.email) s ON true`, []string{"id=u.id", "email=u.email", "name=u.name", "ssn=c.ssn"}, "c.email,u.email", false},
	{"join using", `SELECT id FROM users JOIN customers USING (id)`, []string{"id=c.id,u.id"}, "c.id,u.id", false},
	{"aliased join", `SELECT j.ssn FROM (users u JOIN customers c ON u.id = c.id) AS j(a, b)`, []string{"ssn=c.ssn"}, "c.id,u.id", false},

	{"table statement", `TABLE customers`, []string{"id=c.id", "ssn=c.ssn", "note=c.note", "email=c.email"}, "", false},
	{"natural join", `SELECT email FROM users NATURAL JOIN other.users`, []string{"email=u.email"}, "other.users.id,u.id", false},
	{"whole row in scalar subquery", `SELECT (SELECT c FROM customers c LIMIT 1)`, []string{"c=c.email,c.id,c.note,c.ssn"}, "", false},
	{"rows from", `SELECT * FROM ROWS FROM (unnest(ARRAY[1]), generate_series(1, 2)) WITH ORDINALITY`, []string{"unnest=", "generate_series=", "ordinality="}, "", false},
	{"row constructor", `SELECT ROW(ssn, 1) FROM customers`, []string{"row=c.ssn"}, "", false},
	{"collate", `SELECT ssn COLLATE "C" FROM customers`, []string{"ssn=c.ssn"}, "", false},
	{"lateral select", `SELECT e FROM users u, LATERAL (SELECT u.email AS e) s`, []string{"e=u.email"}, "", false},
	{"tablesample", `SELECT ssn FROM customers TABLESAMPLE SYSTEM (10)`, []string{"ssn=c.ssn"}, "", false},
	{"xmltable", `SELECT x FROM XMLTABLE('/a' PASSING (SELECT note::xml FROM customers LIMIT 1) COLUMNS x text PATH '.')`, []string{"x=c.note"}, "c.note", false},
	{"values star", `SELECT t.* FROM (VALUES (1)) t`, []string{"column1="}, "", false},
	{"cte shadows table", `WITH users AS (SELECT ssn AS email FROM customers) SELECT email FROM users`, []string{"email=c.ssn"}, "", false},

	// Views, resolved through their definitions.
	{"view", `SELECT contact FROM v_users`, []string{"contact=public.v_users.contact,u.email"}, "", false},
	{"view of view", `SELECT * FROM v_v`, []string{"contact=public.v_users.contact,public.v_v.contact,u.email"}, "", false},
	{"view expression", `SELECT upper(contact) FROM v_users WHERE id = 1`, []string{"upper=public.v_users.contact,u.email"}, "public.v_users.id,u.id", false},
	{"matview", `SELECT ssn FROM mv`, []string{"ssn=c.ssn,public.mv.ssn"}, "", false},
	{"view over unknown function", `SELECT x FROM v_leak`, []string{"x=!public.v_leak.x"}, "", false},

	// Filter uses.
	{"where", `SELECT email FROM users WHERE name = 'x'`, []string{"email=u.email"}, "u.name", false},
	{"order by column", `SELECT email FROM users ORDER BY id`, []string{"email=u.email"}, "u.id", false},
	{"order by position", `SELECT email FROM users ORDER BY 1`, []string{"email=u.email"}, "u.email", false},
	{"order by alias", `SELECT email AS e FROM users ORDER BY e`, []string{"e=u.email"}, "u.email", false},
	{"group having", `SELECT name, count(*) FROM customers c JOIN users u USING (email) GROUP BY name HAVING max(ssn) > '1'`, []string{"name=u.name", "count="}, "c.email,c.ssn,u.email,u.name", false},
	{"grouping sets", `SELECT 1 FROM users GROUP BY ROLLUP (email)`, []string{"?column?="}, "u.email", false},
	{"distinct on", `SELECT DISTINCT ON (ssn) id FROM customers`, []string{"id=c.id"}, "c.ssn", false},
	{"plain distinct", `SELECT DISTINCT email FROM users`, []string{"email=u.email"}, "u.email", false},
	{"limit subquery", `SELECT email FROM users LIMIT (SELECT count(*) FROM customers WHERE ssn > '5')`, []string{"email=u.email"}, "c.ssn", false},
	{"exists", `SELECT id FROM users WHERE EXISTS (SELECT 1 FROM customers c WHERE c.email = users.email)`, []string{"id=u.id"}, "c.email,u.email", false},
	{"in subquery", `SELECT id FROM users WHERE id IN (SELECT id FROM customers WHERE ssn LIKE '1%')`, []string{"id=u.id"}, "c.id,c.ssn,u.id", false},
	{"any subquery", `SELECT id FROM users u WHERE email = ANY (SELECT email FROM customers)`, []string{"id=u.id"}, "c.email,u.email", false},
	{"count where", `SELECT count(*) FROM customers WHERE ssn LIKE '1%'`, []string{"count="}, "c.ssn", false},
	{"aggregate filter", `SELECT max(email) FILTER (WHERE id > 3) FROM users`, []string{"max=u.email"}, "u.email,u.id", false},
	{"aggregate order", `SELECT string_agg(name, ',' ORDER BY email) FROM users`, []string{"string_agg=u.name"}, "u.email", false},
	{"fetch first", `SELECT email FROM users FETCH FIRST 1 ROWS ONLY`, []string{"email=u.email"}, "", false},
	{"notify flow", `SELECT pg_notify('c', ssn) FROM customers`, []string{"pg_notify=c.ssn"}, "c.ssn", false},

	// Writes: the stored data is a filter use; RETURNING is output.
	{"insert select", `INSERT INTO notes (body) SELECT ssn FROM customers`, nil, "c.ssn", false},
	{"insert returning", `INSERT INTO notes (body) SELECT ssn FROM customers RETURNING body`, []string{"body=c.ssn,public.notes.body"}, "c.ssn", false},
	{"insert values", `INSERT INTO notes (body) VALUES ('x') RETURNING id`, []string{"id=public.notes.id"}, "", false},
	{"update subquery", `UPDATE notes SET body = (SELECT ssn FROM customers LIMIT 1)`, nil, "c.ssn", false},
	{"update returning", `UPDATE users SET name = 'x' WHERE email LIKE 'a%' RETURNING email`, []string{"email=u.email"}, "u.email", false},
	{"update from", `UPDATE notes n SET body = c.note FROM customers c WHERE c.id = n.id RETURNING n.body`, []string{"body=c.note,public.notes.body"}, "c.id,c.note,public.notes.id", false},
	{"delete returning", `DELETE FROM customers WHERE ssn = '1' RETURNING id, note`, []string{"id=c.id", "note=c.note"}, "c.ssn", false},
	{"upsert", `INSERT INTO customers (id, ssn) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = excluded.ssn RETURNING note`, []string{"note=c.note,c.ssn"}, "c.id,c.ssn", false},
	{"merge", `MERGE INTO notes n USING customers c ON n.id = c.id WHEN MATCHED THEN UPDATE SET body = c.ssn WHEN NOT MATCHED THEN INSERT (body) VALUES (c.note)`, nil, "c.id,c.note,c.ssn,public.notes.id", false},
	{"data-modifying cte", `WITH d AS (DELETE FROM customers RETURNING ssn) SELECT ssn FROM d`, []string{"ssn=c.ssn"}, "", false},
	{"create table as", `CREATE TABLE t2 AS SELECT ssn FROM customers`, nil, "c.ssn", false},
	{"select into", `SELECT ssn INTO t3 FROM customers`, nil, "c.ssn", false},
	{"create matview", `CREATE MATERIALIZED VIEW m2 AS SELECT ssn FROM customers WHERE id = 1`, nil, "c.id,c.ssn", false},
	{"create view", `CREATE VIEW vv AS SELECT ssn FROM customers WHERE note = 'x'`, nil, "c.note", false},

	// COPY.
	{"copy table", `COPY customers TO STDOUT`, []string{"id=c.id", "ssn=c.ssn", "note=c.note", "email=c.email"}, "", false},
	{"copy columns", `COPY customers (email) TO STDOUT WITH (FORMAT csv, HEADER)`, []string{"email=c.email"}, "", false},
	{"copy query", `COPY (SELECT upper(ssn) FROM customers WHERE id > 1) TO STDOUT`, []string{"upper=c.ssn"}, "c.id", false},
	{"copy view", `COPY (SELECT * FROM v_users) TO STDOUT`, []string{"id=public.v_users.id,u.id", "contact=public.v_users.contact,u.email"}, "", false},
	{"copy from", `COPY customers FROM STDIN`, nil, "", false},
	{"copy to file", `COPY (SELECT ssn FROM customers) TO '/tmp/x'`, nil, "c.ssn", false},
	{"copy to program", `COPY customers (ssn) TO PROGRAM 'cat'`, nil, "c.ssn", false},

	// Fail closed.
	{"user function", `SELECT leak_fn()`, []string{"leak_fn=!"}, "", false},
	{"user function arg", `SELECT nosuchfunc(email) FROM users`, []string{"nosuchfunc=!u.email"}, "u.email", false},
	{"schema qualified function", `SELECT public.upper(email) FROM users`, []string{"upper=!u.email"}, "u.email", false},
	{"query_to_xml", `SELECT query_to_xml('select ssn from customers', true, true, '')`, []string{"query_to_xml=!"}, "", false},
	{"unknown relation star", `SELECT * FROM nosuch`, []string{"?column?=!"}, "", false},
	{"unknown relation column", `SELECT x FROM nosuch`, []string{"x=!"}, "", false},
	{"unknown column", `SELECT nosuchcol FROM users`, []string{"nosuchcol=!"}, "", false},
	{"functional notation", `SELECT u.nosuch FROM users u`, []string{"nosuch=!"}, "", false},
	{"function in where", `SELECT id FROM users WHERE leak_fn() = 'x'`, []string{"id=u.id"}, "", true},
	{"function in order", `SELECT id FROM users ORDER BY leak_fn()`, []string{"id=u.id"}, "", true},
	{"record function", `SELECT * FROM json_populate_record(NULL::users, '{}')`, []string{"?column?=!"}, "", false},
	{"user operator", `SELECT ssn OPERATOR(public.===) 'x' FROM customers`, []string{"?column?=!c.ssn"}, "c.ssn", false},
	{"do block", `DO $$BEGIN PERFORM 1; END$$`, nil, "", true},
	{"call", `CALL some_proc()`, nil, "", true},

	// Other statements.
	{"explain analyze", `EXPLAIN ANALYZE SELECT id FROM customers WHERE ssn = '1'`, []string{"QUERY PLAN="}, "c.ssn", false},
	{"prepare", `PREPARE p AS SELECT upper(ssn) FROM customers`, []string{"upper=c.ssn"}, "", false},
	{"declare", `DECLARE cur CURSOR FOR SELECT ssn FROM customers`, []string{"ssn=c.ssn"}, "", false},
	{"execute", `EXECUTE p`, nil, "", false},
	{"set", `SET search_path = public`, nil, "", false},
	{"show", `SHOW search_path`, []string{"search_path="}, "", false},
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	for _, tc := range lineageCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Analyze(tc.sql, testCat)
			if err != nil {
				t.Fatalf("%s: %v", tc.sql, err)
			}
			got := formatCols(res.Columns)
			want := expandAll(tc.cols)
			if !slices.Equal(got, want) {
				t.Errorf("%s\ncolumns: got  %q\n         want %q", tc.sql, got, want)
			}
			if gf, wf := formatSources(res.Filters), expand(tc.filters); gf != wf {
				t.Errorf("%s\nfilters: got %q, want %q", tc.sql, gf, wf)
			}
			if res.FilterUnresolved != tc.unres {
				t.Errorf("%s\nFilterUnresolved = %v, want %v", tc.sql, res.FilterUnresolved, tc.unres)
			}
		})
	}
}

func formatCols(cols []mask.Column) []string {
	out := make([]string, 0, len(cols))
	for _, c := range cols {
		s := c.Name + "="
		if !c.Resolved {
			s += "!"
		}
		out = append(out, s+formatSources(c.Sources))
	}
	return out
}

func formatSources(srcs []mask.Source) string {
	parts := make([]string, 0, len(srcs))
	for _, s := range srcs {
		parts = append(parts, s.Schema+"."+s.Table+"."+s.Column)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// expand spells out the test shorthands "u." and "c.".
func expand(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "u."):
			parts[i] = "public.users." + p[2:]
		case strings.HasPrefix(p, "c."):
			parts[i] = "public.customers." + p[2:]
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func expandAll(cols []string) []string {
	out := make([]string, 0, len(cols))
	for _, c := range cols {
		name, srcs, _ := strings.Cut(c, "=")
		bang := strings.HasPrefix(srcs, "!")
		srcs = strings.TrimPrefix(srcs, "!")
		s := name + "="
		if bang {
			s += "!"
		}
		out = append(out, s+expand(srcs))
	}
	return out
}

func TestAnalyzeErrors(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		`SELEC 1`,
		`SELECT 1; SELECT 2`,
		`COPY customers TO STDOUT WITH (FORMAT xml)`,
		`COPY customers TO STDOUT WITH (DELIMITER ';;')`,
		`COPY customers TO STDOUT WITH (NO_SUCH_OPTION 1)`,
	} {
		if res, err := Analyze(sql, testCat); err == nil {
			t.Errorf("%s: want an error, got %+v", sql, res)
		}
	}
	if _, err := Analyze("SELECT 1", nil); err == nil {
		t.Error("nil catalog: want an error")
	}
}

func TestCopyFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sql  string
		want CopyFormat
	}{
		{`COPY customers TO STDOUT`, CopyFormat{Format: "text", Delimiter: "\t", Null: `\N`}},
		{`COPY customers TO STDOUT WITH (FORMAT csv, HEADER)`, CopyFormat{Format: "csv", Delimiter: ",", Quote: `"`, Escape: `"`, Header: true}},
		{`COPY customers TO STDOUT WITH (FORMAT csv, DELIMITER ';', QUOTE '''', ESCAPE '\', NULL 'NULL', HEADER false, FORCE_QUOTE (ssn, note))`,
			CopyFormat{Format: "csv", Delimiter: ";", Quote: "'", Escape: `\`, Null: "NULL", ForceQuote: []string{"ssn", "note"}}},
		{`COPY customers TO STDOUT CSV HEADER FORCE QUOTE *`, CopyFormat{Format: "csv", Delimiter: ",", Quote: `"`, Escape: `"`, Header: true, ForceQuoteAll: true}},
		{`COPY customers TO STDOUT WITH BINARY`, CopyFormat{Format: "binary"}},
		{`COPY (SELECT 1) TO STDOUT WITH (FORMAT text, DELIMITER '|', NULL '', ENCODING 'LATIN1')`, CopyFormat{Format: "text", Delimiter: "|", Null: "", Encoding: "LATIN1"}},
	}
	for _, tc := range cases {
		res, err := Analyze(tc.sql, testCat)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if res.Copy == nil {
			t.Fatalf("%s: no CopyFormat", tc.sql)
		}
		got := *res.Copy
		if got.Format != tc.want.Format || got.Delimiter != tc.want.Delimiter || got.Null != tc.want.Null ||
			got.Quote != tc.want.Quote || got.Escape != tc.want.Escape || got.Header != tc.want.Header ||
			got.ForceQuoteAll != tc.want.ForceQuoteAll || !slices.Equal(got.ForceQuote, tc.want.ForceQuote) ||
			got.Encoding != tc.want.Encoding {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.sql, got, tc.want)
		}
	}
}

func TestColumnsFor(t *testing.T) {
	t.Parallel()
	res, err := Analyze(`SELECT email, upper(name) FROM users`, testCat)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.ColumnsFor(2); !got[0].Resolved || !got[1].Resolved {
		t.Errorf("matching count: got %+v", got)
	}
	for _, c := range res.ColumnsFor(3) {
		if c.Resolved {
			t.Errorf("count mismatch must leave every column unresolved, got %+v", c)
		}
	}
	wild, err := Analyze(`SELECT * FROM json_populate_record(NULL::users, '{}'), json_populate_record(NULL::users, '{}') x`, testCat)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range wild.ColumnsFor(2) {
		if c.Resolved {
			t.Errorf("two expansions of unknown width: want every column unresolved, got %+v", c)
		}
	}
	var nilRes *Result
	if got := nilRes.ColumnsFor(1); len(got) != 1 || got[0].Resolved {
		t.Errorf("nil result: got %+v", got)
	}
}

// TestFilterDeniedWithRules joins lineage and mask.Rules the way the engine
// does: a filter:deny column used in WHERE is refused, as output it is not.
func TestFilterDeniedWithRules(t *testing.T) {
	t.Parallel()
	rules := compileRules(t)
	for _, tc := range []struct {
		sql    string
		denied bool
	}{
		{`SELECT ssn FROM customers`, false},
		{`SELECT id FROM customers WHERE ssn LIKE '1%'`, true},
		{`SELECT id FROM customers c JOIN users u ON u.email = c.ssn`, true},
		{`INSERT INTO notes (body) SELECT ssn FROM customers`, true},
		{`SELECT id FROM customers ORDER BY note`, false},
	} {
		res, err := Analyze(tc.sql, testCat)
		if err != nil {
			t.Fatal(err)
		}
		denied := false
		for _, f := range res.Filters {
			if d, _ := rules.FilterDenied(nil, f); d {
				denied = true
			}
		}
		if denied != tc.denied {
			t.Errorf("%s: denied = %v, want %v (filters %v)", tc.sql, denied, tc.denied, res.Filters)
		}
	}
}

func TestPGCatalogSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cat := testCat.WithSearchPath([]string{"other", "public"})
	schema, table, kind, ok, err := cat.Resolve(ctx, "users")
	if err != nil || !ok || schema != "other" || table != "users" || kind != KindTable {
		t.Fatalf("Resolve(users) with other first = %q %q %c %v %v", schema, table, kind, ok, err)
	}
	res, err := Analyze(`SELECT secret FROM users`, cat)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatCols(res.Columns); !slices.Equal(got, []string{"secret=other.users.secret"}) {
		t.Errorf("got %q", got)
	}
	if _, _, _, ok, err := cat.Resolve(ctx, "public.v_users"); err != nil || !ok {
		t.Errorf("qualified name: ok=%v err=%v", ok, err)
	}
	if _, _, _, ok, err := cat.Resolve(ctx, "nosuch"); err != nil || ok {
		t.Errorf("missing name: ok=%v err=%v", ok, err)
	}
	if ok, err := testCat.ArgsOnly(ctx, "leak_fn"); err != nil || ok {
		t.Errorf("ArgsOnly(leak_fn) = %v, %v; want false", ok, err)
	}
	if ok, err := testCat.ArgsOnly(ctx, "btrim"); err != nil || !ok {
		t.Errorf("ArgsOnly(btrim) = %v, %v; want true", ok, err)
	}
}

// TestPGCatalogInvalidate: after a schema change and Invalidate, the new
// shape is seen.
func TestPGCatalogInvalidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cat := NewPGCatalog(testPool)
	if _, err := testPool.Exec(ctx, `CREATE TABLE inval (a text)`); err != nil {
		t.Fatal(err)
	}
	if res, err := Analyze(`SELECT * FROM inval`, cat); err != nil || len(res.Columns) != 1 {
		t.Fatalf("before: %+v %v", res, err)
	}
	if _, err := testPool.Exec(ctx, `ALTER TABLE inval ADD COLUMN b text`); err != nil {
		t.Fatal(err)
	}
	cat.Invalidate()
	res, err := Analyze(`SELECT * FROM inval`, cat)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatCols(res.Columns); !slices.Equal(got, []string{"a=public.inval.a", "b=public.inval.b"}) {
		t.Errorf("after Invalidate: got %q", got)
	}
}
