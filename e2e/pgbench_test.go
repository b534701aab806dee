package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPgbenchProtocols runs pgbench's select-only script through the gateway
// in the simple, extended and prepared query modes: an interoperability
// test, not a benchmark (no figure is asserted).
func TestPgbenchProtocols(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgbenchInit(t, db)
	g := newGateway(t, resourceSpec{Name: "pg-bench", Type: "postgres", Database: db})
	alice := g.token("alice", "engineers")
	g.start()

	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			run := startPgbench(t, g, "pg-bench", alice, "-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-T", "3")
			out, code := run.wait(t, 90*time.Second)
			if code != 0 {
				t.Fatalf("pgbench -M %s through the gateway exited %d:\n%s", mode, code, out)
			}
			if m := processed.FindStringSubmatch(out); m == nil || m[1] == "0" {
				t.Fatalf("pgbench -M %s processed no transactions:\n%s", mode, out)
			}
			if !strings.Contains(out, "number of failed transactions: 0 ") {
				t.Fatalf("pgbench -M %s reports failed transactions:\n%s", mode, out)
			}
			if strings.Contains(strings.ToLower(out), "error") {
				t.Fatalf("pgbench -M %s printed an error:\n%s", mode, out)
			}
		})
	}
}
