package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// viewEnv is maskEnv's resource and table plus views over the table, one
// per way a view can carry a masked column, and a schema of its own with
// a view over the table.
func viewEnv(t *testing.T) (*realEnv, string, string) {
	t.Helper()
	other := testDB + "_o" + randHex(2)
	re, _, tb := maskEnv(t, other)
	q := func(s string) string {
		return strings.NewReplacer("{t}", testDB+"."+tb, "{v}", testDB+"."+tb+"_", "{o}", other).Replace(s)
	}
	if err := adminExec(
		q("CREATE VIEW {v}plain AS SELECT id, name, ssn, pin, email FROM {t}"),
		q("CREATE VIEW {v}alias AS SELECT id, ssn AS contact, name FROM {t}"),
		q("CREATE VIEW {v}vv AS SELECT contact AS c2, name AS n2 FROM {v}alias"),
		q("CREATE VIEW {v}list (a, b, c) AS SELECT ssn, name, pin FROM {t}"),
		q("CREATE VIEW {v}expr AS SELECT CONCAT(ssn, '') AS a, LOWER(ssn) AS b, UPPER(name) AS n, pin + 0 AS p FROM {t}"),
		q("CREATE VIEW {v}union AS SELECT name AS x, id FROM {t} UNION ALL SELECT ssn, id + 10 FROM {t}"),
		q("CREATE ALGORITHM=TEMPTABLE SQL SECURITY INVOKER VIEW {v}tmp AS SELECT id, ssn AS contact, name FROM {t} WHERE id > 0"),
		q("CREATE ALGORITHM=MERGE DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW {v}chk AS SELECT id, ssn AS contact, name FROM {t} WHERE id > 0 WITH CASCADED CHECK OPTION"),
		q("CREATE FUNCTION {v}fn(x VARCHAR(50)) RETURNS VARCHAR(50) DETERMINISTIC RETURN x"),
		q("CREATE VIEW {v}func AS SELECT {v}fn(name) AS fx, name FROM {t}"),
		q("CREATE TABLE {v}inv (id INT, ssn VARCHAR(50) INVISIBLE, name VARCHAR(50))"),
		q("INSERT INTO {v}inv (id, ssn, name) VALUES (1, '"+secretSSN+"', 'ada')"),
		q("CREATE DATABASE {o}"),
		q("CREATE VIEW {o}.other AS SELECT ssn AS s, name FROM {t}"),
		fmt.Sprintf("GRANT SELECT, SHOW VIEW ON %s.* TO '%s'@'%%'", other, nativeUser),
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP DATABASE IF EXISTS " + other) })
	return re, tb, other
}

// A masked column read through a view, however the view or the query
// dresses it up, is masked; the view's other columns come through as they
// are. Text protocol and, prepared, binary protocol.
func TestMaskViews(t *testing.T) {
	t.Parallel()
	re, tb, other := viewEnv(t)
	db := re.login(t, person("alice", "engineers"), "my-mask")
	tests := []struct {
		name, query string
		want        []any // nil: NULL
	}{
		{"view", "SELECT id, name, ssn, pin, email FROM {v}plain", []any{"1", "ada", "****", nil, "****"}},
		{"view star", "SELECT * FROM {v}plain", []any{"1", "ada", "****", nil, "****"}},
		{"renamed column", "SELECT contact, name FROM {v}alias", []any{"****", "ada"}},
		{"view alias in the query", "SELECT x.contact, x.name, x.id FROM {v}alias x", []any{"****", "ada", "1"}},
		{"view alias star", "SELECT x.* FROM {v}alias x", []any{"1", "****", "ada"}},
		{"query alias of a view column", "SELECT contact AS harmless, name AS n FROM {v}alias", []any{"****", "ada"}},
		{"expression over a view column", "SELECT CONCAT(contact, ''), UPPER(name) FROM {v}alias", []any{"****", "ADA"}},
		{"view of a view", "SELECT c2, n2 FROM {v}vv", []any{"****", "ada"}},
		{"view of a view star", "SELECT * FROM {v}vv", []any{"****", "ada"}},
		{"column list", "SELECT a, b, c FROM {v}list", []any{"****", "ada", nil}},
		{"computed in the view", "SELECT a, b, n, p FROM {v}expr", []any{"****", "****", "ADA", nil}},
		{"union view", "SELECT x, id FROM {v}union ORDER BY id", []any{"****", "1"}},
		{"temptable, invoker", "SELECT * FROM {v}tmp", []any{"1", "****", "ada"}},
		{"merge, definer, check option", "SELECT * FROM {v}chk", []any{"1", "****", "ada"}},
		{"temptable aliased", "SELECT y.contact, y.name FROM {v}tmp y", []any{"****", "ada"}},
		{"another schema", "SELECT s, name FROM {o}.other", []any{"****", "ada"}},
		{"another schema star", "SELECT * FROM {o}.other", []any{"****", "ada"}},
		{"star over a view and a table", "SELECT * FROM {v}alias v JOIN {t} t ON v.id = t.id", []any{"1", "****", "ada", "1", "ada", "****", nil, "****"}},
		{"star over an invisible column", "SELECT * FROM {v}inv i JOIN {v}alias v ON i.id = v.id", []any{"1", "ada", "1", "****", "ada"}},
		{"join view and table", "SELECT v.contact, t.name, v.name FROM {v}alias v JOIN {t} t ON v.id = t.id", []any{"****", "ada", "ada"}},
		{"derived table over a view", "SELECT c, n FROM (SELECT contact AS c, name AS n FROM {v}alias) d", []any{"****", "ada"}},
		{"union with a view", "SELECT name FROM {t} WHERE 0 UNION SELECT contact FROM {v}alias", []any{"****"}},
		{"subquery over a view", "SELECT (SELECT contact FROM {v}alias LIMIT 1)", []any{"****"}},
		{"view in a condition only", "SELECT name FROM {t} WHERE id IN (SELECT id FROM {v}alias)", []any{"ada"}},
		{"cte over a view", "WITH c AS (SELECT name FROM {v}alias) SELECT name FROM c", []any{"****"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := strings.NewReplacer("{t}", tb, "{v}", tb+"_", "{o}", other).Replace(tc.query)
			if got := queryRow(t, db, q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("text protocol: %s: got %v, want %v", q, got, tc.want)
			}
			if got := preparedRow(t, db, q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("binary protocol: %s: got %v, want %v", q, got, tc.want)
			}
		})
	}
}

// A view redefined through the gateway in the middle of a session is
// traced anew: the cached catalog of the view's old definition (name was
// the name) must not let ssn through under that name.
func TestMaskViewReplacedMidSession(t *testing.T) {
	t.Parallel()
	re, _, tb := maskEnv(t)
	db := re.login(t, person("alice", "engineers"), "my-mask")
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	view := tb + "_re"
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
	for _, step := range []struct {
		ddl, want string
	}{
		{"CREATE VIEW %s AS SELECT id, name FROM %s", "ada"},
		{"CREATE OR REPLACE VIEW %s AS SELECT id, ssn AS name FROM %s", "****"},
		{"CREATE OR REPLACE VIEW %s AS SELECT id, name FROM %s", "ada"},
		{"CREATE OR REPLACE ALGORITHM=TEMPTABLE VIEW %s AS SELECT id, CONCAT(ssn, '') AS name FROM %s", "****"},
	} {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(step.ddl, view, tb)); err != nil {
			t.Fatalf("%s: %v", step.ddl, err)
		}
		if got := read(false); got != step.want {
			t.Fatalf("after %q, text protocol: got %q, want %q", step.ddl, got, step.want)
		}
		if got := read(true); got != step.want {
			t.Fatalf("after %q, binary protocol: got %q, want %q", step.ddl, got, step.want)
		}
	}
}

// A view created outside the gateway after the catalog was cached is not
// taken for a table (its column definitions would name the view, not the
// column it reads); a temporary table, which the catalog never lists, is
// still traced through its column definitions.
func TestMaskViewCreatedOutside(t *testing.T) {
	t.Parallel()
	re, _, tb := maskEnv(t)
	db := re.login(t, person("alice", "engineers"), "my-mask")
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	first := func(q string) string {
		t.Helper()
		var v *string
		if err := conn.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if v == nil {
			return "NULL"
		}
		return *v
	}
	if got := first("SELECT name FROM " + tb); got != "ada" { // the catalog is cached now
		t.Fatalf("table: %q", got)
	}
	if err := adminExec(fmt.Sprintf("CREATE VIEW %s.%s_late AS SELECT id, CONCAT(ssn, '') AS name FROM %[1]s.%[2]s", testDB, tb)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SELECT name FROM %s_late", "SELECT x.name FROM %s_late x"} {
		if got := first(fmt.Sprintf(q, tb)); got != "****" {
			t.Fatalf("%s: a view created outside the gateway let %q through", q, got)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE "+tb+"_tmp AS SELECT id, name, ssn FROM "+tb); err != nil {
		t.Fatal(err)
	}
	if got := first("SELECT name FROM " + tb + "_tmp"); got != "ada" {
		t.Fatalf("temporary table name: %q", got)
	}
	if got := first("SELECT t.ssn FROM " + tb + "_tmp t"); got != "****" {
		t.Fatalf("temporary table ssn: %q", got)
	}
}

// A statement prepared in one schema and executed after USE of another
// still reads the view of the schema it was prepared in: the gateway,
// which resolves names in the session's schema, must not take it for a
// table.
func TestMaskViewPreparedBeforeUse(t *testing.T) {
	t.Parallel()
	re, tb, other := viewEnv(t)
	db := re.login(t, person("alice", "engineers"), "my-mask")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE "+testDB); err != nil {
		t.Fatal(err)
	}
	st, err := conn.PrepareContext(ctx, "SELECT contact, name FROM "+tb+"_tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := conn.ExecContext(ctx, "USE "+other); err != nil {
		t.Fatal(err)
	}
	rows, err := st.QueryContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := scanFirst(t, rows, "prepared before USE")
	if got[0] != "****" {
		t.Fatalf("prepared before USE: %v: the view's ssn came through", got)
	}
}
