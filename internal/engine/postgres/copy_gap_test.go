package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// rawSession logs in through the gateway with pgconn and hands over its
// protocol stream, so a test can send what no driver would.
func rawSession(t *testing.T, ev *env) (*pgproto3.Frontend, func()) {
	t.Helper()
	return rawSessionTo(t, ev.url("pg-test", "require"))
}

// rawSessionTo is rawSession on any connection string: another resource
// of the gateway, or PostgreSQL itself to compare with.
func rawSessionTo(t *testing.T, url string) (*pgproto3.Frontend, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	hj, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	hj.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	return hj.Frontend, func() { hj.Conn.Close() }
}

// until receives messages up to and including the first of type T, or the
// end of the connection; it returns them.
func until[T pgproto3.BackendMessage](t *testing.T, fe *pgproto3.Frontend) []pgproto3.BackendMessage {
	t.Helper()
	var got []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			return got
		}
		got = append(got, m)
		if _, ok := m.(T); ok {
			return got
		}
	}
}

func errorIn(msgs []pgproto3.BackendMessage) *pgproto3.ErrorResponse {
	for _, m := range msgs {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			return e
		}
	}
	return nil
}

func send(t *testing.T, fe *pgproto3.Frontend, msgs ...pgproto3.FrontendMessage) {
	t.Helper()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestCopyInStep attacks the matching of responses to requests around
// COPY FROM STDIN. PostgreSQL ignores Sync while it reads COPY data, so a
// Sync the gateway expected an answer to would leave every later result
// attributed to the operation before it (and masked by its plan). Each
// case either works in step or ends the session; none writes rows.
func TestCopyInStep(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "ci_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (a int)"); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	copyText := "COPY " + tbl + " FROM STDIN"

	tests := []struct {
		name string
		msgs []pgproto3.FrontendMessage // after the Query has its CopyInResponse
		pre  []pgproto3.FrontendMessage // sent with the Query, before CopyInResponse
	}{
		{"Sync during COPY", []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.Sync{}, &pgproto3.CopyDone{}}, nil},
		{"Sync behind the COPY query", []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}}, []pgproto3.FrontendMessage{&pgproto3.Sync{}}},
		{"Query behind the COPY query", []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}}, []pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, done := rawSession(t, ev)
			defer done()
			send(t, fe, append([]pgproto3.FrontendMessage{&pgproto3.Query{String: copyText}}, tt.pre...)...)
			got := until[*pgproto3.CopyInResponse](t, fe)
			if e := errorIn(got); e != nil {
				if e.Code != "08P01" {
					t.Fatalf("got %+v", got)
				}
				return // refused before the COPY started
			}
			send(t, fe, tt.msgs...)
			got = until[*pgproto3.ReadyForQuery](t, fe)
			if e := errorIn(got); e == nil || e.Code != "08P01" || e.Severity != "FATAL" {
				t.Fatalf("got %+v; want the session ended with 08P01", got)
			}
		})
		if n := count(); n != 0 {
			t.Fatalf("%s: %d rows were stored", tt.name, n)
		}
	}

	t.Run("bad data: the upstream ends the COPY, the session goes on", func(t *testing.T) {
		c := ev.connect(t)
		_, err := c.CopyFrom(ctx, pgx.Identifier{tbl}, []string{"a"}, pgx.CopyFromRows([][]any{{"not a number"}}))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			// pgx encodes the value itself and refuses it; send bad text instead
			_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("x\n"), copyText)
			if !errors.As(err, &pe) || pe.Code != "22P02" {
				t.Fatalf("copy of bad data: %v", err)
			}
		}
		for i := range 3 {
			var n int
			if err := c.QueryRow(ctx, "SELECT $1::int", i).Scan(&n); err != nil || n != i {
				t.Fatalf("after the failed COPY: %d %v", n, err)
			}
		}
	})
	if n := count(); n != 0 {
		t.Fatalf("%d rows were stored", n)
	}
}
