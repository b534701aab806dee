package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRestartWhileWaiting: SIGTERM while a write waits for approval. The
// waiting client gets an error that says the gateway is shutting down, the
// review survives the restart as pending, and nothing ran.
func TestRestartWhileWaiting(t *testing.T) {
	t.Parallel()
	db, pglog := pgLoggedDatabase(t, "CREATE TABLE flags (name text PRIMARY KEY, value bool)", "INSERT INTO flags VALUES ('on', false)")
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})

	marker := uniqueName("restart")
	stmt := "UPDATE flags SET value = true WHERE name = 'on' AND '" + marker + "' <> ''"
	run := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt)
	id := pendingReview(t, g, bob, marker)
	waitFor(t, 30*time.Second, "psql to print the waiting notice", func() bool {
		return strings.Contains(run.output(), "waiting for approval of review "+id)
	})

	g.stop()
	out, code := run.wait(t, 30*time.Second)
	if code == 0 {
		t.Fatalf("the waiting write succeeded although the gateway stopped:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "shut") {
		t.Errorf("the waiting client's error does not mention the shutdown:\n%s", out)
	}

	t.Logf("the waiting client after SIGTERM:\n%s", out)
	g.start()
	if st := reviewStatus(t, g, bob, id); st != "pending" {
		t.Errorf("after a restart review %s is %q, want pending", id, st)
	}
	found := false
	for _, r := range listReviews(t, g, bob) {
		found = found || r.ID == id && r.Status == "pending"
	}
	if !found {
		t.Errorf("reviews list after the restart does not show %s as pending", id)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM flags WHERE value"); n != 0 {
		t.Fatalf("the held write ran: %d rows changed", n)
	}
	for _, s := range pglog.statements(t, db) {
		if strings.Contains(s, marker) {
			t.Fatalf("PostgreSQL's log shows the held statement reached the server: %s", s)
		}
	}

	// Approved after the restart, the identical statement runs once.
	g.mustCLI(bob, "reviews", "approve", id)
	if out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt).wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the identical statement after approval of %s failed (exit %d):\n%s", id, code, out)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM flags WHERE value"); n != 1 {
		t.Fatalf("after approval of %s and a rerun %d rows changed, want 1", id, n)
	}
}
