package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
)

// designSample is the configuration of DESIGN.md, as written there.
const designSample = `listen:
  api: 127.0.0.1:8443          # HTTP API and web UI (TLS)
  postgres: 127.0.0.1:15432    # PostgreSQL clients connect here
  mysql: 127.0.0.1:13306
store: sqlite://./countersign.db   # or postgres://user:pass@host/db for several replicas
identity:
  oidc:                          # optional; production logins
    issuer: https://idp.example.com
    client_id: countersign
    client_secret_env: COUNTERSIGN_OIDC_SECRET
    groups_claim: groups
  roles:                         # OIDC (or local) group -> countersign roles
    engineers: [creator]
    dba-leads: [approver]
    sre-oncall: [creator, breakglass]
    audit: [auditor]
    platform-admins: [admin]
  approve_max_age: 15m           # approvals need a fresh OIDC login
resources:
  - name: pg-prod
    type: postgres
    address: 127.0.0.1:5432
    database: app
    username: app_owner
    password_env: PG_PROD_PASSWORD
    policy:
      access: [engineers, dba-leads, sre-oncall, audit]   # who may connect at all
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [dba-leads]
        approvals: 1
        mode: wait                 # wait | reject
        wait_timeout: 10m
      grants:
        max_duration: 4h
      masking:                     # first matching column rule wins; detectors cover the rest
        - columns: ["*.email"]
          strategy: partial
          keep_last: 4
        - columns: ["public.customers.ssn"]
          strategy: redact
          filter: deny               # no WHERE/JOIN/ORDER BY on it without an unmask grant
        - detectors: [email, credit_card, us_ssn]
          strategy: redact
`

// TestDesignSample loads DESIGN.md's sample and compares every field,
// defaults and secrets included.
func TestDesignSample(t *testing.T) {
	t.Setenv("COUNTERSIGN_OIDC_SECRET", "oidc-secret")
	t.Setenv("PG_PROD_PASSWORD", "pg-secret")
	dir := t.TempDir()
	name := filepath.Join(dir, "countersign.yaml")
	got, err := config.Parse(name, []byte(designSample))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Path: name,
		Listen: config.Listen{
			API: "127.0.0.1:8443", Postgres: "127.0.0.1:15432", MySQL: "127.0.0.1:13306",
		},
		Store:   "sqlite://" + filepath.Join(dir, "countersign.db"),
		DataDir: dir,
		Identity: config.Identity{
			OIDC: &config.OIDC{
				Issuer: "https://idp.example.com", ClientID: "countersign",
				ClientSecretEnv: "COUNTERSIGN_OIDC_SECRET", ClientSecret: "oidc-secret",
				GroupsClaim: "groups", Scopes: []string{"openid", "profile", "email"},
			},
			Roles: map[string][]string{
				"engineers": {"creator"}, "dba-leads": {"approver"}, "sre-oncall": {"creator", "breakglass"},
				"audit": {"auditor"}, "platform-admins": {"admin"},
			},
			ApproveMaxAge: 15 * time.Minute, APITokenTTL: 12 * time.Hour, ResourceTTL: time.Hour,
		},
		Resources: []config.Resource{{
			Name: "pg-prod", Type: "postgres", Address: "127.0.0.1:5432", Database: "app",
			Username: "app_owner", PasswordEnv: "PG_PROD_PASSWORD", Password: "pg-secret",
			UpstreamTLS: config.UpstreamTLS{Mode: "disable"},
			Policy: config.Policy{
				Access: []string{"engineers", "dba-leads", "sre-oncall", "audit"},
				Review: config.Review{
					Kinds:     []string{"write", "schema", "privilege", "admin", "unknown"},
					Approvers: []string{"dba-leads"}, Approvals: 1, Mode: "wait",
					WaitTimeout: 10 * time.Minute, ReviewTimeout: 24 * time.Hour, ValidFor: time.Hour,
				},
				Grants: config.Grants{MaxDuration: 4 * time.Hour, Allow: []string{"write", "schema", "unmask"}},
				Masking: []config.MaskRule{
					{Columns: []string{"*.email"}, Strategy: "partial", KeepLast: 4, Filter: "allow"},
					{Columns: []string{"public.customers.ssn"}, Strategy: "redact", Filter: "deny"},
					{Detectors: []string{"email", "credit_card", "us_ssn"}, Strategy: "redact", Filter: "allow"},
				},
			},
		}},
		Recording: config.Recording{CheckpointEvery: 1000, CheckpointInterval: 10 * time.Second},
		Limits:    config.Limits{MaxMessageBytes: 64 << 20, StartupTimeout: 10 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *got, *want)
	}
}

// TestDefaults checks what a minimal file gets filled in.
func TestDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := config.Parse(filepath.Join(dir, "min.yaml"), []byte(`
identity:
  oidc: {issuer: "http://127.0.0.1:5556/dex", client_id: cs}
resources:
  - name: pg
    type: postgres
    address: db.internal:5432
    username: app
    policy:
      masking:
        - column_regex: "(?i)ssn"
          strategy: "null"
`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"store", c.Store, "sqlite://" + filepath.Join(dir, "countersign.db")},
		{"data_dir", c.DataDir, dir},
		{"api_token_ttl", c.Identity.APITokenTTL, 12 * time.Hour},
		{"resource_token_ttl", c.Identity.ResourceTTL, time.Hour},
		{"approve_max_age", c.Identity.ApproveMaxAge, 15 * time.Minute},
		{"groups_claim", c.Identity.OIDC.GroupsClaim, "groups"},
		{"scopes", c.Identity.OIDC.Scopes, []string{"openid", "profile", "email"}},
		{"client_secret", c.Identity.OIDC.ClientSecret, ""},
		{"roles", c.Identity.Roles, map[string][]string{}},
		{"approvals", c.Resources[0].Policy.Review.Approvals, 1},
		{"mode", c.Resources[0].Policy.Review.Mode, "wait"},
		{"wait_timeout", c.Resources[0].Policy.Review.WaitTimeout, 10 * time.Minute},
		{"review_timeout", c.Resources[0].Policy.Review.ReviewTimeout, 24 * time.Hour},
		{"valid_for", c.Resources[0].Policy.Review.ValidFor, time.Hour},
		{"max_duration", c.Resources[0].Policy.Grants.MaxDuration, 4 * time.Hour},
		{"allow", c.Resources[0].Policy.Grants.Allow, []string{"write", "schema", "unmask"}},
		{"filter", c.Resources[0].Policy.Masking[0].Filter, "allow"},
		{"hash key", c.Resources[0].Policy.Masking[0].HashKey, []byte(nil)},
		{"tls mode", c.Resources[0].UpstreamTLS.Mode, "disable"},
		{"password", c.Resources[0].Password, ""},
		{"max_message_bytes", c.Limits.MaxMessageBytes, 64 << 20},
		{"startup_timeout", c.Limits.StartupTimeout, 10 * time.Second},
		{"checkpoint_every", c.Recording.CheckpointEvery, 1000},
		{"checkpoint_interval", c.Recording.CheckpointInterval, 10 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

// TestExplicitValuesWin checks that a written value is kept, not defaulted:
// an empty list is a choice ("no grants"), not a missing key.
func TestExplicitValuesWin(t *testing.T) {
	t.Parallel()
	c, err := config.Parse("x.yaml", []byte(`
store: postgresql://cs@db.internal:5432/countersign
data_dir: /var/lib/countersign
identity:
  api_token_ttl: 1d12h
  roles: {dba: [approver]}
limits: {max_message_bytes: 1_048_576, startup_timeout: 3s, idle_timeout: 400d}
resources:
  - name: my-1
    type: mysql
    address: "[::1]:3306"
    username: root
    schemas: [app, reports]
    connect_timeout: 2500ms
    tls: {mode: verify-full, server_name: db.internal}
    policy:
      review: {kinds: [read], approvers: [dba], approvals: 2, mode: reject}
      grants: {allow: [], max_duration: 30m}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resources[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"store", c.Store, "postgresql://cs@db.internal:5432/countersign"},
		{"data_dir", c.DataDir, "/var/lib/countersign"},
		{"api_token_ttl", c.Identity.APITokenTTL, 36 * time.Hour},
		{"max_message_bytes", c.Limits.MaxMessageBytes, 1 << 20},
		{"idle_timeout", c.Limits.IdleTimeout, 400 * 24 * time.Hour},
		{"approvals", r.Policy.Review.Approvals, 2},
		{"mode", r.Policy.Review.Mode, "reject"},
		{"allow", r.Policy.Grants.Allow, []string{}},
		{"max_duration", r.Policy.Grants.MaxDuration, 30 * time.Minute},
		{"tls", r.UpstreamTLS.Mode, "verify-full"},
		{"schemas", r.Schemas, []string{"app", "reports"}},
		{"connect_timeout", r.UpstreamConnectTimeout(), 2500 * time.Millisecond},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := c.SQLiteFile(); ok {
		t.Error("SQLiteFile reports a postgres store as SQLite")
	}
}

// TestExampleLoads loads examples/countersign.yaml exactly as shipped.
func TestExampleLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "examples", "countersign.yaml")
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	file, ok := c.SQLiteFile()
	if !ok || file != filepath.Join(examples, "data", "countersign.db") {
		t.Errorf("SQLite file = %q, %v", file, ok)
	}
	if c.DataDir != filepath.Join(examples, "data") {
		t.Errorf("DataDir = %q", c.DataDir)
	}
	r, ok := c.Resource("pg-prod")
	if !ok {
		t.Fatal("no pg-prod resource")
	}
	if r.Address != "127.0.0.1:5432" || r.Database != "postgres" || r.Username != "postgres" || r.PasswordEnv != "" {
		t.Errorf("pg-prod = %+v", r)
	}
	if c.Listen.API != "127.0.0.1:8443" || c.Listen.Postgres != "127.0.0.1:15432" || c.Listen.MySQL != "127.0.0.1:13306" {
		t.Errorf("listen = %+v", c.Listen)
	}
	if c.Identity.OIDC != nil {
		t.Error("the example configures OIDC; it must run without an identity provider")
	}
}

// TestEnsureDataDir makes the data directory with private permissions.
func TestEnsureDataDir(t *testing.T) {
	t.Parallel()
	c := &config.Config{DataDir: filepath.Join(t.TempDir(), "a", "data")}
	if err := c.EnsureDataDir(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode = %v, want 0700", fi.Mode().Perm())
	}
}

// TestKnownRoles keeps the roles the config accepts equal to identity's.
func TestKnownRoles(t *testing.T) {
	t.Parallel()
	for _, r := range identity.KnownRoles {
		src := "identity: {roles: {g: [" + string(r) + "]}}\nlisten: {api: 127.0.0.1:0}\n"
		if _, err := config.Parse("r.yaml", []byte(src)); err != nil {
			t.Errorf("role %s refused: %v", r, err)
		}
	}
}

// TestLoadErrors covers what Load adds to Parse: the file itself.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := config.Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, 5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(big)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Msg != "is larger than 4 MiB; is this the right file?" {
		t.Errorf("big file: %v", err)
	}
}

// TestListenPortZeroTwice: port 0 asks for a free port, so two listeners
// on 127.0.0.1:0 do not collide (tests and embedders use it).
func TestListenPortZeroTwice(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("countersign.yaml", []byte("listen: {api: 127.0.0.1:0, postgres: 127.0.0.1:0, mysql: 127.0.0.1:0}\n"))
	if err != nil {
		t.Fatal(err)
	}
}
