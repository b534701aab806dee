package postgres

import (
	"context"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Anything but a read is decided at Bind (before the upstream binds and
// plans it) and run by its portal's first Execute. Each such operation ends
// exactly once, with an outcome, however its portal ends: executed, bound
// and never executed (Sync, Close), failing at Bind, or bound twice in one
// batch.
func TestBindDecidedOperationEndsOnce(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ctx := context.Background()
	tbl, dom := "bd_"+randHex(3), "posint_"+randHex(3)
	for _, q := range []string{"CREATE DOMAIN " + dom + " AS int CHECK (VALUE > 0)", "CREATE TABLE " + tbl + " (x " + dom + ")"} {
		if err := adminExec2(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = adminExec2("DROP TABLE " + tbl + "; DROP DOMAIN " + dom) })
	fe, done := rawSessionTo(t, ev.url("pg-test", "require"))
	defer done()
	insert := &pgproto3.Parse{Name: "ins", Query: "INSERT INTO " + tbl + " VALUES ($1)"}
	send(t, fe, insert, &pgproto3.Sync{})
	until[*pgproto3.ReadyForQuery](t, fe)
	bind := func(portal, v string) *pgproto3.Bind {
		return &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: "ins", Parameters: [][]byte{[]byte(v)}}
	}
	for _, tc := range []struct {
		name string
		msgs []pgproto3.FrontendMessage
		tags []string // the outcomes' command tags, in order
		errs []string // and error codes
	}{
		{"executed", []pgproto3.FrontendMessage{bind("", "1"), &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			[]string{"INSERT 0 1"}, []string{""}},
		{"never executed", []pgproto3.FrontendMessage{bind("", "2"), &pgproto3.Sync{}}, []string{""}, []string{""}},
		{"closed", []pgproto3.FrontendMessage{bind("p", "3"), &pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Sync{}}, []string{""}, []string{""}},
		{"fails at Bind", []pgproto3.FrontendMessage{bind("", "-1"), &pgproto3.Execute{}, &pgproto3.Sync{}}, []string{""}, []string{"23514"}},
		{"bound twice", []pgproto3.FrontendMessage{bind("", "4"), &pgproto3.Execute{}, bind("", "5"), &pgproto3.Execute{}, &pgproto3.Sync{}},
			[]string{"INSERT 0 1", "INSERT 0 1"}, []string{"", ""}},
		{"second bound fails", []pgproto3.FrontendMessage{bind("", "6"), &pgproto3.Execute{}, bind("", "-2"), &pgproto3.Execute{}, &pgproto3.Sync{}},
			[]string{"INSERT 0 1", ""}, []string{"", "23514"}},
	} {
		ops, outs := len(ev.g.Ops()), len(ev.g.Outcomes())
		send(t, fe, tc.msgs...)
		until[*pgproto3.ReadyForQuery](t, fe)
		if n := len(ev.g.Ops()) - ops; n != len(tc.tags) {
			t.Errorf("%s: %d operations decided, want %d", tc.name, n, len(tc.tags))
		}
		got := ev.g.Outcomes()[outs:]
		if len(got) != len(tc.tags) {
			t.Errorf("%s: %d outcomes, want %d: %+v", tc.name, len(got), len(tc.tags), got)
			continue
		}
		for i, o := range got {
			if o.CommandTag != tc.tags[i] || o.ErrorCode != tc.errs[i] {
				t.Errorf("%s: outcome %d is %q/%q, want %q/%q", tc.name, i, o.CommandTag, o.ErrorCode, tc.tags[i], tc.errs[i])
			}
		}
	}
	// Only the executed values were inserted (binding alone runs nothing),
	// and 6 rolled back with the Bind that failed in its batch.
	var got []int32
	rows, err := ev.connect(t).Query(ctx, "SELECT x FROM "+tbl+" ORDER BY x")
	if err == nil {
		for rows.Next() {
			var x int32
			_ = rows.Scan(&x)
			got = append(got, x)
		}
		err = rows.Err()
	}
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 4 || got[2] != 5 {
		t.Errorf("rows %v (%v), want [1 4 5]", got, err)
	}
}

// A write held for approval is held at its Bind: nothing of it reaches the
// upstream (not even the Bind, which would convert and plan) until the
// verdict, and the Describe and Execute behind it wait in order.
func TestBindHeldUntilApproved(t *testing.T) {
	t.Parallel()
	release := make(chan guard.Verdict, 1)
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.HoldIf("held_", release))
	tbl := "held_" + randHex(3)
	if err := adminExec2("CREATE TABLE " + tbl + " (x int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec2("DROP TABLE " + tbl) })
	ctx := context.Background()
	c := ev.connect(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1)", 7)
		done <- err
	}()
	count := func() (n int) {
		up, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable")
		if err == nil {
			err = up.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n)
			up.Close(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, func() bool { return len(ev.g.OpsOf("INSERT INTO "+tbl+" VALUES ($1)")) == 1 })
	select {
	case err := <-done:
		t.Fatalf("the held write returned before approval: %v", err)
	default:
	}
	if n := count(); n != 0 {
		t.Fatalf("%d rows before approval", n)
	}
	release <- enginetest.Allow()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows after approval, want 1", n)
	}
}
