package mysql

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns at most n bytes per Read: the stream is cut at
// every position by the split test.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// splitReader delivers the stream in two reads cut at one offset.
type splitReader struct {
	b   []byte
	cut int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := len(r.b)
	if r.cut > 0 && r.cut < k {
		k = r.cut
	}
	k = min(k, len(p))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	r.cut -= k
	return k, nil
}

func TestPacketSplitAtEveryByte(t *testing.T) {
	payloads := [][]byte{{comQuery, 'S', 'E', 'L'}, {}, bytes.Repeat([]byte{7}, 300), {comPing}}
	var seq uint8
	var stream []byte
	for _, p := range payloads {
		stream = appendPacket(stream, p, &seq)
	}
	for cut := 0; cut <= len(stream); cut++ {
		rd := newPacketReader(&splitReader{b: append([]byte(nil), stream...), cut: cut}, 1<<20)
		for i, want := range payloads {
			got, err := rd.next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("cut %d packet %d: %q, %v; want %q", cut, i, got, err, want)
			}
		}
	}
	rd := newPacketReader(&chunkReader{b: stream, n: 1}, 1<<20)
	for range payloads {
		if _, err := rd.next(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPacketMultiFragment(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, maxPayload+10)
	var seq uint8
	stream := appendPacket(nil, big, &seq)
	if seq != 2 {
		t.Fatalf("seq = %d", seq)
	}
	got, err := newPacketReader(bytes.NewReader(stream), 32<<20).next()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("len %d, %v", len(got), err)
	}
	if _, err := newPacketReader(bytes.NewReader(stream), 1<<20).next(); !errors.Is(err, errPacketTooLarge) {
		t.Fatalf("limit not enforced: %v", err)
	}
	exact := bytes.Repeat([]byte{'y'}, maxPayload)
	seq = 0
	stream = appendPacket(nil, exact, &seq)
	if len(stream) != 4+maxPayload+4 {
		t.Fatalf("a payload of exactly 16 MiB-1 must be followed by an empty packet")
	}
}

func TestPacketReaderRefuses(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"bad sequence", []byte{1, 0, 0, 5, comPing}, errSequence},
		{"too large", []byte{0xff, 0xff, 0x0f, 0}, errPacketTooLarge},
		{"truncated body", []byte{5, 0, 0, 0, 1}, io.ErrUnexpectedEOF},
		{"truncated header", []byte{5, 0}, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPacketReader(bytes.NewReader(tc.stream), 1<<10).next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseHandshakeResponse(t *testing.T) {
	good := handshakeBytes("my-test", "app", capProtocol41|capSecureConn|capConnectWithDB|capPluginAuth)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"good", good, true},
		{"empty", nil, false},
		{"short", good[:20], false},
		{"no user terminator", good[:33], false},
		{"protocol 320", handshakeBytes("u", "", capSecureConn), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hr, err := parseHandshakeResponse(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && (hr.user != "my-test" || hr.db != "app" || hr.plugin != pluginNative) {
				t.Fatalf("%+v", hr)
			}
		})
	}
}

func handshakeBytes(user, db string, caps uint32) []byte {
	b := []byte{byte(caps), byte(caps >> 8), byte(caps >> 16), byte(caps >> 24), 0, 0, 0, 1, 45}
	b = append(b, make([]byte, 23)...)
	b = append(b, user...)
	b = append(b, 0, 20)
	b = append(b, bytes.Repeat([]byte{1}, 20)...)
	b = append(b, db...)
	b = append(b, 0)
	b = append(b, pluginNative...)
	return append(b, 0)
}

func TestDecodeExecute(t *testing.T) {
	s := &stmt{nparams: 3, long: map[int][]byte{2: []byte("long")}}
	body := []byte{1, 0, 0, 0, 0, 1, 0, 0, 0}
	body = append(body, 0b010)                        // second parameter NULL
	body = append(body, 1, 0x08, 0, 0x0f, 0, 0xfc, 0) // types: LONGLONG, VARCHAR, BLOB
	body = append(body, 42, 0, 0, 0, 0, 0, 0, 0)      // the third comes from long data
	params, err := decodeExecute(body, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(params) != 3 || params[0].Value[0] != 42 || !params[1].Null || string(params[2].Value) != "long" {
		t.Fatalf("%+v", params)
	}
	for _, bad := range [][]byte{body[:5], body[:12], append(body[:10:10], 1, 0x42, 0, 0, 0, 0, 0)} {
		if _, err := decodeExecute(bad, &stmt{nparams: 3, long: map[int][]byte{}}); err == nil {
			t.Fatalf("decodeExecute(%v) accepted", bad)
		}
	}
}

func TestTextRowRoundTrip(t *testing.T) {
	vals := [][]byte{[]byte("a"), nil, {}, bytes.Repeat([]byte{'z'}, 300)}
	enc := appendTextRow(nil, vals)
	got, ok := parseTextRow(enc, len(vals))
	if !ok || len(got) != 4 || got[1] != nil || got[2] == nil || len(got[3]) != 300 {
		t.Fatalf("%v %q", ok, got)
	}
	if _, ok := parseTextRow(enc[:len(enc)-1], len(vals)); ok {
		t.Fatal("truncated row accepted")
	}
}

func FuzzPacketReader(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, comPing})
	f.Add([]byte{0xff, 0xff, 0xff, 0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := newPacketReader(bytes.NewReader(b), 4096)
		for i := 0; i < 64; i++ {
			p, err := rd.next()
			if err != nil {
				return
			}
			if len(p) > 4096 {
				t.Fatalf("packet of %d bytes passed a 4096-byte limit", len(p))
			}
		}
	})
}

func FuzzHandshakeResponse(f *testing.F) {
	f.Add(handshakeBytes("my-test", "app", capProtocol41|capSecureConn|capConnectWithDB|capPluginAuth|capConnectAttrs))
	f.Add(handshakeBytes("u", "", capProtocol41|capPluginAuthLenc))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseHandshakeResponse(b)
	})
}

func FuzzDecodeExecute(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x0f, 0, 0x08, 0, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		_, _ = decodeExecute(b, &stmt{nparams: int(n), long: map[int][]byte{}})
	})
}

func FuzzColumnAndRow(f *testing.F) {
	f.Add([]byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 45, 0, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		_, _ = parseColumn(b)
		vals, ok := parseTextRow(b, int(n))
		if !ok {
			return
		}
		again, ok := parseTextRow(appendTextRow(nil, vals), int(n))
		if !ok || len(again) != len(vals) {
			t.Fatalf("row did not round-trip")
		}
		for i := range vals {
			if (vals[i] == nil) != (again[i] == nil) || !bytes.Equal(vals[i], again[i]) {
				t.Fatalf("value %d changed", i)
			}
		}
	})
}
