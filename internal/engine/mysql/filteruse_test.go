package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/review"
)

// filterRefusal is what the guard's masked_filter refusal tells the
// client: how to get an unmask grant.
const filterRefusal = "ask for an unmask grant"

// filterEnv is a resource whose customers.ssn is redacted with
// filter: deny, nothing reviewed (a write runs at once: only the filter
// rule may stop it), its tables, and a way to log people in.
type filterEnv struct {
	re  *realEnv
	sub *strings.Replacer
}

func newFilterEnv(t *testing.T) *filterEnv {
	t.Helper()
	sfx := randHex(3)
	c, n, o := "customers_"+sfx, "notes_"+sfx, "others_"+sfx
	v, vv, f := "vfilter_"+sfx, "vnested_"+sfx, "fstored_"+sfx
	res := realResource("my-filter", "reject", []config.MaskRule{
		{Columns: []string{testDB + "." + c + ".ssn"}, Strategy: "redact", Filter: "deny"},
	})
	res.Policy.Review.Kinds = nil
	re := newRealEnv(t, res)
	q := func(s string) string { return fmt.Sprintf("%s.%s", testDB, s) }
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50) UNIQUE)", q(c)),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'ada', '%s'), (2, 'bob', '123-45')", q(c), secretSSN),
		fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, note VARCHAR(50))", q(n)),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'first')", q(n)),
		fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, ssn VARCHAR(50))", q(o)),
		fmt.Sprintf("INSERT INTO %s VALUES (1, '%s')", q(o), secretSSN),
		fmt.Sprintf("CREATE VIEW %s AS SELECT id, name FROM %s WHERE ssn LIKE '1%%'", q(v), q(c)),
		fmt.Sprintf("CREATE VIEW %s AS SELECT id, ssn AS contact FROM %s", q(vv), q(c)),
		fmt.Sprintf("CREATE FUNCTION %s(x VARCHAR(50)) RETURNS INT DETERMINISTIC RETURN x LIKE '1%%'", q(f)),
	); err != nil {
		t.Fatal(err)
	}
	return &filterEnv{re: re, sub: strings.NewReplacer("{c}", c, "{n}", n, "{o}", o, "{v}", v, "{vv}", vv, "{f}", f, "{db}", testDB)}
}

// conn opens a one-connection pool of the person: binary is
// go-sql-driver's default (arguments make a server-side prepared
// statement); otherwise arguments are interpolated and several statements
// may be sent in one COM_QUERY.
func (fx *filterEnv) conn(t *testing.T, secret string, binary bool) *sql.DB {
	t.Helper()
	extra := "&interpolateParams=true&multiStatements=true"
	if binary {
		extra = "&interpolateParams=false"
	}
	db, err := sql.Open("mysql", fmt.Sprintf("my-filter:%s@tcp(%s)/%s?tls=cs&allowCleartextPasswords=true%s", secret, fx.re.addr, testDB, extra))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// filterCase is a chain of statements on one connection; the last may
// take arguments (binary: through COM_STMT_PREPARE and EXECUTE).
type filterCase struct {
	name   string
	steps  []string
	args   []any
	binary bool
}

// run runs the steps and returns each one's output (outputOf).
func (fx *filterEnv) run(t *testing.T, secret string, tc filterCase) []string {
	t.Helper()
	db := fx.conn(t, secret, tc.binary)
	var out []string
	for i, s := range tc.steps {
		var args []any
		if i == len(tc.steps)-1 {
			args = tc.args
		}
		out = append(out, outputOf(db, fx.sub.Replace(s), args...))
	}
	return out
}

// filterRefused use customers.ssn other than as plain output: each must be
// refused (at some step) with the unmask-grant hint, and run under an
// approved unmask grant.
var filterRefused = []filterCase{
	{name: "where like", steps: []string{"SELECT name FROM {c} WHERE ssn LIKE '1%'"}},
	{name: "where is null", steps: []string{"SELECT name FROM {c} WHERE id = 1 AND ssn IS NULL"}},
	{name: "paren and row", steps: []string{"SELECT name FROM {c} WHERE ROW(id, (ssn)) = ROW(1, 'x')"}},
	{name: "join on", steps: []string{"SELECT c.name FROM {c} c JOIN {n} n ON n.note = c.ssn"}},
	{name: "join using", steps: []string{"SELECT name FROM {c} JOIN {o} USING (ssn)"}},
	{name: "natural join", steps: []string{"SELECT name FROM {c} NATURAL JOIN {o}"}},
	{name: "order by", steps: []string{"SELECT name FROM {c} ORDER BY ssn"}},
	{name: "order by position", steps: []string{"SELECT name, ssn FROM {c} ORDER BY 2"}},
	{name: "order by alias", steps: []string{"SELECT ssn AS s FROM {c} ORDER BY s"}},
	{name: "group by", steps: []string{"SELECT COUNT(*) FROM {c} GROUP BY ssn"}},
	{name: "having", steps: []string{"SELECT name FROM {c} GROUP BY name HAVING MAX(ssn) > '1'"}},
	{name: "distinct", steps: []string{"SELECT DISTINCT ssn FROM {c}"}},
	{name: "distinct star", steps: []string{"SELECT DISTINCT * FROM {c}"}},
	{name: "union", steps: []string{"SELECT ssn FROM {c} UNION SELECT note FROM {n}"}},
	{name: "case when", steps: []string{"SELECT CASE WHEN ssn LIKE '1%' THEN 1 ELSE 0 END FROM {c}"}},
	{name: "comparison", steps: []string{"SELECT ssn = 'x' FROM {c}"}},
	{name: "length", steps: []string{"SELECT LENGTH(ssn) FROM {c}"}},
	{name: "min", steps: []string{"SELECT MIN(ssn) FROM {c}"}},
	{name: "count distinct", steps: []string{"SELECT COUNT(DISTINCT ssn) FROM {c}"}},
	{name: "if", steps: []string{"SELECT IF(ssn LIKE '1%', 1, 0) FROM {c}"}},
	{name: "concat", steps: []string{"SELECT CONCAT(ssn, '') FROM {c}"}},
	{name: "window", steps: []string{"SELECT ROW_NUMBER() OVER (ORDER BY ssn) FROM {c}"}},
	{name: "group_concat order", steps: []string{"SELECT GROUP_CONCAT(name ORDER BY ssn) FROM {c}"}},
	{name: "in subquery", steps: []string{"SELECT name FROM {c} WHERE id IN (SELECT id FROM {c} WHERE ssn LIKE '1%')"}},
	{name: "correlated qualified", steps: []string{"SELECT name FROM {c} c WHERE EXISTS (SELECT 1 FROM {n} WHERE c.ssn LIKE '1%')"}},
	{name: "correlated unqualified", steps: []string{"SELECT name FROM {c} WHERE EXISTS (SELECT 1 FROM {n} WHERE ssn LIKE '1%')"}},
	{name: "scalar subquery compared", steps: []string{"SELECT (SELECT ssn FROM {c} WHERE id = 1) LIKE '1%'"}},
	{name: "derived table", steps: []string{"SELECT name FROM (SELECT name, ssn FROM {c}) d WHERE d.ssn LIKE '1%'"}},
	{name: "derived star", steps: []string{"SELECT name FROM (SELECT * FROM {c}) d WHERE ssn LIKE '1%'"}},
	{name: "cte", steps: []string{"WITH x AS (SELECT ssn FROM {c}) SELECT COUNT(*) FROM x WHERE ssn LIKE '1%'"}},
	{name: "cte column list", steps: []string{"WITH x (s) AS (SELECT ssn FROM {c}) SELECT COUNT(*) FROM x WHERE s LIKE '1%'"}},
	{name: "alias in derived", steps: []string{"SELECT s FROM (SELECT ssn AS s FROM {c}) t WHERE s LIKE '1%'"}},
	{name: "view filters", steps: []string{"SELECT name FROM {v}"}},
	{name: "view column filtered", steps: []string{"SELECT id FROM {vv} WHERE contact LIKE '1%'"}},
	{name: "insert select", steps: []string{"INSERT INTO {n} (id, note) SELECT id + 100, ssn FROM {c}"}},
	{name: "insert values subquery", steps: []string{"INSERT INTO {n} VALUES (200, (SELECT ssn FROM {c} WHERE id = 1))"}},
	{name: "update set", steps: []string{"UPDATE {c} SET name = ssn WHERE id = 2"}},
	{name: "update join", steps: []string{"UPDATE {n} n JOIN {c} c ON c.id = n.id SET n.note = c.ssn"}},
	{name: "delete where", steps: []string{"DELETE FROM {c} WHERE ssn = 'nothing'"}},
	{name: "create table as", steps: []string{"CREATE TABLE {n}_copy AS SELECT ssn FROM {c}"}},
	{name: "select into variable", steps: []string{"SELECT ssn INTO @x FROM {c} WHERE id = 1", "SELECT @x LIKE '1%'"}},
	{name: "set variable", steps: []string{"SET @y = (SELECT ssn FROM {c} WHERE id = 1)", "SELECT @y LIKE '1%'"}},
	{name: "assign variable", steps: []string{"SELECT @z := ssn FROM {c} WHERE id = 1", "SELECT @z LIKE '1%'"}},
	{name: "explain", steps: []string{"EXPLAIN SELECT name FROM {c} WHERE ssn = 'x'"}},
	{name: "stored function", steps: []string{"SELECT name FROM {c} WHERE {f}(ssn)"}},
	{name: "stored function output", steps: []string{"SELECT {f}(ssn) FROM {c}"}},
	{name: "prepared binary", binary: true, steps: []string{"SELECT name FROM {c} WHERE ssn LIKE ?"}, args: []any{"1%"}},
	{name: "sql prepare execute", steps: []string{"PREPARE s FROM 'SELECT name FROM {c} WHERE ssn LIKE ''1%'''", "EXECUTE s"}},
	{name: "sql prepare from variable", steps: []string{"SET @q = 'SELECT name FROM {c} WHERE ssn LIKE ''1%'''", "PREPARE s FROM @q", "EXECUTE s"}},
	{name: "multi statement", steps: []string{"SELECT 1; SELECT name FROM {c} WHERE ssn LIKE '1%'"}},
	{name: "executable comment", steps: []string{"SELECT name FROM {c} /*!50000 WHERE ssn LIKE '1%' */"}},
	{name: "backquoted and cased", steps: []string{"SELECT `NAME` FROM `{c}` WHERE `SsN` LIKE '1%'"}},
	{name: "schema qualified", steps: []string{"SELECT name FROM {db}.{c} WHERE {db}.{c}.ssn LIKE '1%'"}},
	{name: "table alias", steps: []string{"SELECT x.name FROM {c} AS x WHERE x.SSN LIKE '1%'"}},
}

// filterAllowed read customers.ssn only as output (masked) or do not use
// it: they run, and the value never shows.
var filterAllowed = []filterCase{
	{name: "plain", steps: []string{"SELECT ssn FROM {c}"}},
	{name: "alias", steps: []string{"SELECT ssn AS x FROM {c}"}},
	{name: "table alias", steps: []string{"SELECT c.ssn FROM {c} c"}},
	{name: "other column filtered", steps: []string{"SELECT name FROM {c} WHERE id = 1"}},
	{name: "star", steps: []string{"SELECT * FROM {c} WHERE id = 1 ORDER BY name"}},
	{name: "union all", steps: []string{"SELECT ssn FROM {c} UNION ALL SELECT note FROM {n}"}},
	{name: "derived output", steps: []string{"SELECT s FROM (SELECT ssn AS s, id FROM {c}) t WHERE t.id = 1"}},
	{name: "cte output", steps: []string{"WITH x AS (SELECT * FROM {c}) SELECT ssn FROM x WHERE name = 'ada'"}},
	{name: "scalar subquery", steps: []string{"SELECT (SELECT ssn FROM {c} WHERE id = 1)"}},
	{name: "join other columns", steps: []string{"SELECT c.ssn, n.note FROM {c} c JOIN {n} n ON n.id = c.id"}},
	{name: "using other column", steps: []string{"SELECT ssn FROM {c} JOIN {n} USING (id)"}},
	{name: "other table's ssn", steps: []string{"SELECT id FROM {o} WHERE ssn LIKE '1%'"}},
	{name: "view output", steps: []string{"SELECT contact FROM {vv} WHERE id = 1"}},
	{name: "prepared binary", binary: true, steps: []string{"SELECT ssn FROM {c} WHERE id = ?"}, args: []any{1}},
	{name: "sql prepare execute", steps: []string{"PREPARE s FROM 'SELECT ssn FROM {c} WHERE id = 1'", "EXECUTE s"}},
	{name: "write without ssn", steps: []string{"UPDATE {n} SET note = 'x' WHERE id = 1", "INSERT INTO {n} VALUES (7, 'y')"}},
	{name: "show", steps: []string{"SHOW COLUMNS FROM {c}"}},
	{name: "transaction", steps: []string{"BEGIN", "SELECT ssn FROM {c} WHERE id = 1", "COMMIT"}},
}

// MySQL enforces filter: deny as PostgreSQL does: a statement that uses a
// filter: deny column in a condition, an ordering, a grouping, a
// deduplication, a test or computation, or as the data of a write, is
// refused with an ERR naming the way to an unmask grant; reading it as
// output is allowed (and masked); an approved unmask grant runs them all.
func TestRealFilterDeny(t *testing.T) {
	t.Parallel()
	fx := newFilterEnv(t)
	alice := fx.re.issue(t, person("alice", "engineers"))
	for _, tc := range filterRefused {
		t.Run("refused/"+tc.name, func(t *testing.T) { fx.wantRefused(t, alice, tc) })
	}
	for _, tc := range filterAllowed {
		t.Run("allowed/"+tc.name, func(t *testing.T) { fx.wantMasked(t, alice, tc) })
	}
	// Under an approved unmask grant every refused statement runs.
	bob := fx.unmasked(t, "filter deny test")
	for _, tc := range filterRefused {
		t.Run("granted/"+tc.name, func(t *testing.T) { fx.wantRuns(t, bob, tc) })
	}
}

// wantRefused runs tc and wants a refusal naming the unmask grant, and the
// value nowhere.
func (fx *filterEnv) wantRefused(t *testing.T, secret string, tc filterCase) {
	t.Helper()
	out := fx.run(t, secret, tc)
	refused := false
	for _, o := range out {
		refused = refused || strings.Contains(o, filterRefusal)
		if strings.Contains(o, secretSSN) {
			t.Errorf("the value leaked: %q", o)
		}
	}
	if !refused {
		t.Errorf("ran; want a refusal naming the unmask grant: %q", out)
	}
}

// wantMasked runs tc and wants every step to run without showing the
// value.
func (fx *filterEnv) wantMasked(t *testing.T, secret string, tc filterCase) {
	t.Helper()
	for i, o := range fx.run(t, secret, tc) {
		if strings.HasPrefix(o, "error:") {
			t.Errorf("step %d: %s", i, o)
		}
		if strings.Contains(o, secretSSN) {
			t.Errorf("step %d: the value leaked: %q", i, o)
		}
	}
}

// wantRuns runs tc and wants every step to run (under an unmask grant).
func (fx *filterEnv) wantRuns(t *testing.T, secret string, tc filterCase) {
	t.Helper()
	for i, o := range fx.run(t, secret, tc) {
		if strings.HasPrefix(o, "error:") {
			t.Errorf("step %d under the unmask grant: %s", i, o)
		}
	}
}

// unmasked returns the secret of bob, a creator holding an unmask grant
// that carol approved.
func (fx *filterEnv) unmasked(t *testing.T, reason string) string {
	t.Helper()
	bob := person("bob", "engineers")
	ctx := context.Background()
	g, err := fx.re.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "my-filter", Initiator: bob,
		Access: []string{"unmask"}, Duration: time.Hour, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = fx.re.svc.Approve(ctx, g.ID, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	return fx.re.issue(t, bob)
}

// The refusal is an ERR packet (1142, 42000) whose message names the
// column, the rule and the way to an unmask grant.
func TestRealFilterDenyMessage(t *testing.T) {
	t.Parallel()
	fx := newFilterEnv(t)
	db := fx.conn(t, fx.re.issue(t, person("alice", "engineers")), false)
	_, err := db.Exec(fx.sub.Replace("SELECT name FROM {c} WHERE ssn LIKE '1%'"))
	if err == nil {
		t.Fatal("ran")
	}
	for _, want := range []string{"Error 1142 (42000)", fx.sub.Replace("{db}.{c}.ssn may only be read as output"), "filter: deny",
		"countersign grants request my-filter --access unmask"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// The session goes on.
	if got := queryRow(t, db, fx.sub.Replace("SELECT name FROM {c} WHERE id = 1")); fmt.Sprint(got) != "[ada]" {
		t.Fatalf("after the refusal: %v", got)
	}
}
