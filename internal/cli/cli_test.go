package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const testConfig = `listen:
  api: 127.0.0.1:0
store: sqlite://./state/countersign.db
identity:
  roles:
    engineers: [creator]
    platform-admins: [admin]
resources:
  - name: pg-prod
    type: postgres
    address: 127.0.0.1:5432
    database: postgres
    username: postgres
    policy:
      access: [engineers]
`

// gateway is a real `countersign serve` running in the test process.
type gateway struct {
	config string // path of its countersign.yaml
	srv    *Server
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "countersign.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs `serve --config` until the test ends, and checks that
// it then stops cleanly.
func startGateway(t *testing.T, body string) *gateway {
	t.Helper()
	g := &gateway{config: writeConfig(t, body)}
	ctx, cancel := context.WithCancel(context.Background())
	serving := make(chan *Server, 1)
	exited := make(chan int, 1)
	var stderr syncBuffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" },
		ConfigDir: func() (string, error) { return t.TempDir(), nil }, OnServing: func(s *Server) { serving <- s }}
	go func() { exited <- Run(ctx, env, []string{"serve", "--config", g.config, "--log-level", "warn"}) }()
	select {
	case g.srv = <-serving:
	case code := <-exited:
		cancel()
		t.Fatalf("serve exited with %d before serving: %s", code, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("serve stopped with exit code %d: %s", code, stderr.String())
		}
	})
	return g
}

// user is a person running client commands against g, with their own
// environment and config dir.
type user struct {
	t    *testing.T
	vars map[string]string
	dir  string
}

func (g *gateway) user(t *testing.T, token string) *user {
	return &user{t: t, dir: t.TempDir(), vars: map[string]string{
		"COUNTERSIGN_SERVER":  "https://" + g.srv.APIAddr(),
		"COUNTERSIGN_CA_CERT": g.caFile(t),
		"COUNTERSIGN_TOKEN":   token,
	}}
}

func (g *gateway) caFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, g.srv.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs one command line in-process; it returns stdout, stderr and the
// exit code.
func (u *user) run(args ...string) (string, string, int) {
	u.t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv:    func(k string) string { return u.vars[k] },
		ConfigDir: func() (string, error) { return u.dir, nil }}
	code := Run(context.Background(), env, args)
	return out.String(), errb.String(), code
}

// must runs a command that has to succeed and returns its stdout.
func (u *user) must(args ...string) string {
	u.t.Helper()
	out, errs, code := u.run(args...)
	if code != 0 {
		u.t.Fatalf("countersign %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs a command that has to fail with a message containing want.
func (u *user) fails(want string, args ...string) {
	u.t.Helper()
	out, errs, code := u.run(args...)
	if code == 0 {
		u.t.Fatalf("countersign %s succeeded: %s", strings.Join(args, " "), out)
	}
	if !strings.Contains(errs, want) {
		u.t.Fatalf("countersign %s: stderr %q lacks %q", strings.Join(args, " "), errs, want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	op := g.user(t, "")
	token := strings.TrimSpace(op.must("token", "issue", "--config", g.config, "--user", "alice", "--groups", "engineers", "--ttl", "1h"))
	if !strings.HasPrefix(token, "cst_") || strings.Contains(token, "\n") {
		t.Fatalf("token issue printed %q, want only the token", token)
	}

	alice := g.user(t, token)
	me := alice.must("whoami")
	for _, want := range []string{"alice", "countersign:local|alice", "engineers", "creator"} {
		if !strings.Contains(me, want) {
			t.Fatalf("whoami lacks %q:\n%s", want, me)
		}
	}
	list := alice.must("token", "list")
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if !strings.HasPrefix(id, "tok-") || !strings.Contains(list, "active") {
		t.Fatalf("token list:\n%s", list)
	}
	if all := op.must("token", "list", "--config", g.config); !strings.Contains(all, id) {
		t.Fatalf("token list --config lacks %s:\n%s", id, all)
	}
	if out := alice.must("token", "revoke", id); !strings.Contains(out, "revoked "+id) {
		t.Fatalf("token revoke printed %q", out)
	}
	alice.fails("revoked", "whoami")
	if all := op.must("token", "list", "--config", g.config); !strings.Contains(all, "revoked") {
		t.Fatalf("token list --config does not show the revocation:\n%s", all)
	}
}

func TestServiceTokenRevokedByOperator(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	op := g.user(t, "")
	token := strings.TrimSpace(op.must("token", "issue", "--config", g.config, "--service", "ci", "--groups", "engineers", "--scope", "api"))
	ci := g.user(t, token)
	if me := ci.must("whoami"); !strings.Contains(me, "service:ci") || !strings.Contains(me, "(service,") {
		t.Fatalf("whoami of a service:\n%s", me)
	}
	list := op.must("token", "list", "--config", g.config)
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	op.must("token", "revoke", id, "--config", g.config)
	ci.fails("revoked", "whoami")
	op.fails("there is no token", "token", "revoke", "tok-nope", "--config", g.config)
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	op := g.user(t, "")
	dbToken := strings.TrimSpace(op.must("token", "issue", "--config", g.config, "--user", "bob", "--groups", "engineers", "--scope", "resource:pg-prod"))
	good := strings.TrimSpace(op.must("token", "issue", "--config", g.config, "--user", "carol", "--groups", "engineers"))

	tests := []struct {
		name string
		vars map[string]string // overrides; "" deletes
		args []string
		want string
	}{
		{"no token", map[string]string{"COUNTERSIGN_TOKEN": ""}, []string{"whoami"}, "not logged in: run 'countersign login' or set COUNTERSIGN_TOKEN"},
		{"no server", map[string]string{"COUNTERSIGN_SERVER": ""}, []string{"whoami"}, "which gateway?"},
		{"plain http", map[string]string{"COUNTERSIGN_SERVER": "http://" + g.srv.APIAddr()}, []string{"whoami"}, "must use https://"},
		{"no CA", map[string]string{"COUNTERSIGN_CA_CERT": ""}, []string{"whoami"}, "pass the gateway's CA with --ca-cert"},
		{"wrong CA", map[string]string{"COUNTERSIGN_CA_CERT": otherCA(t)}, []string{"whoami"}, "does not verify it"},
		{"junk CA", map[string]string{"COUNTERSIGN_CA_CERT": writeTemp(t, "junk")}, []string{"whoami"}, "holds no PEM certificate"},
		{"garbage token", map[string]string{"COUNTERSIGN_TOKEN": "hunter2"}, []string{"whoami"}, "not valid"},
		{"resource token on the API", map[string]string{"COUNTERSIGN_TOKEN": dbToken}, []string{"whoami"}, "database password"},
		{"connect without access", nil, []string{"connect", "nope"}, `no resource named "nope"`},
		{"connect two resources", nil, []string{"connect", "a", "b"}, "exactly one resource"},
		{"connect no engine", nil, []string{"connect", "pg-prod"}, "serves no postgres clients"},
		{"revoke someone else's", nil, []string{"token", "revoke", "tok-00000000"}, "you have no token"},
		{"issue without config", nil, []string{"token", "issue", "--user", "x"}, "--config is required"},
		{"issue user and service", nil, []string{"token", "issue", "--config", g.config, "--user", "x", "--service", "y"}, "exactly one of --user NAME or --service NAME"},
		{"issue bad scope", nil, []string{"token", "issue", "--config", g.config, "--user", "x", "--scope", "root"}, `unknown scope "root"`},
		{"issue bad name", nil, []string{"token", "issue", "--config", g.config, "--user", "a|b"}, "holds a space or '|'"},
		{"missing config file", nil, []string{"ca", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := g.user(t, good)
			for k, v := range tt.vars {
				u.vars[k] = v
			}
			u.fails(tt.want, tt.args...)
		})
	}
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is a CA that did not sign the gateway's certificate.
func otherCA(t *testing.T) string {
	t.Helper()
	u := &user{t: t, dir: t.TempDir(), vars: map[string]string{}}
	return writeTemp(t, u.must("ca", "--config", writeConfig(t, "store: sqlite://./x.db\n")))
}

func TestCA(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	u := g.user(t, "")
	if got := u.must("ca", "--config", g.config); got != string(g.srv.CAPEM()) {
		t.Fatalf("ca printed another CA than the gateway serves:\n%s", got)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(g.config), "state", "ca.pem")); err != nil || string(b) != string(g.srv.CAPEM()) {
		t.Fatalf("the CA is not kept beside the store: %v", err)
	}
}

func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	op := g.user(t, "")
	token := strings.TrimSpace(op.must("token", "issue", "--config", g.config, "--user", "dave", "--groups", "engineers"))

	// What `login` saves, then commands with no environment at all.
	u := g.user(t, "")
	c := &client{server: "https://" + g.srv.APIAddr(), caFile: u.vars["COUNTERSIGN_CA_CERT"]}
	env := &Env{Stdout: &bytes.Buffer{}, ConfigDir: func() (string, error) { return u.dir, nil }}
	if err := saveLogin(env, c, issuedFor(token)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(u.dir, "countersign", "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, fi.Mode())
	}
	u.vars = map[string]string{}
	if me := u.must("whoami"); !strings.Contains(me, "dave") {
		t.Fatalf("whoami from the credentials file:\n%s", me)
	}
	// The saved token goes only to the server it came from.
	u.vars["COUNTERSIGN_SERVER"] = "https://localhost:1"
	u.fails("not logged in", "whoami")
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	u := &user{t: t, dir: t.TempDir(), vars: map[string]string{}}
	u.fails("unknown key", "serve", "--config", writeConfig(t, "listen:\n  apii: 127.0.0.1:0\n"))
	u.fails("--config is required", "serve")
	u.fails("--log-level", "serve", "--config", writeConfig(t, testConfig), "--log-level", "loud")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	u := &user{t: t, dir: t.TempDir(), vars: map[string]string{}}
	if out := u.must("version"); !strings.HasPrefix(out, "countersign ") {
		t.Fatalf("version printed %q", out)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, testConfig)
	ctx, cancel := context.WithCancel(context.Background())
	serving := make(chan *Server, 1)
	env := &Env{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, Getenv: func(string) string { return "" }, OnServing: func(s *Server) { serving <- s }}
	exited := make(chan int, 1)
	go func() { exited <- Run(ctx, env, []string{"serve", "--config", path, "--drain-timeout", "5s"}) }()
	srv := <-serving
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	u := &user{t: t, dir: t.TempDir(), vars: map[string]string{"COUNTERSIGN_SERVER": srv.APIAddr(), "COUNTERSIGN_TOKEN": "cst_x"}}
	u.fails("cannot reach the gateway", "whoami", "--ca-cert", writeTemp(t, string(srv.CAPEM())))
}
