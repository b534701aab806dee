package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/sqlkind"
)

// An approval of a statement that reads a user variable is bound to the
// variable's value: changed after the approval (SET @x is a read anyone
// may run), the same text needs a review of its own; set back, it runs.
// The review names the variable and does not show its value.
func TestRealReviewBindsUserVariables(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-vars", "reject", nil))
	table := scratchTable(t, "vars")
	alice, carol := person("alice", "engineers"), person("carol", "dba-leads")
	db := re.login(t, alice, "my-vars")
	ctx := context.Background()
	conn, err := db.Conn(ctx) // one session: user variables are per session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) error {
		_, err := conn.ExecContext(ctx, q)
		return err
	}
	if err := exec("SET @amount = 'reviewed', @id = 1"); err != nil {
		t.Fatal(err)
	}
	update := "UPDATE " + table + " SET name = @amount WHERE id = @id"
	id := reviewIDIn(t, exec(update))
	r, err := re.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State.Variables != "@amount, @id" {
		t.Errorf("review shows variables %q, want \"@amount, @id\"", r.State.Variables)
	}
	if _, err := re.svc.Approve(ctx, id, apiActor(carol), ""); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET @amount = 'evil'", "SET @amount = 'reviewed', @id = 2", "SET @amount = NULL, @id = 1"} {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
		if err := exec(update); err == nil || reviewIDIn(t, err) == id {
			t.Errorf("after %s the approval of %s ran: %v", q, update, err)
		}
	}
	if got := nameOf(t, table, 1) + nameOf(t, table, 2); got != "adabob" {
		t.Fatalf("rows changed without their review: %q", got)
	}
	if err := exec("SET @amount = 'reviewed', @id = 1"); err != nil {
		t.Fatal(err)
	}
	if err := exec(update); err != nil {
		t.Fatalf("the approved statement with its reviewed values was refused: %v", err)
	}
	if got := nameOf(t, table, 1); got != "reviewed" {
		t.Fatalf("name = %q", got)
	}
	// A procedure reads the variable without the statement naming it.
	proc := "setname_" + randHex(3)
	if err := adminExec("CREATE PROCEDURE " + testDB + "." + proc + "() UPDATE " + testDB + "." + table + " SET name = @amount WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP PROCEDURE " + testDB + "." + proc) })
	call := "CALL " + proc + "()"
	id = reviewIDIn(t, exec(call))
	if _, err := re.svc.Approve(ctx, id, apiActor(carol), ""); err != nil {
		t.Fatal(err)
	}
	if err := exec("SET @amount = 'evil'"); err != nil {
		t.Fatal(err)
	}
	if err := exec(call); err == nil || reviewIDIn(t, err) == id {
		t.Errorf("after SET @amount = 'evil' the approval of %s ran: %v", call, err)
	}
	if got := nameOf(t, table, 2); got != "bob" {
		t.Fatalf("the procedure ran with a changed variable: %q", got)
	}
	if err := exec("SET @amount = 'reviewed'"); err != nil {
		t.Fatal(err)
	}
	if err := exec(call); err != nil {
		t.Fatalf("the approved CALL with its reviewed values was refused: %v", err)
	}
	if got := nameOf(t, table, 2); got != "reviewed" {
		t.Fatalf("name = %q after the approved CALL", got)
	}
	if re.stored(t, "evil", "UPDATE") {
		t.Error("a variable's value reached the UPDATE's recorded operation")
	}
}

// The classifier lists the user variables a statement reads, not those it
// only sets.
func TestClassifyUserVariables(t *testing.T) {
	c := sqlkind.NewMySQL(sqlkind.MySQLOptions{})
	for _, tc := range []struct{ sql, want string }{
		{"UPDATE t SET a = @X WHERE id = @`Id`", "id x"},
		{"SET @a = @b + 1", "b"},
		{"SELECT @a := 1", ""},
		{"SELECT @a := @a + 1", "a"},
		{"DELETE FROM t WHERE id IN (SELECT id FROM u WHERE v = @v)", "v"},
		{"INSERT INTO t VALUES (@x); UPDATE t SET a = @y", "x y"},
		{"SELECT @@sql_mode", ""},
	} {
		if got := strings.Join(c.Classify(tc.sql).Variables, " "); got != tc.want {
			t.Errorf("%s: variables %q, want %q", tc.sql, got, tc.want)
		}
	}
}

// The gateway's read of the variables would replace what GET DIAGNOSTICS
// reads and reset ROW_COUNT(): the first is not bound, the second refused.
func TestVariablesAndDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		text       string
		diag, cnts bool
	}{
		{"GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT", true, false},
		{"  get current diagnostics @n = NUMBER;", true, false},
		{"GET DIAGNOSTICS @n = NUMBER; CALL evil()", false, false},
		{"/* x */ GET DIAGNOSTICS @n = NUMBER", false, false},
		{"INSERT INTO t VALUES (ROW_COUNT())", false, true},
		{"CALL p() /* found_rows */", false, true},
	} {
		if got := getDiagnostics.MatchString(tc.text); got != tc.diag {
			t.Errorf("%q: GET DIAGNOSTICS alone = %v", tc.text, got)
		}
		if got := countFuncs.MatchString(tc.text); got != tc.cnts {
			t.Errorf("%q: reads a count = %v", tc.text, got)
		}
	}
}
