package postgres

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A client that goes away while the gateway waits (a hold, a write's
// durability) must be noticed at once: the operation is withdrawn and
// recorded, and Shutdown does not wait for it. Three ways to go:
//
//   - context: pgx's context ends; it sends a CancelRequest, then closes
//     its socket. Either may withdraw the wait first.
//   - socket: pgx's socket is closed under it; its read fails, and pgx
//     still sends a CancelRequest for the session as it gives up (pgconn's
//     asyncClose), which may reach the gateway before the end of the
//     socket does: either may withdraw the wait first.
//   - vanish: the socket closes and nothing follows (a killed process, a
//     lost network): only the disconnect can withdraw the wait.
func TestVanishedClientWithdrawsWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sql   string
		tweak func(*env)
	}{
		{"hold", "SELECT 'held'", func(ev *env) { ev.g.SetRule(enginetest.HoldIf("held", make(chan guard.Verdict))) }},
		{"durability", "CREATE TEMP TABLE stalled (a int)", func(ev *env) {
			ev.rec.SetStall(func(e recording.Event) bool {
				d, ok := e.Data.(*recording.OperationData)
				return ok && d.Text == "CREATE TEMP TABLE stalled (a int)" && d.Decision == "allow"
			})
		}},
	}
	for _, tt := range tests {
		for _, how := range []string{"context", "socket", "vanish"} {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				ev := newEnv(t, nil)
				tt.tweak(ev)
				c := ev.connect(t)
				decided := func() bool { return len(ev.g.OpsOf(tt.sql)) == 1 }
				if how == "vanish" {
					vanish(t, c, tt.sql, decided)
				} else {
					leave(t, c, tt.sql, how, decided)
				}
				waitFor(t, func() bool { return ev.e.activeSessions() == 0 })
				if !withdrawn(ev, tt.sql, how) {
					t.Fatal("the withdrawal was not recorded")
				}
				sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
				defer scancel()
				if err := ev.e.Shutdown(sctx); err != nil {
					t.Fatalf("Shutdown waited for the withdrawn operation: %v", err)
				}
			})
		}
	}
}

// leave runs sql with pgx and, once the gateway decided it, ends the
// context (how "context") or closes pgx's socket (how "socket").
func leave(t *testing.T, c *pgx.Conn, sql, how string, decided func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	waitFor(t, decided)
	if how == "context" {
		cancel()
	} else {
		c.PgConn().Conn().Close()
	}
	if err := <-done; err == nil {
		t.Fatal("the withdrawn operation succeeded")
	}
}

// vanish sends sql on c's connection, taken from pgx so that nothing but
// the connection's end follows, and closes it once the gateway decided it.
func vanish(t *testing.T, c *pgx.Conn, sql string, decided func() bool) {
	t.Helper()
	hc, err := c.PgConn().Hijack()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := (&pgproto3.Query{String: sql}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, decided)
	hc.Conn.Close()
}

// withdrawn reports whether sql's withdrawal is recorded with a code how
// the client left allows: only a vanished client cannot have cancelled.
func withdrawn(ev *env, sql, how string) bool {
	for _, e := range ev.rec.OfType("operation") {
		d := e.Data.(*recording.OperationData)
		if d.Text != sql || d.Decision != "deny" {
			continue
		}
		if d.Code == verdictClientGone || (how != "vanish" && d.Code == verdictCanceled) {
			return true
		}
	}
	return false
}

// A client that writes without reading while the gateway waits (here for
// its read of the session state, queued behind a large result) must not
// deadlock the session: the gateway keeps reading it into a bounded buffer.
//
// Not parallel: it holds tens of MB, which TestLargeResultStreams would
// count as its own.
func TestNonReadingClientDoesNotDeadlock(t *testing.T) {
	ev := newEnv(t, func(o *Options) { o.AllowPlaintextLoopback = true })
	ctx := context.Background()
	c, err := pgx.Connect(ctx, ev.url("pg-test", "disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Leave no garbage for the parallel tests that measure the heap.
		c.Close(ctx)
		waitFor(t, func() bool { return ev.e.activeSessions() == 0 })
		runtime.GC()
	}()
	nc := c.PgConn().Conn()
	var buf []byte
	for _, m := range []pgproto3.FrontendMessage{
		// 20 MB of rows, then an operation that makes the gateway read the
		// session state: its answer queues behind the rows.
		&pgproto3.Query{String: "SELECT repeat('x', 1000) FROM generate_series(1, 20000); SELECT pg_catalog.set_config('application_name', 'x', false)"},
		&pgproto3.Query{String: "SELECT 2"}, // decided only once the state is in
		&pgproto3.Parse{Query: "SELECT 3 /* " + strings.Repeat("y", 16<<20) + " */"},
		&pgproto3.Sync{},
	} {
		buf, _ = m.Encode(buf)
	}
	wrote := make(chan error, 1)
	go func() { _, err := nc.Write(buf); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the gateway stopped reading a client that was writing: deadlock")
	}
	fe := pgproto3.NewFrontend(nc, nil)
	for ready := 0; ready < 3; {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			ready++
		case *pgproto3.ErrorResponse:
			t.Fatalf("%s %s", m.Code, m.Message)
		}
	}
}
