package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startGateway makes a gateway on one resource, appends extraYAML to its
// config, issues tokens for alice (engineers: a creator) and bob
// (dba-leads: an approver) and starts it: the cast most tests need.
func startGateway(t *testing.T, spec resourceSpec, extraYAML ...string) (g *gateway, alice, bob string) {
	t.Helper()
	g = newGateway(t, spec)
	for _, y := range extraYAML {
		g.appendConfig(y)
	}
	alice = g.token("alice", "engineers")
	bob = g.token("bob", "dba-leads")
	g.start()
	return g, alice, bob
}

// grant has initiator request a grant of access to resource for the
// duration d (as `--for` takes it), has approver approve it and returns the
// review's id.
func grant(t *testing.T, g *gateway, initiator, approver, resource, access, d, reason string) string {
	t.Helper()
	out := g.mustCLI(initiator, "grants", "request", resource, "--access", access, "--for", d, "--reason", reason, "--json")
	var v struct {
		Review review `json:"review"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Review.ID == "" {
		t.Fatalf("grants request --json printed no review id: %v\n%s", err, out)
	}
	g.mustCLI(approver, "reviews", "approve", v.Review.ID)
	return v.Review.ID
}

// grantWrite has initiator request a one-hour write grant and approver
// approve it.
func grantWrite(t *testing.T, g *gateway, initiator, approver, resource string) {
	t.Helper()
	grant(t, g, initiator, approver, resource, "write", "1h", "e2e load")
}

// clientRun is a client program (psql, mariadb, pgbench) running in the
// background; its stdout and stderr share one buffer the test reads while
// it runs.
type clientRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// startClient starts cmd in the background; the test's cleanup kills it
// if it still runs. hint says how to get the program when it is missing.
func startClient(t *testing.T, cmd *exec.Cmd, hint string) *clientRun {
	t.Helper()
	r := &clientRun{cmd: cmd, done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = &syncWriter{mu: &r.mu, b: &r.out}, &syncWriter{mu: &r.mu, b: &r.out}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s%s: %v", filepath.Base(cmd.Path), hint, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// startPsql runs `psql -X -c sql...` on conn in the background.
func startPsql(t *testing.T, conn string, sql ...string) *clientRun {
	t.Helper()
	args := []string{"-X", "-v", "ON_ERROR_STOP=1", conn}
	for _, s := range sql {
		args = append(args, "-c", s)
	}
	return startClient(t, exec.Command("psql", args...), "")
}

// startMariadb runs the mariadb client on a script in the background.
func startMariadb(t *testing.T, script string, args ...string) *clientRun {
	t.Helper()
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(script)
	return startClient(t, cmd, " (apt-get install mariadb-client)")
}

// startPgbench runs pgbench through the gateway with extra arguments.
func startPgbench(t *testing.T, g *gateway, resource, token string, args ...string) *clientRun {
	t.Helper()
	host, port, _ := net.SplitHostPort(g.pg)
	all := append([]string{"-h", host, "-p", port, "-U", "alice"}, args...)
	all = append(all, resource)
	cmd := exec.Command("pgbench", all...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGSSLMODE=require")
	return startClient(t, cmd, "")
}

// wait waits (bounded) for the client to exit and returns its output and
// exit code.
func (r *clientRun) wait(t *testing.T, d time.Duration) (string, int) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v; it printed:\n%s", filepath.Base(r.cmd.Path), d, r.output())
	}
	return r.output(), r.cmd.ProcessState.ExitCode()
}

func (r *clientRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// syncWriter lets a command's stdout and stderr share one buffer that the
// test reads while the command runs.
type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
