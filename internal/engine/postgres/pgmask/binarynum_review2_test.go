package pgmask

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// TestBinaryNumbersScanned: a card number kept in a bigint or numeric
// column is masked (sent as NULL) when read in text format; a client that
// asks for binary results (pgx does for int8 by default) must not get it
// either, and neither may the recording's captured rows, which keep
// binary values as hex.
func TestBinaryNumbersScanned(t *testing.T) {
	rules, err := mask.Compile([]config.MaskRule{{Detectors: []string{"credit_card"}, Strategy: "redact"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{
		Rules:   func(res string) *mask.Rules { return map[string]*mask.Rules{"pg-test": rules}[res] },
		Querier: func(string) (lineage.Querier, error) { return testPool, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t)
	tests := []struct {
		sql  string
		keep bool // not a card: the value passes
	}{
		{"SELECT 4111111111111111::int8", false},
		{"SELECT 4111111111111111::numeric", false},
		{"SELECT 4111111111111111.00::numeric", false},
		{"SELECT 5500000000000004::numeric(30,0)", false},
		{"SELECT 41111111111111110000::numeric", true}, // 20 digits: not a card
		{"SELECT 1234::int8", true},
		{"SELECT 12.5::numeric", true},
		{"SELECT 'NaN'::numeric", true},
	}
	for _, tt := range tests {
		for _, format := range []int16{0, 1} {
			o := c.extended(filterFor(m, tt.sql), tt.sql, format)
			if len(o.rows) != 1 || len(o.rows[0]) != 1 {
				t.Fatalf("%s (format %d): %d rows (%s)", tt.sql, format, len(o.rows), o.err)
			}
			if got := o.rows[0][0] != nil; got != tt.keep {
				t.Errorf("%s (format %d): value kept = %v, want %v", tt.sql, format, got, tt.keep)
			}
		}
	}
}

// TestNumericText: the text binaryText gives is numeric_out's and
// int8out's, byte for byte, so the detectors read what a text-format
// client would get.
func TestNumericText(t *testing.T) {
	ctx := context.Background()
	vals := []string{"0", "1", "-1", "0.0001", "-0.00012", "12.5", "10000", "99990000", "1e20", "123456789.987654321",
		"4111111111111111", "4111111111111111.00", "0.000000001", "1.10", "-123.4500", "NaN", "Infinity", "-Infinity", "1e-30"}
	for _, typ := range []string{"numeric", "int8"} {
		for _, s := range vals {
			if typ == "int8" && (strings.ContainsAny(s, ".eNI") || len(s) > 18) {
				continue
			}
			q := "SELECT $1::" + typ + ", $1::" + typ + "::text"
			rows, err := testPool.Query(ctx, q, pgx.QueryResultFormats{1, 0}, s)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				raw := rows.RawValues()
				oid := rows.FieldDescriptions()[0].DataTypeOID
				got, ok := binaryText(oid, raw[0], nil)
				if !ok || strings.TrimSuffix(string(got), "\n") != string(raw[1]) {
					t.Errorf("%s::%s: binary renders %q (%v), text is %q", s, typ, got, ok, raw[1])
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
