package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startupWait bounds how long a gateway may take to say it is serving.
const startupWait = 30 * time.Second

// gateway is one countersign process under test, with its own ports, data
// dir and config. It can be stopped, killed and started again on the same
// config, store and ports.
type gateway struct {
	t       *testing.T
	dir     string
	cfgPath string
	dataDir string
	api     string // host:port of the HTTP API
	pg      string // host:port of the PostgreSQL listener
	mysql   string // host:port of the MySQL listener
	caPath  string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	starts  int
}

// resourceSpec is one resource in the generated config.
type resourceSpec struct {
	Name     string
	Type     string // postgres | mysql
	Database string // postgres only
	Mode     string // wait | reject
}

// newGateway writes a config for the resources with fresh ports and a fresh
// data dir. It does not start the process. Groups: engineers are creators,
// dba-leads approvers, audit auditors.
func newGateway(t *testing.T, resources ...resourceSpec) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{
		t: t, dir: dir,
		cfgPath: filepath.Join(dir, "countersign.yaml"),
		dataDir: filepath.Join(dir, "data"),
		caPath:  filepath.Join(dir, "ca.pem"),
	}
	addrs := freeAddrs(t, 3)
	g.api, g.pg, g.mysql = addrs[0], addrs[1], addrs[2]
	if err := os.WriteFile(g.cfgPath, []byte(g.config(resources)), 0o600); err != nil {
		t.Fatalf("writing the gateway config: %v", err)
	}
	t.Cleanup(g.cleanup)
	return g
}

func (g *gateway) config(resources []resourceSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen:\n  api: %s\n  postgres: %s\n  mysql: %s\n", g.api, g.pg, g.mysql)
	fmt.Fprintf(&b, "store: sqlite://%s/countersign.db\n", g.dataDir)
	b.WriteString("identity:\n  roles:\n    engineers: [creator]\n    dba-leads: [approver]\n    audit: [auditor]\n")
	b.WriteString("resources:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "  - name: %s\n    type: %s\n", r.Name, r.Type)
		if r.Type == "mysql" {
			b.WriteString("    address: 127.0.0.1:3306\n    username: root\n")
		} else {
			fmt.Fprintf(&b, "    address: 127.0.0.1:5432\n    database: %s\n    username: postgres\n", r.Database)
		}
		mode := r.Mode
		if mode == "" {
			mode = "wait"
		}
		fmt.Fprintf(&b, `    policy:
      access: [engineers, dba-leads, audit]
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [dba-leads]
        approvals: 1
        mode: %s
        wait_timeout: 5m
      grants:
        max_duration: 4h
`, mode)
	}
	return b.String()
}

// appendConfig adds top-level YAML to the config (before start).
func (g *gateway) appendConfig(yaml string) {
	g.t.Helper()
	f, err := os.OpenFile(g.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		g.t.Fatalf("extending the gateway config: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		g.t.Fatalf("extending the gateway config: %v", err)
	}
}

// freeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago. The binary refuses port 0, so the tests pick ports themselves;
// all n are held open together so that the kernel cannot hand one out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// start runs `countersign serve` and waits until it logs that it serves.
func (g *gateway) start() {
	g.t.Helper()
	g.starts++
	g.logPath = filepath.Join(g.dir, fmt.Sprintf("serve-%d.log", g.starts))
	logf, err := os.Create(g.logPath)
	if err != nil {
		g.t.Fatalf("creating the gateway log: %v", err)
	}
	cmd := exec.Command(bin, "serve", "--config", g.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = g.env()
	if err := cmd.Start(); err != nil {
		logf.Close()
		g.t.Fatalf("starting countersign serve: %v", err)
	}
	g.cmd, g.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(g.exited) }()
	deadline := time.Now().Add(startupWait)
	for !strings.Contains(g.log(), "countersign serving") {
		select {
		case <-g.exited:
			g.t.Fatalf("countersign serve exited before serving:\n%s", g.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("countersign serve did not log \"countersign serving\" within %v:\n%s", startupWait, g.log())
		}
	}
	if g.starts == 1 {
		g.writeCA()
	}
}

// log returns what the current process has logged so far.
func (g *gateway) log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// signal sends sig and waits (bounded) for the process to exit.
func (g *gateway) signal(sig syscall.Signal) {
	g.t.Helper()
	if g.cmd == nil {
		return
	}
	if err := g.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.t.Fatalf("sending %v to the gateway: %v", sig, err)
	}
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		g.t.Fatalf("the gateway did not exit within 30s of %v:\n%s", sig, g.log())
	}
	g.cmd = nil
}

func (g *gateway) stop() { g.signal(syscall.SIGTERM) }
func (g *gateway) kill() { g.signal(syscall.SIGKILL) }

func (g *gateway) cleanup() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	if g.t.Failed() {
		g.t.Logf("gateway log (%s):\n%s", g.logPath, g.log())
	}
}

// env is the environment for the binary: no saved login of the machine's
// user can leak in.
func (g *gateway) env() []string {
	env := []string{"HOME=" + g.dir, "XDG_CONFIG_HOME=" + filepath.Join(g.dir, "config"), "PATH=" + os.Getenv("PATH")}
	return env
}

func (g *gateway) writeCA() {
	g.t.Helper()
	out, stderr, code := g.run(nil, "ca", "--config", g.cfgPath)
	if code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") {
		g.t.Fatalf("countersign ca: exit %d: %s", code, stderr)
	}
	if err := os.WriteFile(g.caPath, []byte(out), 0o600); err != nil {
		g.t.Fatalf("writing the CA: %v", err)
	}
}

// token issues a token for a local identity in the given groups.
func (g *gateway) token(user string, groups ...string) string {
	g.t.Helper()
	out, stderr, code := g.run(nil, "token", "issue", "--config", g.cfgPath,
		"--user", user, "--groups", strings.Join(groups, ","), "--ttl", "2h")
	tok := strings.TrimSpace(out)
	if code != 0 || tok == "" {
		g.t.Fatalf("countersign token issue --user %s: exit %d: %s", user, code, stderr)
	}
	return tok
}

// cli runs a client command of the binary against this gateway's API as the
// holder of token, and returns stdout, stderr and the exit code.
func (g *gateway) cli(token string, args ...string) (string, string, int) {
	g.t.Helper()
	return g.run([]string{
		"COUNTERSIGN_SERVER=https://" + g.api,
		"COUNTERSIGN_TOKEN=" + token,
		"COUNTERSIGN_CA_CERT=" + g.caPath,
	}, args...)
}

// mustCLI is cli that fails the test on a non-zero exit.
func (g *gateway) mustCLI(token string, args ...string) string {
	g.t.Helper()
	out, stderr, code := g.cli(token, args...)
	if code != 0 {
		g.t.Fatalf("countersign %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// run runs the binary with extra environment, bounded to a minute.
func (g *gateway) run(extraEnv []string, args ...string) (string, string, int) {
	g.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(g.env(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("running countersign %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		g.t.Fatalf("countersign %v did not finish within a minute", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// pgConnString is a libpq connection string for a resource through the
// gateway with full certificate verification.
func (g *gateway) pgConnString(resource, user, token string) string {
	host, port, _ := net.SplitHostPort(g.pg)
	return fmt.Sprintf("host=%s port=%s dbname=%s user=%s password=%s sslmode=verify-full sslrootcert=%s",
		host, port, resource, user, token, g.caPath)
}
