package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/store"
)

// sendCancel sends a CancelRequest for key to addr as a client does: in
// plaintext, or after an SSLRequest answered with TLS.
func sendCancel(t *testing.T, addr string, pid uint32, secret []byte, viaTLS bool) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	var rw io.ReadWriter = nc
	if viaTLS {
		req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v", b[:], err)
		}
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own gateway
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		rw = tc
	}
	msg, _ := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if _, err := rw.Write(msg); err != nil {
		t.Fatal(err)
	}
	// The gateway closes the connection without a word, as PostgreSQL does.
	if b, _ := io.ReadAll(rw); len(b) != 0 {
		t.Fatalf("the gateway answered a CancelRequest with %q", b)
	}
}

// upstreamRunning reports whether a statement containing marker runs on
// the test database.
func upstreamRunning(t *testing.T, marker string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%'||$1||'%' AND pid <> pg_backend_pid()", marker).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// replicaStore opens a PostgreSQL store on a fresh database, as replicas
// of one deployment share.
func replicaStore(t *testing.T) *store.Postgres {
	t.Helper()
	name := "cs_replicas_" + randHex(4)
	if err := adminExec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenPostgres(context.Background(), "postgres://postgres@127.0.0.1:5432/"+name+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		adminExec("DROP DATABASE " + name + " WITH (FORCE)")
	})
	return st
}

// actedRelay is a replica's own relay (the store's, unchanged) that also
// counts the forwarded cancels its engine has finished acting on.
type actedRelay struct {
	*store.CancelRelay
	acted atomic.Int64
}

func (r *actedRelay) ReceiveCancels(fn func(pid uint32, secret []byte)) (stop func()) {
	return r.CancelRelay.ReceiveCancels(func(pid uint32, secret []byte) {
		fn(pid, secret)
		r.acted.Add(1)
	})
}

// replica starts an engine that claims its replica id from st.
func replica(t *testing.T, st *store.Postgres) (*env, *actedRelay) {
	t.Helper()
	relay, err := st.CancelRelay(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &actedRelay{CancelRelay: relay}
	ev := newEnv(t, func(o *Options) { o.ReplicaID, o.CancelRelay = relay.Replica(), r })
	t.Cleanup(func() { relay.Close() }) // after the engine's Shutdown (cleanups run last first)
	return ev, r
}

// TestCancelAnyReplica: a CancelRequest is honoured whichever replica
// receives it (a load balancer sends the cancel connection anywhere), in
// plaintext and after SSLRequest, for a running statement, for one held
// for review and for an idle session; a wrong secret cancels nothing.
//
// The client's cancel connection closes only once the cancel has acted,
// where the session lives: clients take that close, as PostgreSQL gives
// it, to mean that their next command cannot be cancelled by it (libpq's
// PQcancel and pgx wait for it). A replica that closed it as soon as it
// had forwarded the cancel let the cancel reach the upstream after the
// client's next statement had started; PostgreSQL 15 signals a backend
// twice per cancel (the process, then its process group), so even a
// client that waited for the 57014 of its statement had its next SELECT
// cancelled by the second signal, about once in 300 runs under load.
func TestCancelAnyReplica(t *testing.T) {
	t.Parallel()
	st := replicaStore(t)
	a, ra := replica(t, st)
	b, _ := replica(t, st)
	if a.e.o.ReplicaID == b.e.o.ReplicaID {
		t.Fatalf("two replicas share id %d", a.e.o.ReplicaID)
	}
	tests := []struct {
		name   string
		via    *env
		viaTLS bool
		hold   bool
		idle   bool // the cancel arrives between statements
	}{
		{"same replica, plaintext", a, false, false, false},
		{"same replica, after SSLRequest", a, true, false, false},
		{"other replica, plaintext", b, false, false, false},
		{"other replica, after SSLRequest", b, true, false, false},
		{"hold, same replica", a, false, true, false},
		{"hold, other replica", b, true, true, false},
		{"idle, same replica", a, false, false, true},
		{"idle, other replica", b, false, false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := a.connect(t)
			pid, secret := c.PgConn().PID(), c.PgConn().SecretKey()
			if uint8(pid>>24) != a.e.o.ReplicaID {
				t.Fatalf("process id %08x does not carry replica id %d", pid, a.e.o.ReplicaID)
			}
			marker := fmt.Sprintf("cancel_%s_%d", randHex(3), i)
			text := "SELECT pg_sleep(30), '" + marker + "'"
			waiting := make(chan struct{})
			if tt.hold {
				a.g.SetRule(func(s string) guard.Verdict {
					if !strings.Contains(s, marker) {
						return enginetest.Allow()
					}
					return guard.Verdict{Decision: guard.Hold, Code: "approval_pending", ReviewID: "r-" + marker,
						Notice: "waiting for approval",
						Wait: func(ctx context.Context) guard.Verdict {
							close(waiting)
							<-ctx.Done()
							return guard.Verdict{Code: "approval_wait_ended", Message: "the wait ended"}
						}}
				})
			}
			done := make(chan error, 1)
			if tt.idle {
				done <- nil
			} else {
				go func() {
					_, err := c.Exec(ctx, text, pgx.QueryExecModeSimpleProtocol)
					done <- err
				}()
			}
			switch {
			case tt.hold:
				<-waiting
			case !tt.idle:
				waitFor(t, func() bool { return upstreamRunning(t, marker) })
			}
			// A wrong secret is ignored (forwarded, then refused where the
			// session lives); the right one then cancels.
			acted := ra.acted.Load()
			sendCancel(t, tt.via.addr, pid, []byte{^secret[0], secret[1], secret[2], secret[3]}, tt.viaTLS)
			sendCancel(t, tt.via.addr, pid, secret, tt.viaTLS)
			if tt.via != a {
				if n := ra.acted.Load() - acted; n != 2 {
					t.Fatalf("the gateway closed the cancel connections when the replica holding the session had acted on %d of the 2 cancels", n)
				}
			}
			err := <-done
			var pe *pgconn.PgError
			switch {
			case tt.idle && err != nil:
				t.Fatalf("no statement ran, yet: %v", err)
			case !tt.idle && (err == nil || !errors.As(err, &pe) || pe.Code != "57014"):
				t.Fatalf("after the cancel: %v; want 57014", err)
			}
			if tt.hold && upstreamRunning(t, marker) {
				t.Fatal("the held statement reached the upstream after its wait was cancelled")
			}
			// The cancel has done all it will: the next statement runs.
			var n int
			if err := c.QueryRow(ctx, "SELECT 6").Scan(&n); err != nil || n != 6 {
				t.Fatalf("the session after the cancel: %d %v", n, err)
			}
		})
	}
	if n := len(a.g.OpsOf("SELECT 6")); n != len(tests) {
		t.Fatalf("%d sessions went on after their cancel, want %d", n, len(tests))
	}
}

// TestGSSEncRequestDeclined: the gateway answers GSSENCRequest with 'N'
// (as libpq's gssencmode=prefer expects) and goes on with the startup.
func TestGSSEncRequestDeclined(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	nc, err := net.Dial("tcp", ev.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q, %v; want N", b[:], err)
	}
	// The session continues in plaintext: the gateway refuses before asking
	// for the password, in the protocol, not by dropping the connection.
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "alice", "database": "pg-test"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	er, ok := msg.(*pgproto3.ErrorResponse)
	if !ok || er.Code != "28000" || !strings.Contains(er.Message, "sslmode=require") {
		t.Fatalf("got %#v; want 28000 asking for sslmode=require", msg)
	}
}
