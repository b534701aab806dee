package pgmask

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// upper2 masks field 1 of every row (to "<"+value+">"), leaving the others.
func upper2(n, i int, v []byte, null bool) ([]byte, bool) {
	if i != 1 || null {
		return v, null
	}
	return append(append([]byte("<"), v...), '>'), false
}

var codecCases = []struct {
	name string
	f    lineage.CopyFormat
	in   string
	want string
}{
	{"text", lineage.CopyFormat{Format: "text", Delimiter: "\t", Null: `\N`},
		"1\ta\\tb\t\\N\n2\t\\N\tx\n3\tc\\\\d\\ne\ty\n",
		"1\t<a\\tb>\t\\N\n2\t\\N\tx\n3\t<c\\\\d\\ne>\ty\n"},
	{"text octal and hex", lineage.CopyFormat{Format: "text", Delimiter: "|", Null: ""},
		"1|\\101\\x42\\|z|\n", "1|<AB\\|z>|\n"},
	{"text header", lineage.CopyFormat{Format: "text", Delimiter: "\t", Null: `\N`, Header: true},
		"id\tv\n1\tq\n", "id\tv\n1\t<q>\n"},
	{"csv", lineage.CopyFormat{Format: "csv", Delimiter: ",", Quote: `"`, Escape: `"`, Null: ""},
		"1,\"a,\"\"b\"\"\nc\",\n2,,\"\"\n3,\"\",x\n",
		"1,\"<a,\"\"b\"\"\nc>\",\n2,,\"\"\n3,<>,x\n"},
	{"csv escape", lineage.CopyFormat{Format: "csv", Delimiter: ";", Quote: `'`, Escape: `\`, Null: "NULL"},
		"1;'it\\'s';NULL\n2;NULL;z\n", "1;'<it\\'s>';NULL\n2;NULL;z\n"},
}

// TestCopyCodecSplitAtEveryByte cuts the stream at every offset: the
// output must not depend on how the upstream framed the rows.
func TestCopyCodecSplitAtEveryByte(t *testing.T) {
	for _, tc := range codecCases {
		for cut := 0; cut <= len(tc.in); cut++ {
			c, err := newCopyCodec(&tc.f, []mask.Column{{}, {}, {}}, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, part := range []string{tc.in[:cut], tc.in[cut:]} {
				b, err := c.feed([]byte(part), upper2)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
			if string(out) != tc.want || len(c.pending) != 0 {
				t.Fatalf("%s cut at %d:\n got %q\nwant %q", tc.name, cut, out, tc.want)
			}
		}
	}
}

func TestCopyCodecBounded(t *testing.T) {
	c, _ := newCopyCodec(&lineage.CopyFormat{Format: "text", Delimiter: "\t", Null: `\N`}, nil, 8)
	if _, err := c.feed([]byte("0123456789 no newline"), upper2); err == nil {
		t.Fatal("an unbounded partial row was buffered")
	}
}

// FuzzCopyCodec: whatever the input, the codec neither panics nor emits a
// row it did not end, and an identity mask gives the input back.
func FuzzCopyCodec(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(tc.in, tc.f.Format == "csv")
	}
	f.Fuzz(func(t *testing.T, in string, csv bool) {
		fm := lineage.CopyFormat{Format: "text", Delimiter: "\t", Null: `\N`}
		if csv {
			fm = lineage.CopyFormat{Format: "csv", Delimiter: ",", Quote: `"`, Escape: `"`, Null: ""}
		}
		c, _ := newCopyCodec(&fm, nil, 1<<20)
		same := func(n, i int, v []byte, null bool) ([]byte, bool) { return v, null }
		out, err := c.feed([]byte(in), same)
		if err != nil {
			return
		}
		if !bytes.Equal(append(out, c.pending...), []byte(in)) {
			t.Fatalf("identity mask changed %q into %q", in, out)
		}
		c2, _ := newCopyCodec(&fm, nil, 1<<20)
		masked, err := c2.feed([]byte(in), upper2)
		if err == nil && len(masked) > 0 && masked[len(masked)-1] != '\n' {
			t.Fatalf("a row without its newline: %q", masked)
		}
	})
}

// FuzzDataRow: a rewritten row always re-encodes with valid lengths and
// never panics, whatever the values.
func FuzzDataRow(f *testing.F) {
	f.Add([]byte("alice@corp.io"), []byte("219-09-9999"), []byte{1, '{', '}'})
	f.Fuzz(func(t *testing.T, a, b, j []byte) {
		r := &result{rules: testRules(), roles: []string{"creator"}}
		cols := []mask.Column{{Resolved: true, Text: true, Sources: []mask.Source{{Schema: "public", Table: "customers", Column: "email"}}},
			{Resolved: false, Text: true}, {Resolved: true, Text: true}}
		r.plan, r.kinds, r.formats = r.rules.Plan(r.roles, cols), []textKind{kindText, kindJSON, kindJSONB}, []int16{0, 0, 1}
		r.active = r.plan.Active()
		m := &pgproto3.DataRow{Values: [][]byte{a, b, j, []byte("extra")}}
		if err := r.DataRow(m); err != nil {
			t.Fatal(err)
		}
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		var back pgproto3.DataRow
		if err := back.Decode(enc[5:]); err != nil || len(back.Values) != 4 {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		if back.Values[3] != nil {
			t.Fatal("a value beyond the description passed unmasked")
		}
	})
}

// FuzzDataRowWire feeds arbitrary DataRow bodies, as an upstream could
// send them, through the rewriter under a described result of three
// columns (a masked text column, an unresolved json column, a detector-
// scanned binary jsonb column): the rewritten message's length prefix
// covers exactly its bytes, every value's length is its own, and the
// row has as many values as the upstream sent, so the client never loses
// step with the stream.
func FuzzDataRowWire(f *testing.F) {
	for _, vals := range [][][]byte{
		{[]byte("alice@corp.io"), []byte(`{"a":"219-09-9999"}`), append([]byte{1}, `{"e":"bob@corp.io"}`...)},
		{nil, []byte("x"), nil},
		{[]byte(""), nil, []byte{2, '{', '}'}},
		{[]byte("a"), []byte("b"), []byte("c"), []byte("beyond the description")},
		{},
	} {
		enc, err := (&pgproto3.DataRow{Values: vals}).Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc[5:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m pgproto3.DataRow
		if err := m.Decode(body); err != nil {
			return // pgproto3 refuses it before any filter sees it
		}
		n := len(m.Values)
		r := &result{rules: testRules(), roles: []string{"creator"}}
		cols := []mask.Column{{Resolved: true, Text: true, Sources: []mask.Source{{Schema: "public", Table: "customers", Column: "email"}}},
			{Resolved: false, Text: true}, {Resolved: true, Text: true}}
		r.plan, r.kinds, r.formats = r.rules.Plan(r.roles, cols), []textKind{kindText, kindJSON, kindJSONB}, []int16{0, 0, 1}
		r.active = r.plan.Active()
		if err := r.DataRow(&m); err != nil {
			t.Fatal(err)
		}
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if enc[0] != 'D' || int(binary.BigEndian.Uint32(enc[1:5])) != len(enc)-1 {
			t.Fatalf("length prefix %d for a %d-byte message", binary.BigEndian.Uint32(enc[1:5]), len(enc)-1)
		}
		if int(binary.BigEndian.Uint16(enc[5:7])) != n {
			t.Fatalf("%d values became %d", n, binary.BigEndian.Uint16(enc[5:7]))
		}
		// Walk the values by their own lengths: they must end exactly at
		// the end of the message.
		off := 7
		for i := 0; i < n; i++ {
			if off+4 > len(enc) {
				t.Fatalf("value %d's length runs past the message", i)
			}
			l := int32(binary.BigEndian.Uint32(enc[off:]))
			off += 4
			if l < -1 || (l > 0 && off+int(l) > len(enc)) {
				t.Fatalf("value %d has length %d with %d bytes left", i, l, len(enc)-off)
			}
			if l > 0 {
				off += int(l)
			}
		}
		if off != len(enc) {
			t.Fatalf("values end at %d of %d bytes", off, len(enc))
		}
		for i := 3; i < n; i++ {
			if m.Values[i] != nil {
				t.Fatalf("value %d, beyond the description, passed", i)
			}
		}
		if n > 1 && m.Values[1] != nil && !json.Valid(m.Values[1]) {
			t.Fatalf("a masked json value is not json: %q", m.Values[1])
		}
	})
}

func TestInactivePlanAllocatesNothing(t *testing.T) {
	rules, err := mask.Compile([]config.MaskRule{{Columns: []string{"public.customers.ssn"}, Strategy: "redact"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &result{rules: rules}
	r.plan = rules.Plan(nil, []mask.Column{{Resolved: true, Text: true}})
	r.active = r.plan.Active()
	m := &pgproto3.DataRow{Values: [][]byte{[]byte("hello")}}
	if n := testing.AllocsPerRun(100, func() { _ = r.DataRow(m) }); n != 0 || r.active {
		t.Fatalf("%v allocations per row with an inactive plan", n)
	}
}

func BenchmarkDataRowMasked(b *testing.B) {
	r := &result{rules: testRules(), roles: []string{"creator"}}
	cols := []mask.Column{{Resolved: true, Text: true, Sources: []mask.Source{{Schema: "public", Table: "customers", Column: "email"}}},
		{Resolved: true, Text: true}, {Resolved: true}}
	r.plan, r.kinds, r.formats = r.rules.Plan(r.roles, cols), []textKind{kindText, kindText, kindOther}, []int16{0, 0, 0}
	r.active = r.plan.Active()
	vals := [][]byte{[]byte("alice@corp.io"), []byte("a plain note of some length"), []byte("12345")}
	m := &pgproto3.DataRow{Values: make([][]byte, 3)}
	b.ReportAllocs()
	for b.Loop() {
		copy(m.Values, vals)
		_ = r.DataRow(m)
	}
}

// BenchmarkDataRowTypical masks rows shaped like bench/masking.sh's: an
// int, an email (partial), an SSN (redact), a note and a city scanned by
// every detector.
func BenchmarkDataRowTypical(b *testing.B) {
	rules, err := mask.Compile([]config.MaskRule{
		{Columns: []string{"*.email"}, Strategy: "partial", KeepLast: 4},
		{Columns: []string{"public.people.ssn"}, Strategy: "redact"},
		{Detectors: mask.DetectorNames(), Strategy: "redact"},
	})
	if err != nil {
		b.Fatal(err)
	}
	src := func(c string) []mask.Source { return []mask.Source{{Schema: "public", Table: "people", Column: c}} }
	cols := []mask.Column{{Resolved: true, Sources: src("id")}, {Resolved: true, Text: true, Sources: src("email")},
		{Resolved: true, Text: true, Sources: src("ssn")}, {Resolved: true, Text: true, Sources: src("note")},
		{Resolved: true, Text: true, Sources: src("city")}}
	r := &result{rules: rules}
	r.plan, r.kinds, r.formats = rules.Plan(nil, cols), []textKind{kindOther, kindText, kindText, kindText, kindText}, make([]int16, 5)
	r.active = r.plan.Active()
	vals := [][]byte{[]byte("123456"), []byte("user123456@example.com"), []byte("219-09-1234"),
		[]byte("order 123456 shipped, 3 parcels, signed at the door"), []byte("Lisbon")}
	m := &pgproto3.DataRow{Values: make([][]byte, 5)}
	b.ReportAllocs()
	for b.Loop() {
		copy(m.Values, vals)
		_ = r.DataRow(m)
	}
}
