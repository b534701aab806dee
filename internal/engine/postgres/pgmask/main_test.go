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
	// parted_refs holds a key of parted: deleting the row is refused with
	// a Detail quoting the key of the row that stays.
	`CREATE UNIQUE INDEX parted_key ON parted (id, ssn)`,
	`CREATE TABLE parted_refs (id int, ssn text, FOREIGN KEY (id, ssn) REFERENCES parted (id, ssn))`,
	`INSERT INTO parted_refs VALUES (1, '219-09-9999')`,
	`INSERT INTO parted VALUES (2, '219-09-9999')`,
	// pmail is partitioned by a masked column: a row no partition takes
	// is quoted by its partition key.
	`CREATE TABLE pmail (email text) PARTITION BY RANGE (email)`,
	`CREATE TABLE pmail_a PARTITION OF pmail FOR VALUES FROM ('a') TO ('b')`,
	// staff derives a column from a masked one (a generated column is
	// stored, and its table's own column to PostgreSQL).
	`CREATE TABLE staff (id int, email text, email_at text GENERATED ALWAYS AS (replace(email, '@', ' at ')) STORED)`,
	`INSERT INTO staff (id, email) VALUES (1, 'carol@corp.io')`,
	// cards keeps a card number (and an SSN, 078-05-1120) in types a detector must
	// read through: bytea, floats, money, arrays, ranges, composites.
	`CREATE TYPE pan_pair AS (label text, pan bytea, n float8)`,
	`CREATE DOMAIN pan_d AS float8 CHECK (VALUE <> 4111111111111111.5)`,
	`CREATE DOMAIN pan_b AS bytea`,
	`CREATE TABLE cards (id int PRIMARY KEY, b bytea UNIQUE, f8 float8 UNIQUE, f4 float4, m money, n8 int8, num numeric,
	   fa float8[], ba bytea[], na numeric[], r numrange, r8 int8range, p pan_pair, pa pan_pair[], pt point, ip inet, j jsonb, t text UNIQUE, fd pan_d, fda pan_d[], bda pan_b[],
	   CHECK (t IS NULL OR t <> 'forbidden'))`,
	`INSERT INTO cards VALUES (1, '4111111111111111 or 078-05-1120', 4111111111111111, 4111111111111111, 4111111111111111, 4111111111111111, 4111111111111111,
	   '{4111111111111111}', '{"4111111111111111"}', '{4111111111111111}', '[4111111111111111,5000000000000000)', '[4111111111111111,5000000000000000)',
	   ROW('x', '4111111111111111', 4111111111111111), ARRAY[ROW('x', '4111111111111111', 4111111111111111)::pan_pair], '(4111111111111111,1)', '10.1.2.3',
	   '{"pan": 4111111111111111}', 'card 4111111111111111', 4111111111111111, '{4111111111111111}', '{"4111111111111111"}')`,
	`INSERT INTO cards (id, b, f8, m, fa, ba, r, p, t) VALUES (2, 'plain', 1.5, 2, '{1.5}', '{"plain"}', '[1,3)', ROW('label', 'plain', 1.5), 'plain')`,
	`CREATE TABLE card_refs (b bytea REFERENCES cards (b))`,
}

// secrets are the raw values (and pieces of them) no client may see.
var secrets = []string{"alice@corp.io", "bob@corp.io", "ALICE@CORP.IO", "219-09", "321-54", "9999", "9876",
	"1000.5", "2000.25", "1980-01-02", "1990-03-04", "alice@", "bob@", "carol at", "carol@"}

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
