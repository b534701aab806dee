package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/recording"
)

// copyStep is what a client sends, then how far it reads: up to
// CopyInResponse (ready 0) or that many ReadyForQuery.
type copyStep struct {
	send  []pgproto3.FrontendMessage
	ready int
}

// libpqCopy is what libpq's PQexecParams sends for a COPY FROM STDIN
// before it reads anything, with extra messages behind its Sync.
func libpqCopy(text string, after ...pgproto3.FrontendMessage) []pgproto3.FrontendMessage {
	return append([]pgproto3.FrontendMessage{&pgproto3.Parse{Query: text}, &pgproto3.Bind{},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}}, after...)
}

// transcript runs the steps and spells out every answer: message types,
// error severities and codes, command tags, row values, transaction status.
// It stops where the connection ends.
func transcript(t *testing.T, fe *pgproto3.Frontend, steps []copyStep) []string {
	t.Helper()
	var out []string
	for _, s := range steps {
		send(t, fe, s.send...)
		for ready := 0; ready < max(s.ready, 1); {
			m, err := fe.Receive()
			if err != nil {
				return append(out, "EOF")
			}
			out = append(out, spell(m))
			switch m.(type) {
			case *pgproto3.ReadyForQuery:
				ready++
			case *pgproto3.CopyInResponse:
				if s.ready == 0 {
					ready++
				}
			}
		}
	}
	return out
}

func spell(m pgproto3.BackendMessage) string {
	name := strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
	switch m := m.(type) {
	case *pgproto3.ErrorResponse:
		return name + " " + m.Severity + " " + m.Code
	case *pgproto3.CommandComplete:
		return name + " " + string(m.CommandTag)
	case *pgproto3.DataRow:
		return fmt.Sprintf("%s %q", name, m.Values)
	case *pgproto3.ReadyForQuery:
		return name + " " + string(m.TxStatus)
	}
	return name
}

// TestCopyInExtendedLikePostgres drives COPY FROM STDIN as libpq's
// PQexecParams does (Parse, Bind, Describe, Execute, Sync, and only then
// a read) through the gateway and straight to PostgreSQL, and demands the
// same answers, message for message: a COPY that fails in its data or on
// the client's CopyFail, or that never starts, is an error the session
// survives, and the next statement runs in the same session. The gateway
// holds back the Syncs behind the Execute until the upstream answered it:
// dropped when the COPY starts (PostgreSQL ignores them then), sent when
// it does not (PostgreSQL answers each), and whatever the client sent
// after them waits, so a pipeline behind a COPY that never starts runs as
// it would on PostgreSQL.
func TestCopyInExtendedLikePostgres(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	low := "cs_copy_" + randHex(3)
	if err := adminExec2("CREATE ROLE " + low + " LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP ROLE IF EXISTS " + low) })
	ev.res["pg-copy-low"] = &config.Resource{Name: "pg-copy-low", Type: "postgres", Address: "127.0.0.1:5432", Database: testDB, Username: low}

	sync, done := &pgproto3.Sync{}, &pgproto3.CopyDone{}
	row := func(v string) *pgproto3.CopyData { return &pgproto3.CopyData{Data: []byte(v + "\n")} }
	pipeSelect := []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT 'piped'"}, &pgproto3.Bind{}, &pgproto3.Execute{}, sync}
	const missing = "COPY cs_copy_missing_table FROM STDIN"
	tests := []struct {
		name string
		low  bool // as a role that may not insert into the table
		// steps, with %s for the table; a Query of "SELECT 'next'"
		// follows them in the same session.
		steps func(tbl string) []copyStep
		code  string // the error PostgreSQL answers with, if any
		rows  int    // rows stored
	}{
		{"good data", false, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY " + tbl + " FROM STDIN"), 0}, {[]pgproto3.FrontendMessage{row("1"), row("2"), done, sync}, 1}}
		}, "", 2},
		{"bad data", false, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY " + tbl + " FROM STDIN"), 0}, {[]pgproto3.FrontendMessage{row("1"), row("x"), row("3"), done, sync}, 1}}
		}, "22P02", 0},
		{"CopyFail", false, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY " + tbl + " FROM STDIN"), 0}, {[]pgproto3.FrontendMessage{row("1"), &pgproto3.CopyFail{Message: "the client gave up"}, sync}, 1}}
		}, "57014", 0},
		{"no such table", false, func(string) []copyStep {
			return []copyStep{{libpqCopy(missing), 1}}
		}, "42P01", 0},
		{"permission denied", true, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY " + tbl + " FROM STDIN"), 1}}
		}, "42501", 0},
		{"two Syncs, the COPY starts", false, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY "+tbl+" FROM STDIN", sync), 0}, {[]pgproto3.FrontendMessage{row("1"), done, sync}, 1}}
		}, "", 1},
		{"two Syncs, bad data", false, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY "+tbl+" FROM STDIN", sync), 0}, {[]pgproto3.FrontendMessage{row("x"), done, sync}, 1}}
		}, "22P02", 0},
		{"two Syncs, the COPY never starts", false, func(string) []copyStep {
			return []copyStep{{libpqCopy(missing, sync), 2}}
		}, "42P01", 0},
		{"a pipeline behind a COPY that never starts", false, func(string) []copyStep {
			return []copyStep{{libpqCopy(missing, pipeSelect...), 2}}
		}, "42P01", 0},
		{"a pipeline behind a COPY refused by the server", true, func(tbl string) []copyStep {
			return []copyStep{{libpqCopy("COPY "+tbl+" FROM STDIN", pipeSelect...), 2}}
		}, "42501", 0},
		{"a COPY in a transaction fails, the transaction is aborted", false, func(tbl string) []copyStep {
			return []copyStep{{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "BEGIN"}}, 1},
				{libpqCopy("COPY " + tbl + " FROM STDIN"), 0}, {[]pgproto3.FrontendMessage{row("x"), done, sync}, 1},
				{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "ROLLBACK"}}, 1}}
		}, "22P02", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [2][]string
			for i, side := range []string{"postgres", "gateway"} {
				tbl := fmt.Sprintf("cl_%s_%d", randHex(3), i)
				if err := adminExec2("CREATE TABLE " + tbl + " (a int)"); err != nil {
					t.Fatal(err)
				}
				url, user := ev.url("pg-test", "require"), "postgres"
				if tt.low {
					url, user = ev.url("pg-copy-low", "require"), low
				}
				if side == "postgres" {
					url = fmt.Sprintf("postgres://%s@127.0.0.1:5432/%s?sslmode=disable", user, testDB)
				}
				fe, closeFn := rawSessionTo(t, url)
				steps := append(tt.steps(tbl), copyStep{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 'next'"}}, 1})
				got[i] = transcript(t, fe, steps)
				closeFn()
				if n := countRows(t, tbl); n != tt.rows {
					t.Errorf("%s: %d rows stored, want %d", side, n, tt.rows)
				}
			}
			if !slices.Equal(got[0], got[1]) {
				t.Fatalf("PostgreSQL answered\n  %q\nthe gateway\n  %q", got[0], got[1])
			}
			want := []string{`DataRow ["next"]`, "CommandComplete SELECT 1", "ReadyForQuery I"}
			if tail := got[1][max(len(got[1])-3, 0):]; !slices.Equal(tail, want) {
				t.Fatalf("the session did not go on: %q", got[1])
			}
			if e := "ErrorResponse ERROR " + tt.code; tt.code != "" && !slices.Contains(got[1], e) {
				t.Fatalf("no %s: %q", e, got[1])
			}
		})
	}
}

// countRows counts a table's rows straight on PostgreSQL.
func countRows(t *testing.T, tbl string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCopyInExtendedFailureRecorded: a libpq COPY whose data fails is a
// write the guard decided before it ran, recorded as such, and its outcome
// (the error, rolled back) is recorded before the client hears of it.
func TestCopyInExtendedFailureRecorded(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	tbl := "cr_" + randHex(3)
	if err := adminExec2("CREATE TABLE " + tbl + " (a int)"); err != nil {
		t.Fatal(err)
	}
	text := "COPY " + tbl + " FROM STDIN"
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	got := transcript(t, fe, []copyStep{{libpqCopy(text), 0},
		{[]pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("1\nx\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{}}, 1},
		{[]pgproto3.FrontendMessage{&pgproto3.Query{String: "SELECT 1"}}, 1}})
	if !slices.Contains(got, "ErrorResponse ERROR 22P02") || got[len(got)-1] != "ReadyForQuery I" {
		t.Fatalf("got %q", got)
	}
	if op := ev.g.Op(t, text); op.Class.Kind.String() != "write" || !op.Class.CopyIn {
		t.Fatalf("decided as %+v", op.Class)
	}
	var decided bool
	for _, e := range ev.rec.OfType("operation") {
		d := e.Data.(*recording.OperationData)
		decided = decided || (d.Text == text && d.Decision == "allow" && d.Kind == "write")
	}
	if !decided {
		t.Fatal("the COPY's decision was not recorded")
	}
	outs := ev.rec.OfType("operation.outcome")
	if len(outs) < 2 {
		t.Fatalf("%d outcomes recorded", len(outs))
	}
	if o := outs[len(outs)-2].Data.(*recording.OutcomeData); o.ErrorCode != "22P02" || !o.RolledBack {
		t.Fatalf("the COPY's outcome: %+v", o)
	}
	outcomesEnd(t, ev, "22P02", "SELECT 1")
	if n := countRows(t, tbl); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
}

// TestCopyInExtendedPipelineBehindStartedCopy attacks the held Sync: a
// statement pipelined behind a COPY that starts would reach the upstream
// in COPY mode, which ends the COPY with an error and skips the statement,
// so the queue would no longer match. The gateway waits for the COPY's
// fate before it reads on; once it started, anything but COPY data ends
// the session, and nothing behind the COPY is decided, runs or is stored.
func TestCopyInExtendedPipelineBehindStartedCopy(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	tbl := "cp_" + randHex(3)
	if err := adminExec2("CREATE TABLE " + tbl + " (a int)"); err != nil {
		t.Fatal(err)
	}
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	insert := "INSERT INTO " + tbl + " VALUES (7)"
	got := transcript(t, fe, []copyStep{{libpqCopy("COPY "+tbl+" FROM STDIN",
		&pgproto3.Parse{Query: insert}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}), 1}})
	if !slices.Contains(got, "ErrorResponse FATAL 08P01") || got[len(got)-1] != "EOF" {
		t.Fatalf("got %q; want the session ended with 08P01", got)
	}
	if ops := ev.g.OpsOf(insert); len(ops) != 0 {
		t.Fatalf("the statement behind the COPY was decided: %+v", ops)
	}
	if n := countRows(t, tbl); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
}

// TestCopyInLibpq runs the real libpq: testdata/copy_libpq.c sends COPY
// FROM STDIN with PQexecParams (good data, bad data, PQputCopyEnd with an
// error message, a missing table), each followed by SELECT 1 on the same
// connection, through the gateway and straight to PostgreSQL. Both must
// answer alike, and the connection must survive each failed COPY.
func TestCopyInLibpq(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	bin := filepath.Join(t.TempDir(), "copy_libpq")
	inc, err := exec.Command("pg_config", "--includedir").Output()
	if err != nil {
		t.Fatalf("pg_config: %v", err)
	}
	lib, err := exec.Command("pg_config", "--libdir").Output()
	if err != nil {
		t.Fatalf("pg_config: %v", err)
	}
	cc := exec.Command("gcc", "-o", bin, "-I"+strings.TrimSpace(string(inc)), filepath.Join("testdata", "copy_libpq.c"),
		"-L"+strings.TrimSpace(string(lib)), "-lpq")
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/copy_libpq.c: %v: %s", err, out)
	}
	host, port, _ := net.SplitHostPort(ev.addr)
	var got [2]string
	for i, conninfo := range []string{
		"host=127.0.0.1 port=5432 user=postgres sslmode=disable dbname=" + testDB,
		"host=" + host + " port=" + port + " dbname=pg-test user=alice sslmode=require password=" + enginetest.Token,
	} {
		tbl := fmt.Sprintf("cl_%s_%d", randHex(3), i)
		if err := adminExec2("CREATE TABLE " + tbl + " (a int)"); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conninfo, tbl)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("copy_libpq: %v: %s", err, out)
		}
		got[i] = string(out)
		if n := countRows(t, tbl); n != 2 {
			t.Errorf("%d rows stored, want the good COPY's 2", n)
		}
	}
	if got[0] != got[1] {
		t.Fatalf("PostgreSQL:\n%s\nthe gateway:\n%s", got[0], got[1])
	}
	for _, want := range []string{"good PGRES_COMMAND_OK - COPY 2", "bad PGRES_FATAL_ERROR 22P02", "bad then PGRES_TUPLES_OK 1",
		"copyfail PGRES_FATAL_ERROR 57014", "copyfail then PGRES_TUPLES_OK 1", "missing PGRES_FATAL_ERROR 42P01",
		"missing then PGRES_TUPLES_OK 1", "connection ok"} {
		if !strings.Contains(got[1], want) {
			t.Fatalf("no %q in:\n%s", want, got[1])
		}
	}
}
