package mysql

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/countersign/countersign/internal/guard"
)

// twoRows is a well-formed bulk body (after the command byte) of a
// (LONG, VAR_STRING) statement: types sent, a value row and a NULL/DEFAULT
// row, and an IGNORE row.
func twoRows() []byte {
	return bulkBody(7, bulkSendTypes, []uint16{tLong, tVarString},
		[]bv{bInt(1), bStr("ada")}, []bv{bNull, bDefault}, []bv{bInt(3), bIgnore})
}

func TestDecodeBulk(t *testing.T) {
	long := []uint16{tLong}
	tests := []struct {
		name      string
		body      []byte
		nparams   int
		last      []uint16
		rows      int
		malformed bool   // the session must end
		code      uint16 // a refusal: ERR with this code, the session goes on
	}{
		{"rows of values, NULL, DEFAULT, IGNORE", twoRows(), 2, nil, 3, false, 0},
		{"types of the last execute", bulkBody(7, 0, nil, []bv{bInt(1)}, []bv{bInt(2)}), 1, long, 2, false, 0},
		{"unsigned flag kept", bulkBody(7, bulkSendTypes, []uint16{tLong | 0x8000}, []bv{bInt(-1)}), 1, nil, 1, false, 0},
		// MariaDB fails on a NULL-typed value part-way (TestRealBulkDecoderAgreesWithMariaDB).
		{"NULL type refused", bulkBody(7, bulkSendTypes, []uint16{0x06}, []bv{{}}, []bv{{}}), 1, nil, 0, false, erWrongArguments},
		{"INT24 refused (no bytes to MariaDB)", bulkBody(7, bulkSendTypes, []uint16{0x09}, []bv{bInt(1)}), 1, nil, 0, false, erWrongArguments},
		{"BIT refused, last types too", bulkBody(7, 0, nil, []bv{bStr("a")}), 1, []uint16{0x10}, 0, false, erWrongArguments},
		{"datetime length 0xfc", bulkBody(7, bulkSendTypes, []uint16{0x0c}, []bv{{v: append([]byte{0xfc, 4, 0}, make([]byte, 252)...)}}), 1, nil, 0, true, 0},
		{"datetime", bulkBody(7, bulkSendTypes, []uint16{0x0c}, []bv{{v: []byte{4, 0xe8, 0x07, 1, 2}}}), 1, nil, 1, false, 0},
		{"header cut short", []byte{7, 0, 0, 0, 0x80}, 1, nil, 0, true, 0},
		{"types cut short", bulkBody(7, bulkSendTypes, []uint16{tLong, tLong})[:8], 2, nil, 0, true, 0},
		{"no rows", bulkBody(7, bulkSendTypes, long), 1, nil, 0, true, 0},
		{"row cut short", bulkBody(7, bulkSendTypes, []uint16{tLong, tLong}, []bv{bInt(1)}), 2, nil, 0, true, 0},
		{"value cut short", bulkBody(7, bulkSendTypes, long, []bv{{v: []byte{1, 2, 3}}}), 1, nil, 0, true, 0},
		{"lenenc past the end", bulkBody(7, bulkSendTypes, []uint16{tVarString}, []bv{{v: []byte{5, 'a'}}}), 1, nil, 0, true, 0},
		{"unknown indicator", bulkBody(7, bulkSendTypes, long, []bv{{ind: 4}}), 1, nil, 0, true, 0},
		{"unknown type", bulkBody(7, bulkSendTypes, []uint16{0x42}, []bv{{v: []byte{1}}}), 1, nil, 0, true, 0},
		{"SEND_UNIT_RESULTS", bulkBody(7, bulkSendTypes|bulkUnitResults, long, []bv{bInt(1)}), 1, nil, 0, false, erUnsupportedPS},
		{"unknown flag", bulkBody(7, bulkSendTypes|0x100, long, []bv{bInt(1)}), 1, nil, 0, false, erUnsupportedPS},
		{"no parameters", bulkBody(7, bulkSendTypes, nil), 0, nil, 0, false, erUnsupportedPS},
		{"types never sent", bulkBody(7, 0, nil, []bv{bInt(1)}), 1, nil, 0, false, erWrongArguments},
		{"as many values as allowed", bulkBody(7, bulkSendTypes, long, nullRows(maxBulkValues, 1)...), 1, nil, maxBulkValues, false, 0},
		{"too many values", bulkBody(7, bulkSendTypes, long, nullRows(maxBulkValues+1, 1)...), 1, nil, 0, false, erWrongArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := decodeBulk(tc.body, tc.nparams, tc.last)
			var refused *bulkError
			switch {
			case tc.malformed:
				if err == nil || errors.As(err, &refused) {
					t.Fatalf("err = %v; want a malformed packet", err)
				}
			case tc.code != 0:
				if !errors.As(err, &refused) || refused.code != tc.code {
					t.Fatalf("err = %v; want a refusal with %d", err, tc.code)
				}
			case err != nil:
				t.Fatal(err)
			case b.rows != tc.rows || len(b.params) != tc.rows*tc.nparams:
				t.Fatalf("%d rows, %d parameters; want %d rows", b.rows, len(b.params), tc.rows)
			}
		})
	}
}

// Every indicator and value is a parameter of its own, row by row, and
// DEFAULT and IGNORE differ from every value (text format).
func TestDecodeBulkParams(t *testing.T) {
	b, err := decodeBulk(twoRows(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []guard.Param{
		{Format: 1, Type: tLong, Value: bInt(1).v}, {Format: 1, Type: tVarString, Value: []byte("ada")},
		{Format: 1, Type: tLong, Null: true}, {Format: 0, Type: tVarString, Value: []byte("DEFAULT")},
		{Format: 1, Type: tLong, Value: bInt(3).v}, {Format: 0, Type: tVarString, Value: []byte("IGNORE")},
	}
	if len(b.params) != len(want) {
		t.Fatalf("%d parameters, want %d", len(b.params), len(want))
	}
	for i, w := range want {
		p := b.params[i]
		if p.Format != w.Format || p.Type != w.Type || p.Null != w.Null || !bytes.Equal(p.Value, w.Value) {
			t.Fatalf("parameter %d is %+v, want %+v", i+1, p, w)
		}
	}
	// A VARCHAR value spelled DEFAULT is not the DEFAULT indicator.
	spelled, err := decodeBulk(bulkBody(7, bulkSendTypes, []uint16{tLong, tVarString},
		[]bv{bInt(1), bStr("ada")}, []bv{bNull, bStr("DEFAULT")}, []bv{bInt(3), bIgnore}), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if bytes.Equal(guard.Digest(key, "mysql", "r", guard.State{}, "t", b.params),
		guard.Digest(key, "mysql", "r", guard.State{}, "t", spelled.params)) {
		t.Fatal("the DEFAULT indicator and the string 'DEFAULT' share a digest")
	}
}

// The decoded values are the decoder's own copy: the client's buffer can
// be reused (it is, by the next read) without changing what was decided.
func TestDecodeBulkCopies(t *testing.T) {
	body := twoRows()
	b, err := decodeBulk(body, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 0xee
	}
	if string(b.params[1].Value) != "ada" {
		t.Fatalf("a decoded value changed with the buffer: %q", b.params[1].Value)
	}
}

// Rows run until the end of the packet, so a bulk cut exactly between two
// rows is a bulk of fewer rows (the packet's length frames it); cut
// anywhere else it is malformed. Every prefix is tried.
func TestDecodeBulkEveryPrefix(t *testing.T) {
	body := twoRows()
	full, err := decodeBulk(body, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	boundaries := map[int]int{}
	for rows := 1; rows <= 3; rows++ {
		all := [][]bv{{bInt(1), bStr("ada")}, {bNull, bDefault}, {bInt(3), bIgnore}}
		boundaries[len(bulkBody(7, bulkSendTypes, []uint16{tLong, tVarString}, all[:rows]...))] = rows
	}
	for n := 0; n < len(body); n++ {
		b, err := decodeBulk(body[:n], 2, nil)
		rows, boundary := boundaries[n]
		if !boundary {
			if err == nil {
				t.Fatalf("a bulk cut at byte %d decoded as %d rows", n, b.rows)
			}
			continue
		}
		if err != nil || b.rows != rows {
			t.Fatalf("cut after row %d (byte %d): %d rows, %v", rows, n, b.rows, err)
		}
		for i, p := range b.params {
			if q := full.params[i]; p.Null != q.Null || p.Format != q.Format || !bytes.Equal(p.Value, q.Value) {
				t.Fatalf("cut after row %d: parameter %d is %+v, not %+v", rows, i+1, p, q)
			}
		}
	}
}

// The hot path allocates the parameters, one copy of the rows and the
// types it was sent: nothing per value.
func TestDecodeBulkAllocs(t *testing.T) {
	var rows [][]bv
	for i := range 100 {
		rows = append(rows, []bv{bInt(int32(i)), bStr("row")})
	}
	body := bulkBody(7, bulkSendTypes, []uint16{tLong, tVarString}, rows...)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := decodeBulk(body, 2, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Fatalf("%v allocations per decode of 100 rows, want at most 3", allocs)
	}
}

func BenchmarkDecodeBulk(b *testing.B) {
	var rows [][]bv
	for i := range 1000 {
		rows = append(rows, []bv{bInt(int32(i)), bStr("some name")})
	}
	body := bulkBody(7, bulkSendTypes, []uint16{tLong, tVarString}, rows...)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeBulk(body, 2, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeBulk writes a decoded bulk back: the fuzz oracle's round trip.
func encodeBulk(b bulkExec) ([]byte, error) {
	out := bulkBody(7, b.flags, b.types)
	for _, p := range b.params {
		switch {
		case p.Null:
			out = append(out, indicatorNull)
		case p.Format == 0 && string(p.Value) == "DEFAULT":
			out = append(out, indicatorDefault)
		case p.Format == 0 && string(p.Value) == "IGNORE":
			out = append(out, indicatorIgnore)
		case p.Format == 1:
			out = append(out, indicatorNone)
			out = appendBinaryValue(out, byte(p.Type), p.Value)
		default:
			return nil, fmt.Errorf("parameter %+v has no encoding", p)
		}
	}
	return out, nil
}

// appendBinaryValue encodes v as binaryValue reads a value of type t.
func appendBinaryValue(dst []byte, t byte, v []byte) []byte {
	switch t {
	case 0x06, 0x01, 0x02, 0x0d, 0x03, 0x09, 0x04, 0x08, 0x05:
		return append(dst, v...)
	case 0x07, 0x0a, 0x0b, 0x0c:
		return append(append(dst, byte(len(v))), v...)
	}
	return append(appendLenenc(dst, uint64(len(v))), v...)
}

// FuzzDecodeBulk: no input panics or decodes past its packet; whatever
// decodes has whole rows and encodes back to a packet that decodes to the
// same parameters (so what the guard saw is what the bytes say).
func FuzzDecodeBulk(f *testing.F) {
	f.Add(twoRows(), uint8(2), false)
	f.Add(bulkBody(7, 0, nil, []bv{bInt(1)}, []bv{bNull}), uint8(1), true)
	f.Add(bulkBody(7, bulkSendTypes, []uint16{0x0c, 0xfc}, []bv{{v: []byte{4, 0xe8, 0x07, 1, 2}}, bStr("blob")}), uint8(2), false)
	f.Fuzz(func(t *testing.T, body []byte, n uint8, withLast bool) {
		nparams := int(n % 16)
		var last []uint16
		if withLast {
			last = make([]uint16, nparams)
			for i := range last {
				last[i] = tVarString
			}
		}
		b, err := decodeBulk(body, nparams, last)
		if err != nil {
			return
		}
		if b.rows < 1 || len(b.params) != b.rows*nparams || len(b.types) != nparams {
			t.Fatalf("%d rows, %d parameters, %d types of %d", b.rows, len(b.params), len(b.types), nparams)
		}
		again, err := encodeBulk(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := decodeBulk(again, nparams, last)
		if err != nil || b2.rows != b.rows {
			t.Fatalf("the re-encoded bulk: %d rows, %v", b2.rows, err)
		}
		for i := range b.params {
			p, q := b.params[i], b2.params[i]
			if p.Format != q.Format || p.Type != q.Type || p.Null != q.Null || !bytes.Equal(p.Value, q.Value) {
				t.Fatalf("parameter %d: %+v, then %+v", i+1, p, q)
			}
		}
	})
}

// The extended capabilities sit in the last four reserved bytes of a
// handshake response, and count only without CLIENT_MYSQL (bit 0).
func TestHandshakeResponseExtendedCaps(t *testing.T) {
	base := uint32(capProtocol41 | capSecureConn | capPluginAuth)
	tests := []struct {
		name string
		caps uint32
		want uint32
	}{
		{"MariaDB client", base, extStmtBulkOperations},
		{"MySQL client (CLIENT_MYSQL set)", base | capLongPassword, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := handshakeBytes("my-test", "", tc.caps)
			b[9+19] = extStmtBulkOperations // the first byte of the extended capabilities
			hr, err := parseHandshakeResponse(b)
			if err != nil {
				t.Fatal(err)
			}
			if hr.ext != tc.want {
				t.Fatalf("ext = %#x, want %#x", hr.ext, tc.want)
			}
		})
	}
}

// mariadbGreeting is a HandshakeV10 as MariaDB 10.11 sends it: no
// CLIENT_MYSQL, the extended capabilities after six reserved bytes.
func mariadbGreeting(ext uint32) []byte {
	caps := uint32(capProtocol41 | capSecureConn | capPluginAuth | capConnectWithDB | capPluginAuthLenc | capTransactions)
	g := []byte{10}
	g = append(g, "5.5.5-10.11.19-MariaDB\x00"...)
	g = append(g, 9, 0, 0, 0)
	g = append(g, "abcdefgh\x00"...)
	g = append(g, byte(caps), byte(caps>>8), 45, 2, 0, byte(caps>>16), byte(caps>>24), 21)
	g = append(g, 0, 0, 0, 0, 0, 0, byte(ext), byte(ext>>8), byte(ext>>16), byte(ext>>24))
	g = append(g, "ijklmnopqrst\x00"...)
	return append(g, "mysql_native_password\x00"...)
}

func TestParseGreeting(t *testing.T) {
	g, err := parseGreeting(mariadbGreeting(extStmtBulkOperations | 1))
	if err != nil {
		t.Fatal(err)
	}
	if g.connID != 9 || g.ext&extStmtBulkOperations == 0 || string(g.salt) != "abcdefghijklmnopqrst" || g.plugin != pluginNative {
		t.Fatalf("%+v", g)
	}
	mysql8 := impostorHandshake("caching_sha2_password")
	if g, err := parseGreeting(mysql8); err != nil || g.plugin != "caching_sha2_password" || g.ext != 0 {
		t.Fatalf("%+v %v", g, err)
	}
	// A greeting may end after its low capabilities (an old server's);
	// cut anywhere else it is malformed.
	short := len("\x0a8.0.36\x00") + 4 + 8 + 1 + 2
	for n := range len(mysql8) - 1 {
		if _, err := parseGreeting(mysql8[:n]); err == nil && n != short {
			t.Fatalf("a greeting cut at %d bytes was accepted", n)
		}
	}
}

// FuzzParseGreeting: whatever answers on the upstream's address, the
// greeting's reader never panics, and takes no scramble longer than the
// packet.
func FuzzParseGreeting(f *testing.F) {
	f.Add(mariadbGreeting(extStmtBulkOperations))
	f.Add(impostorHandshake("caching_sha2_password"))
	f.Fuzz(func(t *testing.T, p []byte) {
		g, err := parseGreeting(p)
		if err == nil && len(g.salt) > len(p) {
			t.Fatalf("a %d-byte scramble from a %d-byte packet", len(g.salt), len(p))
		}
	})
}
