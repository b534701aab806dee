package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// An operation decided at Bind is carried to its portal's first Execute
// until the client's next Sync. A simple Query (or a FunctionCall) between
// the Bind and the Execute is answered by a ReadyForQuery of its own, but
// in an explicit transaction the named portal outlives it upstream: the
// Execute behind it still runs the operation its Bind decided. Its outcome
// must be the one the upstream reported for that Execute (the rows it
// wrote), not "skipped" because the Query's ReadyForQuery came first, and
// it must be reported once.
func TestReviewBindQueryBetweenBindAndExecute(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	tbl := "bq_" + randHex(3)
	if err := adminExec2("CREATE TABLE " + tbl + " (x int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec2("DROP TABLE " + tbl) })
	fe, done := rawSessionTo(t, ev.url("pg-test", "require"))
	defer done()
	send(t, fe, &pgproto3.Query{String: "BEGIN"})
	until[*pgproto3.ReadyForQuery](t, fe)
	ops, outs := len(ev.g.Ops()), len(ev.g.Outcomes())
	send(t, fe, &pgproto3.Parse{Name: "ins", Query: "INSERT INTO " + tbl + " VALUES ($1)"},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "ins", Parameters: [][]byte{[]byte("1")}},
		&pgproto3.Query{String: "SELECT 1"})
	msgs := until[*pgproto3.ReadyForQuery](t, fe)
	send(t, fe, &pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{})
	msgs = append(msgs, until[*pgproto3.ReadyForQuery](t, fe)...)
	var tags []string
	for _, m := range msgs {
		if cc, ok := m.(*pgproto3.CommandComplete); ok {
			tags = append(tags, string(cc.CommandTag))
		}
	}
	if len(tags) != 2 || tags[1] != "INSERT 0 1" {
		t.Fatalf("the client saw %v (%v), want SELECT 1 then INSERT 0 1", tags, errorIn(msgs))
	}
	got := ev.g.Outcomes()[outs:]
	if n := len(ev.g.Ops()) - ops; n != 2 || len(got) != 2 {
		t.Errorf("%d decided, %d outcomes (%+v), want 2 and 2", n, len(got), got)
	}
	var inserts int
	for _, o := range got {
		if o.CommandTag == "INSERT 0 1" {
			inserts++
		}
	}
	if inserts != 1 {
		t.Errorf("the INSERT ran upstream, but the outcomes reported are %+v", got)
	}
	send(t, fe, &pgproto3.Query{String: "ROLLBACK"})
	until[*pgproto3.ReadyForQuery](t, fe)
}

// PostgreSQL analyses a prepared statement again when something it
// depends on changed since (RevalidateCachedQuery), and a Describe of the
// statement does so: the string constants in its text are converted again,
// now to their new target types. A read parsed while its column was text[]
// whose column then became an array of a domain with a CHECK that runs
// user code would run that code at the Describe, before any decision, and
// the Sync behind it commits what it did. A Describe of a statement is
// held to Parse's rule with the catalog as it is now.
func TestReviewDescribeAfterSchemaChange(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, `CREATE TABLE log (x text)`,
		`CREATE FUNCTION logging_check(v text) RETURNS bool VOLATILE LANGUAGE plpgsql
		   AS $$BEGIN INSERT INTO log VALUES (v); RETURN true; END$$`,
		`CREATE DOMAIN checked AS text CHECK (logging_check(VALUE))`,
		`CREATE TABLE later (id int, a text[])`,
		`CREATE TABLE later2 (id int, a text[])`,
		`CREATE TABLE later3 (id int, a text[])`)
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	// Prepared while they are reads that convert nothing but text.
	send(t, fe, &pgproto3.Parse{Name: "s", Query: "SELECT id FROM later WHERE a = '{d1}'"},
		&pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{},
		&pgproto3.Query{String: "PREPARE sp AS SELECT id FROM later2 WHERE a = '{d2}'"},
		&pgproto3.Query{String: "PREPARE sp3 AS SELECT id FROM later3 WHERE a = '{d3}'"})
	for range 3 {
		if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e != nil {
			t.Fatalf("preparing: %v", e)
		}
	}
	// A reviewed migration, through the gateway (its catalog cache is
	// dropped), makes the columns arrays of the checked domain.
	c, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{"ALTER TABLE later ALTER a TYPE checked[]", "ALTER TABLE later2 ALTER a TYPE checked[]",
		"ALTER TABLE later3 ALTER a TYPE checked[]"} {
		if _, err := c.Exec(ctx, setupMark+q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.Exec(ctx, "TRUNCATE log"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msgs []pgproto3.FrontendMessage
	}{
		{"describe a protocol statement", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{}}},
		{"describe a SQL statement", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'S', Name: "sp"}, &pgproto3.Sync{}}},
		{"bind the protocol statement", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Sync{}}},
		{"EXECUTE the SQL statement", []pgproto3.FrontendMessage{&pgproto3.Query{String: "EXECUTE sp3"}}},
		{"EXECUTE the protocol statement", []pgproto3.FrontendMessage{&pgproto3.Query{String: "EXECUTE s"}}},
		{"EXPLAIN EXECUTE the protocol statement", []pgproto3.FrontendMessage{&pgproto3.Query{String: "EXPLAIN EXECUTE s"}}},
	} {
		send(t, fe, tc.msgs...)
		msgs := until[*pgproto3.ReadyForQuery](t, fe)
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s ran the domain's CHECK before any decision: %d rows logged (%v); error sent: %v", tc.name, n, err, errorIn(msgs))
		}
		_, _ = up.Exec(ctx, "TRUNCATE log")
	}
}

// userOpclass is a btree operator class for int4 whose comparison
// function writes to log: user code wherever PostgreSQL compares with it.
var userOpclass = []string{`CREATE TABLE log (x text)`,
	`CREATE FUNCTION ucmp(a int4, b int4) RETURNS int4 LANGUAGE plpgsql
	   AS $$BEGIN INSERT INTO log VALUES ('cmp'); RETURN btint4cmp(a, b); END$$`,
	`CREATE OPERATOR CLASS uops FOR TYPE int4 USING btree AS
	   OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 ucmp(int4, int4)`}

// A range type's input compares its bounds with the subtype's operator
// class (its btree comparison function, which a user may write), so a
// range over int with a user operator class is a type whose input runs
// user code: a string constant converted to it at Parse (a write's VALUES,
// a read comparing it with such a column) runs that function before any
// decision.
func TestReviewRangeWithUserOpclassAtParse(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, append(userOpclass,
		`CREATE TYPE urange AS RANGE (subtype = int4, subtype_opclass = uops)`,
		`CREATE TABLE rt (r urange)`,
		`TRUNCATE log`)...)
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	for _, q := range []string{"INSERT INTO rt VALUES ('[1,3]')", "SELECT * FROM rt WHERE r = '[1,4]'"} {
		send(t, fe, &pgproto3.Parse{Query: q}, &pgproto3.Sync{})
		msgs := until[*pgproto3.ReadyForQuery](t, fe)
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Errorf("Parse of %s ran the operator class's function: %d rows logged (%v); error sent: %v", q, n, err, errorIn(msgs))
		}
		_, _ = up.Exec(ctx, "TRUNCATE log")
	}
}

// A table partitioned or indexed with a user operator class: planning a
// read of it prunes partitions with that class's comparison function (user
// code), at Bind (forwarded at once for a read), and an index scan
// descends the btree with it, in the simple protocol alike. A partition
// key expression calling a user function marked immutable is folded when
// the upstream first loads the key. Such a read is unknown.
func TestReviewKeyUserOpclass(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, append(userOpclass,
		`CREATE TABLE pt (x int4) PARTITION BY RANGE (x uops)`,
		`CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10)`,
		`CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (10) TO (20)`,
		`CREATE TABLE ti (x int4)`,
		`INSERT INTO ti SELECT pg_catalog.generate_series(1, 1000)`,
		`CREATE INDEX ON ti (x uops)`,
		`ANALYZE ti`,
		`CREATE FUNCTION logv() RETURNS int VOLATILE LANGUAGE sql AS $$INSERT INTO log VALUES ('lies') RETURNING 1$$`,
		`CREATE FUNCTION lies() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM logv(); RETURN 1; END$$`,
		`CREATE TABLE pe (x int4) PARTITION BY RANGE ((x + lies()))`,
		`TRUNCATE log`)...)
	c, err := pgx.Connect(ctx, ev.url("pg-review", "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{"SELECT * FROM pt WHERE x = 5", "SELECT count(*) FROM ti WHERE x = 7", "SELECT * FROM pe"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			err := run(ctx, c, q, mode)
			var n int
			if err2 := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err2 != nil || n != 0 || !refused(err) {
				t.Errorf("%s (%v): %v; the operator class's function ran %d times (%v)", q, mode, err, n, err2)
			}
			_, _ = up.Exec(ctx, "TRUNCATE log")
		}
	}
}

// The gateway forgot a statement at the client's Close or DEALLOCATE, but
// PostgreSQL skips either after an error earlier in its batch or Query,
// so the upstream still holds the statement. A Parse of the name then
// fails upstream ("already exists"), which the relay notes on the new
// statement only when its answer arrives: a Bind (or SQL EXECUTE) of the
// name pipelined behind the next Sync must not be decided as the new text
// while the upstream runs the old one. Here the old statement is a write (a
// Parse passes undecided), the new one a read, and the policy allows reads
// only.
func TestReviewBindStatementTheUpstreamKept(t *testing.T) {
	t.Parallel()
	bindOrExecute(t, false, forgetByClose)
	bindOrExecute(t, false, forgetByDeallocate)
}

// The same through SQL EXECUTE of the name, in a simple Query. After a
// skipped DEALLOCATE too (see TestReviewSQLPrepareOfANameTheUpstreamKept).
func TestReviewExecuteStatementTheUpstreamKept(t *testing.T) {
	t.Parallel()
	bindOrExecute(t, true, forgetByClose)
	bindOrExecute(t, true, forgetByDeallocate)
}

// forgetByClose and forgetByDeallocate make the gateway forget statement x
// while the upstream skips the Close or DEALLOCATE.
var (
	forgetByClose      = []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "bad", Query: "SELEC 1"}, &pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Sync{}}
	forgetByDeallocate = []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1/0; DEALLOCATE x"}}
)

func bindOrExecute(t *testing.T, sqlExecute bool, forget []pgproto3.FrontendMessage) {
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, `CREATE TABLE log (x int)`)
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	for i := range 5 {
		send(t, fe, &pgproto3.Parse{Name: "x", Query: "INSERT INTO log SELECT 1"}, &pgproto3.Sync{})
		until[*pgproto3.ReadyForQuery](t, fe)
		send(t, fe, forget...)
		until[*pgproto3.ReadyForQuery](t, fe)
		then := []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "x"}, &pgproto3.Execute{}, &pgproto3.Sync{}}
		if sqlExecute {
			then = []pgproto3.FrontendMessage{&pgproto3.Query{String: "EXECUTE x"}}
		}
		send(t, fe, append([]pgproto3.FrontendMessage{&pgproto3.Parse{Name: "x", Query: "SELECT 1"}, &pgproto3.Sync{}}, then...)...)
		until[*pgproto3.ReadyForQuery](t, fe)
		until[*pgproto3.ReadyForQuery](t, fe)
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Fatalf("round %d: the statement the upstream kept ran as the read the gateway thought it was: %d rows written (%v)", i, n, err)
		}
		// The name is in doubt now: closing it ends the doubt on both sides.
		send(t, fe, &pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Sync{})
		until[*pgproto3.ReadyForQuery](t, fe)
	}
}

// A Close or a DEALLOCATE the upstream skipped (an error earlier in its
// batch) leaves it holding the statement: a PREPARE of the name, which it
// refuses, must not stand for what EXECUTE of the name then runs. The name
// stays unknown until the upstream confirmed the Close or DEALLOCATE.
func TestReviewSQLPrepareOfANameTheUpstreamKept(t *testing.T) {
	t.Parallel()
	for name, forget := range map[string][]pgproto3.FrontendMessage{"Close": forgetByClose, "DEALLOCATE": forgetByDeallocate} {
		ev, db := reviewEnv(t, &enginetest.Guard{})
		ctx := context.Background()
		up := reviewUpstream(t, db, `CREATE TABLE log (x int)`)
		fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
		for _, batch := range [][]pgproto3.FrontendMessage{
			{&pgproto3.Parse{Name: "x", Query: "INSERT INTO log SELECT 1"}, &pgproto3.Sync{}},
			forget,
			{&pgproto3.Query{String: "PREPARE x AS SELECT 1"}},
			{&pgproto3.Query{String: "EXECUTE x"}},
		} {
			send(t, fe, batch...)
			until[*pgproto3.ReadyForQuery](t, fe)
		}
		done()
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s skipped: EXECUTE ran the statement the upstream kept as the read the gateway thought it was: %d rows written (%v)", name, n, err)
		}
	}
}

// Closing a statement and preparing its name again in one batch (no Sync
// between) still works: the upstream runs the Parse only if it ran the
// Close. Across a Sync it works once the Close is confirmed.
func TestReviewCloseThenParseAgain(t *testing.T) {
	t.Parallel()
	ev, _ := reviewEnv(t, &enginetest.Guard{})
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	send(t, fe, &pgproto3.Parse{Name: "x", Query: "SELECT 1"}, &pgproto3.Sync{})
	until[*pgproto3.ReadyForQuery](t, fe)
	for _, batch := range [][]pgproto3.FrontendMessage{
		{&pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Parse{Name: "x", Query: "SELECT 2"},
			&pgproto3.Bind{PreparedStatement: "x"}, &pgproto3.Execute{}, &pgproto3.Sync{}},
		{&pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Sync{}},
		{&pgproto3.Parse{Name: "x", Query: "SELECT 3"}, &pgproto3.Bind{PreparedStatement: "x"}, &pgproto3.Execute{}, &pgproto3.Sync{}},
	} {
		send(t, fe, batch...)
		if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e != nil {
			t.Fatalf("%T...: %v", batch[0], e)
		}
	}
}

// Closed names the upstream confirmed are forgotten by a sweep; names in
// doubt and live statements stay.
func TestReviewClosedNamesAreForgotten(t *testing.T) {
	confirmed, doubt, live := &stmt{sql: &closedStmt}, &stmt{sql: &closedStmt}, &stmt{text: "SELECT 1"}
	confirmed.failed.Store(true)
	c := &conn{stmts: map[string]*stmt{"confirmed": confirmed, "doubt": doubt, "live": live}}
	c.sweepClosed()
	if len(c.stmts) != 2 || c.stmts["doubt"] != doubt || c.stmts["live"] != live {
		t.Errorf("after the sweep: %v", c.stmts)
	}
}

// The operations decided at Bind that an Execute took are forgotten by the
// client loop's and the relay's lists before the next Sync; the others
// stay until it.
func TestReviewBoundOpsPruned(t *testing.T) {
	took, waiting := &operation{}, &operation{}
	took.executed.Store(true)
	r := &relayState{bound: []*operation{took, waiting}}
	r.pruneBound()
	if len(r.bound) != 1 || r.bound[0] != waiting {
		t.Errorf("relay kept %v", r.bound)
	}
	c := &conn{boundOps: []*portal{{}, {op: waiting}}}
	c.pruneBoundOps()
	if len(c.boundOps) != 1 || c.boundOps[0].op != waiting {
		t.Errorf("client loop kept %v", c.boundOps)
	}
}

// An operation decided at Bind is decided with the session state of that
// moment (search_path and role are in its digest), but a simple Query
// between the Bind and the Execute may change that state, and what the
// portal runs resolves names at run time (a PL/pgSQL function's unqualified
// call). The Execute then runs the operation under a state it was not
// decided with: it is decided again with the state it runs under.
func TestReviewBindStateChangedBeforeExecute(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	a, b, tbl := "sa_"+randHex(3), "sb_"+randHex(3), "st_"+randHex(3)
	for _, q := range []string{
		"CREATE SCHEMA " + a, "CREATE SCHEMA " + b, "CREATE TABLE " + tbl + " (x int)",
		"CREATE FUNCTION " + a + ".g() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE FUNCTION " + b + ".g() RETURNS int LANGUAGE sql AS 'SELECT 2'",
		"CREATE FUNCTION " + a + ".f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN g(); END'",
	} {
		if err := adminExec2(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = adminExec2("DROP TABLE " + tbl + "; DROP SCHEMA " + a + " CASCADE; DROP SCHEMA " + b + " CASCADE")
	})
	fe, done := rawSessionTo(t, ev.url("pg-test", "require"))
	defer done()
	insert := "INSERT INTO public." + tbl + " SELECT " + a + ".f()"
	for _, batch := range [][]pgproto3.FrontendMessage{
		{&pgproto3.Query{String: "SET search_path = " + a}},
		{&pgproto3.Query{String: "BEGIN"}},
		{&pgproto3.Parse{Name: "w", Query: insert}, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "w"},
			&pgproto3.Query{String: "SET search_path = " + b}},
		{&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{}},
	} {
		send(t, fe, batch...)
		if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e != nil {
			t.Fatalf("%T: %v", batch[0], e)
		}
	}
	ops := ev.g.OpsOf(insert)
	if len(ops) == 0 || !strings.Contains(ops[len(ops)-1].State.SearchPath, b) {
		t.Errorf("the INSERT ran with search_path %s, but was last decided with %+v", b, ops)
	}
	send(t, fe, &pgproto3.Query{String: "ROLLBACK"})
	until[*pgproto3.ReadyForQuery](t, fe)
}
