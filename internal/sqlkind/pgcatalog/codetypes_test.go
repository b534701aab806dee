package pgcatalog

import (
	"context"
	"slices"
	"testing"

	"github.com/countersign/countersign/internal/sqlkind"
)

// A type is a code type when converting a value to it runs code outside
// PostgreSQL (or a volatile function): a domain whose CHECK calls a user
// function, directly, through an operator or through another code type,
// and every array, row type, range, multirange and domain built on one. A
// domain checked by built-in immutable code, an enum and a plain row type
// are not. Reads of a relation with a column of a code type, or with a
// partition or index key compared by a user operator class, are unknown;
// others keep their kind.
func TestCodeTypes(t *testing.T) {
	conn := testDB(t)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE FUNCTION ok_text(text) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT true'`,
		`CREATE FUNCTION eq_any(text, text) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT true'`,
		`CREATE OPERATOR ~~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = eq_any)`,
		`CREATE DOMAIN by_func AS text CHECK (ok_text(VALUE))`,
		`CREATE DOMAIN by_op AS text CHECK (VALUE ~~~ 'x')`,
		`CREATE DOMAIN by_volatile AS float8 CHECK (VALUE < random() + 2)`,
		`CREATE DOMAIN by_builtin AS text CHECK (VALUE ~ '@' AND length(VALUE) < 99)`,
		`CREATE DOMAIN over_code AS by_func`,
		`CREATE DOMAIN casts_code AS text CHECK ((VALUE::by_func) IS NOT NULL)`,
		`CREATE TYPE holder AS (a int, b by_func)`,
		`CREATE TYPE nested AS (h holder)`,
		`CREATE TYPE plain_row AS (a int, b by_builtin)`,
		`CREATE TYPE feeling AS ENUM ('ok')`,
		`CREATE TYPE vrange AS RANGE (subtype = by_volatile)`,
		`CREATE TABLE uses_code (id int, tags by_func[])`,
		`CREATE TABLE uses_nested (n nested)`,
		`CREATE TABLE uses_plain (e by_builtin, r plain_row, f feeling)`,
		`CREATE VIEW shows_code AS SELECT tags FROM uses_code`,
		// range_in orders the bounds with the subtype operator class's
		// comparison function: one a user wrote runs at every conversion.
		`CREATE FUNCTION ucmp(int4, int4) RETURNS int4 LANGUAGE sql AS 'SELECT pg_catalog.btint4cmp($1, $2)'`,
		`CREATE OPERATOR CLASS uops FOR TYPE int4 USING btree AS
		   OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 ucmp(int4, int4)`,
		`CREATE TYPE urange AS RANGE (subtype = int4, subtype_opclass = uops)`,
		`CREATE FUNCTION udiff(float8, float8) RETURNS float8 IMMUTABLE LANGUAGE sql AS 'SELECT $1 - $2'`,
		`CREATE TYPE drange AS RANGE (subtype = float8, subtype_diff = udiff)`,
		`CREATE TYPE plain_range AS RANGE (subtype = int4)`,
		`CREATE TABLE uses_urange (r urange)`,
		// Planning a read prunes partitions with the key's operator class.
		`CREATE TABLE parted (x int4) PARTITION BY RANGE (x uops)`,
		`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10)`,
		`CREATE TABLE top (x int4, y int4) PARTITION BY LIST (y)`,
		`CREATE TABLE top_1 PARTITION OF top FOR VALUES IN (1) PARTITION BY RANGE (x uops)`,
		`CREATE TABLE plain_parted (x int4) PARTITION BY RANGE (x)`,
		// A btree index scan descends with the comparison function.
		`CREATE TABLE indexed (x int4)`,
		`CREATE INDEX ON indexed (x uops)`,
		`CREATE TABLE plain_indexed (x int4, t text)`,
		`CREATE INDEX ON plain_indexed (x, t text_pattern_ops)`,
		// The relcache folds a partition key expression when it loads it.
		`CREATE FUNCTION one() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1'`,
		`CREATE TABLE expr_parted (x int4) PARTITION BY RANGE ((x + one()))`,
		`CREATE TABLE builtin_expr_parted (x int4) PARTITION BY RANGE ((x + 1))`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cat := New(conn, Options{})
	got, err := cat.CodeTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"by_func", "by_func[]", "by_op", "by_volatile", "over_code", "casts_code", "holder",
		"holder[]", "nested", "vrange", "vmultirange", "uses_code", "uses_nested", "shows_code",
		"urange", "umultirange", "drange", "uses_urange"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s is not a code type; got %v", want, got)
		}
	}
	for _, not := range []string{"by_builtin", "plain_row", "feeling", "uses_plain", "t", "text", "integer",
		"plain_range", "int4range", "tstzrange", "numrange", "daterange"} {
		if slices.Contains(got, not) {
			t.Errorf("%s is a code type; got %v", not, got)
		}
	}
	p := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	for _, tt := range []struct {
		sql  string
		want sqlkind.Kind
	}{
		{"SELECT * FROM uses_code WHERE tags = '{x}'", sqlkind.Unknown},
		{"SELECT id FROM uses_code", sqlkind.Unknown},
		{"SELECT * FROM uses_nested", sqlkind.Unknown},
		{"SELECT * FROM shows_code", sqlkind.Unknown},
		{"SELECT coalesce(e, 'x'), r, f FROM uses_plain", sqlkind.Read},
		{"SELECT * FROM uses_urange WHERE r = '[1,2]'", sqlkind.Unknown},
		{"SELECT * FROM parted WHERE x = 5", sqlkind.Unknown},
		{"SELECT * FROM top WHERE x = 5", sqlkind.Unknown},
		{"SELECT * FROM plain_parted WHERE x = 5", sqlkind.Read},
		{"SELECT * FROM indexed WHERE x = 5", sqlkind.Unknown},
		{"SELECT * FROM plain_indexed WHERE x = 5", sqlkind.Read},
		{"SELECT * FROM expr_parted", sqlkind.Unknown},
		{"SELECT * FROM builtin_expr_parted", sqlkind.Read},
		{"INSERT INTO uses_code VALUES (1, '{x}')", sqlkind.Write},
	} {
		cl, err := p.Resolve(ctx, p.Classify(tt.sql), cat)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Kind != tt.want && !(tt.want == sqlkind.Write && cl.Kind == sqlkind.Unknown) {
			t.Errorf("%s: %v (%s), want %v", tt.sql, cl.Kind, cl.Reason, tt.want)
		}
	}
}
