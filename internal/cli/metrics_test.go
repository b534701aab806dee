package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMetricsObserveEngines: the operations, sessions, reviews and store
// metrics move when a session runs a read and a held write through the
// PostgreSQL engine, and /metrics serves them.
func TestMetricsObserveEngines(t *testing.T) {
	t.Parallel()
	db := scratchDB(t)
	c := newCast(t, engineConfig(db))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://alice:%s@%s/pg-prod?sslmode=verify-ca&sslrootcert=%s",
		c.tokens["alice"], c.g.srv.PostgresAddr(), c.g.caFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	open := scrape(t, c)
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (1)"); err == nil {
		t.Fatal("a write ran without review")
	}
	conn.Close(ctx)
	want := []string{
		`countersign_operations_total{decision="allow",kind="read",resource="pg-prod"} 1`,
		`countersign_sessions_open{resource="pg-prod"} 1`,
		`countersign_store_latency_seconds_count{op="append_events"}`,
	}
	for _, w := range want {
		if !strings.Contains(open, w) {
			t.Errorf("/metrics while the session is open lacks %q", w)
		}
	}
	// The session's close is recorded asynchronously after the client left.
	for i := 0; ; i++ {
		after := scrape(t, c)
		if strings.Contains(after, `countersign_sessions_open{resource="pg-prod"} 0`) &&
			strings.Contains(after, `countersign_operations_total{decision="deny",kind="write",resource="pg-prod"} 1`) {
			break
		}
		if i == 200 {
			t.Fatalf("/metrics after the session did not count its close and the refused write:\n%s", after)
		}
		waitABit()
	}
}

func scrape(t *testing.T, c *cast) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.g.srv.CAPEM())
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + c.g.srv.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitABit() { time.Sleep(10 * time.Millisecond) }
