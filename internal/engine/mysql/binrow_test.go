package mysql

import (
	"bytes"
	"testing"
)

var binCols = []Column{{Type: 0x03}, {Type: 0xfd}, {Type: 0x08, Flags: flagUnsigned}, {Type: 0x0c}, {Type: 0xfd}}

// A row: INT 7, VARCHAR "secret", BIGINT UNSIGNED max, DATETIME (4-byte
// form), NULL.
func binSample() []byte {
	p := []byte{0x00, 1 << 6} // bitmap: column 4 (bit 6) is NULL
	p = append(p, 7, 0, 0, 0)
	p = append(p, 6)
	p = append(p, "secret"...)
	p = append(p, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	p = append(p, 4, 0xe8, 0x07, 1, 2)
	return p
}

func TestBinaryRowRoundTrip(t *testing.T) {
	t.Parallel()
	p := binSample()
	vals, err := parseBinaryRow(p, binCols)
	if err != nil {
		t.Fatal(err)
	}
	if string(vals[1].value) != "secret" || !vals[4].null || string(binaryText(binCols[2], vals[2].value)) != "18446744073709551615" {
		t.Fatalf("vals %+v", vals)
	}
	if out := appendBinaryRow(nil, vals); !bytes.Equal(out, p) {
		t.Fatalf("unchanged row re-encoded as %x, want %x", out, p)
	}
	vals[1].value, vals[1].raw = []byte("****"), nil
	vals[0].null = true
	want := []byte{0x00, 1<<6 | 1<<2, 4, '*', '*', '*', '*', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 0xe8, 0x07, 1, 2}
	if out := appendBinaryRow(nil, vals); !bytes.Equal(out, want) {
		t.Fatalf("masked row %x, want %x", out, want)
	}
}

// Every truncation and a few corruptions of a row are errors, never a
// panic or a silently short row.
func TestBinaryRowMalformed(t *testing.T) {
	t.Parallel()
	p := binSample()
	for i := 0; i < len(p); i++ {
		if _, err := parseBinaryRow(p[:i], binCols); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
	for _, bad := range [][]byte{append(binSample(), 0), {0x01, 0}, {0x00, 0, 0xfe}} {
		if _, err := parseBinaryRow(bad, binCols); err == nil {
			t.Fatalf("%x: no error", bad)
		}
	}
}

func FuzzBinaryRow(f *testing.F) {
	f.Add(binSample())
	f.Fuzz(func(t *testing.T, p []byte) {
		vals, err := parseBinaryRow(p, binCols)
		if err == nil && !bytes.Equal(appendBinaryRow(nil, vals), p) {
			t.Fatalf("%x does not round-trip", p)
		}
	})
}
