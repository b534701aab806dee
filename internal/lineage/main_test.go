package lineage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testCat is a PGCatalog on a throwaway database that TestMain creates with
// the schema below and drops afterwards.
var (
	testCat  *PGCatalog
	testPool *pgxpool.Pool
)

var schema = []string{
	`CREATE TABLE users (id int PRIMARY KEY, email text, name text)`,
	`CREATE TABLE customers (id int PRIMARY KEY, ssn text, note text, email text)`,
	`CREATE TABLE notes (id serial, body text)`,
	`CREATE VIEW v_users AS SELECT id, email AS contact FROM users`,
	`CREATE VIEW v_v AS SELECT contact FROM v_users WHERE id > 0`,
	`CREATE VIEW v_leak AS SELECT leak_fn() AS x`,
	`CREATE MATERIALIZED VIEW mv AS SELECT ssn FROM customers`,
	`CREATE SCHEMA other`,
	`CREATE TABLE other.users (id int, secret text)`,
	`CREATE TABLE "Odd Name" ("Col" text)`,
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL must be reachable at %s (start it, then rerun): %v\n", adminURL, err)
		return 1
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("lineage_test_%d_%d", time.Now().UnixNano(), rand.IntN(1e6))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}()
	pool, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", name))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	setup := append([]string{
		`CREATE FUNCTION leak_fn() RETURNS text LANGUAGE sql AS 'SELECT ''x'''`,
	}, schema...)
	setup = append(setup,
		`CREATE OR REPLACE FUNCTION leak_fn() RETURNS text LANGUAGE sql AS 'SELECT ssn FROM customers LIMIT 1'`)
	for _, q := range setup {
		if _, err := pool.Exec(ctx, q); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", q, err)
			return 1
		}
	}
	testPool = pool
	testCat = NewPGCatalog(pool)
	return m.Run()
}
