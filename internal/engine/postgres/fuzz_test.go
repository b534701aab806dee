package postgres

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// encodeAll encodes frontend messages as a client would send them.
func encodeAll(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func seedStream(t testing.TB) []byte {
	return encodeAll(t,
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s1", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 7}, nil}},
		&pgproto3.Describe{ObjectType: 'P', Name: "p"},
		&pgproto3.Execute{Portal: "p"},
		&pgproto3.Sync{},
		&pgproto3.FunctionCall{Function: 764, Arguments: [][]byte{[]byte("x")}},
		&pgproto3.CopyData{Data: []byte("1\tx\n")},
		&pgproto3.CopyDone{},
		&pgproto3.Terminate{},
	)
}

// decodeStream runs what the client loop does with each message's bytes
// (decode with the body limit, copy parameters out) and returns a summary.
func decodeStream(r io.Reader) []string {
	be := pgproto3.NewBackend(r, io.Discard)
	be.SetMaxBodyLen(1 << 16)
	stmts := map[string]*stmt{}
	var out []string
	for {
		msg, err := be.Receive()
		if err != nil {
			return out
		}
		switch m := msg.(type) {
		case *pgproto3.Parse:
			stmts[m.Name] = &stmt{text: m.Query, types: append([]uint32(nil), m.ParameterOIDs...)}
		case *pgproto3.Bind:
			for _, p := range bindParams(m, stmts[m.PreparedStatement]) {
				out = append(out, string(p.Value))
			}
		case *pgproto3.FunctionCall:
			for _, p := range funcParams(m) {
				out = append(out, string(p.Value))
			}
		}
		b, _ := msg.Encode(nil)
		out = append(out, string(b))
	}
}

func FuzzClientMessages(f *testing.F) {
	f.Add(seedStream(f))
	f.Add([]byte{'Q', 0, 0, 0, 5, 0})
	f.Add([]byte{'B', 0, 0, 0, 14, 0, 0, 0, 2, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeStream(bytes.NewReader(b))
	})
}

func FuzzStartupPacket(f *testing.F) {
	sm, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "a", "database": "pg-prod", "options": "-c x=y", "client_encoding": "LATIN1"}}).Encode(nil)
	f.Add(sm)
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	f.Add(ssl)
	f.Add(binary.BigEndian.AppendUint32(nil, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		be := pgproto3.NewBackend(bytes.NewReader(b), io.Discard)
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if m, ok := msg.(*pgproto3.StartupMessage); ok {
			params, _, _, _, serr := startupParams(m.Parameters)
			if serr == nil {
				for k := range params {
					if _, ok := allowedName(k); !ok {
						t.Fatalf("parameter %q passed the allow-list", k)
					}
				}
			}
		}
	})
}

func allowedName(k string) (string, bool) {
	for _, v := range allowedParams {
		if v == k {
			return v, true
		}
	}
	return "", false
}

// TestClientReaderSplitAtEveryByte: bytes a hold watch buffered and bytes
// still on the connection decode into the same messages, wherever the
// stream is cut between them.
func TestClientReaderSplitAtEveryByte(t *testing.T) {
	stream := seedStream(t)
	want := decodeStream(bytes.NewReader(stream))
	if len(want) < 10 {
		t.Fatalf("the seed decoded to %d items", len(want))
	}
	for i := 0; i <= len(stream); i++ {
		a, b := net.Pipe()
		go func() { a.Write(stream[i:]); a.Close() }()
		r := &clientReader{conn: b, buf: append([]byte(nil), stream[:i]...), cap: 1 << 20}
		got := decodeStream(r)
		b.Close()
		if len(got) != len(want) {
			t.Fatalf("cut at %d: %d items, want %d", i, len(got), len(want))
		}
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("cut at %d: item %d differs", i, j)
			}
		}
	}
}

func TestStartupParams(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		code string
	}{
		{"allowed", map[string]string{"user": "a", "database": "d", "application_name": "x", "DateStyle": "ISO", "TimeZone": "UTC", "extra_float_digits": "3", "client_encoding": "utf8"}, ""},
		{"options", map[string]string{"options": "-c search_path=evil"}, "0A000"},
		{"search_path", map[string]string{"search_path": "evil"}, "0A000"},
		{"replication", map[string]string{"replication": "true"}, "0A000"},
		{"encoding", map[string]string{"client_encoding": "SQL_ASCII"}, "0A000"},
		{"session_authorization", map[string]string{"session_authorization": "postgres"}, "0A000"},
		{"protocol option", map[string]string{"_pq_.x": "1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, err := startupParams(tt.in)
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("refused: %s", err.msg)
			case tt.code != "" && (err == nil || err.code != tt.code):
				t.Fatalf("got %v, want %s", err, tt.code)
			}
		})
	}
}

func TestRowsOf(t *testing.T) {
	for tag, want := range map[string]int64{"INSERT 0 5": 5, "SELECT 3": 3, "BEGIN": 9, "COPY 12": 12, "UPDATE x": 9} {
		if got := rowsOf(tag, 9); got != want {
			t.Errorf("rowsOf(%q) = %d, want %d", tag, got, want)
		}
	}
}
