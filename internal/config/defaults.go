package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// storeAndDataDir makes the store URL absolute and chooses DataDir.
func (k *checker) storeAndDataDir() {
	c := k.c
	if !k.has("store") {
		c.Store = DefaultStore
	}
	sqliteDir := k.store()
	switch {
	case k.has("data_dir"):
		if c.DataDir == "" {
			k.errf("data_dir", "must not be empty; remove it to keep the data beside the store")
		}
		c.DataDir = k.abs(c.DataDir)
	case sqliteDir != "":
		c.DataDir = sqliteDir
	default:
		c.DataDir = k.dir
	}
}

// store checks the store URL, rewrites a relative SQLite path to an absolute
// one and returns the SQLite file's directory ("" for other stores). It
// never repeats the URL in an error: a postgres:// URL may hold a password.
func (k *checker) store() string {
	scheme, rest, ok := strings.Cut(k.c.Store, "://")
	switch {
	case ok && scheme == "sqlite":
		file, query, _ := strings.Cut(rest, "?")
		if file == "" {
			k.errf("store", "names no file; write sqlite://./countersign.db")
			return ""
		}
		if file == ":memory:" {
			return "" // tests only: nothing survives a restart
		}
		file = k.abs(file)
		k.c.Store = "sqlite://" + file
		if query != "" {
			k.c.Store += "?" + query
		}
		return filepath.Dir(file)
	case ok && (scheme == "postgres" || scheme == "postgresql"):
		if _, err := url.Parse(k.c.Store); err != nil {
			k.errf("store", "is not a valid %s:// URL; write postgres://user@host:5432/db (percent-encode special characters)", scheme)
		}
		return ""
	default:
		k.errf("store", "must start with sqlite:// (embedded, one gateway) or postgres:// (several replicas)")
		return ""
	}
}

// abs resolves a path from the file against the file's directory.
func (k *checker) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(k.dir, p)
}

// SQLiteFile returns the SQLite database file when the store is SQLite.
func (c *Config) SQLiteFile() (string, bool) {
	rest, ok := strings.CutPrefix(c.Store, "sqlite://")
	if !ok {
		return "", false
	}
	file, _, _ := strings.Cut(rest, "?")
	return file, true
}

// EnsureDataDir creates DataDir (mode 0700: it holds keys) if it is missing.
func (c *Config) EnsureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create the data directory: %w; create it or set data_dir", err)
	}
	return nil
}

// resolvePaths makes every file path in the config absolute.
func (k *checker) resolvePaths() {
	c := k.c
	for _, p := range []*string{&c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.CAFile, &c.Recording.SigningKeyFile} {
		*p = k.abs(*p)
	}
	for i := range c.Recording.Sinks {
		c.Recording.Sinks[i].Path = k.abs(c.Recording.Sinks[i].Path)
	}
	for i := range c.Resources {
		c.Resources[i].UpstreamTLS.CAFile = k.abs(c.Resources[i].UpstreamTLS.CAFile)
		c.Resources[i].UpstreamTLS.ServerPublicKeyFile = k.abs(c.Resources[i].UpstreamTLS.ServerPublicKeyFile)
	}
}

// defaults fills every key the file left out.
func (k *checker) defaults() {
	c := k.c
	k.duration("identity.api_token_ttl", &c.Identity.APITokenTTL, 12*time.Hour)
	k.duration("identity.resource_token_ttl", &c.Identity.ResourceTTL, time.Hour)
	k.duration("identity.approve_max_age", &c.Identity.ApproveMaxAge, 15*time.Minute)
	if c.Identity.Roles == nil {
		c.Identity.Roles = map[string][]string{}
	}
	if o := c.Identity.OIDC; o != nil {
		k.str("identity.oidc.groups_claim", &o.GroupsClaim, "groups")
		if !k.has("identity.oidc.scopes") {
			o.Scopes = []string{"openid", "profile", "email"}
		}
	}
	k.integer("limits.max_message_bytes", &c.Limits.MaxMessageBytes, DefaultMaxMessageBytes)
	k.duration("limits.startup_timeout", &c.Limits.StartupTimeout, 10*time.Second)
	k.integer("recording.checkpoint_every", &c.Recording.CheckpointEvery, 1000)
	k.duration("recording.checkpoint_interval", &c.Recording.CheckpointInterval, 10*time.Second)
	for i := range c.Webhooks {
		k.str(at("webhooks", i)+".format", &c.Webhooks[i].Format, "json")
	}
	for i := range c.Resources {
		k.resourceDefaults(at("resources", i), &c.Resources[i])
	}
}

func (k *checker) resourceDefaults(path string, r *Resource) {
	k.str(path+".tls.mode", &r.UpstreamTLS.Mode, "disable")
	rv, rp := &r.Policy.Review, path+".policy.review"
	k.integer(rp+".approvals", &rv.Approvals, 1)
	k.str(rp+".mode", &rv.Mode, "wait")
	k.duration(rp+".wait_timeout", &rv.WaitTimeout, 10*time.Minute)
	k.duration(rp+".review_timeout", &rv.ReviewTimeout, 24*time.Hour)
	k.duration(rp+".valid_for", &rv.ValidFor, time.Hour)
	g, gp := &r.Policy.Grants, path+".policy.grants"
	k.duration(gp+".max_duration", &g.MaxDuration, 4*time.Hour)
	if !k.has(gp + ".allow") {
		g.Allow = []string{"write", "schema", "unmask"}
	}
	for i := range r.Policy.Masking {
		k.str(at(path+".policy.masking", i)+".filter", &r.Policy.Masking[i].Filter, "allow")
	}
}

func (k *checker) duration(path string, v *time.Duration, def time.Duration) {
	if !k.has(path) {
		*v = def
	}
}

func (k *checker) integer(path string, v *int, def int) {
	if !k.has(path) {
		*v = def
	}
}

func (k *checker) str(path string, v *string, def string) {
	if !k.has(path) {
		*v = def
	}
}
