package postgres

import (
	"bytes"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// seedUpstream is a backend stream as PostgreSQL sends it: a result, a
// COPY out, errors, notices, status changes.
func seedUpstream(t testing.TB) []byte {
	var b []byte
	for _, m := range []pgproto3.BackendMessage{
		&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
		&pgproto3.ParameterDescription{ParameterOIDs: []uint32{23, 25}},
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("id"), TableOID: 16384, TableAttributeNumber: 1, DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("7"), nil}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0}},
		&pgproto3.CopyData{Data: []byte("1\tx\n")},
		&pgproto3.CopyDone{},
		&pgproto3.CommandComplete{CommandTag: []byte("COPY 1")},
		&pgproto3.ErrorResponse{Severity: "ERROR", Code: "23505", Message: "duplicate key", Detail: "Key (email)=(a@b.io) already exists."},
		&pgproto3.NoticeResponse{Severity: "NOTICE", Code: "00000", Message: "hello"},
		&pgproto3.NotificationResponse{PID: 1, Channel: "c", Payload: "p"},
		&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"},
		&pgproto3.PortalSuspended{}, &pgproto3.EmptyQueryResponse{}, &pgproto3.NoData{}, &pgproto3.CloseComplete{},
		&pgproto3.FunctionCallResponse{Result: []byte("x")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	} {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// decodeUpstream does with each upstream message what the relay does
// before it reaches the client: decode, copy descriptions, read row
// counts from tags, re-encode. It returns the re-encoded stream and how
// many messages it held.
func decodeUpstream(r io.Reader) ([]byte, int) {
	fe := pgproto3.NewFrontend(r, io.Discard)
	// pgproto3 allocates a body's claimed length before reading it; the
	// bound keeps each fuzz input cheap (PostgreSQL's own messages stay
	// under 1 GiB, its allocation limit).
	fe.SetMaxBodyLen(1 << 20)
	var out []byte
	var n int
	for {
		msg, err := fe.Receive()
		if err != nil {
			return out, n
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			msg = copyRowDesc(m)
		case *pgproto3.CommandComplete:
			rowsSink = rowsOf(string(m.CommandTag), 0)
		}
		if out, err = msg.Encode(out); err != nil {
			return out, n
		}
		n++
	}
}

// rowsSink keeps rowsOf's result alive in the fuzz harness.
var rowsSink int64

// FuzzUpstreamMessages: no upstream bytes make the relay's decoding panic,
// and what it re-encodes for the client decodes into as many messages
// again (byte equality is too strong: pgproto3 keeps an error's unknown
// fields in a map, so their order changes).
func FuzzUpstreamMessages(f *testing.F) {
	f.Add(seedUpstream(f))
	f.Add([]byte{'D', 0, 0, 0, 10, 0, 1, 0xff, 0xff, 0xff, 0xfe})
	f.Add([]byte{'T', 0, 0, 0, 6, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		once, n := decodeUpstream(bytes.NewReader(b))
		if _, m := decodeUpstream(bytes.NewReader(once)); m != n {
			t.Fatalf("%d messages re-encoded as %d:\n%q", n, m, once)
		}
	})
}

// TestUpstreamSeedRoundTrip: the seed stream survives the relay's decoding
// byte for byte.
func TestUpstreamSeedRoundTrip(t *testing.T) {
	seed := seedUpstream(t)
	if got, _ := decodeUpstream(bytes.NewReader(seed)); !bytes.Equal(got, seed) {
		t.Fatalf("re-encoded\n%q\nwant\n%q", got, seed)
	}
}
