package config

import (
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (k *checker) validate() {
	k.listen()
	k.tlsFiles()
	k.identity()
	k.resources()
	k.recording()
	k.webhooks()
	k.limits()
}

func (k *checker) listen() {
	l := k.c.Listen
	seen := map[string]string{}
	for _, a := range []struct{ key, addr string }{
		{"listen.api", l.API}, {"listen.postgres", l.Postgres}, {"listen.mysql", l.MySQL},
	} {
		if a.addr == "" {
			continue
		}
		if !k.hostPort(a.key, a.addr, true) {
			continue
		}
		if strings.HasSuffix(a.addr, ":0") {
			continue // port 0: each listener gets a free port of its own
		}
		if other, dup := seen[a.addr]; dup {
			k.errf(a.key, "uses the same address as %s; give each listener its own port", other)
		}
		seen[a.addr] = a.key
	}
	for i, h := range l.Hostnames {
		if !validHost(h) {
			k.errf(at("listen.hostnames", i), "must be a host name or IP address, not %q", clip(h))
		}
	}
}

// hostPort checks a host:port address. Listeners may leave the host empty
// (all interfaces) and use port 0 (any free port, for tests).
func (k *checker) hostPort(path, addr string, listener bool) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.errf(path, "must be host:port, like 127.0.0.1:5432, not %q", clip(addr))
		return false
	}
	n, perr := strconv.ParseUint(port, 10, 16)
	switch {
	case perr != nil || (n == 0 && !listener):
		k.errf(path, "port must be a number from 1 to 65535, not %q", clip(port))
	case host == "" && !listener:
		k.errf(path, "needs a host, like 127.0.0.1:%s", port)
	case host != "" && !validHost(host):
		k.errf(path, "host must be a host name or IP address, not %q", clip(host))
	default:
		return true
	}
	return false
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (k *checker) tlsFiles() {
	t := k.c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		k.errf("tls", "cert_file and key_file go together; set both, or neither to use the local CA made at first start")
	}
	k.readable("tls.cert_file", t.CertFile)
	k.readable("tls.key_file", t.KeyFile)
	k.readable("tls.ca_file", t.CAFile)
}

// readable checks that a named file exists now, so a typo in a path shows
// at load and not at the first connection.
func (k *checker) readable(path, file string) {
	if file == "" {
		return
	}
	if fi, err := os.Stat(file); err != nil {
		k.errf(path, "cannot read %s: %v", file, unwrapPathErr(err))
	} else if fi.IsDir() {
		k.errf(path, "%s is a directory; name the file", file)
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (k *checker) identity() {
	id := k.c.Identity
	k.positive("identity.api_token_ttl", id.APITokenTTL)
	k.positive("identity.resource_token_ttl", id.ResourceTTL)
	k.positive("identity.approve_max_age", id.ApproveMaxAge)
	for _, g := range sortedKeys(id.Roles) {
		p := joinKey("identity.roles", g)
		if strings.TrimSpace(g) == "" {
			k.errf(p, "a group name must not be empty")
		}
		for i, r := range id.Roles[g] {
			k.oneOf(at(p, i), r, knownRoles)
		}
	}
	if id.OIDC != nil {
		k.oidc(id.OIDC)
	}
}

func (k *checker) oidc(o *OIDC) {
	const p = "identity.oidc"
	if o.Issuer == "" {
		k.errf(p+".issuer", "is required: the URL of your identity provider, like https://idp.example.com")
	} else {
		k.httpsURL(p+".issuer", o.Issuer)
	}
	if o.ClientID == "" {
		k.errf(p+".client_id", "is required: the client id registered for countersign at the identity provider")
	}
	if o.GroupsClaim == "" {
		k.errf(p+".groups_claim", "must not be empty; remove it to use the \"groups\" claim")
	}
	if !slices.Contains(o.Scopes, "openid") {
		k.errf(p+".scopes", "must include openid")
	}
}

// httpsURL accepts https URLs, and http ones only on a loopback host (a
// provider or receiver on the same machine, as in tests).
func (k *checker) httpsURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		k.errf(path, "must be an https:// URL, not %q", clip(raw))
		return
	}
	if u.User != nil {
		k.errf(path, "must not hold a user or password; secrets go in *_env keys")
		return
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		k.errf(path, "must use https; plain http is allowed only for a loopback host (localhost, 127.0.0.1, ::1)")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (k *checker) recording() {
	r := k.c.Recording
	if r.CheckpointEvery < 1 {
		k.errf("recording.checkpoint_every", "must be >= 1")
	}
	k.positive("recording.checkpoint_interval", r.CheckpointInterval)
	if r.Retention < 0 {
		k.errf("recording.retention", "must not be negative; 0 keeps everything")
	}
	for i, s := range r.Sinks {
		p := at("recording.sinks", i)
		if !k.oneOf(p+".type", s.Type, []string{"file", "webhook"}) {
			continue
		}
		switch {
		case s.Type == "file" && s.Path == "":
			k.errf(p+".path", "is required for a file sink")
		case s.Type == "webhook" && s.URL == "":
			k.errf(p+".url", "is required for a webhook sink")
		case s.Type == "webhook":
			k.httpsURL(p+".url", s.URL)
		}
	}
}

func (k *checker) webhooks() {
	for i, w := range k.c.Webhooks {
		p := at("webhooks", i)
		if w.URL == "" {
			k.errf(p+".url", "is required")
		} else {
			k.httpsURL(p+".url", w.URL)
		}
		k.oneOf(p+".format", w.Format, []string{"json", "slack"})
	}
}

func (k *checker) limits() {
	l := k.c.Limits
	if l.MaxMessageBytes < 4096 || l.MaxMessageBytes > 1<<30 {
		k.errf("limits.max_message_bytes", "must be from 4096 to 1073741824 (1 GiB); the default is 67108864 (64 MiB)")
	}
	k.positive("limits.startup_timeout", l.StartupTimeout)
	if l.IdleTimeout < 0 {
		k.errf("limits.idle_timeout", "must not be negative; 0 means no idle timeout")
	}
}

func (k *checker) positive(path string, d time.Duration) {
	if d <= 0 {
		k.errf(path, "must be longer than 0")
	}
}

// oneOf checks v against the allowed values, suggesting the nearest.
func (k *checker) oneOf(path, v string, allowed []string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	if v == "" {
		k.errf(path, "is required: one of %s", strings.Join(allowed, ", "))
		return false
	}
	if s := suggest(v, allowed); s != "" {
		k.errf(path, "must be one of %s, not %q (did you mean %s?)", strings.Join(allowed, ", "), clip(v), s)
		return false
	}
	k.errf(path, "must be one of %s, not %q", strings.Join(allowed, ", "), clip(v))
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
