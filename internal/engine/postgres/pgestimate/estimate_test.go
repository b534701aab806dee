package pgestimate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/postgres/pgestimate"
	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5"
)

const admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// database creates a throwaway database on the machine's PostgreSQL, runs
// setup in it, and drops it when the test ends.
func database(t *testing.T, setup ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "cs_estimate_" + hex.EncodeToString(b[:])
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("the machine's PostgreSQL at 127.0.0.1:5432 is needed: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	exec(t, name, setup...)
	return name
}

// connect opens a superuser connection to the test database.
func connect(t *testing.T, db string) (*pgx.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := pgx.Connect(ctx, strings.Replace(admin, "/postgres?", "/"+db+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, ctx
}

func exec(t *testing.T, db string, stmts ...string) {
	t.Helper()
	c, ctx := connect(t, db)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func query(t *testing.T, db, q string) string {
	t.Helper()
	c, ctx := connect(t, db)
	var s string
	if err := c.QueryRow(ctx, q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// estimator is the estimator of the test database. When the test ends it
// fails the test if a trap ran: every trap raises (SQLSTATE P0001, which
// only user code raises; a read-only transaction would refuse a trap's
// write, and the estimate shows no upstream error text), and the
// estimator logs the SQLSTATE of every error the upstream answered.
func estimator(t *testing.T, db string) *pgestimate.Estimator {
	e, _ := estimatorLog(t, db)
	return e
}

// estimatorLog is estimator with its log.
func estimatorLog(t *testing.T, db string) (*pgestimate.Estimator, *lockedBuffer) {
	t.Helper()
	log := &lockedBuffer{}
	t.Cleanup(func() {
		if s := log.String(); strings.Contains(s, "P0001") {
			t.Errorf("a trap ran during an estimate; the estimator's log:\n%s", s)
		}
	})
	return pgestimate.New(&config.Config{Resources: []config.Resource{
		{Name: "pg-app", Type: "postgres", Address: "127.0.0.1:5432", Database: db, Username: "postgres"},
	}}, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))), log
}

// lockedBuffer is a log sink estimates may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var setup = []string{
	"CREATE TABLE items (id int PRIMARY KEY, qty int, note text)",
	"INSERT INTO items SELECT g, g % 10, 'n' FROM generate_series(1, 1000) g",
	"ANALYZE items",
	"CREATE TABLE other (id int)",
	// Traps: each raises when called, whatever it claims.
	`CREATE FUNCTION evil(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; RETURN $1; END $$`,
	`CREATE FUNCTION vol(int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; RETURN $1; END $$`,
	`CREATE FUNCTION evil_row(items) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; RETURN 1; END $$`,
	"CREATE SCHEMA shadow",
	`CREATE FUNCTION shadow.initcap(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; RETURN $1; END $$`,
	"CREATE TABLE with_default (id int, v int DEFAULT evil(1))",
	"CREATE TABLE ruled (id int)",
	"CREATE RULE r AS ON UPDATE TO ruled DO ALSO SELECT evil(1)",
	"CREATE TABLE secured (id int)",
	"ALTER TABLE secured ENABLE ROW LEVEL SECURITY",
	"CREATE POLICY p ON secured USING (evil(id) > 0)",
	"CREATE TABLE parent (id int)",
	"CREATE TABLE child () INHERITS (parent)",
	"CREATE SCHEMA app",
	"CREATE TABLE app.tagged (id serial PRIMARY KEY, tags text[], at timestamptz DEFAULT now())",
	"INSERT INTO app.tagged (tags) SELECT ARRAY['a', 'b'] FROM generate_series(1, 100)",
	"ANALYZE app.tagged",
}

func op(text string, params ...review.Param) review.Review {
	return review.Review{ID: "r-test", Type: review.TypeOperation, Resource: "pg-app", Dialect: "postgres",
		Text: text, Params: params, State: review.SessionState{SearchPath: `"$user", public`}}
}

// TestEstimate: plain writes are explained; everything the planner could
// run code for gets "no estimate" and the reason, and no trap ever runs.
func TestEstimate(t *testing.T) {
	db := database(t, setup...)
	e := estimator(t, db)
	shadowed := op("UPDATE items SET note = initcap('x') WHERE id = 1")
	shadowed.State.SearchPath = "shadow, pg_catalog, public"
	onPath := func(text string) review.Review {
		r := op(text)
		r.State.SearchPath = "app, public"
		return r
	}
	cases := []struct {
		name     string
		r        review.Review
		min, max int64  // when estimated
		why      string // else: part of the reason
	}{
		{"update a range", op("UPDATE items SET qty = qty + 1 WHERE id <= 100"), 50, 200, ""},
		{"delete by parameter", op("DELETE FROM items WHERE id = $1", review.Param{Type: 23, Value: []byte("5")}), 1, 1, ""},
		{"insert values", op("INSERT INTO items VALUES (5000, 1, 'x'), (5001, 2, 'y')"), 2, 2, ""},
		{"allow-listed function", op("UPDATE items SET note = upper(note) WHERE id = length('abc')"), 1, 1, ""},
		{"table on the review's search_path", onPath("UPDATE tagged SET tags[1] = 'c' WHERE id = 7 RETURNING *"), 1, 1, ""},
		{"qualified table, alias, subscripts", op("DELETE FROM app.tagged t WHERE t.id <= 10 AND t.tags[2] = 'b'"), 1, 20, ""},
		{"insert with serial and now() defaults", onPath("INSERT INTO tagged DEFAULT VALUES"), 1, 1, ""},
		{"parameter of unspecified type", op("UPDATE items SET note = $1 WHERE id = $2",
			review.Param{Value: []byte("x")}, review.Param{Value: []byte("3")}), 1, 1, ""},
		{"volatile writing function", op("UPDATE items SET qty = vol(1)"), 0, 0, "vol, which is not on the read-only allow-list"},
		{"immutable function that writes", op("UPDATE items SET qty = evil(1) WHERE id = 1"), 0, 0, "evil"},
		{"schema-qualified function", op("UPDATE items SET qty = public.evil(1)"), 0, 0, "outside pg_catalog"},
		{"shadowed allow-listed function", shadowed, 0, 0, "also defined outside pg_catalog"},
		{"attribute notation calls a function", op("UPDATE items SET qty = items.evil_row WHERE id = 1"), 0, 0, "not a column"},
		{"default calls a function", op("INSERT INTO with_default (id) VALUES (1)"), 0, 0, "default"},
		{"rule", op("UPDATE ruled SET id = 1"), 0, 0, "rules"},
		{"row security", op("UPDATE secured SET id = 1"), 0, 0, "row security"},
		{"inheritance", op("DELETE FROM parent"), 0, 0, "children"},
		{"subquery", op("UPDATE items SET qty = (SELECT evil(1))"), 0, 0, "subqueries"},
		{"other relation", op("UPDATE items SET qty = 1 FROM other WHERE other.id = items.id"), 0, 0, "other relations"},
		{"with clause", op("WITH x AS (SELECT evil(1)) UPDATE items SET qty = 1"), 0, 0, "other relations"},
		{"insert select", op("INSERT INTO items SELECT evil(1), 1, 'x'"), 0, 0, "evil"},
		{"two statements", op("UPDATE items SET qty = 1; SELECT evil(1)"), 0, 0, "single statement"},
		{"a read", op("SELECT evil(1)"), 0, 0, "plain INSERT, UPDATE or DELETE"},
		{"explain analyze", op("EXPLAIN ANALYZE UPDATE items SET qty = evil(1)"), 0, 0, "plain INSERT, UPDATE or DELETE"},
		{"unknown table", op("DELETE FROM nowhere"), 0, 0, "not found"},
		{"does not parse", op("UPDATE items SET"), 0, 0, "does not parse"},
		{"grant", review.Review{Type: review.TypeGrant, Resource: "pg-app", Dialect: "postgres"}, 0, 0, "no statement"},
		{"other resource", review.Review{Type: review.TypeOperation, Resource: "my-app", Dialect: "mysql", Text: "DELETE FROM t"}, 0, 0, "not a PostgreSQL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, ok, why := e.EstimateRows(context.Background(), tc.r)
			if tc.why == "" {
				if !ok || rows < tc.min || rows > tc.max {
					t.Fatalf("estimate %d ok=%v (%s), want %d..%d", rows, ok, why, tc.min, tc.max)
				}
				return
			}
			if ok || !strings.Contains(why, tc.why) {
				t.Fatalf("estimate %d ok=%v why=%q, want no estimate because %q", rows, ok, why, tc.why)
			}
		})
	}
	if got := query(t, db, "SELECT count(*)::text || ':' || sum(qty)::text FROM items"); got != "1000:4500" {
		t.Fatalf("an estimate changed the table: %s", got)
	}
}

// TestOwnOperatorsRefused: a database with an operator of its own (whose
// function writes) gets no estimates at all, and the operator never runs.
func TestOwnOperatorsRefused(t *testing.T) {
	db := database(t,
		"CREATE TABLE t (x int)",
		`CREATE FUNCTION eq_evil(int, int) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'TRAP RAN'; RETURN $1 = $2; END $$`,
		"CREATE OPERATOR public.= (LEFTARG = int, RIGHTARG = int, FUNCTION = eq_evil)",
	)
	r := op("UPDATE t SET x = 1 WHERE x = 1")
	r.State.SearchPath = "public, pg_catalog"
	rows, ok, why := estimator(t, db).EstimateRows(context.Background(), r)
	if ok || !strings.Contains(why, "operators") {
		t.Fatalf("estimate %d ok=%v why=%q, want no estimate because of the operator", rows, ok, why)
	}
}

// TestReadOnlyWall: even a statement the checks pass is planned inside a
// READ ONLY transaction that is never committed.
func TestReadOnlyWall(t *testing.T) {
	db := database(t, setup...)
	for range 3 {
		if _, ok, why := estimator(t, db).EstimateRows(context.Background(), op("INSERT INTO items VALUES (7000, 1, 'x')")); !ok {
			t.Fatalf("no estimate: %s", why)
		}
	}
	if got := query(t, db, "SELECT count(*)::text FROM items WHERE id = 7000"); got != "0" {
		t.Fatalf("an estimated INSERT inserted %s row(s)", got)
	}
}

// TestEstimateUnderRole: the table is found as the initiator's session
// finds it, "$user" in the search_path being the review's role, and is
// locked by the estimator's own user.
func TestEstimateUnderRole(t *testing.T) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	role := "cs_estimate_role_" + hex.EncodeToString(b[:])
	exec(t, "postgres", "CREATE ROLE "+role)
	// Registered before the database, so it runs after the database is gone.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP ROLE IF EXISTS "+role)
			c.Close(ctx)
		}
	})
	db := database(t,
		"CREATE TABLE public.mine (id int)",
		"INSERT INTO public.mine SELECT generate_series(1, 1000)",
		"CREATE SCHEMA "+role,
		"CREATE TABLE "+role+".mine (id int)",
		"INSERT INTO "+role+".mine SELECT generate_series(1, 50)",
		"ANALYZE",
		"GRANT USAGE ON SCHEMA "+role+" TO "+role,
		"GRANT SELECT, UPDATE ON "+role+".mine TO "+role,
	)
	r := op("UPDATE mine SET id = id + 1")
	r.State.Role = role
	rows, ok, why := estimator(t, db).EstimateRows(context.Background(), r)
	if !ok || rows != 50 {
		t.Fatalf("estimate %d ok=%v (%s), want the 50 rows of the role's own table", rows, ok, why)
	}
}
