package e2e

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

// TestMysqlGrantEndCancelsRunningStatement is TestGrantEndCancelsRunningStatement
// on MariaDB, through the binary and the mariadb client: a write runs under
// a grant and the grant ends while MariaDB still executes it (a real
// SLEEP(30)), on time or by `countersign grants revoke`. The statement is
// killed upstream, the client's ERROR 1317 names the grant, nothing of it
// lands, and the same session's next write (the client goes on with
// --force) is refused with a review id.
func TestMysqlGrantEndCancelsRunningStatement(t *testing.T) {
	t.Parallel()
	for _, tc := range grantEndCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := mysqlNotes(t)
			g, alice, bob := startGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "reject"})

			id := grant(t, g, alice, bob, "my-app", "write", tc.grant, "e2e grant end")

			marker := uniqueName("slow")
			slow := "INSERT INTO notes (id, body) SELECT 1, CONCAT('" + marker + "', SLEEP(30))"
			after := "INSERT INTO notes VALUES (2, '" + marker + "-after')"
			// A script on stdin, not -e: with -e the client stops at ERROR
			// 1317 even with --force.
			run := startMariadb(t, slow+";\n"+after+";\n", mariadbArgs(g, alice, "--force", schema)...)
			if tc.revoke {
				waitFor(t, 30*time.Second, "the slow write to run on MariaDB", func() bool {
					select {
					case <-run.done:
						t.Fatalf("mariadb ended before the write ran under grant %s:\n%s", id, run.output())
					default:
					}
					return mysqlRunning(t, marker)
				})
				g.mustCLI(alice, "grants", "revoke", id)
			}
			got, _ := run.wait(t, 60*time.Second) // --force: the exit code is 0 whatever failed
			for _, want := range []string{"ERROR 1317 (70100)", "grant " + id + " " + tc.why} {
				if !strings.Contains(got, want) {
					t.Errorf("mariadb's output lacks %q:\n%s", want, got)
				}
			}
			// The same session's next write needs a review again.
			if !strings.Contains(got, "ERROR 1142 (42000)") || !reviewIDPattern.MatchString(got) {
				t.Errorf("the session's write after the grant's end was not refused with a review id:\n%s", got)
			}
			if n := mysqlCount(t, schema, "body LIKE '"+marker+"%'"); n != 0 {
				t.Fatalf("MariaDB holds %d row(s) of the killed write or the one after it", n)
			}
		})
	}
}

// mysqlRunning reports whether MariaDB executes a statement containing
// marker for another connection.
func mysqlRunning(t *testing.T, marker string) bool {
	t.Helper()
	db, err := sql.Open("mysql", mysqlDSN)
	if err != nil {
		t.Fatalf("opening MariaDB: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctxFor(t, 30*time.Second), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?",
		"%"+marker+"%").Scan(&n); err != nil {
		t.Fatalf("reading MariaDB's process list: %v", err)
	}
	return n > 0
}
