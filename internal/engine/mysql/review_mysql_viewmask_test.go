package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// Reading a view whose definition calls a stored function, or whose
// definition the upstream user may not read, is Unknown (viewkind.go):
// it waits for review. Once approved, its columns are still masked: they
// cannot be traced through the definition, so they are masked whole.

// approvedRow runs q (text protocol, or prepared when prepared is set),
// which must be refused for review; carol approves it and it runs again.
// It returns the first row.
func approvedRow(t *testing.T, re *realEnv, db *sql.DB, q string, prepared bool) []any {
	t.Helper()
	run := func() (*sql.Rows, error) {
		if !prepared {
			return db.Query(q)
		}
		st, err := db.Prepare(q)
		if err != nil {
			t.Fatalf("prepare %s: %v", q, err)
		}
		t.Cleanup(func() { st.Close() })
		return st.Query()
	}
	rows, err := run()
	if err == nil {
		rows.Close()
		t.Fatalf("%s ran without review", q)
	}
	if !strings.Contains(err.Error(), "review ") {
		t.Fatalf("%s: %v", q, err)
	}
	if _, err := re.svc.Approve(context.Background(), reviewIDIn(t, err), apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	if rows, err = run(); err != nil {
		t.Fatalf("approved %s: %v", q, err)
	}
	defer rows.Close()
	return scanFirst(t, rows, q)
}

// The columns of an approved read of a view over a stored function are
// masked whole.
func TestMaskViewFunctionApproved(t *testing.T) {
	t.Parallel()
	re, tb, _ := viewEnv(t)
	db := re.login(t, person("alice", "engineers"), "my-mask")
	q := "SELECT fx, name FROM " + tb + "_func"
	for _, prepared := range []bool{false, true} {
		if got := approvedRow(t, re, db, q, prepared); fmt.Sprint(got) != "[**** ****]" {
			t.Fatalf("%s (prepared %v): got %v", q, prepared, got)
		}
	}
}

// The upstream user may read a view but not its definition (no SHOW VIEW:
// information_schema shows it with an empty definition): reading it waits
// for review, and once approved its columns are masked whole, the
// unmasked ones too.
func TestMaskViewHiddenDefinition(t *testing.T) {
	t.Parallel()
	user := "cs_hid_" + randHex(3)
	res := realResource("my-hidden", "reject", maskRules)
	res.Policy.Review.Kinds = []string{"privilege", "admin"}
	res.Username = user
	re := newRealEnv(t, res)
	tb := "hidden_" + randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50))", testDB, tb),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 'ada', '%s')", testDB, tb, secretSSN),
		fmt.Sprintf("CREATE VIEW %s.%s_v AS SELECT id, name, ssn AS contact FROM %s.%[2]s", testDB, tb, testDB),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, userPass),
		fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%'", testDB, user),
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	db := re.login(t, person("alice", "engineers"), "my-hidden")
	for _, q := range []string{"SELECT id, name, contact FROM %s_v", "SELECT * FROM %s_v", "SELECT x.name, x.contact, x.id FROM %s_v x"} {
		q = fmt.Sprintf(q, tb)
		for _, prepared := range []bool{false, true} {
			for _, v := range approvedRow(t, re, db, q, prepared) {
				if v != nil && v != "****" {
					t.Fatalf("%s: a column of a view whose definition is hidden came through", q)
				}
			}
		}
	}
	// The table itself is traced as ever, and read without review.
	if got := queryRow(t, db, "SELECT name, ssn FROM "+tb); fmt.Sprint(got) != "[ada ****]" {
		t.Fatalf("table: %v", got)
	}
}
