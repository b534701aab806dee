package pgmask

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/config"
)

// cardRules are ruleSpecs' column rules with the card and SSN detectors:
// the cards table has no column rule, only the detectors protect it.
var cardRules = append(append([]config.MaskRule(nil), ruleSpecs[:3]...),
	config.MaskRule{Detectors: []string{"email", "credit_card", "us_ssn"}, Strategy: "redact"})

// cardSecrets are the card number and SSN of cards row 1 as a client could
// read them: plain, in exponent form (4.111111111111111e+15), grouped as
// money, as hex bytea, or as a driver's decoded []byte printed in hex.
var cardSecrets = []string{"1111111111", "111,111,111", "111.111.111", "31313131313131313131", "078-05-1120", "3037382d30352d31313230"}

func cardLeak(s string) string {
	for _, x := range cardSecrets {
		if strings.Contains(s, x) {
			return x
		}
	}
	return ""
}

// resultModes are the ways a pgx client reads a result: the simple
// protocol (text), and the extended protocol with every column in text,
// every column in binary, or as pgx chooses (binary for the types it
// knows), with a cached, a described or an unnamed statement.
var resultModes = []struct {
	name string
	args []any
}{
	{"simple", []any{pgx.QueryExecModeSimpleProtocol}},
	{"extended text", []any{pgx.QueryExecModeCacheStatement, pgx.QueryResultFormats{0}}},
	{"extended binary", []any{pgx.QueryExecModeCacheStatement, pgx.QueryResultFormats{1}}},
	{"pgx default", []any{pgx.QueryExecModeCacheStatement}},
	{"describe exec", []any{pgx.QueryExecModeDescribeExec}},
	{"exec", []any{pgx.QueryExecModeExec}},
}

// rawAndDecoded renders every value as the bytes on the wire and as pgx
// decodes them (a float as its plain digits, []byte as text and hex), so a
// leak in any form is seen; NULL is "NULL".
func rawAndDecoded(ctx context.Context, c *pgx.Conn, sql string, args ...any) (string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		for _, raw := range rows.RawValues() {
			if raw == nil {
				b.WriteString("NULL|")
				continue
			}
			b.WriteString(string(raw) + " " + hex.EncodeToString(raw) + "|")
		}
		vals, err := rows.Values()
		if err != nil {
			b.WriteString("(pgx cannot decode: " + err.Error() + ")")
		}
		for _, v := range vals {
			renderValue(&b, v)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

func renderValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case []byte:
		b.WriteString(string(x) + " " + hex.EncodeToString(x))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case float32:
		b.WriteString(strconv.FormatFloat(float64(x), 'f', -1, 32))
	case []any:
		for _, e := range x {
			renderValue(b, e)
			b.WriteByte(',')
		}
	case map[string]any:
		for k, e := range x {
			b.WriteString(k + ":")
			renderValue(b, e)
			b.WriteByte(',')
		}
	default:
		fmt.Fprintf(b, "%v", x)
	}
}

// expect says what an attack statement must give the client.
type expect uint8

const (
	expectRows  expect = iota // rows, and no error
	expectError               // a PostgreSQL error
	expectAny                 // rows, none, or an error
)

// attackEach runs each statement in every result mode and fails when what
// the client saw (its rows, and its error's texts) holds what leaked
// finds, or is not what want says.
func attackEach(t *testing.T, c *pgx.Conn, leaked func(string) string, want expect, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range sqls {
		for _, m := range resultModes {
			out, err := rawAndDecoded(ctx, c, sql, m.args...)
			switch {
			case want == expectRows && (err != nil || out == ""):
				t.Errorf("%s (%s): want rows, got %v:\n%s", sql, m.name, err, out)
			case want == expectError && pgErrText(err) == "":
				t.Errorf("%s (%s): want a PostgreSQL error, got %v", sql, m.name, err)
			}
			if l := leaked(out + pgErrText(err)); l != "" {
				t.Errorf("%s (%s): %q reached the client (%v):\n%s", sql, m.name, l, err, out)
			}
		}
	}
}

// TestDetectorsReadDecodedValues attacks the gap pgmask/doc.go listed: a
// card number (and an SSN) kept in a column no column rule covers, but of
// a type whose text or binary form the detectors could not read (hex
// bytea, float8 in exponent form, money grouped by commas, arrays, ranges,
// composites of them), read through the gateway with pgx in every format.
func TestDetectorsReadDecodedValues(t *testing.T) {
	g := startGatewayWith(t, gatewayOptions{masking: cardRules})
	c := g.connect(t, "alice")
	attackEach(t, c, anyLeak, expectRows,
		"SELECT b FROM cards WHERE id = 1",
		"SELECT f8 FROM cards WHERE id = 1",
		"SELECT m FROM cards WHERE id = 1",
		"SELECT n8, num FROM cards WHERE id = 1",
		"SELECT fa FROM cards WHERE id = 1",
		"SELECT ba FROM cards WHERE id = 1",
		"SELECT na FROM cards WHERE id = 1",
		"SELECT r, r8 FROM cards WHERE id = 1",
		"SELECT p FROM cards WHERE id = 1",
		"SELECT pa FROM cards WHERE id = 1",
		"SELECT pt FROM cards WHERE id = 1",
		"SELECT (p).pan, (p).n, pa[1], (pa[1]).pan, fa[1], ba[1] FROM cards WHERE id = 1",
		"SELECT c FROM cards c WHERE id = 1",
		"SELECT c::text FROM cards c WHERE id = 1",
		"SELECT row_to_json(c), to_jsonb(c), to_json(f8), to_jsonb(m::text) FROM cards c WHERE id = 1",
		"SELECT json_agg(c), jsonb_agg(b), json_agg(f8) FROM cards c WHERE id = 1",
		"SELECT json_build_array(b, f8), jsonb_build_object('m', m) FROM cards c WHERE id = 1",
		"SELECT b::text, f8::text, m::text, fa::text, ba::text, r::text FROM cards WHERE id = 1",
		"SELECT array_agg(b), array_agg(f8), array_agg(m), string_agg(f8::text, ','), string_agg(b::text, ',') FROM cards WHERE id = 1",
		"SELECT ROW(b, f8, m), ARRAY[f8], ARRAY[b], ARRAY[ROW(b)] FROM cards WHERE id = 1",
		"SELECT format('%s', b), concat_ws(',', f8, m), upper(b::text), f8 || '' FROM cards WHERE id = 1",
		"SELECT nummultirange(r), int8multirange(r8), numrange(num, num + 1), int8range(n8, n8 + 1) FROM cards WHERE id = 1",
		"SELECT point(f8, 1), box(point(f8, 1), point(0, 0)), circle(point(f8, 0), 1), lseg(point(f8, 1), point(0, 0)), path(polygon(box(point(f8, 1), point(0, 0)))), polygon(box(point(f8, 1), point(0, 0))) FROM cards WHERE id = 1",
		"SELECT fd, fda, bda FROM cards WHERE id = 1",
		"SELECT to_tsvector('simple', t) FROM cards WHERE id = 1",
		"SELECT '4111111111111111'::bytea, 4111111111111111::float8, 4111111111111111::money, '{4111111111111111}'::float8[]",
		"SELECT ssn::bytea, email::bytea FROM customers",
		"SELECT ROW(email::bytea), ARRAY[ssn::bytea] FROM customers",
	)
	// bytea's other output format.
	e := g.connect(t, "alice")
	if _, err := e.Exec(context.Background(), "SET bytea_output = 'escape'"); err != nil {
		t.Fatal(err)
	}
	attackEach(t, e, anyLeak, expectRows, "SELECT b, ba, p, b::text FROM cards WHERE id = 1", "SELECT '\\x00343131313131313131313131313131310a'::bytea")
}

// TestDetectorsDecodedKeepsOthers: values without a card or SSN pass
// whatever their format, so decoding is not masking everything; a binary
// value the gateway cannot decode (tsvector) is NULL.
func TestDetectorsDecodedKeepsOthers(t *testing.T) {
	g := startGatewayWith(t, gatewayOptions{masking: cardRules})
	ctx := context.Background()
	c := g.connect(t, "alice")
	tests := []struct {
		sql      string
		simple   string // the first row as the simple protocol gives it
		binNulls int    // NULLs in the first row read in binary
	}{
		{"SELECT b, f8, m, fa, ba, p FROM cards WHERE id = 2",
			`\x706c61696e|1.5|$2.00|{1.5}|{"\\x706c61696e"}|(label,"\\x706c61696e",1.5)|`, 0},
		{"SELECT r, ARRAY[ROW(b, f8)], point(f8, 2), '10.1.2.3'::inet, 1.5::float4, 'ab:cd:ef:01:02:03'::macaddr, B'101', '(1,2)'::tid FROM cards WHERE id = 2",
			`[1,3)|{"(\"\\\\x706c61696e\",1.5)"}|(1.5,2)|10.1.2.3|1.5|ab:cd:ef:01:02:03|101|(1,2)|`, 0},
		{"SELECT to_tsvector('simple', 'plain words')", `'plain':1 'words':2|`, 1},
	}
	for _, tt := range tests {
		got, err := firstRow(ctx, c, tt.sql, pgx.QueryExecModeSimpleProtocol)
		if err != nil || got != tt.simple {
			t.Errorf("%s (simple): %v\n got %s\nwant %s", tt.sql, err, got, tt.simple)
		}
		got, err = firstRow(ctx, c, tt.sql, pgx.QueryExecModeCacheStatement, pgx.QueryResultFormats{1})
		if nulls := strings.Count(got, "NULL|"); err != nil || nulls != tt.binNulls {
			t.Errorf("%s (binary): %d NULLs, want %d (%v)", tt.sql, nulls, tt.binNulls, err)
		}
	}
}

// firstRow renders the first row's values as they came on the wire,
// "value|" each, "NULL|" for NULL.
func firstRow(ctx context.Context, c *pgx.Conn, sql string, args ...any) (string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	if rows.Next() {
		for _, v := range rows.RawValues() {
			if v == nil {
				b.WriteString("NULL|")
				continue
			}
			b.WriteString(string(v) + "|")
		}
	}
	rows.Close()
	return b.String(), rows.Err()
}
