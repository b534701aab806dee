package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/engine/enginetest"
)

// TestCopyInExtended runs COPY ... FROM STDIN through the extended
// protocol, as libpq's PQexecParams and tokio-postgres's copy_in send it,
// and attacks the matching of responses to requests around it: PostgreSQL
// ignores a Sync it reads in COPY mode, answers it when the COPY never
// started, and skips to the next Sync when the COPY fails. Every case ends
// in step (a query after it gets its own answer) or ends the session (only
// a message the upstream would take for a broken COPY: a Sync or any
// command in the data); the rows stored are exactly the ones each case
// says.
func TestCopyInExtended(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "cx_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (a int)"); err != nil {
		t.Fatal(err)
	}
	copyText := "COPY " + tbl + " FROM STDIN"
	execCopy := func(text string, after ...pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
		return append([]pgproto3.FrontendMessage{&pgproto3.Parse{Query: text}, &pgproto3.Bind{},
			&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}}, after...)
	}
	data := func(rows ...string) []pgproto3.FrontendMessage {
		var ms []pgproto3.FrontendMessage
		for _, r := range rows {
			ms = append(ms, &pgproto3.CopyData{Data: []byte(r + "\n")})
		}
		return ms
	}
	cat := func(parts ...[]pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
		var ms []pgproto3.FrontendMessage
		for _, p := range parts {
			ms = append(ms, p...)
		}
		return ms
	}
	one := func(m ...pgproto3.FrontendMessage) []pgproto3.FrontendMessage { return m }
	sync, done := &pgproto3.Sync{}, &pgproto3.CopyDone{}

	tests := []struct {
		name  string
		first []pgproto3.FrontendMessage // sent before waiting for CopyInResponse
		then  []pgproto3.FrontendMessage // sent after it (nil: no COPY starts)
		code  string                     // the error the client gets, if any
		fatal bool                       // the session ends
		rows  int                        // rows the case stores
		extra int                        // ReadyForQuery answers to later Syncs
	}{
		{"libpq: Sync behind Execute, data, CopyDone, Sync", execCopy(copyText, sync), cat(data("1", "2"), one(done, sync)), "", false, 2, 0},
		{"Flush instead of Sync", execCopy(copyText, &pgproto3.Flush{}), cat(data("3"), one(done, sync)), "", false, 1, 0},
		{"two Syncs before the data", execCopy(copyText, sync, sync), cat(data("4"), one(done, sync)), "", false, 1, 0},
		{"everything at once", cat(execCopy(copyText, sync), data("5"), one(done, sync)), nil, "", false, 1, 0},
		// The Sync behind the Execute never reached the upstream, so it
		// skips to the one after the data, as PostgreSQL does for libpq.
		{"CopyFail after a Sync", execCopy(copyText, sync), cat(data("6"), one(&pgproto3.CopyFail{Message: "client gave up"}, sync)), "57014", false, 0, 0},
		{"bad data after a Sync", execCopy(copyText, sync), cat(data("7", "x"), one(done, sync)), "22P02", false, 0, 0},
		{"bad data after two Syncs", execCopy(copyText, sync, sync), cat(data("7", "x"), one(done, sync)), "22P02", false, 0, 0},
		{"CopyFail after a Flush", execCopy(copyText, &pgproto3.Flush{}), cat(data("6"), one(&pgproto3.CopyFail{Message: "client gave up"}, sync)), "57014", false, 0, 0},
		{"bad data after a Flush, the Sync after CopyDone ends it", execCopy(copyText, &pgproto3.Flush{}), cat(data("7", "x"), one(done, sync)), "22P02", false, 0, 0},
		{"the COPY never starts: the Sync behind it is answered", execCopy("COPY cx_missing_table FROM STDIN", sync), nil, "42P01", false, 0, 0},
		{"the COPY never starts: two Syncs, two answers", execCopy("COPY cx_missing_table FROM STDIN", sync, sync), nil, "42P01", false, 0, 1},
		{"everything at once, the COPY never starts", cat(execCopy("COPY cx_missing_table FROM STDIN", sync), data("10"), one(done, sync)), nil, "42P01", false, 0, 1},
		{"everything at once, bad data", cat(execCopy(copyText, sync), data("10", "x"), one(done, sync)), nil, "22P02", false, 0, 0},
		{"a row limit on the Execute", one(&pgproto3.Parse{Query: copyText}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 1}, sync), cat(data("11", "12"), one(done, sync)), "", false, 2, 0},
		{"the portal executed again after its data", execCopy(copyText, &pgproto3.Flush{}), cat(data("13"), one(done, &pgproto3.Execute{}, sync)), "55000", false, 0, 0},
		{"Sync in the data", execCopy(copyText, sync), cat(data("8"), one(sync, done, sync)), "08P01", true, 0, 0},
		{"a Parse behind the COPY", execCopy(copyText, sync, &pgproto3.Parse{Query: "SELECT 1"}), nil, "08P01", true, 0, 0},
		{"a Query in the data", execCopy(copyText, sync), cat(data("9"), one(&pgproto3.Query{String: "SELECT 1"}, done, sync)), "08P01", true, 0, 0},
	}
	before := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, closeFn := rawSession(t, ev)
			defer closeFn()
			send(t, fe, tt.first...)
			var got []pgproto3.BackendMessage
			if tt.then != nil {
				got = until[*pgproto3.CopyInResponse](t, fe)
				if _, ok := got[len(got)-1].(*pgproto3.CopyInResponse); !ok {
					if e := errorIn(got); !tt.fatal || e == nil || e.Code != tt.code {
						t.Fatalf("no CopyInResponse: %+v", got)
					}
					return
				}
				send(t, fe, tt.then...)
			}
			got = until[*pgproto3.ReadyForQuery](t, fe)
			e := errorIn(got)
			switch {
			case tt.code == "" && e != nil:
				t.Fatalf("got %+v", got)
			case tt.code != "" && (e == nil || e.Code != tt.code):
				t.Fatalf("got %s; want %s", describe(got), tt.code)
			case tt.fatal && e.Severity != "FATAL":
				t.Fatalf("got %+v; want the session ended", got)
			case tt.fatal:
				return
			}
			for range tt.extra {
				if got := until[*pgproto3.ReadyForQuery](t, fe); len(got) != 1 {
					t.Fatalf("a later Sync: %+v", got)
				}
			}
			// In step: the next query gets its own answer, on both sides.
			send(t, fe, &pgproto3.Query{String: "SELECT 'in step'"})
			got = until[*pgproto3.ReadyForQuery](t, fe)
			if len(got) < 3 || errorIn(got) != nil {
				t.Fatalf("after the COPY: %+v", got)
			}
			if dr, ok := got[1].(*pgproto3.DataRow); !ok || string(dr.Values[0]) != "in step" {
				t.Fatalf("after the COPY: %+v", got)
			}
		})
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n-before != tt.rows {
			t.Fatalf("%s: %d rows stored, want %d", tt.name, n-before, tt.rows)
		}
		before = n
	}
	if op := ev.g.Op(t, copyText); op.Class.Kind.String() != "write" || !op.Class.CopyIn {
		t.Fatalf("classified %+v", op.Class)
	}
}

// TestCopyInExtendedRefused: a COPY the guard refuses fails on both sides,
// and the data the client sends behind it (it had not seen the refusal
// yet) is dropped, not stored.
func TestCopyInExtendedRefused(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "cr_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (a int)"); err != nil {
		t.Fatal(err)
	}
	ev.g.SetRule(enginetest.DenyIf("COPY " + tbl))
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	send(t, fe, &pgproto3.Parse{Query: "COPY " + tbl + " FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 'in step'"})
	got := until[*pgproto3.ReadyForQuery](t, fe)
	if e := errorIn(got); e == nil || e.Code != "42501" {
		t.Fatalf("got %+v; want the refusal", got)
	}
	got = until[*pgproto3.ReadyForQuery](t, fe) // the second Sync
	if errorIn(got) != nil {
		t.Fatalf("second Sync: %+v", got)
	}
	got = until[*pgproto3.ReadyForQuery](t, fe)
	if len(got) < 3 || !strings.Contains(string(got[1].(*pgproto3.DataRow).Values[0]), "in step") {
		t.Fatalf("after the refusal: %+v", got)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows stored (%v); want none", n, err)
	}
}
