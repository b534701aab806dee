package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
)

// cancelVia sends a CancelRequest to the gateway at addr and returns once
// the gateway closed the cancel connection; unlike sendCancel it may run
// outside the test's goroutine.
func cancelVia(addr string, pid uint32, secret []byte) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	msg, _ := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if _, err := nc.Write(msg); err != nil {
		return err
	}
	if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
		return fmt.Errorf("the cancel connection ended with %q, %v", b, err)
	}
	return nil
}

func is57014(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014"
}

// TestCancelHeldSparesNext attacks the cancel of a held operation: a
// client that sends its next statement as soon as the held one answers
// 57014 (not waiting for its cancel connection to close) must not have
// that statement cancelled by the gateway. The gateway withdrew the hold
// first and then sent its own cancel upstream, where nothing of the
// session ran but, by then, the client's next statement.
//
// With something of the session running upstream (an allowed statement
// pipelined before the held one), the cancel must still reach it, and the
// session go on.
func TestCancelHeldSparesNext(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		running bool // an allowed statement runs upstream during the hold
		tries   int
	}{
		{"nothing upstream", false, 30},
		{"a statement upstream", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ev.connect(t)
			pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
			for try := range tt.tries {
				// The marker is a string constant: it names no table the
				// next statement might touch.
				marker := fmt.Sprintf("held_%s_%d", randHex(3), try)
				waiting := make(chan struct{})
				ev.g.SetRule(func(s string) guard.Verdict {
					if !containsFold(s, marker) {
						return enginetest.Allow()
					}
					return guard.Verdict{Decision: guard.Hold, Code: "approval_pending", ReviewID: "r-" + marker,
						Wait: func(ctx context.Context) guard.Verdict {
							close(waiting)
							<-ctx.Done()
							return guard.Verdict{Code: "approval_wait_ended", Message: "the wait ended"}
						}}
				})
				held := make(chan []error, 1)
				go func() {
					if !tt.running {
						_, err := c.Exec(ctx, "SELECT '"+marker+"'", pgx.QueryExecModeSimpleProtocol)
						held <- []error{err}
						return
					}
					// Extended protocol, one Sync: the sleep is decided and
					// sent, then the held statement waits behind it.
					p := c.PgConn().StartPipeline(ctx)
					p.SendQueryParams("SELECT pg_sleep(30), 'run_"+marker+"'", nil, nil, nil, nil)
					p.SendQueryParams("SELECT '"+marker+"'", nil, nil, nil, nil)
					_ = p.Sync()
					var errs []error
					for range 2 {
						res, err := p.GetResults()
						if err != nil {
							errs = append(errs, err)
							break
						}
						if rr, ok := res.(*pgconn.ResultReader); ok {
							_, err = rr.Close()
						}
						errs = append(errs, err)
					}
					if err := p.Close(); err != nil {
						errs = append(errs, err)
					}
					held <- errs
				}()
				<-waiting
				if tt.running {
					waitFor(t, func() bool { return upstreamRunning(t, "run_"+marker) })
				}
				canceled := make(chan error, 1)
				go func() { canceled <- cancelVia(ev.addr, pid, secret) }()
				errs := <-held
				if !is57014(errs[0]) {
					t.Fatalf("try %d: the cancelled statement answered %v; want 57014", try, errs)
				}
				// At once, as a client that does not wait for its cancel
				// connection: this statement was not running when the
				// cancel was sent, so nothing may cancel it.
				if _, err := c.Exec(ctx, "SELECT pg_sleep(0.2), 'next'", pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatalf("try %d: the statement after the cancelled one failed: %v", try, err)
				}
				if err := <-canceled; err != nil {
					t.Fatal(err)
				}
				if upstreamRunning(t, "run_"+marker) {
					t.Fatalf("try %d: the statement running upstream outlived the cancel", try)
				}
			}
		})
	}
}

// TestCancelOnStateRead: a cancel that lands on the gateway's own read of
// the session state (sent after a statement that may change search_path or
// the role) is one PostgreSQL would have discarded on a direct connection,
// since nothing of the client's runs then. The gateway closed the whole
// session; it must read the state again and go on, deciding the next
// statement under the state the read returns: at once when nothing was
// sent behind the read (rereadNow), else at the next decision
// (awaitRefresh), here behind a prepared statement the client pipelined.
// When that decision is inside the client's open pipeline (an Execute
// after its Bind), a read there would end the client's implicit
// transaction: the operation is refused as cancelled (never decided under
// a state not read) and the state is read after the client's Sync.
//
// The cancel is timed with advisory locks: the statement holds lock k1
// until it commits, and the canceller waits for k1 before it signals the
// session's backend, so the signal arrives just after the statement ended,
// as the read runs or just after. Tries repeat until one landed on the
// read (the gateway then read the state twice).
func TestCancelOnStateRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		behind behind
	}{
		{"nothing behind the read", behindNothing},
		{"a prepare behind the read", behindPrepare},
		{"a read's Bind behind the read", behindRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cancelOnStateRead(t, tt.behind)
		})
	}
}

// behind is what the client pipelines behind the gateway's read.
type behind int

const (
	behindNothing behind = iota
	behindPrepare        // Parse, Describe, Sync
	behindRead           // Bind, Describe, Execute, Sync of a prepared read
)

func cancelOnStateRead(t *testing.T, bh behind) {
	ev := newEnv(t, nil)
	ctx := context.Background()
	c := ev.connect(t)
	var upPID int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&upPID); err != nil {
		t.Fatal(err)
	}
	admin := func() *pgx.Conn {
		a, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(context.Background()) })
		return a
	}
	gate, canceller, watch := admin(), admin(), admin()
	waiters := func(key int64) int {
		var n int
		if err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted", key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := c.PgConn().Prepare(ctx, "stale_read", "SELECT 2", nil); err != nil {
		t.Fatal(err)
	}
	k1, k2 := int64(rand.IntN(1<<30)), int64(rand.IntN(1<<30))
	const maxTries = 1000
	for try := range maxTries {
		path := fmt.Sprintf("p%d_%s", try, randHex(2))
		if _, err := gate.Exec(ctx, "SELECT pg_advisory_lock($1)", k2); err != nil {
			t.Fatal(err)
		}
		before, reads := ev.e.refreshes.Load(), len(ev.g.OpsOf("SELECT 2"))
		stmt := fmt.Sprintf("SELECT pg_advisory_xact_lock(%d), pg_advisory_xact_lock_shared(%d), pg_catalog.set_config('search_path', '%s', false)", k1, k2, path)
		ran := make(chan [2]error, 1) // the statement's error, the pipelined one's
		go func() {
			if bh == behindNothing {
				_, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
				ran <- [2]error{err}
				return
			}
			p := c.PgConn().StartPipeline(ctx)
			p.SendQueryParams(stmt, nil, nil, nil, nil)
			_ = p.Sync()
			if bh == behindPrepare {
				p.SendPrepare(fmt.Sprintf("behind_%d", try), "SELECT 1", nil)
			} else {
				p.SendQueryPrepared("stale_read", nil, nil, nil)
			}
			_ = p.Sync()
			var errs [2]error
			for i := 0; ; {
				res, err := p.GetResults()
				switch r := res.(type) {
				case *pgconn.ResultReader:
					_, err = r.Close()
				case *pgconn.PipelineSync:
					i++
				}
				if err != nil && i < 2 && errs[i] == nil {
					errs[i] = err
				}
				if res == nil || (err != nil && !is57014(err)) {
					break
				}
			}
			if err := p.Close(); err != nil && errs[1] == nil {
				errs[1] = err
			}
			ran <- errs
		}()
		waitFor(t, func() bool { return waiters(k2) == 1 })
		signalled := make(chan error, 1)
		go func() {
			_, err := canceller.Exec(ctx, "SELECT pg_advisory_lock($1), pg_cancel_backend($2), pg_advisory_unlock($1)", k1, upPID)
			signalled <- err
		}()
		waitFor(t, func() bool { return waiters(k1) == 1 })
		if _, err := gate.Exec(ctx, "SELECT pg_advisory_unlock($1)", k2); err != nil {
			t.Fatal(err)
		}
		errs := <-ran
		if err := <-signalled; err != nil {
			t.Fatal(err)
		}
		switch {
		case is57014(errs[0]):
			continue // the signal overtook the statement's end: it cancelled it, as it would directly
		case errs[0] != nil:
			t.Fatalf("try %d: %v", try, errs[0])
		case errs[1] != nil && !is57014(errs[1]):
			// 57014 behind the read: the signal landed on what the client
			// pipelined, as it may directly, or the gateway refused the
			// read's Execute (behindRead).
			t.Fatalf("try %d: what was pipelined behind the read: %v", try, errs[1])
		}
		for _, op := range ev.g.OpsOf("SELECT 2")[reads:] {
			if op.State.SearchPath != path {
				t.Fatalf("try %d: the pipelined read was decided under search_path %q, want %q", try, op.State.SearchPath, path)
			}
		}
		check := fmt.Sprintf("SELECT %d", try)
		if _, err := c.Exec(ctx, check, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("try %d: the session after a cancel reached the gateway's read of its state: %v", try, err)
		}
		if got := ev.g.Op(t, check).State.SearchPath; got != path {
			t.Fatalf("try %d: decided under search_path %q, want %q", try, got, path)
		}
		if ev.e.refreshes.Load()-before > 1 {
			t.Logf("the cancel landed on the state read at try %d; what was pipelined behind it: %v", try, errs[1])
			return
		}
	}
	t.Fatalf("in %d tries the cancel never landed on the gateway's read of the state", maxTries)
}
