package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// resourceName is a DNS label: clients type it as a database (PostgreSQL)
// or user name (MySQL), and it appears in URLs and review ids.
var resourceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxMySQLUser is MySQL's limit on a user name, which a MySQL client uses to
// name the resource.
const maxMySQLUser = 32

func (k *checker) resources() {
	names := map[string]string{}
	for i := range k.c.Resources {
		p := at("resources", i)
		r := &k.c.Resources[i]
		if first, dup := names[r.Name]; dup && r.Name != "" {
			k.errf(p+".name", "%s is already the name of %s; resource names must be unique", r.Name, first)
		}
		names[r.Name] = p
		k.resource(p, r)
	}
}

func (k *checker) resource(p string, r *Resource) {
	switch {
	case r.Name == "":
		k.errf(p+".name", "is required: the name clients connect to, like pg-prod")
	case !resourceName.MatchString(r.Name):
		k.errf(p+".name", "must be lower-case letters, digits and '-' (at most 63, not starting or ending with '-'), like pg-prod; not %q", clip(r.Name))
	case r.Type == "mysql" && len(r.Name) > maxMySQLUser:
		k.errf(p+".name", "must be at most %d characters for a mysql resource: MySQL clients send it as their user name", maxMySQLUser)
	}
	if r.Type == "kubernetes" {
		k.errf(p+".type", "kubernetes resources are not supported yet; use postgres or mysql")
	} else {
		k.oneOf(p+".type", r.Type, []string{"postgres", "mysql"})
	}
	if r.Address == "" {
		k.errf(p+".address", "is required: the upstream's host:port, like 127.0.0.1:5432")
	} else {
		k.hostPort(p+".address", r.Address, false)
	}
	if r.Username == "" {
		k.errf(p+".username", "is required: the upstream user the gateway logs in as")
	}
	k.schemas(p+".schemas", r)
	switch {
	case r.ConnectTimeout < 0:
		k.errf(p+".connect_timeout", "must not be negative; leave it out for the default of %s", DefaultConnectTimeout)
	case r.ConnectTimeout > maxConnectTimeout:
		// A client waits this long for a login that cannot succeed.
		k.errf(p+".connect_timeout", "must be at most %s", maxConnectTimeout)
	}
	k.upstreamTLS(p+".tls", r.UpstreamTLS)
	switch {
	case r.Record.Results < 0:
		k.errf(p+".record.results", "must not be negative; 0 keeps no result rows")
	case r.Record.Results > maxRecordResults:
		// The rows ride in one event, which every export and sink holds
		// as one line.
		k.errf(p+".record.results", "must be at most %d rows per result", maxRecordResults)
	}
	k.policy(p+".policy", &r.Policy)
}

// maxConnectTimeout bounds connect_timeout.
const maxConnectTimeout = 5 * time.Minute

// maxRecordResults bounds record.results.
const maxRecordResults = 1000

// schemas checks a resource's allowed schemas: MySQL only, no empty or
// repeated names.
func (k *checker) schemas(p string, r *Resource) {
	if len(r.Schemas) > 0 && r.Type != "mysql" {
		k.errf(p, "only mysql resources have schemas; remove it, or use the upstream's own privileges")
		return
	}
	seen := map[string]bool{}
	for i, s := range r.Schemas {
		switch {
		case strings.TrimSpace(s) == "":
			k.errf(at(p, i), "a schema name must not be empty")
		case seen[s]:
			k.errf(at(p, i), "%s is listed twice", s)
		}
		seen[s] = true
	}
}

func (k *checker) upstreamTLS(p string, t UpstreamTLS) {
	if !k.oneOf(p+".mode", t.Mode, []string{"disable", "require", "verify-full"}) {
		return
	}
	if t.Mode == "disable" && (t.CAFile != "" || t.ServerName != "") {
		k.errf(p+".mode", "is disable, so ca_file and server_name would be ignored; set mode: verify-full")
	}
	// verify-full without ca_file verifies against the system roots.
	k.readable(p+".ca_file", t.CAFile)
	k.readable(p+".server_public_key_file", t.ServerPublicKeyFile)
	if b, err := os.ReadFile(t.ServerPublicKeyFile); t.ServerPublicKeyFile != "" && err == nil {
		if blk, _ := pem.Decode(b); blk == nil {
			k.errf(p+".server_public_key_file", "%s holds no PEM block; give the server's public key (its public_key.pem)", t.ServerPublicKeyFile)
		} else if key, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
			k.errf(p+".server_public_key_file", "%s: %v", t.ServerPublicKeyFile, err)
		} else if _, ok := key.(*rsa.PublicKey); !ok {
			k.errf(p+".server_public_key_file", "%s is not an RSA public key", t.ServerPublicKeyFile)
		}
	}
}

func (k *checker) policy(p string, pol *Policy) {
	k.groups(p+".access", pol.Access)
	k.review(p+".review", &pol.Review)
	k.grants(p+".grants", &pol.Grants)
	k.groups(p+".breakglass", pol.Breakglass)
	for i, g := range pol.Breakglass {
		k.groupHasRole(at(p+".breakglass", i), g, "breakglass", "break glass")
	}
	for i := range pol.Masking {
		k.maskRule(at(p+".masking", i), &pol.Masking[i])
	}
}

func (k *checker) review(p string, rv *Review) {
	seen := map[string]bool{}
	for i, name := range rv.Kinds {
		if k.oneOf(at(p+".kinds", i), name, KnownKinds) && seen[name] {
			k.errf(at(p+".kinds", i), "%s is listed twice", name)
		}
		seen[name] = true
	}
	k.groups(p+".approvers", rv.Approvers)
	if len(rv.Kinds) > 0 && len(rv.Approvers) == 0 {
		k.errf(p+".approvers", "is required when kinds are reviewed: list the groups whose members approve, like [dba-leads]")
	}
	for i, g := range rv.Approvers {
		k.groupHasRole(at(p+".approvers", i), g, "approver", "approve")
	}
	if rv.Approvals < 1 {
		k.errf(p+".approvals", "must be >= 1")
	}
	k.oneOf(p+".mode", rv.Mode, []string{"wait", "reject"})
	k.positive(p+".wait_timeout", rv.WaitTimeout)
	k.positive(p+".review_timeout", rv.ReviewTimeout)
	k.positive(p+".valid_for", rv.ValidFor)
}

func (k *checker) grants(p string, g *Grants) {
	k.positive(p+".max_duration", g.MaxDuration)
	seen := map[string]bool{}
	for i, a := range g.Allow {
		if k.oneOf(at(p+".allow", i), a, grantAccesses) && seen[a] {
			k.errf(at(p+".allow", i), "%s is listed twice", a)
		}
		seen[a] = true
	}
}

// groups checks a list of group names.
func (k *checker) groups(p string, gs []string) {
	for i, g := range gs {
		if strings.TrimSpace(g) == "" {
			k.errf(at(p, i), "a group name must not be empty")
		}
	}
}

// groupHasRole checks that identity.roles gives group the role, else the
// setting could never take effect.
func (k *checker) groupHasRole(p, group, role, verb string) {
	if group == "" || slices.Contains(k.c.Identity.Roles[group], role) {
		return
	}
	k.errf(p, "group %s does not have the %s role in identity.roles, so its members could never %s; add %s to its roles there", group, role, verb, role)
}
