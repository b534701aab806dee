package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestCopyInExtendedFailsBeforeReading attacks the Sync held back behind
// a COPY's Execute: a COPY that fails after its CopyInResponse but before
// it reads any message (COPY into a view, COPY FREEZE of an old table)
// leaves the upstream skipping to the next Sync. Had that Sync reached the
// upstream, it would answer it, and that extra ReadyForQuery would end the
// client's next Query early, its rows matched to the Query after it (that
// one's masking plan and recording). The gateway never sends it, so the
// upstream answers only the Sync after the data, and the session stays in
// step: each Query gets its own rows.
func TestCopyInExtendedFailsBeforeReading(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl, view := "cg_"+randHex(3), "cgv_"+randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (a int); CREATE VIEW "+view+" AS SELECT 1 AS a"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, copy string }{
		{"view", "COPY " + view + " FROM STDIN"},
		{"freeze", "COPY " + tbl + " FROM STDIN (FREEZE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe, closeFn := rawSession(t, ev)
			defer closeFn()
			send(t, fe, &pgproto3.Parse{Query: tt.copy}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
				&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
				&pgproto3.Query{String: "SELECT 'first'"}, &pgproto3.Query{String: "SELECT 'second'"})
			rows, code := readyRows(t, fe, 3) // the Sync's and the two Queries'
			if code == "" || len(rows) != 2 || rows[0] != "first" || rows[1] != "second" {
				t.Fatalf("rows %q, error %q; want first, second after the COPY's error", rows, code)
			}
		})
	}
}

// TestQuerySkippedAfterExtendedError: after an error in the extended
// protocol PostgreSQL skips every message up to Sync, a simple Query
// included. Were the gateway to wait for that Query's answer, the Sync's
// ReadyForQuery would end it, and each later Query would get the answer
// of the one after it: its rows through another operation's masking plan,
// its outcome recorded against another operation.
func TestQuerySkippedAfterExtendedError(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	send(t, fe, &pgproto3.Parse{Query: "not sql at all"}, &pgproto3.Query{String: "SELECT 'skipped'"}, &pgproto3.Sync{})
	if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e == nil || e.Code != "42601" {
		t.Fatalf("want the Parse's 42601, got %+v", e)
	}
	send(t, fe, &pgproto3.Query{String: "SELECT 1/0"})
	if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e == nil || e.Code != "22012" {
		t.Fatalf("want 22012, got %+v", e)
	}
	send(t, fe, &pgproto3.Query{String: "SELECT 'mine'"})
	got := until[*pgproto3.ReadyForQuery](t, fe)
	if len(got) != 4 || string(got[1].(*pgproto3.DataRow).Values[0]) != "mine" {
		t.Fatalf("got %+v", got)
	}
	outs := ev.g.Outcomes()
	want := []struct{ code, tag string }{{"42601", ""}, {"22012", ""}, {"", "SELECT 1"}}
	if len(outs) != len(want) {
		t.Fatalf("outcomes %+v", outs)
	}
	for i, w := range want {
		if outs[i].ErrorCode != w.code || outs[i].CommandTag != w.tag {
			t.Fatalf("outcome %d of %q: %+v; want %+v", i, ev.g.Texts(), outs[i], w)
		}
	}
}

// TestCopyInExtendedSecondCopy: a client that ends one COPY's data and
// sends a second COPY's Execute before the first has started, then its
// Sync once the first started. The Sync belongs to the second COPY: the
// first one's start must not release it. That one never starts, so the
// upstream gets the Sync and answers it.
func TestCopyInExtendedSecondCopy(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	tbl := "cs_" + randHex(3)
	if _, err := c.Exec(context.Background(), "CREATE TABLE "+tbl+" (a int)"); err != nil {
		t.Fatal(err)
	}
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	send(t, fe, &pgproto3.Parse{Query: "COPY " + tbl + " FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{},
		// Holds the second COPY back, so that the client sees the first
		// start before it sends the Sync.
		&pgproto3.Parse{Query: "SELECT pg_sleep(0.2)"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "COPY cs_missing_table FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{})
	until[*pgproto3.CopyInResponse](t, fe)
	send(t, fe, &pgproto3.Sync{}, &pgproto3.Query{String: "SELECT 'first'"}, &pgproto3.Query{String: "SELECT 'second'"})
	rows, code := readyRows(t, fe, 3)
	if code != "42P01" || !slices.Equal(rows, []string{"", "first", "second"}) {
		t.Fatalf("rows %q, error %q; want pg_sleep's, first, second after 42P01", rows, code)
	}
	outcomesEnd(t, ev, "COPY 1", "SELECT 1", "42P01", "SELECT 1", "SELECT 1")
}

// readyRows reads n ReadyForQuery answers and returns the rows' first
// values and the last error code; the end of the session fails the test.
func readyRows(t *testing.T, fe *pgproto3.Frontend, n int) (rows []string, code string) {
	t.Helper()
	for range n {
		got := until[*pgproto3.ReadyForQuery](t, fe)
		if _, ok := got[len(got)-1].(*pgproto3.ReadyForQuery); !ok {
			t.Fatalf("the session ended: %s", describe(got))
		}
		for _, m := range got {
			switch m := m.(type) {
			case *pgproto3.DataRow:
				rows = append(rows, string(m.Values[0]))
			case *pgproto3.ErrorResponse:
				code = m.Code
			}
		}
	}
	return rows, code
}

// TestCopyInExtendedRefusedThenStarted: a COPY that never starts, its
// data ended, then a second COPY with a Sync behind it, sent before the
// gateway saw the first fail. The first one's Syncs are answered; the
// second one's Sync is held back and dropped once that COPY starts.
func TestCopyInExtendedRefusedThenStarted(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	tbl := "cn_" + randHex(3)
	if _, err := c.Exec(context.Background(), "CREATE TABLE "+tbl+" (a int)"); err != nil {
		t.Fatal(err)
	}
	fe, closeFn := rawSession(t, ev)
	defer closeFn()
	send(t, fe, &pgproto3.Parse{Query: "COPY cn_missing_table FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.CopyDone{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "COPY " + tbl + " FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if e := errorIn(until[*pgproto3.ReadyForQuery](t, fe)); e == nil || e.Code != "42P01" {
		t.Fatalf("want 42P01, got %+v", e)
	}
	if got := until[*pgproto3.CopyInResponse](t, fe); len(got) == 0 {
		t.Fatal("the session ended")
	}
	send(t, fe, &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT 1/0"}, &pgproto3.Query{String: "SELECT 'first'"}, &pgproto3.Query{String: "SELECT 'second'"})
	rows, _ := readyRows(t, fe, 4)
	if len(rows) != 2 || rows[0] != "first" || rows[1] != "second" {
		t.Fatalf("rows %q", rows)
	}
	outcomesEnd(t, ev, "COPY 1", "22012", "SELECT 1", "SELECT 1")
}

// outcomesEnd checks that the last operations each got their own outcome:
// an error code, or a command tag.
func outcomesEnd(t *testing.T, ev *env, want ...string) {
	t.Helper()
	outs, texts := ev.g.Outcomes(), ev.g.Texts()
	if len(outs) != len(texts) || len(outs) < len(want) {
		t.Fatalf("%d outcomes for %d operations %q: %+v", len(outs), len(texts), texts, outs)
	}
	for i, w := range want {
		o := outs[len(outs)-len(want)+i]
		if o.ErrorCode != w && o.CommandTag != w {
			t.Fatalf("outcomes of %q: %+v; want %q at %d from the end", texts, outs, w, len(want)-i)
		}
	}
}

// describe spells out messages for a failure.
func describe(msgs []pgproto3.BackendMessage) string {
	var b []byte
	for _, m := range msgs {
		b = fmt.Appendf(b, "%T%+v ", m, m)
	}
	return string(b)
}
