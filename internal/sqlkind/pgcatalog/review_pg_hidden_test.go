package pgcatalog

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

// hiddenCodeDB adds to testDB what the attacks below need: a user =
// operator on int that logs, a domain whose CHECK logs, a table and a row
// type with a column of it, and an enum with an implicit cast to text that
// logs. Each object is one an approver might pass in a schema review; the
// attack is the later statement that runs it while looking like a read.
func hiddenCodeDB(t *testing.T, implicitCast bool) *pgx.Conn {
	t.Helper()
	conn := testDB(t)
	stmts := []string{
		`CREATE FUNCTION logging_eq(int, int) RETURNS bool VOLATILE LANGUAGE sql
		   AS 'INSERT INTO log VALUES (10); SELECT $1 OPERATOR(pg_catalog.=) $2'`,
		`CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = int, FUNCTION = logging_eq)`,
		`CREATE FUNCTION logging_check(text) RETURNS bool VOLATILE LANGUAGE sql
		   AS 'INSERT INTO log VALUES (11); SELECT true'`,
		`CREATE DOMAIN checked AS text CHECK (logging_check(VALUE))`,
		`CREATE TABLE has_checked (d checked)`,
		`CREATE TYPE wraps_checked AS (d checked)`,
		`CREATE TABLE plain_row (a int, b text, m mood)`,
		`CREATE TABLE ids (id int)`,
		`INSERT INTO ids VALUES (1)`,
		// A user function that says it is immutable; the planner believes it.
		`CREATE FUNCTION claims_immutable() RETURNS int IMMUTABLE LANGUAGE plpgsql
		   AS $$BEGIN PERFORM logging_check('x'); RETURN 1; END$$`,
		`CREATE TABLE parent (x int)`,
		`CREATE TABLE child (CHECK (claims_immutable() > 0)) INHERITS (parent)`,
		`CREATE TABLE checked_plain (x int CHECK (claims_immutable() > 0))`,
		`CREATE TABLE indexed (x int)`,
		`CREATE INDEX ON indexed ((x + claims_immutable()))`,
		`CREATE TABLE partly_indexed (x int)`,
		`CREATE INDEX ON partly_indexed (x) WHERE claims_immutable() > 0`,
		`CREATE TABLE with_stats (x int, y int)`,
		`CREATE STATISTICS with_stats_s ON (x + claims_immutable()), y FROM with_stats`,
	}
	if implicitCast {
		stmts = append(stmts,
			`CREATE FUNCTION mood_text(mood) RETURNS text VOLATILE LANGUAGE sql
			   AS 'INSERT INTO log VALUES (12); SELECT ''x''::text'`,
			`CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood) AS IMPLICIT`,
			`CREATE TABLE moods (m mood)`,
			`INSERT INTO moods VALUES ('ok')`)
	}
	for _, q := range stmts {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return conn
}

// runsCode runs sql upstream, on a connection of its own (a backend that
// has not yet loaded the tables' definitions), and reports whether it
// wrote to log, proving that the statement the classifier must not call a
// read really does something.
func runsCode(t *testing.T, db *pgx.Conn, setup, sql string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{"TRUNCATE log", setup, sql} {
		if q == "" {
			continue
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestReviewHiddenCodeIsNotRead(t *testing.T) {
	conn := hiddenCodeDB(t, false)
	var db string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	// With pg_catalog after public, public.= wins over the built-in.
	const late = "SET LOCAL search_path = public, pg_catalog"
	tests := []struct{ name, setup, sql string }{
		{"simple CASE compares with =", late, "SELECT CASE 1 WHEN 1 THEN 'a' END"},
		{"JOIN USING compares with =", late, "SELECT * FROM ids a JOIN ids b USING (id)"},
		{"NATURAL JOIN compares with =", late, "SELECT * FROM ids a NATURAL JOIN ids b"},
		{"IN (sub-select) compares with =", late, "SELECT 1 WHERE 1 IN (SELECT 1)"},
		{"NOT IN (sub-select) compares with =", late, "SELECT 1 WHERE 2 NOT IN (SELECT 1)"},
		{"cast to a row type with a domain column", "", "SELECT '(x)'::has_checked"},
		{"cast to a composite type with a domain column", "", "SELECT ROW('x')::wraps_checked"},
		{"array of such a row type", "", "SELECT '{\"(x)\"}'::has_checked[]"},
		{"column definition list of a domain", "", `SELECT * FROM jsonb_to_record('{"a":"x"}') AS r(a checked)`},
		{"XMLTABLE column of a domain", "", `SELECT * FROM XMLTABLE('/a' PASSING '<a><b>x</b></a>' COLUMNS b checked PATH 'b')`},
		{"populate a row type with a domain column", "", `SELECT jsonb_populate_record(h, '{"d":"y"}') FROM has_checked h RIGHT JOIN ids ON true`},
		{"record_in of a row type with a domain column", "", "SELECT record_in('(x)'::cstring, 'has_checked'::regtype, -1)"},
		{"array_in of a domain", "", "SELECT array_in('{x}'::cstring, 'checked'::regtype, -1)"},
		{"table_to_xml reads a view calling evil", "", "SELECT table_to_xml('bad_view', true, false, '')"},
		{"schema_to_xml reads every view", "", "SELECT schema_to_xml('public', true, false, '')"},
		{"database-qualified view", "", "SELECT * FROM " + db + ".public.bad_view"},
		{"constraint exclusion of an inheritance child", "", "SELECT * FROM parent WHERE x = 1"},
		{"constraint exclusion of a UNION ALL member", "", "SELECT * FROM (SELECT * FROM checked_plain UNION ALL SELECT * FROM checked_plain) s WHERE x = 1"},
		{"index expression folded when planning", "", "SELECT * FROM indexed"},
		{"partial-index predicate folded when planning", "", "SELECT * FROM partly_indexed WHERE x = 1"},
		{"statistics expression folded when planning", "", "SELECT * FROM with_stats WHERE x = 1"},
		{"PREPARE with a domain parameter", "PREPARE pd(checked) AS SELECT 1", "EXECUTE pd('x')"},
	}
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	cat := New(conn, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !runsCode(t, conn, tt.setup, tt.sql) {
				t.Fatalf("%s does not run the logging code upstream: the attack is not real", tt.sql)
			}
			for _, q := range []string{tt.setup, tt.sql} {
				if q == "" || strings.HasPrefix(q, "SET LOCAL") || strings.HasPrefix(q, "EXECUTE") {
					continue
				}
				got, err := p.Resolve(context.Background(), p.Classify(q), cat)
				if err != nil {
					t.Fatal(err)
				}
				if got.Kind != sqlkind.Unknown {
					t.Errorf("%s: got %v (%s), want unknown", q, got.Kind, got.Reason)
				}
			}
		})
	}
}

// Safe neighbours of the attacks stay reads.
func TestReviewHiddenCodeNeighboursStayRead(t *testing.T) {
	conn := testDB(t)
	for _, q := range []string{`CREATE TABLE plain_row (a int, b text, m mood)`, `CREATE TABLE ids (id int)`,
		// The planner folds only immutable calls: a volatile check is
		// run by writes alone.
		`CREATE TABLE checked_volatile (x int CHECK (evil() > x))`,
		// An immutable user function of a column runs for writes only.
		`CREATE FUNCTION validates(int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1 > 0'`,
		`CREATE TABLE validated (x int CHECK (validates(x)))`,
		`CREATE INDEX ON validated ((pure(x)))`,
		`CREATE INDEX ON validated (x) WHERE validates(x)`} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	cat := New(conn, Options{})
	for _, q := range []string{
		"SELECT CASE 1 WHEN 1 THEN 'a' END",
		"SELECT * FROM ids a JOIN ids b USING (id)",
		"SELECT 1 WHERE 1 IN (SELECT id FROM ids)",
		"SELECT '(1,x,ok)'::plain_row",
		`SELECT * FROM jsonb_to_record('{"a":1}') AS r(a int, b text)`,
		"PREPARE pi(int, text) AS SELECT $1, $2",
		"SELECT * FROM public.ids",
		"SELECT * FROM (SELECT * FROM checked_volatile UNION ALL SELECT * FROM checked_volatile) s WHERE x = 1",
		"SELECT * FROM (SELECT * FROM validated UNION ALL SELECT * FROM validated) s WHERE x = 1",
	} {
		got, err := p.Resolve(context.Background(), p.Classify(q), cat)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != sqlkind.Read {
			t.Errorf("%s: got %v (%s), want read", q, got.Kind, got.Reason)
		}
	}
	// Extensions' implicit casts are installed code, not a user's (their
	// operators, such as citext's =, still make every = unknown).
	for _, q := range []string{`CREATE EXTENSION citext`, `CREATE EXTENSION hstore`, `CREATE EXTENSION cube`} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if casts, err := cat.UserImplicitCasts(context.Background()); err != nil || len(casts) != 0 {
		t.Errorf("implicit casts with extensions installed: %q (%v)", casts, err)
	}
}

func TestReviewImplicitCastRunsUserCode(t *testing.T) {
	conn := hiddenCodeDB(t, true)
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	cat := New(conn, Options{})
	for _, q := range []string{
		"SELECT lower(m) FROM moods",
		"SELECT 1 FROM moods WHERE m LIKE 'x%'",
	} {
		if !runsCode(t, conn, "", q) {
			t.Fatalf("%s does not run the cast upstream: the attack is not real", q)
		}
		got, err := p.Resolve(context.Background(), p.Classify(q), cat)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != sqlkind.Unknown || !strings.Contains(got.Reason, "mood -> text") {
			t.Errorf("%s: got %v (%s), want unknown naming the cast", q, got.Kind, got.Reason)
		}
	}
	// A statement that reaches no value cannot meet the cast.
	if got, _ := p.Resolve(context.Background(), p.Classify("SELECT 1"), cat); got.Kind != sqlkind.Read {
		t.Errorf("SELECT 1: got %v (%s)", got.Kind, got.Reason)
	}
}

// A cast to json of any context runs inside the json builders.
func TestReviewJSONCastRunsUserCode(t *testing.T) {
	conn := testDB(t)
	for _, q := range []string{
		`CREATE TYPE color AS ENUM ('red')`,
		`CREATE FUNCTION color_json(color) RETURNS json VOLATILE LANGUAGE sql
		   AS 'INSERT INTO log VALUES (13); SELECT ''"x"''::json'`,
		`CREATE CAST (color AS json) WITH FUNCTION color_json(color)`,
		`CREATE TABLE colors (c color)`,
		`INSERT INTO colors VALUES ('red')`,
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	cat := New(conn, Options{})
	for _, q := range []string{"SELECT to_json(c) FROM colors", "SELECT row_to_json(t) FROM colors t",
		"SELECT json_build_object('a', c) FROM colors"} {
		if !runsCode(t, conn, "", q) {
			t.Fatalf("%s does not run the cast upstream: the attack is not real", q)
		}
		got, err := p.Resolve(context.Background(), p.Classify(q), cat)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != sqlkind.Unknown || !strings.Contains(got.Reason, "color -> json") {
			t.Errorf("%s: got %v (%s), want unknown naming the cast", q, got.Kind, got.Reason)
		}
	}
}
