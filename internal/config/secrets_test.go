package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// TestSecretsRead checks that every *_env key lands in its field, and that
// the file keeps only the variable's name.
func TestSecretsRead(t *testing.T) {
	t.Setenv("CS_TEST_PG", "pg-pass")
	t.Setenv("CS_TEST_HASH", "0123456789abcdef")
	t.Setenv("CS_TEST_WEBHOOK", "wh")
	t.Setenv("CS_TEST_DIGEST", strings.Repeat("k", 32))
	t.Setenv("CS_TEST_OIDC", "oidc")
	c, err := config.Parse("countersign.yaml", []byte(`
identity:
  oidc: {issuer: "https://idp.example.com", client_id: cs, client_secret_env: CS_TEST_OIDC}
secrets: {digest_key_env: CS_TEST_DIGEST}
webhooks: [{url: "https://hooks.example.com/x", secret_env: CS_TEST_WEBHOOK}]
resources:
  - name: pg
    type: postgres
    address: 127.0.0.1:5432
    username: app
    password_env: CS_TEST_PG
    policy:
      masking: [{columns: [a.b], strategy: hash, hash_key_env: CS_TEST_HASH}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{
		c.Resources[0].Password, string(c.Resources[0].Policy.Masking[0].HashKey),
		string(c.Webhooks[0].Secret), string(c.Secrets.DigestKey), c.Identity.OIDC.ClientSecret,
	}
	want := []string{"pg-pass", "0123456789abcdef", "wh", strings.Repeat("k", 32), "oidc"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("secret %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestEmptyVariable checks that a variable set to "" counts as missing.
func TestEmptyVariable(t *testing.T) {
	t.Setenv("CS_TEST_EMPTY", "")
	_, err := config.Parse("countersign.yaml", []byte(head+"    password_env: CS_TEST_EMPTY\n"))
	want := "countersign.yaml:8: resources[0].password_env: environment variable CS_TEST_EMPTY is empty"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestRelativePaths checks that paths are resolved against the file's
// directory, not the working directory, and that named files must exist.
func TestRelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := head + "    tls: {mode: verify-full, ca_file: ca.pem}\n" +
		"recording: {signing_key_file: keys/sign.key, sinks: [{type: file, path: audit.jsonl}]}\n" +
		"store: sqlite://db/cs.db?_pragma=busy_timeout(5000)\n"
	c, err := config.Parse(filepath.Join(dir, "countersign.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"ca_file":          c.Resources[0].UpstreamTLS.CAFile,
		"signing_key_file": c.Recording.SigningKeyFile,
		"sink path":        c.Recording.Sinks[0].Path,
		"store":            c.Store,
		"data_dir":         c.DataDir,
	}
	want := map[string]string{
		"ca_file":          filepath.Join(dir, "ca.pem"),
		"signing_key_file": filepath.Join(dir, "keys", "sign.key"),
		"sink path":        filepath.Join(dir, "audit.jsonl"),
		"store":            "sqlite://" + filepath.Join(dir, "db", "cs.db") + "?_pragma=busy_timeout(5000)",
		"data_dir":         filepath.Join(dir, "db"),
	}
	for k, got := range checks {
		if got != want[k] {
			t.Errorf("%s = %q, want %q", k, got, want[k])
		}
	}
	if f, ok := c.SQLiteFile(); !ok || f != filepath.Join(dir, "db", "cs.db") {
		t.Errorf("SQLiteFile = %q, %v", f, ok)
	}
	// The same file elsewhere: ca.pem is not there.
	_, err = config.Parse(filepath.Join(t.TempDir(), "countersign.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "resources[0].tls.ca_file: cannot read ") {
		t.Errorf("missing ca_file accepted: %v", err)
	}
}

// TestAnchors checks YAML reuse: x-* blocks, aliases and merges, with an
// explicit key winning over a merged one.
func TestAnchors(t *testing.T) {
	t.Parallel()
	c, err := config.Parse("countersign.yaml", []byte(`
x-policy: &pol
  access: [dev]
  review: {kinds: [write], approvers: [dba], approvals: 2}
identity:
  roles: {dba: [approver], dev: [creator]}
resources:
  - name: a
    type: postgres
    address: 127.0.0.1:5432
    username: app
    policy: *pol
  - name: b
    type: postgres
    address: 127.0.0.1:5432
    username: app
    policy:
      <<: *pol
      access: [dba]
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Resources[0].Policy, c.Resources[1].Policy
	if a.Review.Approvals != 2 || b.Review.Approvals != 2 {
		t.Errorf("approvals = %d, %d; want 2, 2", a.Review.Approvals, b.Review.Approvals)
	}
	if a.Access[0] != "dev" || b.Access[0] != "dba" {
		t.Errorf("access = %v, %v; want [dev], [dba]", a.Access, b.Access)
	}
}
