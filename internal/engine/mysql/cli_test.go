package mysql

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
)

// The real mariadb client, as doc.go tells people to run it.
func TestMariadbClient(t *testing.T) {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is needed: apt-get install mariadb-client")
	}
	ev := newEnv(t, nil)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	der := serverTLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, ev.addr)
	run := func(extra ...string) (string, error) {
		args := append([]string{"--no-defaults", "-h", host, "-P", port, "-u", "my-test", "--password=" + enginetest.Token,
			"--ssl", "--ssl-ca=" + ca, "--ssl-verify-server-cert", "--batch"}, extra...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	out, err := run("-e", "SELECT name FROM people ORDER BY id", testDB)
	if err != nil || out != "name\nada\nbob\n" {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	ev.g.SetRule(enginetest.DenyIf("DELETE"))
	out, err = run("-e", "DELETE FROM people", testDB)
	if err == nil || !strings.Contains(out, "ERROR 1142") || !strings.Contains(out, "refused by test policy") {
		t.Fatalf("mariadb delete: %v\n%s", err, out)
	}
	bad, err := exec.Command(bin, "--no-defaults", "-h", host, "-P", port, "-u", "my-test", "--password=nope",
		"--ssl", "--ssl-ca="+ca, "--ssl-verify-server-cert", "-e", "SELECT 1").CombinedOutput()
	if out = string(bad); err == nil || !strings.Contains(out, "1045") || !strings.Contains(out, "countersign connect my-test") {
		t.Fatalf("bad token: %v\n%s", err, out)
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q", addr)
	}
	return addr[:i], addr[i+1:]
}
