package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestPsqlInteractiveApproval drives psql under a pseudo-terminal as a person
// would: meta commands and reads pass, a write waits with a notice naming its
// review, an approver (another identity) approves it through the CLI, the
// write lands on PostgreSQL; Ctrl+C cancels a running statement upstream.
func TestPsqlInteractiveApproval(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, "CREATE TABLE items (id int PRIMARY KEY, note text)", "INSERT INTO items VALUES (1, 'one')")
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})

	cmd := exec.Command("psql", "-X", g.pgConnString("pg-app", "alice", alice))
	cmd.Env = append(os.Environ(), "PAGER=cat", "PSQL_PAGER=cat", "TERM=dumb", "PSQLRC=/dev/null")
	term := startTerminal(t, cmd)
	wait := 30 * time.Second
	prompt := `pg-app=[>#] `
	term.expect(prompt, wait)

	term.send("\\d\r")
	term.expect(`public \| items \| table`, wait)
	term.expect(prompt, wait)
	term.send("\\d items\r")
	term.expect(`Table "public.items"`, wait)
	term.expect(prompt, wait)
	term.send("SELECT note FROM items WHERE id = 1;\r")
	term.expect(`one\s+\(1 row\)`, wait)
	term.expect(prompt, wait)

	term.send("INSERT INTO items VALUES (2, 'two');\r")
	m := term.expect(`waiting for approval of review (r-[0-9a-f]+)`, wait)
	review := m[1]
	if n := pgInt(t, db, "SELECT count(*) FROM items WHERE id = 2"); n != 0 {
		t.Fatalf("the write reached PostgreSQL before review %s was approved (%d rows)", review, n)
	}
	g.mustCLI(bob, "reviews", "approve", review, "--comment", "e2e")
	term.expect(`INSERT 0 1`, wait)
	term.expect(prompt, wait)
	if n := pgInt(t, db, "SELECT count(*) FROM items WHERE id = 2 AND note = 'two'"); n != 1 {
		t.Fatalf("after approval of %s PostgreSQL holds %d rows with id 2, want 1", review, n)
	}

	term.send("SELECT pg_sleep(30);\r")
	waitFor(t, wait, "pg_sleep(30) to run on PostgreSQL", func() bool {
		return pgInt(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = '"+db+
			"' AND state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'") > 0
	})
	term.send("\x03")
	term.expect(`canceling statement due to user request`, wait)
	term.expect(prompt, wait)

	// Ctrl+C during a hold withdraws the wait; approving the review later
	// must not run the statement for a client that is no longer waiting.
	term.send("UPDATE items SET note = 'cancelled' WHERE id = 1;\r")
	held := term.expect(`waiting for approval of review (r-[0-9a-f]+)`, wait)[1]
	term.send("\x03")
	term.expect(`canceling statement due to user request`, wait)
	term.expect(prompt, wait)
	g.mustCLI(bob, "reviews", "approve", held)
	term.send("SELECT 1 AS alive;\r")
	term.expect(`alive\s+-+\s+1\s+\(1 row\)`, wait)
	term.expect(prompt, wait)
	if n := pgInt(t, db, "SELECT count(*) FROM items WHERE note = 'cancelled'"); n != 0 {
		t.Fatalf("a write whose wait was cancelled ran when review %s was approved", held)
	}
	term.send("\\q\r")
	select {
	case <-term.done:
	case <-time.After(wait):
		t.Fatalf("psql did not exit after \\q")
	}
}
