package pgmask

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestBinaryText: what the detectors read of PostgreSQL's own binary
// output of each built-in type binaryText decodes, compared with what
// they read of the same value as text (or, for floats and money, the
// plain digits float8out and cash_out do not write).
func TestBinaryText(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		expr string
		want string // a line of binaryText's output
	}{
		{"4111111111111111::float8", "4111111111111111"},
		{"'-1.5e-7'::float8", "-0.00000015"},
		{"'NaN'::float8", "NaN"},
		{"12.5::float4", "12.5"},
		{"4111111111111111::money", "4111111111111111"},
		{"'-12.34'::money", "-1234"},
		{"4111111111111111::int8", "4111111111111111"},
		{"4111111111111111.00::numeric", "4111111111111111.00"},
		{"123::oid", "123"},
		{"'42'::xid8", "42"},
		{"'16/B374D848'::pg_lsn", "16/B374D848"},
		{"'10.1.2.3'::inet", "10.1.2.3"},
		{"'2001:db8::/64'::cidr", "2001:db8::"},
		{"'08:00:2b:01:02:03'::macaddr", "08:00:2b:01:02:03"},
		{"'(3,7)'::tid", "(3,7)"},
		{"B'10110'", "10110"},
		{"'(4111111111111111,2)'::point", "4111111111111111 2 "},
		{"'[(0,0),(1,4111111111111111)]'::path", "0 0 1 4111111111111111 "},
		{"'((0,0),(1,1),(2,0))'::polygon", "0 0 1 1 2 0 "},
		{"'\\x34313131'::bytea", "4111"},
		{"'{\"a\": 1}'::jsonb", `{"a": 1}`},
		{"ARRAY[[1.5, 2], [3, 4111111111111111]]::float8[]", "4111111111111111"},
		{"ARRAY['a', NULL, 'b']", "b"},
		{"'{}'::int8[]", ""},
		{"ROW(1, 'x'::bytea, ROW(2.5::float8))", "2.5"},
		{"numrange(1.5, 4111111111111111)", "4111111111111111"},
		{"'[,5)'::int8range", "5"},
		{"'empty'::numrange", ""},
		{"'{[1,2), [4111111111111111, 4111111111111112)}'::int8multirange", "4111111111111112"},
		{"ARRAY[ROW('x', '\\x34'::bytea, 1.5)::pan_pair]", "4"},
		{"4111111111111111::pan_d", "4111111111111111"},
		{"'$.a'::jsonpath", "$.\"a\""},
		{"'1 2'::oidvector", "2"},
	}
	for _, tt := range tests {
		rows, err := testPool.Query(ctx, "SELECT "+tt.expr, pgx.QueryResultFormats{1})
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		for rows.Next() {
			oid := rows.FieldDescriptions()[0].DataTypeOID
			got, ok := binaryText(oid, rows.RawValues()[0], testShape)
			if !ok || !lineOf(string(got), tt.want) {
				t.Errorf("%s (oid %d): got %q (%v), want a line %q", tt.expr, oid, got, ok, tt.want)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
	}
}

func lineOf(text, want string) bool {
	if want == "" {
		return true
	}
	for _, l := range strings.Split(text, "\n") {
		if l == want {
			return true
		}
	}
	return false
}

// testShape answers non-built-in types from the test database's catalog.
func testShape(oid uint32) (typeShape, bool) {
	return newResCatalog(testPool).shape(context.Background(), oid)
}

// TestBinaryTextRefuses: a value that is not what its type says, or of a
// type the decoder does not know, is refused (the caller masks it whole).
func TestBinaryTextRefuses(t *testing.T) {
	tests := []struct {
		oid uint32
		v   []byte
	}{
		{701, []byte{1, 2, 3}},
		{1700, []byte{0, 1}},
		{1007, []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 9, 0, 0, 0, 1}}, // 9 elements announced, none sent
		{2249, []byte{0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 9, 'a'}},                    // a field longer than the value
		{2249, []byte{0, 0, 0, 1, 0, 0, 0x30, 0x39, 0, 0, 0, 1, 'a'}},               // a field of an unknown type
		{3614, []byte("tsvector")},                                                  // tsvector: not decoded
		{3906, []byte{0, 0, 0, 0, 1}},                                               // a range bound cut short
		{1000, []byte{0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 16}},                         // 7 dimensions
	}
	for _, tt := range tests {
		if got, ok := binaryText(tt.oid, tt.v, func(uint32) (typeShape, bool) { return typeShape{}, false }); ok {
			t.Errorf("oid %d %x: decoded as %q", tt.oid, tt.v, got)
		}
	}
}

// FuzzBinaryText: no input panics or loops; nested values are bounded.
func FuzzBinaryText(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0xBD, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8},
		{0, 0, 0, 1, 0, 0, 0, 17, 0, 0, 0, 2, 'h', 'i'},
		{2, 0, 0, 0, 1, '5', 0, 0, 0, 1, '6'},
	} {
		f.Add(uint32(1022), seed)
		f.Add(uint32(2249), seed)
		f.Add(uint32(3926), seed)
	}
	f.Fuzz(func(t *testing.T, oid uint32, v []byte) {
		_, _ = binaryText(oid, v, func(o uint32) (typeShape, bool) {
			if o%2 == 0 {
				return typeShape{kind: shapeRecord}, true
			}
			return typeShape{kind: shapeArray}, true
		})
		_ = textExtras(v)
		_ = textView(17, v)
		_ = textView(790, v)
	})
}
