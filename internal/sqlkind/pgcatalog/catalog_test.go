package pgcatalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

const adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testDB creates a throwaway database with functions of each volatility, a
// view that calls a volatile function and a table with a row-security
// policy that does, and drops it afterwards.
func testDB(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("PostgreSQL must be reachable at %s: %v", adminURL, err)
	}
	name := fmt.Sprintf("sqlkind_cat_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(context.Background())
	})
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, q := range []string{
		`CREATE TABLE t (x int)`,
		`CREATE TABLE log (x int)`,
		`CREATE FUNCTION evil() RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (1) RETURNING x'`,
		`CREATE FUNCTION steady() RETURNS int STABLE LANGUAGE sql AS 'SELECT count(*)::int FROM t'`,
		`CREATE FUNCTION pure(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 + 1'`,
		`CREATE FUNCTION evil(t) RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO log VALUES (2) RETURNING x'`,
		`CREATE VIEW bad_view AS SELECT evil() AS e`,
		`CREATE VIEW good_view AS SELECT x, lower('A') FROM t`,
		`CREATE VIEW nested_view AS SELECT * FROM bad_view`,
		`CREATE TABLE guarded (x int)`,
		`ALTER TABLE guarded ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON guarded USING (evil() > 0)`,
		`CREATE FUNCTION evil_eq(int, int) RETURNS bool VOLATILE LANGUAGE sql AS 'SELECT $1 = $2'`,
		`CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = evil_eq)`,
		`CREATE DOMAIN posint AS int`,
		`CREATE TYPE mood AS ENUM ('ok')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return conn
}

func TestResolve(t *testing.T) {
	conn := testDB(t)
	cat := New(conn, Options{})
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	tests := []struct {
		name, sql string
		want      sqlkind.Kind
	}{
		{"volatile user function", "SELECT evil()", sqlkind.Unknown},
		{"stable user function is not built in", "SELECT steady()", sqlkind.Unknown},
		{"immutable user function is not built in", "SELECT pure(1)", sqlkind.Unknown},
		{"stable built-in", "SELECT pg_catalog.pg_table_is_visible(1)", sqlkind.Read},
		{"immutable built-in off the static list", "SELECT pg_catalog.quote_ident('a')", sqlkind.Read},
		{"volatile built-in", "SELECT pg_terminate_backend(1)", sqlkind.Unknown},
		{"set_config", "SELECT set_config('role', 'postgres', false)", sqlkind.Unknown},
		{"function not in catalog", "SELECT no_such_function()", sqlkind.Unknown},
		{"view calling evil", "SELECT * FROM bad_view", sqlkind.Unknown},
		{"view of a view calling evil", "SELECT * FROM nested_view", sqlkind.Unknown},
		{"safe view", "SELECT * FROM good_view", sqlkind.Read},
		{"plain table", "SELECT x FROM t WHERE x = 1", sqlkind.Read},
		{"row-security policy calling evil", "SELECT * FROM guarded", sqlkind.Unknown},
		{"functional notation", "SELECT t.evil FROM t", sqlkind.Unknown},
		{"column of a table", "SELECT t.x FROM t", sqlkind.Read},
		{"user-defined operator", "SELECT 1 === 2", sqlkind.Unknown},
		{"cast to built-in type", "SELECT '1'::int, 'x'::text", sqlkind.Read},
		{"cast to enum", "SELECT 'ok'::mood", sqlkind.Read},
		{"cast to domain", "SELECT 1::posint", sqlkind.Unknown},
		{"nextval stays write", "SELECT nextval('s')", sqlkind.Write},
		{"delete with evil", "DELETE FROM t WHERE x = evil()", sqlkind.Unknown},
		{"insert with built-in", "INSERT INTO t VALUES (abs(-1))", sqlkind.Write},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Resolve(context.Background(), p.Classify(tt.sql), cat)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want {
				t.Errorf("%s: got %v (%s), want %v", tt.sql, got.Kind, got.Reason, tt.want)
			}
		})
	}
}

func TestCacheExpires(t *testing.T) {
	conn := testDB(t)
	cat := New(conn, Options{TTL: time.Hour})
	clock := time.Now()
	cat.now = func() time.Time { return clock }
	ctx := context.Background()
	if got, _ := cat.Functions(ctx, []string{"later"}); len(got) != 0 {
		t.Fatalf("later exists before it is created: %v", got)
	}
	if _, err := conn.Exec(ctx, `CREATE FUNCTION later() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1'`); err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.Functions(ctx, []string{"later"}); len(got) != 0 {
		t.Fatalf("the cached answer was not used: %v", got)
	}
	clock = clock.Add(2 * time.Hour)
	got, err := cat.Functions(ctx, []string{"later"})
	if err != nil || got["later"].Volatility != sqlkind.Volatile {
		t.Fatalf("after the TTL: %v %v", got, err)
	}
}
