package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// readsOnly is a creator's policy: reads run, everything else is refused
// (as if held for a review nobody gives). Texts starting with setupMark
// are the test's own reviewed changes and run.
type readsOnly struct{ *enginetest.Guard }

const setupMark = "/* reviewed setup */ "

func (g readsOnly) Decide(ctx context.Context, s *guard.Session, op *guard.Operation) guard.Verdict {
	v := g.Guard.Decide(ctx, s, op)
	if op.Class.Kind.String() != "read" && !strings.HasPrefix(op.Text, setupMark) {
		return guard.Verdict{Decision: guard.Deny, Code: "approval_required",
			Message: "refused: " + op.Class.Kind.String() + " needs a review (" + op.Class.Reason + ")"}
	}
	return v
}

// reviewDB makes a database of the test's own: a user = operator on int
// would make every = in the shared test database unknown.
// reviewEnv is a gateway whose guard (g, allowing reads only) fronts
// resource pg-review on a database of its own (reviewDB).
func reviewEnv(t *testing.T, g *enginetest.Guard) (*env, string) {
	t.Helper()
	db := reviewDB(t)
	ev := newEnv(t, func(o *Options) { o.Guard = readsOnly{g} })
	ev.res["pg-review"] = &config.Resource{Name: "pg-review", Type: "postgres", Address: "127.0.0.1:5432", Database: db, Username: "postgres"}
	return ev, db
}

func reviewDB(t *testing.T) string {
	t.Helper()
	name := "cs_review_" + randHex(4)
	if err := adminExec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP DATABASE " + name + " WITH (FORCE)") })
	return name
}

// Statements that look like reads but run user code through an implicit
// operator, a domain's CHECK, a view read by name or an implicit cast are
// refused by a reads-only policy, over both protocols, and nothing runs
// upstream.
func TestReviewHiddenCodeRefusedEndToEnd(t *testing.T) {
	t.Parallel()
	g := &enginetest.Guard{}
	ev, db := reviewEnv(t, g)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	upstream, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close(ctx)
	setup := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := c.Exec(ctx, setupMark+q, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	setup(`CREATE TABLE log (x int)`,
		`CREATE FUNCTION logging() RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (1) RETURNING x'`,
		`CREATE VIEW bad_view AS SELECT logging() AS e`,
		`CREATE FUNCTION logging_eq(int, int) RETURNS bool VOLATILE LANGUAGE sql
		   AS 'INSERT INTO log VALUES (2); SELECT $1 OPERATOR(pg_catalog.=) $2'`,
		`CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = int, FUNCTION = logging_eq)`,
		`CREATE FUNCTION logging_check(text) RETURNS bool VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (3); SELECT true'`,
		`CREATE DOMAIN checked AS text CHECK (logging_check(VALUE))`,
		`CREATE TABLE has_checked (d checked)`,
		`CREATE TABLE ids (id int)`,
		`INSERT INTO ids VALUES (1)`,
		`CREATE FUNCTION claims_immutable() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM logging(); RETURN 1; END$$`,
		`CREATE TABLE parent (x int)`,
		`CREATE TABLE child (CHECK (claims_immutable() > 0)) INHERITS (parent)`,
		`CREATE TEMP VIEW temp_bad AS SELECT logging() AS e`)
	// A read: pg_catalog after public makes public.= the one that runs.
	if _, err := c.Exec(ctx, "SET search_path = public, pg_catalog", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	attacks := []string{
		"SELECT CASE 1 WHEN 1 THEN 'a' END",
		"SELECT * FROM ids a JOIN ids b USING (id)",
		"SELECT 1 WHERE 1 IN (SELECT 1)",
		"SELECT '(x)'::has_checked",
		`SELECT * FROM jsonb_to_record('{"a":"x"}') AS r(a checked)`,
		`SELECT jsonb_populate_record(h, '{"d":"y"}') FROM has_checked h RIGHT JOIN ids ON true`,
		"SELECT table_to_xml('bad_view', true, false, '')",
		"SELECT * FROM " + db + ".public.bad_view",
		"PREPARE pd(checked) AS SELECT 1",
		// Planning folds the child's CHECK (constraint exclusion).
		"SELECT * FROM parent WHERE x = 1",
		// pg_temp is an alias the catalog's own connections cannot look up.
		"SELECT * FROM pg_temp.temp_bad",
	}
	// The text of a SQL PREPARE is not sent with Parse; a composite
	// literal's input (and so the domain CHECK) runs when the upstream
	// parses it, which the engine lets happen before deciding at Execute:
	// see TestReviewParseRunsCodeBeforeDecision.
	parseTime := map[string]bool{"PREPARE pd(checked) AS SELECT 1": true, "SELECT '(x)'::has_checked": true,
		"EXPLAIN EXECUTE planned": true}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement}
	check := func(q string) {
		t.Helper()
		for _, mode := range modes {
			if parseTime[q] && mode != pgx.QueryExecModeSimpleProtocol {
				continue
			}
			if err := run(ctx, c, q, mode); !refused(err) {
				t.Errorf("%s (%v): %v, want refused", q, mode, err)
			}
			var n int
			if err := upstream.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s (%v) ran user code upstream: %d rows logged (%v)", q, mode, n, err)
			}
		}
	}
	for _, q := range attacks {
		check(q)
	}
	// (x).nextval is nextval(x), a write, however the text spells it.
	setup(`CREATE SEQUENCE sq`)
	for _, mode := range modes {
		q := "SELECT (x).nextval FROM (SELECT 'sq'::text AS x) s"
		if err := run(ctx, c, q, mode); !refused(err) {
			t.Errorf("%s (%v): %v, want refused", q, mode, err)
		}
	}
	var called bool
	if err := upstream.QueryRow(ctx, "SELECT is_called FROM sq").Scan(&called); err != nil || called {
		t.Errorf("the sequence advanced (%v)", err)
	}
	// A statement prepared by Parse (forwarded undecided) is planned by
	// EXPLAIN EXECUTE, which folds a user function marked immutable: it is
	// classified as the statement it plans.
	setup(`CREATE FUNCTION lies() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM logging(); RETURN 1; END$$`)
	if _, err := c.PgConn().Prepare(ctx, "planned", "SELECT lies()", nil); err != nil {
		t.Fatal(err)
	}
	check("EXPLAIN EXECUTE planned")
	// A reviewed implicit cast then makes any statement reaching a value
	// unknown: lower(m) runs it without naming it.
	setup(`CREATE TYPE mood AS ENUM ('ok')`,
		`CREATE FUNCTION mood_text(mood) RETURNS text VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (4); SELECT ''x''::text'`,
		`CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood) AS IMPLICIT`,
		`CREATE TABLE moods (m mood)`,
		`INSERT INTO moods VALUES ('ok')`)
	check("SELECT lower(m) FROM moods")
	// The policy is not simply refusing everything.
	if _, err := c.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
}

// refused reports whether err is the policy's refusal, or the gateway's
// refusal of a Parse that would run user code before any decision.
func refused(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "needs a review") || strings.Contains(err.Error(), "refused this Parse"))
}

// run runs q in mode. Query, unlike Exec, keeps the extended protocol for
// a statement without arguments.
func run(ctx context.Context, c *pgx.Conn, q string, mode pgx.QueryExecMode) error {
	rows, err := c.Query(ctx, q, mode)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// The upstream runs user code for a statement before its Execute: parse
// analysis converts a string constant with its target type's input (a
// row-type or domain-array literal runs the element or column domain's
// CHECK; 'x'::checked does not, its CHECK runs at execution), and Bind
// converts parameters whose type the text implies (INSERT INTO has_checked
// VALUES ($1), $1::checked, parameter oid 0) and plans the statement,
// folding a user function marked immutable (SELECT lies()). A Sync right
// after commits what it did. Verified on PostgreSQL 15: each case alone
// logs a row when sent directly. Through the gateway, a Parse of anything
// but a read holding a string constant is refused while the database has
// such types, and anything but a read is decided at Bind, before the Bind
// goes upstream: with a reads-only policy nothing runs.
func TestReviewParseRunsCodeBeforeDecision(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, `CREATE TABLE log (x text)`,
		`CREATE FUNCTION logging_check(v text) RETURNS bool VOLATILE LANGUAGE plpgsql
		   AS $$BEGIN INSERT INTO log VALUES (v); RETURN true; END$$`,
		`CREATE DOMAIN checked AS text CHECK (logging_check(VALUE))`,
		`CREATE TABLE has_checked (d checked)`,
		`CREATE TABLE arrays (a checked[])`,
		`INSERT INTO arrays VALUES ('{seed}')`,
		`CREATE TABLE plain (x int)`,
		`CREATE FUNCTION logv() RETURNS int VOLATILE LANGUAGE sql AS $$INSERT INTO log VALUES ('lies') RETURNING 1$$`,
		`CREATE FUNCTION lies() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM logv(); RETURN 1; END$$`,
		`TRUNCATE log`)
	logged := func(name string) {
		t.Helper()
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s ran user code upstream before any decision: %d rows logged (%v)", name, n, err)
		}
		_, _ = up.Exec(ctx, "TRUNCATE log")
	}
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	bind := func(v string) *pgproto3.Bind { return &pgproto3.Bind{Parameters: [][]byte{[]byte(v)}} }
	for _, tc := range []struct {
		name string
		msgs []pgproto3.FrontendMessage
		want string // in the error's message
	}{
		{"row-type literal at Parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT '(p1)'::has_checked"}, &pgproto3.Sync{}}, "string constant"},
		{"domain array at Parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT '{p2}'::checked[]"}, &pgproto3.Sync{}}, "string constant"},
		{"literal into a write at Parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "INSERT INTO arrays VALUES ('{p3}')"}, &pgproto3.Sync{}}, "string constant"},
		{"dollar-quoted literal at Parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "INSERT INTO arrays VALUES ($q${p4}$q$)"}, &pgproto3.Sync{}}, "string constant"},
		{"literal meeting a code column at Parse", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT * FROM arrays WHERE a = '{p5}'"}, &pgproto3.Sync{}}, "string constant"},
		{"implied domain parameter at Bind", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "INSERT INTO has_checked VALUES ($1)"}, bind("b6"), &pgproto3.Sync{}}, "needs a review"},
		{"implied array parameter at Bind, executed", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT * FROM arrays WHERE a = $1"}, bind("{b7}"),
			&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}, "needs a review"},
		{"cast parameter at Bind", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT $1::checked"}, bind("b8"), &pgproto3.Sync{}}, "needs a review"},
		{"folded at Bind", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT lies()"}, &pgproto3.Bind{}, &pgproto3.Sync{}}, "needs a review"},
		{"folded into a write at Bind", []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "INSERT INTO plain VALUES (lies())"}, &pgproto3.Bind{}, &pgproto3.Sync{}}, "needs a review"},
		{"literal meeting a code column, simple", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT * FROM arrays WHERE a = '{s1}'"}}, "needs a review"},
		{"array_append of a code column, simple", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT array_append(a, 's2') FROM arrays"}}, "needs a review"},
		{"coalesce with a code column, simple", []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT coalesce(d, 's3') FROM has_checked"}}, "needs a review"},
	} {
		send(t, fe, tc.msgs...)
		msgs := until[*pgproto3.ReadyForQuery](t, fe)
		if e := errorIn(msgs); e == nil || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, e, tc.want)
		}
		logged(tc.name)
	}
	// Reads the catalog settles still run over both protocols, and a write
	// whose Parse holds no string constant is decided (refused) at Bind.
	c, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{"SELECT x FROM plain WHERE x = $1", "SELECT count(*) FROM log WHERE x = $1::text"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
			rows, err := c.Query(ctx, q, mode, "1")
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			if err != nil {
				t.Errorf("%s (%v): %v", q, mode, err)
			}
		}
	}
	if _, err := c.Exec(ctx, "INSERT INTO plain VALUES ($1)", 1); err == nil || !strings.Contains(err.Error(), "needs a review") {
		t.Errorf("INSERT through Bind: %v, want refused", err)
	}
}

// The catalog the gateway resolves in is read by its own connections,
// which do not see what the session's open transaction changed, and a
// cache filled before COMMIT would keep the stale answer for its TTL. A
// reviewed CREATE FUNCTION public.lower would then let lower('x') run it
// as a read, in the transaction and after it. While a transaction in which
// a schema change ran is open, the session resolves no name (the read is
// unknown), and when it ends, by COMMIT or ROLLBACK, the catalog is read
// anew.
func TestReviewCatalogMissesTheSessionsOwnTransaction(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	up := reviewUpstream(t, db, `CREATE TABLE log (x int)`,
		`CREATE FUNCTION logging() RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (1) RETURNING x'`)
	exec := func(q string) {
		t.Helper()
		if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	shadow := func(name string) string {
		return setupMark + "CREATE FUNCTION public." + name + "(text) RETURNS text VOLATILE LANGUAGE sql AS 'SELECT logging()::text'"
	}
	readAs := func(q, want string) {
		t.Helper()
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			var got string
			err := c.QueryRow(ctx, q, mode).Scan(&got)
			switch {
			case want == "" && (err == nil || !strings.Contains(err.Error(), "needs a review")):
				t.Errorf("%s (%v): %q, %v; want refused", q, mode, got, err)
			case want != "" && (err != nil || got != want):
				t.Errorf("%s (%v): %q, %v; want %q", q, mode, got, err, want)
			}
		}
	}
	exec("SET search_path = public, pg_catalog")
	// The built-ins are in the cache before the transactions below.
	readAs("SELECT lower('X')", "x")
	readAs("SELECT upper('x')", "X")
	readAs("SELECT initcap('x')", "X")

	// COMMIT: the next read sees the session's public.lower, though
	// another session filled the cache while it was uncommitted.
	other, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	exec("BEGIN")
	exec(shadow("lower"))
	var got string
	if err := other.QueryRow(ctx, "SELECT lower('X')", pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil || got != "x" {
		t.Fatalf("another session's lower('X') before the COMMIT: %q, %v", got, err)
	}
	exec("COMMIT")
	readAs("SELECT lower('X')", "")

	// Inside the transaction: unknown (the refusal aborts it).
	exec("BEGIN")
	exec(shadow("upper"))
	if err := run(ctx, c, "SELECT upper('x')", pgx.QueryExecModeSimpleProtocol); err == nil || !strings.Contains(err.Error(), "unknown needs a review") {
		t.Errorf("SELECT upper('x') in the transaction that shadowed it: %v, want refused as unknown", err)
	}
	exec("ROLLBACK")
	// ROLLBACK: the shadow is gone, and the session resolves names again.
	readAs("SELECT upper('x')", "X")
	exec("BEGIN")
	exec(shadow("initcap"))
	exec("ROLLBACK")
	readAs("SELECT initcap('x')", "X")

	var n int
	if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
		t.Errorf("a shadowing function ran as a read %d times (%v)", n, err)
	}
}
