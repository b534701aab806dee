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
