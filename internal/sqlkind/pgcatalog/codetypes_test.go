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
// are not. Reads of a relation with a column of a code type are unknown;
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
		"holder[]", "nested", "vrange", "vmultirange", "uses_code", "uses_nested", "shows_code"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s is not a code type; got %v", want, got)
		}
	}
	for _, not := range []string{"by_builtin", "plain_row", "feeling", "uses_plain", "t", "text", "integer"} {
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
