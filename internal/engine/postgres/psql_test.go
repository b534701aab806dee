package postgres

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
)

// psql runs the real psql binary against the gateway.
func (ev *env) psql(t *testing.T, sslmode string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(ev.addr)
	conn := "host=" + host + " port=" + port + " dbname=pg-test user=alice sslmode=" + sslmode
	cmd := exec.Command("psql", append([]string{conn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+enginetest.Token, "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsql(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	dir := t.TempDir()
	tbl := "p_" + randHex(3)

	out, err := ev.psql(t, "disable", "-c", "SELECT 1")
	if err == nil || !strings.Contains(out, "sslmode=require") {
		t.Fatalf("plaintext psql: %v %s", err, out)
	}
	if len(ev.rec.OfType("session.open")) != 0 {
		t.Fatal("a plaintext session was opened")
	}

	out, err = ev.psql(t, "require", "-c", "SELECT 40+2")
	if err != nil || strings.TrimSpace(out) != "42" {
		t.Fatalf("psql -c: %v %q", err, out)
	}

	script := filepath.Join(dir, "s.sql")
	os.WriteFile(script, []byte("CREATE TABLE "+tbl+" (id int, v text);\nINSERT INTO "+tbl+" VALUES (1, 'a');\nINSERT INTO "+tbl+" VALUES (2, 'b');\nSELECT count(*) FROM "+tbl+";\n"), 0o644)
	out, err = ev.psql(t, "require", "-f", script)
	if err != nil || !strings.Contains(out, "2") {
		t.Fatalf("psql -f: %v %q", err, out)
	}

	in := filepath.Join(dir, "in.tsv")
	os.WriteFile(in, []byte("3\tc\n4\td\n"), 0o644)
	if out, err = ev.psql(t, "require", "-c", `\copy `+tbl+` FROM '`+in+`'`); err != nil {
		t.Fatalf("\\copy from: %v %s", err, out)
	}
	outFile := filepath.Join(dir, "out.tsv")
	if out, err = ev.psql(t, "require", "-c", `\copy `+tbl+` TO '`+outFile+`'`); err != nil {
		t.Fatalf("\\copy to: %v %s", err, out)
	}
	b, _ := os.ReadFile(outFile)
	if strings.Count(string(b), "\n") != 4 {
		t.Fatalf("\\copy to wrote %q", b)
	}

	ev.g.SetRule(enginetest.DenyIf("DROP"))
	out, err = ev.psql(t, "require", "-c", "DROP TABLE "+tbl)
	if err == nil || !strings.Contains(out, "refused by test policy") {
		t.Fatalf("denied DROP: %v %s", err, out)
	}
}
