package mysql

import (
	"context"
	"fmt"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
)

// creatorGuard is the policy of a creator: reads run, every other kind
// waits for someone else's review (refused here with its review id).
type creatorGuard struct{ *enginetest.Guard }

func (g creatorGuard) Decide(ctx context.Context, s *guard.Session, op *guard.Operation) guard.Verdict {
	g.Guard.Decide(ctx, s, op)
	if op.Class.Kind != sqlkind.Read {
		return guard.Verdict{Decision: guard.Deny, Code: "approval_required", Message: "approval required: review r-1 created"}
	}
	return enginetest.Allow()
}

// creatorEnv is an engine whose guard lets a creator run reads only.
func creatorEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, func(o *Options) { o.Guard = creatorGuard{o.Guard.(*enginetest.Guard)} })
}

// reviewTable makes a table of testDB with one row and returns its name.
func reviewTable(t *testing.T, prefix string) string {
	t.Helper()
	table := fmt.Sprintf("%s_%s", prefix, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s.%s (id INT)", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1)", testDB, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec(fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", testDB, table)) })
	return table
}

// upstreamCount counts a testDB table's rows directly on MariaDB.
func upstreamCount(t *testing.T, table string) int {
	t.Helper()
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT COUNT(*) FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.GetInt(0, 0)
	return int(n)
}

// TestReviewStoredLookalikes: MariaDB resolves an unqualified name it has
// no built-in for (eq, APPROX_COUNT_DISTINCT, REGEXP_LIKE: TiDB's or
// MySQL's names) to a stored function of the current schema, and so a
// function keyword such as COUNT written with a space, a comment or
// backticks before its "(". A creator who once got such a function
// approved (or finds one) could run its writes as reads, as often as
// wanted. SHOW ... WHERE evaluated a stored function unseen as well.
// Each is refused for a creator now, and the function never ran.
func TestReviewStoredLookalikes(t *testing.T) {
	log := reviewTable(t, "lookalike_log")
	var defs []string
	for _, name := range []string{"eq", "`count`", "approx_count_distinct", "regexp_like"} {
		defs = append(defs, fmt.Sprintf("CREATE OR REPLACE FUNCTION %s.%s(a INT) RETURNS INT MODIFIES SQL DATA "+
			"BEGIN DELETE FROM %s.%s; RETURN 1; END", testDB, name, testDB, log))
	}
	if err := adminExec(defs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"eq", "`count`", "approx_count_distinct", "regexp_like"} {
			_ = adminExec(fmt.Sprintf("DROP FUNCTION IF EXISTS %s.%s", testDB, name))
		}
	})
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT eq(1)",
		"SELECT count (1)",
		"SELECT count/**/(1)",
		"SELECT `count`(1)",
		"SELECT approx_count_distinct(1)",
		"SELECT regexp_like(1)",
		"SHOW DATABASES WHERE eq(1)",
		"SHOW TABLES WHERE `count`(1)",
	} {
		if _, err := c.Execute(q); err == nil {
			t.Errorf("%q ran for a creator", q)
		}
		if n := upstreamCount(t, log); n != 1 {
			t.Fatalf("after %q the stored function ran: %d rows left", q, n)
		}
	}
	if _, err := c.Execute("SELECT COUNT(1), COUNT(*) FROM " + log); err != nil {
		t.Fatalf("the built-in COUNT: %v", err)
	}
}

// TestReviewVariantPrepare: the engine follows the last variant of a text
// with executable comments (every comment opened), counting the server's
// results to know which statements ran. MariaDB skips /*!99999 ... */, so
// the server ran "PREPARE s FROM 'DELETE ...'" while the engine, seeing one
// result, applied the first statement of its variant, "PREPARE s FROM
// 'SELECT 1'": the EXECUTE s that followed passed as a read and deleted.
func TestReviewVariantPrepare(t *testing.T) {
	table := reviewTable(t, "variant_prep")
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	_, err := c.Execute("PREPARE s FROM /*!99999 'SELECT 1'; PREPARE x FROM */ 'DELETE FROM " + table + "'")
	if err == nil {
		t.Error("the PREPARE with a skipped comment ran")
	}
	if _, err := c.Execute("EXECUTE s"); err == nil {
		t.Error("EXECUTE s ran as a read")
	}
	if n := upstreamCount(t, table); n != 1 {
		t.Fatalf("the table lost its row: %d left", n)
	}
}

// TestReviewVariantUse: the same shift with USE. The server ran "USE
// information_schema" and then failed on the next statement; one result
// came back, so the engine applied the first statement of its variant,
// "SELECT 1", and stayed in its schema while the server had switched:
// later operations were decided, shown and bound in the wrong schema
// (invariant 4).
func TestReviewVariantUse(t *testing.T) {
	ev := creatorEnv(t)
	db := ev.open(t, "my-test", "multiStatements=true")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("/*!99999 SELECT 1; */ USE information_schema; SELECT no_such_column_here"); err == nil {
		t.Error("the text ran without an error")
	}
	var server string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&server); err != nil {
		t.Fatal(err)
	}
	if gw := ev.g.LastOp().State.Schema; server != gw {
		t.Fatalf("the server is in %q; the gateway decides in %q", server, gw)
	}
}

// TestReviewExecuteUse: MariaDB prepares USE with SQL-level PREPARE, and
// EXECUTE of it was a read that switched the server's schema behind the
// gateway's back. It waits for review now.
func TestReviewExecuteUse(t *testing.T) {
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("PREPARE s FROM 'USE information_schema'"); err != nil {
		t.Fatalf("PREPARE itself runs nothing: %v", err)
	}
	if _, err := c.Execute("EXECUTE s"); err == nil {
		t.Error("EXECUTE of a prepared USE ran as a read")
	}
	res, err := c.Execute("SELECT DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	if db, _ := res.GetString(0, 0); db != testDB || ev.g.LastOp().State.Schema != testDB {
		t.Fatalf("the server is in %q, the gateway in %q", db, ev.g.LastOp().State.Schema)
	}
}

// TestReviewSessionSetters: LAST_INSERT_ID(expr) and sql_auto_is_null
// change what later reviewed statements do; a creator cannot run them
// unreviewed.
func TestReviewSessionSetters(t *testing.T) {
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	for _, q := range []string{"SELECT LAST_INSERT_ID(42)", "SET sql_auto_is_null = 1", "SET default_storage_engine = BLACKHOLE"} {
		if _, err := c.Execute(q); err == nil {
			t.Errorf("%q ran for a creator", q)
		}
	}
	res, err := c.Execute("SELECT LAST_INSERT_ID(), @@sql_auto_is_null, @@default_storage_engine")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.GetInt(0, 0)
	auto, _ := res.GetInt(0, 1)
	engine, _ := res.GetString(0, 2)
	if id == 42 || auto != 0 || engine == "BLACKHOLE" {
		t.Fatalf("the session changed: last insert id %d, sql_auto_is_null %d, engine %s", id, auto, engine)
	}
}

// TestReviewViewCallsStoredFunction: a view whose definition calls a
// stored function runs that function for every row a SELECT reads. The
// classifier sees only "SELECT * FROM v" (a table name), so the read runs
// the function's writes unreviewed. DESIGN.md invariant 1 asks for Unknown
// when the effect depends on a view the gateway has not looked up. The
// engine classifies the definitions of the views a statement names, from
// its view catalog (views.go), and takes the most dangerous kind
// (viewkind.go; more attacks in review_mysql_views_test.go).
func TestReviewViewCallsStoredFunction(t *testing.T) {
	table := reviewTable(t, "view_fn")
	fn, view := "vfn_"+randHex(3), "vv_"+randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE FUNCTION %s.%s() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM %s.%s; RETURN 1; END", testDB, fn, testDB, table),
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT %s.%s() AS x", testDB, view, testDB, fn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adminExec(fmt.Sprintf("DROP VIEW IF EXISTS %s.%s", testDB, view), fmt.Sprintf("DROP FUNCTION IF EXISTS %s.%s", testDB, fn))
	})
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("SELECT * FROM " + testDB + "." + view); err == nil {
		t.Error("a read of a view calling a stored function ran")
	}
	if n := upstreamCount(t, table); n != 1 {
		t.Fatalf("the view's function deleted: %d rows left", n)
	}
}

// TestReviewNumericSQLMode: "SET sql_mode = 4" passed as a harmless read
// (the number was read as the empty mode) and switched the server to
// ANSI_QUOTES. Then in `SELECT 1 AS "a\" , 1; DELETE ...; -- "` the
// gateway saw one string (\" escapes a quote in a string) and the server
// an identifier `a\` followed by a DELETE: a write no one reviewed. The
// SET is refused outright now (invariant 8), and so is SET
// character_set_results = 54 (utf16), and the table keeps its row.
func TestReviewNumericSQLMode(t *testing.T) {
	table := reviewTable(t, "numeric_mode")
	ev := creatorEnv(t)
	db := ev.open(t, "my-test", "multiStatements=true")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET sql_mode = 4"); err == nil {
		t.Error("SET sql_mode = 4 ran")
	}
	rows, err := db.Query(`SELECT 1 AS "a\" , 1; DELETE FROM ` + testDB + "." + table + `; -- "`)
	if err == nil {
		for rows.NextResultSet() {
		}
		rows.Close()
	}
	if n := upstreamCount(t, table); n != 1 {
		t.Errorf("a hidden DELETE ran: %d rows left", n)
	}
	if _, err := db.Exec("SET character_set_results = 54"); err == nil {
		t.Error("SET character_set_results = 54 ran")
	}
	var mode, results string
	if err := db.QueryRow("SELECT @@sql_mode, @@character_set_results").Scan(&mode, &results); err != nil {
		t.Fatal(err)
	}
	if !sqlkind.MySQLSafeSQLMode(mode) || results != "utf8mb4" {
		t.Fatalf("the session's sql_mode is %q, character_set_results %q", mode, results)
	}
}
