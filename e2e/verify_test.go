package e2e

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAuditVerifyCatchesTampering: after a normal session `audit verify`
// passes; after one byte of one event's data is changed in the store it
// fails and names that event's sequence number.
func TestAuditVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, "CREATE TABLE t (id int)")
	g := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	alice := g.token("alice", "engineers")
	g.start()
	marker := uniqueName("verify")
	if out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice),
		"SELECT '"+marker+"' AS m", "SELECT count(*) FROM t").wait(t, 30*time.Second); code != 0 {
		t.Fatalf("a session through the gateway failed (exit %d):\n%s", code, out)
	}
	g.stop() // a graceful stop signs a closing checkpoint

	out, stderr, code := g.run(nil, "audit", "verify", "--config", g.cfgPath)
	if code != 0 {
		t.Fatalf("audit verify after a normal session failed (exit %d):\n%s\n%s", code, out, stderr)
	}
	t.Logf("audit verify after a normal session:\n%s%s", out, stderr)

	store := openStore(t, g)
	ctx := ctxFor(t, 30*time.Second)
	var writer string
	var seq int64
	var data []byte
	err := store.QueryRowContext(ctx, "SELECT writer, seq, data FROM events WHERE type = 'operation' AND instr(CAST(data AS TEXT), ?) > 0",
		marker).Scan(&writer, &seq, &data)
	if err != nil {
		t.Fatalf("finding the operation event of %s in the store: %v", marker, err)
	}
	i := bytes.Index(data, []byte(marker))
	tampered := append([]byte(nil), data...)
	tampered[i] ^= 0x01 // one byte, one bit
	if _, err := store.ExecContext(ctx, "UPDATE events SET data = ? WHERE writer = ? AND seq = ?", tampered, writer, seq); err != nil {
		t.Fatalf("tampering with event %s/%d: %v", writer, seq, err)
	}
	_ = store.Close()

	out, stderr, code = g.run(nil, "audit", "verify", "--config", g.cfgPath)
	if code == 0 {
		t.Fatalf("audit verify passed a store whose event %d was changed:\n%s\n%s", seq, out, stderr)
	}
	all := out + stderr
	named := regexp.MustCompile(fmt.Sprintf(`(?i)(seq|sequence|event)[ =:#]*%d\b`, seq))
	if !named.MatchString(all) || !strings.Contains(all, writer) {
		t.Fatalf("audit verify failed without naming the changed event (writer %s, seq %d):\n%s", writer, seq, all)
	}
	t.Logf("audit verify after the change of event %d:\n%s", seq, all)
}
