package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// ALTER VIEW through the gateway is a schema change (as CREATE OR REPLACE
// VIEW is), not Unknown: under a policy that reviews only Unknown
// statements it runs at once, is recorded as a schema operation with its
// own text, and each one makes the gateway forget its view catalog, so a
// masked column a view is redefined to expose, under a name the cached
// catalog traced to an unmasked one, stays masked. An ALTER VIEW whose
// select calls a stored function is Unknown, as the CREATE OR REPLACE
// VIEW would be, and held.
func TestAlterViewThroughGateway(t *testing.T) {
	t.Parallel()
	res := realResource("my-alterview", "reject", maskRules)
	res.Policy.Review.Kinds = []string{"privilege", "admin", "unknown"}
	re := newRealEnv(t, res)
	tb := "altv_" + randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50))", testDB, tb),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 'ada', '%s')", testDB, tb, secretSSN),
		fmt.Sprintf("CREATE FUNCTION %s.%s_fn(x VARCHAR(50)) RETURNS VARCHAR(50) DETERMINISTIC RETURN x", testDB, tb),
	); err != nil {
		t.Fatal(err)
	}
	db := re.login(t, person("alice", "engineers"), "my-alterview")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	view := tb + "_v"
	read := func(prepared bool) string {
		t.Helper()
		q := "SELECT name FROM " + view
		var v *string
		var err error
		if prepared {
			err = conn.QueryRowContext(ctx, q+" WHERE id = ?", 1).Scan(&v)
		} else {
			err = conn.QueryRowContext(ctx, q).Scan(&v)
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if v == nil {
			return "NULL"
		}
		return *v
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE VIEW %s AS SELECT id, name FROM %s", view, tb)); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		ddl, want string
	}{
		{"SELECT 1", "ada"}, // the catalog is loaded: name is name
		{"ALTER VIEW %s AS SELECT id, ssn AS name FROM %s", "****"},
		{"ALTER ALGORITHM=TEMPTABLE SQL SECURITY INVOKER VIEW %s AS SELECT id, name FROM %s", "ada"},
		{"ALTER DEFINER=CURRENT_USER VIEW %s (id, name) AS SELECT id, CONCAT(ssn, '') FROM %s", "****"},
		{"ALTER ALGORITHM=MERGE VIEW %s AS SELECT id, name FROM %s WHERE id = 1 WITH CASCADED CHECK OPTION", "ada"},
		{"alter /* a reason */ view %s AS SELECT id, name FROM %s", "ada"},
		{"ALTER VIEW %s AS SELECT id, ssn AS name FROM %s", "****"},
	} {
		ddl := step.ddl
		if strings.Contains(ddl, "%s") {
			ddl = fmt.Sprintf(ddl, view, tb)
		}
		if _, err := conn.ExecContext(ctx, ddl); err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
		if strings.HasPrefix(strings.ToUpper(ddl), "ALTER") && !re.stored(t, ddl, `"kind":"schema"`, `"decision":"allow"`) {
			t.Fatalf("%s: not recorded as an allowed schema operation with its own text", ddl)
		}
		if got := read(false); got != step.want {
			t.Fatalf("after %q, text protocol: got %q, want %q", ddl, got, step.want)
		}
		if got := read(true); got != step.want {
			t.Fatalf("after %q, binary protocol: got %q, want %q", ddl, got, step.want)
		}
	}

	hidden := fmt.Sprintf("ALTER VIEW %s AS SELECT id, %s_fn(ssn) AS name FROM %s", view, tb, tb)
	_, err = conn.ExecContext(ctx, hidden)
	if id := reviewIDIn(t, err); id == "" {
		t.Fatalf("an ALTER VIEW calling a stored function ran unreviewed: %v", err)
	}
	// A refusal's event is not waited for before the answer: wait here.
	waitFor(t, func() bool { return re.stored(t, hidden, `"kind":"unknown"`) })
}
