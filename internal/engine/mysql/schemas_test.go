package mysql

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
)

func TestSchemaRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		res    config.Resource
		schema string
		ok     bool
	}{
		{"listed", config.Resource{Schemas: []string{"app", "reports"}, Database: "app"}, "reports", true},
		{"not listed", config.Resource{Schemas: []string{"app"}}, "other", false},
		{"case matters", config.Resource{Schemas: []string{"app"}}, "APP", false},
		{"database only", config.Resource{Database: "app"}, "other", false},
		{"the database", config.Resource{Database: "app"}, "app", true},
		{"any", config.Resource{}, "other", true},
		{"information_schema", config.Resource{Database: "app"}, "INFORMATION_SCHEMA", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Name = "my-x"
			why := schemaRefusal(&tc.res, []string{tc.schema})
			if (why == "") != tc.ok {
				t.Fatalf("schema %q: refusal %q", tc.schema, why)
			}
			if why != "" && !strings.Contains(why, "allows only the schemas") {
				t.Fatalf("message %q", why)
			}
		})
	}
}

// The resource allows only its database: USE, COM_INIT_DB, a qualified
// name and the schema named at connect are refused elsewhere, before
// anything reaches the upstream or the guard.
func TestAllowedSchemasEnforced(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"USE mysql",
		"SELECT user FROM mysql.user",
		"SELECT mysql.user.user FROM user",
		"INSERT INTO people SELECT * FROM other_db.people",
		"SHOW TABLES FROM mysql",
		"PREPARE s FROM 'DELETE FROM mysql.user'",
	} {
		_, err := db.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "Error 1044") || !strings.Contains(err.Error(), "allows only the schemas "+testDB) {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, q := range []string{"SELECT COUNT(*) FROM information_schema.TABLES", "SELECT name FROM " + testDB + ".people LIMIT 1"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		rows.Close()
	}
	c := gatewayClient(t, ev)
	if err := c.UseDB("mysql"); err == nil || !strings.Contains(err.Error(), "allows only the schemas") {
		t.Errorf("COM_INIT_DB: %v", err)
	}
	other, err := sql.Open("mysql", fmt.Sprintf("my-test:%s@tcp(%s)/mysql?tls=cs&allowCleartextPasswords=true", enginetest.Token, ev.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Ping(); err == nil || !strings.Contains(err.Error(), "1044") {
		t.Errorf("connect to another schema: %v", err)
	}
	for _, op := range ev.g.Ops() {
		if strings.Contains(op.Text, "mysql") {
			t.Errorf("the guard was asked about %q", op.Text)
		}
	}
}

// SQL-level PREPARE from a literal: EXECUTE is decided as the prepared
// statement, with its text bound as a parameter; from a variable, or
// after DEALLOCATE, EXECUTE is unknown.
func TestSQLPrepareExecute(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	db.SetMaxOpenConns(1)
	steps := []struct {
		sql   string
		want  sqlkind.Kind
		param string
	}{
		{"PREPARE s FROM 'UPDATE people SET name = name WHERE id = ?'", sqlkind.Read, ""},
		{"SET @id = 1", sqlkind.Read, ""},
		{"EXECUTE s USING @id", sqlkind.Unknown, "UPDATE people SET name = name WHERE id = ?"},
		{"PREPARE r FROM 'SELECT name FROM people'", sqlkind.Read, ""},
		{"EXECUTE r", sqlkind.Read, "SELECT name FROM people"},
		{"PREPARE w FROM 'DELETE FROM people WHERE id = 99'", sqlkind.Read, ""},
		{"EXECUTE w", sqlkind.Write, "DELETE FROM people WHERE id = 99"},
		{"DEALLOCATE PREPARE w", sqlkind.Read, ""},
		{"SET @q = 'SELECT 1'", sqlkind.Read, ""},
		{"PREPARE v FROM @q", sqlkind.Unknown, ""},
		{"EXECUTE v", sqlkind.Unknown, ""},
		{"PREPARE r FROM 'SELECT nosuchcolumn FROM people'", sqlkind.Read, ""}, // fails upstream: r is forgotten
		{"EXECUTE r", sqlkind.Unknown, ""},
	}
	ev.g.SetRule(func(string) guard.Verdict { return enginetest.Allow() })
	for _, st := range steps {
		rows, _ := db.Query(st.sql)
		if rows != nil {
			rows.Close()
		}
		op := ev.g.LastOp()
		if op.Text != st.sql || op.Class.Kind != st.want {
			t.Fatalf("%s: decided %q as %v (%s)", st.sql, op.Text, op.Class.Kind, op.Class.Reason)
		}
		if st.param != "" && (len(op.Params) != 1 || string(op.Params[0].Value) != st.param) {
			t.Fatalf("%s: params %+v", st.sql, op.Params)
		}
	}
}
