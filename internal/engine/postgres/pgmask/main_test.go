package pgmask

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// TestMain makes a throwaway database on the machine's PostgreSQL with a
// customers table holding values every test asserts never reach a client.
var (
	testDB   string
	testPool *pgxpool.Pool
)

const adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var schema = []string{
	`CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, ssn text, note text, salary numeric, born date)`,
	`INSERT INTO customers VALUES
	   (1, 'alice@corp.io', '219-09-9999', 'call alice@corp.io', 1000.50, '1980-01-02'),
	   (2, 'bob@corp.io', '321-54-9876', 'vip', 2000.25, '1990-03-04')`,
	`CREATE TABLE notes (body text)`,
	`CREATE VIEW v_customers AS SELECT id, email AS contact, ssn FROM customers`,
	`CREATE VIEW v_v AS SELECT contact AS c2, upper(ssn) AS s2 FROM v_customers`,
	`CREATE FUNCTION cust_ssn(i int) RETURNS text LANGUAGE sql AS 'SELECT ssn FROM customers WHERE id = i'`,
	`CREATE TABLE parted (id int, ssn text) PARTITION BY RANGE (id)`,
	`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100)`,
	`INSERT INTO parted VALUES (1, '219-09-9999')`,
}

// secrets are the raw values (and pieces of them) no client may see.
var secrets = []string{"alice@corp.io", "bob@corp.io", "ALICE@CORP.IO", "219-09", "321-54", "9999", "9876",
	"1000.5", "2000.25", "1980-01-02", "1990-03-04", "alice@", "bob@"}

func leak(s string) string {
	for _, x := range secrets {
		if strings.Contains(strings.ToLower(s), strings.ToLower(x)) {
			return x
		}
	}
	return ""
}

var ruleSpecs = []config.MaskRule{
	{Columns: []string{"*.email"}, Strategy: "partial", KeepLast: 3, Filter: "allow"},
	{Columns: []string{"public.customers.ssn", "public.parted.ssn"}, Strategy: "redact", Filter: "deny"},
	{Columns: []string{"public.customers.salary", "public.customers.born"}, Strategy: "redact"},
	{Detectors: []string{"email"}, Strategy: "redact"},
}

func testRules() *mask.Rules {
	r, err := mask.Compile(ruleSpecs)
	if err != nil {
		panic(err)
	}
	return r
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL must be reachable at %s (start it, then rerun): %v\n", adminURL, err)
		return 1
	}
	defer admin.Close(context.Background())
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	testDB = "cs_pgmask_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+testDB+" TEMPLATE template0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+testDB+" WITH (FORCE)")
	}()
	testPool, err = pgxpool.New(ctx, dbURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testPool.Close()
	for _, q := range schema {
		if _, err := testPool.Exec(ctx, q); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", q, err)
			return 1
		}
	}
	return m.Run()
}

func dbURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", testDB)
}

// newMasker is a Masker over the test database for resource "pg-test".
func newMasker(t testing.TB) *Masker {
	t.Helper()
	rules := testRules()
	m, err := New(Options{
		Rules:   func(res string) *mask.Rules { return map[string]*mask.Rules{"pg-test": rules}[res] },
		Querier: func(string) (lineage.Querier, error) { return testPool, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
