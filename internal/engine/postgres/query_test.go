package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
)

func TestQueryAndResults(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "t_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+tbl+" VALUES (1,'a'),(2,'b')"); err != nil {
		t.Fatal(err)
	}
	// extended protocol with parameters
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM "+tbl+" WHERE id = $1", 2).Scan(&v); err != nil || v != "b" {
		t.Fatalf("got %q, %v", v, err)
	}
	// simple protocol
	rows, err := c.Query(ctx, "SELECT id FROM "+tbl+" ORDER BY id", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(ids) != 2 {
		t.Fatalf("got %v, %v", ids, err)
	}
	ops := ev.rec.OfType("operation")
	if len(ops) < 4 {
		t.Fatalf("recorded %d operations, want >= 4", len(ops))
	}
	var sawParam bool
	for _, e := range ops {
		d := e.Data.(*recording.OperationData)
		if strings.Contains(d.Text, "$1") && d.Params == 1 {
			sawParam = true
		}
	}
	if !sawParam {
		t.Fatal("the parameterised SELECT was not recorded with its parameter")
	}
	waitFor(t, func() bool { return len(ev.rec.OfType("operation.outcome")) >= 4 })
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for range 500 {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

func TestDenyAbortsUpstreamTransaction(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("forbidden"))
	c := ev.connect(t)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			if _, err := c.Exec(ctx, "BEGIN", mode); err != nil {
				t.Fatal(err)
			}
			_, err := c.Exec(ctx, "SELECT 'forbidden'", mode)
			if pe := pgErr(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "test policy") {
				t.Fatalf("got %s %s", pe.Code, pe.Message)
			}
			_, err = c.Exec(ctx, "SELECT 1", mode)
			if pe := pgErr(t, err); pe.Code != "25P02" {
				t.Fatalf("after a refusal inside BEGIN: got %s %s, want 25P02", pe.Code, pe.Message)
			}
			if _, err := c.Exec(ctx, "ROLLBACK", mode); err != nil {
				t.Fatal(err)
			}
			// outside a transaction the session goes on
			_, err = c.Exec(ctx, "SELECT 'forbidden'", mode)
			if pe := pgErr(t, err); pe.Code != "42501" {
				t.Fatalf("got %s", pe.Code)
			}
			var n int
			if err := c.QueryRow(ctx, "SELECT 3", mode).Scan(&n); err != nil || n != 3 {
				t.Fatalf("after a refusal: %d %v", n, err)
			}
		})
	}
	var denied int
	for _, e := range ev.rec.OfType("operation") {
		if e.Data.(*recording.OperationData).Decision == "deny" {
			denied++
		}
	}
	if denied != 4 {
		t.Fatalf("recorded %d refusals, want 4", denied)
	}
}

func TestRecordingFailureRefuses(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	ev.rec.SetFail(true)
	_, err := c.Exec(ctx, "CREATE TEMP TABLE x (a int)", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(t, err); pe.Code != "58000" {
		t.Fatalf("got %s %s", pe.Code, pe.Message)
	}
	ev.rec.SetFail(false)
	// the write never ran
	_, err = c.Exec(ctx, "SELECT * FROM x")
	if pe := pgErr(t, err); pe.Code != "42P01" {
		t.Fatalf("got %s: the refused statement ran", pe.Code)
	}
}

func TestHold(t *testing.T) {
	t.Parallel()
	release := make(chan guard.Verdict, 1)
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.HoldIf("held", release))
	ctx := context.Background()

	t.Run("then allow", func(t *testing.T) {
		c := ev.connect(t)
		done := make(chan error, 1)
		go func() {
			var s string
			err := c.QueryRow(ctx, "SELECT 'held'").Scan(&s)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("the held operation ran before approval: %v", err)
		default:
		}
		release <- enginetest.Allow()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("then cancel", func(t *testing.T) {
		c := ev.connect(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(ctx, "SELECT 'held'", pgx.QueryExecModeSimpleProtocol)
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if err := c.PgConn().CancelRequest(ctx); err != nil { // what psql's Ctrl+C sends
			t.Fatal(err)
		}
		if pe := pgErr(t, <-done); pe.Code != "57014" {
			t.Fatalf("got %s %s, want 57014", pe.Code, pe.Message)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
			t.Fatalf("after the cancel: %d %v", n, err)
		}
	})
	t.Run("then disconnect", func(t *testing.T) {
		c := ev.connect(t)
		go c.Exec(ctx, "SELECT 'held'", pgx.QueryExecModeSimpleProtocol)
		time.Sleep(100 * time.Millisecond)
		c.PgConn().Conn().Close()
		waitFor(t, func() bool { return ev.e.activeSessions() == 0 })
	})
}

func TestCancelRunningQuery(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("the cancel did not reach the upstream")
	}
	// pgx closes a connection whose query was cancelled by context; the
	// upstream backend must be free: a new session works.
	c2 := ev.connect(t)
	if _, err := c2.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}
