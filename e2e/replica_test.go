package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// shareStore points the gateways' configs (before start) at one PostgreSQL
// store, as replicas behind a load balancer are deployed.
func shareStore(t *testing.T, db string, gws ...*gateway) {
	t.Helper()
	for _, g := range gws {
		b, err := os.ReadFile(g.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		found := false
		for i, l := range lines {
			if strings.HasPrefix(l, "store: ") {
				lines[i] = "store: postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable"
				found = true
			}
		}
		if !found {
			t.Fatalf("no store line in %s", g.cfgPath)
		}
		if err := os.WriteFile(g.cfgPath, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCancelThroughAnotherReplica: two gateway processes share a PostgreSQL
// store; a client connected to one runs pg_sleep, and its CancelRequest
// (what psql sends on Ctrl+C) reaches the other, as a load balancer may
// route it. The other replica forwards it, and the statement is cancelled
// on PostgreSQL with 57014.
func TestCancelThroughAnotherReplica(t *testing.T) {
	t.Parallel()
	storeDB := pgDatabase(t)
	db := pgDatabase(t)
	ga := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	gb := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	shareStore(t, storeDB, ga, gb)
	ga.start()
	gb.start()
	alice := ga.token("alice", "engineers")

	ctx := ctxFor(t, 2*time.Minute)
	connect := func(g *gateway) *pgx.Conn {
		c, err := pgx.Connect(ctx, g.pgConnString("pg-app", "alice", alice))
		if err != nil {
			t.Fatalf("connecting through %s: %v", g.pg, err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	ca, cb := connect(ga), connect(gb) // the token, in the shared store, is good on both
	if ca.PgConn().PID()>>24 == cb.PgConn().PID()>>24 {
		t.Fatalf("both replicas give process ids of replica %d", ca.PgConn().PID()>>24)
	}

	for _, viaTLS := range []bool{false, true} {
		marker := uniqueName("replica_cancel")
		done := make(chan error, 1)
		go func() {
			_, err := ca.Exec(ctx, "SELECT pg_sleep(30), '"+marker+"'", pgx.QueryExecModeSimpleProtocol)
			done <- err
		}()
		waitFor(t, 30*time.Second, "pg_sleep to run on PostgreSQL", func() bool {
			return pgInt(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%"+marker+"%' AND pid <> pg_backend_pid()") > 0
		})
		rawCancel(t, gb, ca.PgConn().PID(), ca.PgConn().SecretKey(), viaTLS)
		err := <-done
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("cancel via the other replica (TLS %v): %v; want 57014", viaTLS, err)
		}
		var n int
		if err := ca.QueryRow(ctx, "SELECT 3").Scan(&n); err != nil || n != 3 {
			t.Fatalf("the session after the cancel: %d %v", n, err)
		}
	}
}

// rawCancel sends a CancelRequest to addr as libpq does: on a new
// connection, in plaintext or after SSLRequest.
func rawCancel(t *testing.T, g *gateway, pid uint32, secret []byte, viaTLS bool) {
	t.Helper()
	nc, err := net.Dial("tcp", g.pg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
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
		pem, err := os.ReadFile(g.caPath)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS to %s: %v", g.pg, err)
		}
		rw = tc
	}
	msg, _ := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if _, err := rw.Write(msg); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rw)
}
