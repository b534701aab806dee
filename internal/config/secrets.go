package config

import (
	"fmt"
	"regexp"
)

// envName is what an environment variable's name looks like. A *_env value
// that is not one is most likely the secret itself, pasted into the wrong
// key, and is never repeated in the error.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Minimum key lengths: shorter HMAC keys make digests forgeable and hashed
// masked values guessable.
const (
	minDigestKey = 32
	minHashKey   = 16
)

// secrets reads every secret named by a *_env key into its yaml:"-" field.
func (k *checker) secrets() {
	c := k.c
	for i := range c.Resources {
		r := &c.Resources[i]
		p := at("resources", i)
		r.Password = k.env(p+".password_env", r.PasswordEnv, 0)
		for j := range r.Policy.Masking {
			m := &r.Policy.Masking[j]
			m.HashKey = secretBytes(k.env(at(p+".policy.masking", j)+".hash_key_env", m.HashKeyEnv, minHashKey))
		}
	}
	if o := c.Identity.OIDC; o != nil {
		o.ClientSecret = k.env("identity.oidc.client_secret_env", o.ClientSecretEnv, 0)
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		w.Secret = secretBytes(k.env(at("webhooks", i)+".secret_env", w.SecretEnv, 0))
	}
	c.Secrets.DigestKey = secretBytes(k.env("secrets.digest_key_env", c.Secrets.DigestKeyEnv, minDigestKey))
}

// env returns the value of the variable named at path ("" when none is
// named), recording an error when it is unset, empty or shorter than min.
func (k *checker) env(path, name string, min int) string {
	if !k.has(path) {
		return ""
	}
	if !envName.MatchString(name) {
		k.errf(path, "must be the name of an environment variable (letters, digits and _) that holds the secret, not the secret itself")
		return ""
	}
	v, ok := k.lookupEnv(name)
	switch {
	case !ok:
		k.errf(path, "environment variable %s is not set", name)
	case v == "":
		k.errf(path, "environment variable %s is empty", name)
	case len(v) < min:
		k.errf(path, "environment variable %s holds %d bytes; use at least %d random bytes (%s)", name, len(v), min, genHint(min))
	default:
		return v
	}
	return ""
}

func genHint(n int) string { return fmt.Sprintf("openssl rand -hex %d", n) }

// secretBytes keeps "no secret" as nil rather than an empty slice.
func secretBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
