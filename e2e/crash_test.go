package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestCrashUnderWriteLoadLosesNoRecord (issue 5): kill -9 of the gateway
// while pgbench's TPC-B-like script writes through a write grant. After a
// restart the trail verifies (an unsigned tail is allowed), and every
// UPDATE and INSERT that PostgreSQL's own log shows it executed for the
// database has an operation event: record before effect, proven from the
// server's side.
func TestCrashUnderWriteLoadLosesNoRecord(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgbenchInit(t, db)
	logStatements(t, db)
	pglog := openPGLog(t)
	// Checkpoints every few events, so the crash cuts through a signed
	// chain, not only an unsigned one.
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-bench", Type: "postgres", Database: db},
		"recording:\n  checkpoint_every: 25\n")
	grantWrite(t, g, alice, bob, "pg-bench")

	bench := startPgbench(t, g, "pg-bench", alice, "-n", "-c", "4", "-j", "2", "-T", "5")
	waitFor(t, 60*time.Second, "PostgreSQL to log 50 writes through the gateway", func() bool {
		return len(writes(pglog.statements(t, db))) >= 50
	})
	g.kill()
	out, _ := bench.wait(t, 60*time.Second)
	t.Logf("pgbench after the gateway was killed:\n%s", lastLines(out, 8))

	g.start()
	verifyOut, verifyErr, code := g.run(nil, "audit", "verify", "--config", g.cfgPath)
	if code != 0 {
		t.Fatalf("audit verify after a crash failed (exit %d):\n%s\n%s", code, verifyOut, verifyErr)
	}
	t.Logf("audit verify after the crash:\n%s%s", verifyOut, verifyErr)
	// The crashed chain is reported, at start and by verify, and left
	// unsigned: only --strict fails it.
	// (Only when the crash left events after the last checkpoint: with a
	// checkpoint every 25 events it may land right after one.)
	if crashedTail(verifyOut) && !strings.Contains(g.log(), "ended without a closing checkpoint") {
		t.Errorf("the restarted gateway did not report the crashed chain's unsigned tail:\n%s", lastLines(g.log(), 20))
	}
	if !strings.Contains(verifyOut, "no closing checkpoint") {
		t.Errorf("audit verify does not name the chain that stopped without a closing checkpoint:\n%s", verifyOut)
	}
	if out, _, code := g.run(nil, "audit", "verify", "--strict", "--config", g.cfgPath); code == 0 {
		t.Errorf("audit verify --strict passed a trail with a crashed chain:\n%s", out)
	}
	g.stop()

	executed := writes(pglog.statements(t, db))
	recorded := operationTexts(t, g)
	missing := 0
	for _, s := range executed {
		if !recorded[normalizeSQL(s)] {
			missing++
			if missing <= 5 {
				t.Errorf("PostgreSQL executed a write the recording does not hold: %s", s)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d writes PostgreSQL executed have no operation event", missing, len(executed))
	}
	t.Logf("all %d writes PostgreSQL executed are recorded (%d operation texts in the trail)", len(executed), len(recorded))
}

// pgbenchInit makes pgbench's tables directly on PostgreSQL (scale 1).
func pgbenchInit(t *testing.T, db string) {
	t.Helper()
	cmd := exec.Command("pgbench", "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", db)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i directly on PostgreSQL: %v\n%s", err, out)
	}
}

// writes keeps the UPDATE and INSERT statements.
func writes(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		u := strings.ToUpper(strings.TrimSpace(s))
		if strings.HasPrefix(u, "UPDATE") || strings.HasPrefix(u, "INSERT") {
			out = append(out, s)
		}
	}
	return out
}

func normalizeSQL(s string) string {
	return strings.TrimRight(strings.TrimSpace(s), "; \t\n")
}

// operationTexts reads the statement texts of every operation event straight
// from the gateway's SQLite store (not through the product's own reader).
func operationTexts(t *testing.T, g *gateway) map[string]bool {
	t.Helper()
	store := openStore(t, g)
	ctx := ctxFor(t, 30*time.Second)
	rows, err := store.QueryContext(ctx, "SELECT data FROM events WHERE type = 'operation'")
	if err != nil {
		t.Fatalf("reading operation events from the store: %v", err)
	}
	defer rows.Close()
	texts := map[string]bool{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatalf("reading an operation event: %v", err)
		}
		var op struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(data, &op); err != nil {
			t.Fatalf("an operation event's data is not JSON: %v: %q", err, data)
		}
		for _, stmt := range strings.Split(op.Text, ";") {
			texts[normalizeSQL(stmt)] = true
		}
		texts[normalizeSQL(op.Text)] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading operation events: %v", err)
	}
	return texts
}

// openStore opens the gateway's SQLite store directly.
func openStore(t *testing.T, g *gateway) *sql.DB {
	t.Helper()
	path := filepath.Join(g.dataDir, "countersign.db")
	db, err := sql.Open("sqlite", fmt.Sprintf("file:%s?_pragma=busy_timeout(10000)", path))
	if err != nil {
		t.Fatalf("opening the store %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("opening the store %s: %v", path, err)
	}
	return db
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crashedTail reports whether audit verify's output shows a chain of more
// than one event (the crashed gateway's; the restarted one has written
// only its start) whose events go past its last signed checkpoint.
func crashedTail(verifyOut string) bool {
	re := regexp.MustCompile(`events 1-(\d+), \d+ checkpoints, signed through (\d+)`)
	for _, m := range re.FindAllStringSubmatch(verifyOut, -1) {
		last, _ := strconv.Atoi(m[1])
		signed, _ := strconv.Atoi(m[2])
		if last > 1 && signed < last {
			return true
		}
	}
	return false
}
