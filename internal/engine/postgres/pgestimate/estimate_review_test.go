package pgestimate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/review"
)

// Security review attacks on the estimator. Each trap raises an error whose
// text carries "TRAP RAN": a read-only transaction stops nextval(), but not
// an error. The error text once reached the approver (and whoever reads
// `reviews show`) as the reason, unmasked: an exfiltration channel as well
// as code execution. It no longer does; a trap that ran is seen in the
// estimator's log (SQLSTATE P0001, checked by estimator when a test ends)
// and in the reason (the upstream's failure instead of the refusal).
var reviewSetup = []string{
	"CREATE TABLE items (id int PRIMARY KEY, qty int, note text)",
	"INSERT INTO items SELECT g, g % 10, 'n' FROM generate_series(1, 100) g",
	"ANALYZE items",
	`CREATE FUNCTION trap(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN IF current_setting('application_name') = 'countersign estimate' THEN RAISE EXCEPTION 'TRAP RAN as %', current_user; END IF; RETURN $1; END $$`,
	`CREATE FUNCTION trapb(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN IF current_setting('application_name') = 'countersign estimate' THEN RAISE EXCEPTION 'TRAP RAN as %', current_user; END IF; RETURN true; END $$`,
	// Traps fire only under the estimator's application_name, so setting them
	// up (CREATE INDEX folds the expression too) does not trip them.
	// A domain whose CHECK calls the trap: binding a parameter typed with it
	// runs domain_in, which runs the CHECK, at Bind, before any planning.
	"CREATE DOMAIN trapdom AS int CHECK (trapb(VALUE))",
	// An expression index and a partial index: the planner loads every index
	// of the target and const-folds its expressions and predicate.
	"CREATE TABLE indexed (id int, qty int)",
	"CREATE INDEX indexed_expr ON indexed ((qty + trap(1)))",
	"CREATE TABLE partial (id int, qty int)",
	"CREATE INDEX partial_pred ON partial (id) WHERE qty > trap(1)",
	// Extended statistics on an expression (PostgreSQL 14+) are const-folded too.
	"CREATE TABLE stats (id int, qty int)",
	"CREATE STATISTICS stats_expr ON (qty + trap(1)) FROM stats",
}

func TestReviewEstimateRunsNoCode(t *testing.T) {
	db := database(t, reviewSetup...)
	exec(t, db, "ALTER DATABASE "+db+" SET app.secret = 'hunter2-TRAP RAN'")
	domOID := query(t, db, "SELECT 'trapdom'::regtype::oid::text")
	var oid uint32
	for _, c := range domOID {
		oid = oid*10 + uint32(c-'0')
	}
	e := estimator(t, db)
	cases := []struct {
		name, finding string
		r             review.Review
	}{
		{"functional notation (x).f calls f(x)", "A_Indirection field names are neither functions nor checked",
			op("UPDATE items SET qty = (1).trap WHERE id = 1")},
		{"functional notation reaches pg_catalog functions off the allow-list (no object of the attacker's needed)",
			"A_Indirection field names are neither functions nor checked; the reason carries a GUC's value",
			op("UPDATE items SET qty = 1 WHERE id = ('app.secret').current_setting::int")},
		{"parameter typed as a domain whose CHECK calls a function", "parameter type OIDs are never checked",
			op("UPDATE items SET qty = 1 WHERE id = $1", review.Param{Type: oid, Value: []byte("1")})},
		{"expression index of the target", "indexes of the table are not checked",
			op("UPDATE indexed SET qty = 1 WHERE id = 1")},
		{"partial index predicate of the target", "indexes of the table are not checked",
			op("UPDATE partial SET qty = 1 WHERE id = 1")},
		{"expression statistics of the target", "extended statistics are not checked",
			op("UPDATE stats SET qty = 1 WHERE id = 1")},
	}
	// The traps work: under the estimator's application_name they raise.
	c, ctx := connect(t, db)
	if _, err := c.Exec(ctx, "SET application_name = 'countersign estimate'"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT trap(1)"); err == nil || !strings.Contains(err.Error(), "TRAP RAN") {
		t.Fatalf("the trap does not raise under the estimator's name: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, ok, why := e.EstimateRows(context.Background(), tc.r)
			if strings.Contains(why, "TRAP RAN") || strings.Contains(why, "hunter2") {
				t.Fatalf("review finding (%s): the estimator ran code before approval (the reason shows what it did): ok=%v why=%q", tc.finding, ok, why)
			}
			if ok {
				t.Fatalf("review finding (%s): estimated %d rows, want no estimate", tc.finding, rows)
			}
		})
	}
}

// TestReviewEstimateStringsOff: inspect reads the text with
// standard_conforming_strings on (pg_query's only mode); the estimator's
// connection takes the database's default. Where that is off (the gateway
// then holds any text with a backslash as unknown, for review, and the
// estimate runs when an approver looks at it), the server reads a
// backslash-quote as a quote inside the string, so code pg_query saw
// inside a string literal runs, and code it saw in the clear is a string.
func TestReviewEstimateStringsOff(t *testing.T) {
	db := database(t, reviewSetup...)
	exec(t, db, "ALTER DATABASE "+db+" SET standard_conforming_strings = off")
	// pg_query: SET note = 'a\', qty = ' || trap(1) || ' WHERE id = 1 --'
	// (one literal each, no function); the server: note = 'a'' , qty = '
	// || trap(1) || ' WHERE id = 1 --' (trap is called).
	text := `UPDATE items SET note = 'a\' , qty = ' || trap(1)::text || ' WHERE id = 1 --'`
	_, ok, why := estimator(t, db).EstimateRows(context.Background(), op(text))
	if strings.Contains(why, "TRAP RAN") || ok {
		t.Fatalf("review finding (standard_conforming_strings is not forced on): user code ran: ok=%v why=%q", ok, why)
	}
	// The setting is forced, not just refused: a backslash in a string is
	// read as pg_query reads it, and the statement is estimated.
	if rows, ok, why := estimator(t, db).EstimateRows(context.Background(), op(`UPDATE items SET note = 'a\' WHERE id = 1`)); !ok || rows != 1 {
		t.Fatalf("estimate %d ok=%v (%s), want 1 row", rows, ok, why)
	}
}

// TestReviewEstimateConstraintExclusion: with constraint_exclusion = on
// (a database or role default), the planner reads the target's CHECK
// constraints and const-folds them: a constraint that calls a function of
// constants runs it. pg_constraint is not checked.
func TestReviewEstimateConstraintExclusion(t *testing.T) {
	db := database(t, append(reviewSetup,
		"CREATE TABLE checked (id int, qty int CHECK (qty > trap(0)))")...)
	exec(t, db, "ALTER DATABASE "+db+" SET constraint_exclusion = on")
	_, ok, why := estimator(t, db).EstimateRows(context.Background(), op("UPDATE checked SET qty = 1 WHERE id = 1"))
	if strings.Contains(why, "TRAP RAN") || ok {
		t.Fatalf("review finding (CHECK constraints are not checked): code ran: ok=%v why=%q", ok, why)
	}
	if !strings.Contains(why, "constraint") {
		t.Fatalf("why=%q, want no estimate because of the constraint", why)
	}
}

// TestReviewEstimateMoreTraps: what else the planner (or the server before
// it) would run, found after the review: each table or statement gets no
// estimate, and no trap runs.
func TestReviewEstimateMoreTraps(t *testing.T) {
	db := database(t, append(reviewSetup,
		"CREATE TABLE generated (id int, qty int, g int GENERATED ALWAYS AS (trap(qty)) STORED)",
		"CREATE TABLE domained (id int, v trapdom)",
		"CREATE TABLE checked (id int, qty int CHECK (qty > trap(0)))",
		"CREATE TABLE dflt_cast (id int, qty int DEFAULT (1::trapdom)::int)",
		"CREATE TABLE base (id int)",
		"CREATE TABLE heir (qty int) INHERITS (base)",
		"CREATE SCHEMA shadow",
		"CREATE FUNCTION shadow.note(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; END $$",
		"CREATE FUNCTION shadow.upper(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; END $$",
	)...)
	exec(t, db,
		"ALTER DATABASE "+db+" SET app.secret = 'hunter2'",
		"ALTER DATABASE "+db+" SET client_encoding = 'SJIS'")
	e, log := estimatorLog(t, db)
	shadowed := func(text string) review.Review {
		r := op(text)
		r.State.SearchPath = "shadow, public, pg_catalog"
		return r
	}
	cases := []struct {
		name string
		r    review.Review
		why  string
	}{
		{"generated column", op("INSERT INTO generated (id, qty) VALUES (1, 2)"), "generated"},
		{"column of a domain", op("INSERT INTO domained VALUES (1, 1)"), "domain"},
		{"CHECK constraint calls a function", op("UPDATE checked SET qty = 1"), "constraint"},
		{"default casts to a domain", op("INSERT INTO dflt_cast (id) VALUES (1)"), "default"},
		{"child of inheritance", op("UPDATE heir SET qty = 1"), "inherits"},
		{"(column).function", op("UPDATE items SET qty = (qty).trap WHERE id = 1"), "(x).f"},
		{"column.function: a qualifier that is a column", shadowed("UPDATE items SET qty = qty.note WHERE id = 1"), "not a column"},
		{"qualifier of another table", op("UPDATE items SET qty = other.qty"), "not a column"},
		{"operator named with its schema", op("UPDATE items SET qty = 1 WHERE id OPERATOR(public.=) 1"), "operator"},
		{"on conflict", op("INSERT INTO items VALUES (1, 1, 'x') ON CONFLICT (id) DO UPDATE SET qty = trap(1)"), "ON CONFLICT"},
		{"allow-listed name shadowed for another type", shadowed("UPDATE items SET qty = upper(qty) WHERE id = 1"), "also defined outside pg_catalog"},
		{"named arguments", op("UPDATE items SET note = upper(string => note)"), "NamedArgExpr"},
		{"aggregate form", op("UPDATE items SET note = upper(DISTINCT note)"), "aggregate"},
		{"a node the estimator does not know", op("UPDATE items SET note = xmlelement(name x)::text"), "XmlExpr"},
		{"parameter of a type outside pg_catalog", op("UPDATE items SET qty = $1", review.Param{Type: 0xFFFFFF, Value: []byte("1")}), "parameter"},
		// The planner fails on these; its message carries the value, which
		// the reason must not.
		{"the upstream's error is not shown", op("UPDATE items SET note = 'x' WHERE id = 'hunter2'"), "the upstream could not plan it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, ok, why := e.EstimateRows(context.Background(), tc.r)
			if ok || strings.Contains(why, "TRAP RAN") || strings.Contains(why, "hunter2") || !strings.Contains(why, tc.why) {
				t.Fatalf("estimate %d ok=%v why=%q, want no estimate because %q", rows, ok, why, tc.why)
			}
		})
	}
	// The cause of a failed plan is logged (its SQLSTATE: the log is how a
	// trap that ran would be seen), its text is not.
	if s := log.String(); !strings.Contains(s, "SQLSTATE 22P02") || strings.Contains(s, "hunter2") {
		t.Fatalf("the estimator's log lacks the cause of the failed plan, or shows its value:\n%s", s)
	}
	// Under a database whose client_encoding is SJIS, a plain statement is
	// still estimated: the estimator speaks UTF-8 whatever the default.
	if rows, ok, why := e.EstimateRows(context.Background(), op("UPDATE items SET note = 'é' WHERE id <= 10")); !ok || rows < 5 || rows > 20 {
		t.Fatalf("estimate %d ok=%v (%s), want about 10", rows, ok, why)
	}
}

// TestEstimateOncePerReview: a review's estimate is worked out once; asking
// again does not plan again (here: the table is gone, the answer stays).
func TestEstimateOncePerReview(t *testing.T) {
	db := database(t, reviewSetup...)
	e := estimator(t, db)
	r := op("UPDATE items SET qty = 1 WHERE id <= 10")
	r.ID = "r-once"
	rows, ok, why := e.EstimateRows(context.Background(), r)
	if !ok {
		t.Fatalf("no estimate: %s", why)
	}
	exec(t, db, "DROP TABLE items")
	if again, ok2, why2 := e.EstimateRows(context.Background(), r); again != rows || !ok2 {
		t.Fatalf("second estimate %d ok=%v (%s), want the first, %d", again, ok2, why2, rows)
	}
	r.ID = "r-other"
	if _, ok, why := e.EstimateRows(context.Background(), r); ok || !strings.Contains(why, "not found") {
		t.Fatalf("another review: ok=%v why=%q, want the table not found", ok, why)
	}
}
