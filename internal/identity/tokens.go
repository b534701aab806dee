package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every countersign token, so secret scanners (and
// people) recognise a leaked one.
const TokenPrefix = "cst_"

// secretBytes is the token's entropy; 32 bytes base64url is 43 characters.
const secretBytes = 32

var secretLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// Errors of Authenticate. Each says how to get a working token; none ever
// contains the token.
var (
	ErrTokenInvalid = errors.New("the countersign token is not valid: run 'countersign login' (or ask your operator for a token)")
	ErrTokenExpired = errors.New("the countersign token has expired: run 'countersign login' (or ask your operator for a token)")
	ErrTokenRevoked = errors.New("the countersign token was revoked: run 'countersign login' (or ask your operator for a token)")
	// ErrTokenScope wraps refusals of a valid token used for something its
	// scopes do not cover.
	ErrTokenScope = errors.New("the countersign token does not allow this")
)

// TokenStore is the part of store.Store that tokens need. It is declared
// here because store imports identity.
type TokenStore interface {
	// Now is the store's clock: expiry is judged by it, so replicas agree.
	Now(ctx context.Context) (time.Time, error)
	UpsertIdentity(ctx context.Context, id Identity) error
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the token, revoked and expired ones included; an
	// unknown hash is an error whose chain holds an error with the text
	// "not found" (store.ErrNotFound).
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	RevokeToken(ctx context.Context, id string) error
}

// Tokens issues and checks countersign tokens. Secrets are shown once, by
// Issue; the store keeps only their SHA-256.
type Tokens struct {
	st TokenStore
	// roles is the role table the gateway runs with (identity.roles);
	// empty: a token keeps the roles it was issued with.
	roles map[string][]Role
}

// NewTokens returns Tokens backed by the store.
func NewTokens(st TokenStore) *Tokens { return &Tokens{st: st} }

// WithRoles makes every token authenticated from now on carry the roles its
// identity's groups have in table, not those it was issued with: a role the
// operator takes from a group (and restarts) is gone from every live token
// at once, API and database passwords alike (a resource token's break-glass
// or unmasked-role rights included). The groups stay the token's: they are
// the provider's word at login. An empty table leaves the roles alone.
func (ts *Tokens) WithRoles(table map[string][]Role) *Tokens {
	ts.roles = table
	return ts
}

// Issue makes a token for the identity with the scopes, valid for ttl from
// the store's clock. It records the identity as last seen. The secret is
// returned once and never stored.
func (ts *Tokens) Issue(ctx context.Context, id Identity, scopes []Scope, ttl time.Duration) (string, Token, error) {
	if err := checkIssue(id, scopes, ttl); err != nil {
		return "", Token{}, err
	}
	now, err := ts.st.Now(ctx)
	if err != nil {
		return "", Token{}, fmt.Errorf("issue token: read the store's clock: %w", err)
	}
	secret, tokID, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	t := Token{
		ID:        tokID,
		Hash:      HashSecret(secret),
		Identity:  id,
		Scopes:    append([]Scope(nil), scopes...),
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
	if err := ts.st.UpsertIdentity(ctx, id); err != nil {
		return "", Token{}, fmt.Errorf("issue token: record identity %s: %w", id.Display(), err)
	}
	if err := ts.st.CreateToken(ctx, t); err != nil {
		return "", Token{}, fmt.Errorf("issue token: store it: %w", err)
	}
	return secret, t, nil
}

// Revoke revokes the token with the public id at once (store time).
func (ts *Tokens) Revoke(ctx context.Context, tokenID string) error {
	if err := ts.st.RevokeToken(ctx, tokenID); err != nil {
		return fmt.Errorf("revoke token %s: %w (see 'countersign token list' for ids)", tokenID, err)
	}
	return nil
}

func checkIssue(id Identity, scopes []Scope, ttl time.Duration) error {
	if id.Issuer == "" || id.Subject == "" {
		return errors.New("issue token: the identity needs an issuer and a subject")
	}
	if ttl <= 0 {
		return fmt.Errorf("issue token: ttl must be positive, got %s", ttl)
	}
	if len(scopes) == 0 {
		return errors.New("issue token: at least one scope is needed (api, resources or resource:NAME)")
	}
	for _, s := range scopes {
		if !validScope(s) {
			return fmt.Errorf("issue token: unknown scope %q: use api, resources or resource:NAME", s)
		}
	}
	return nil
}

func validScope(s Scope) bool {
	switch s {
	case ScopeAPI, ScopeResources:
		return true
	}
	name, ok := strings.CutPrefix(string(s), resourceScopePrefix)
	return ok && name != ""
}

// newSecret returns a fresh secret and a public id, both from crypto/rand.
func newSecret() (secret, id string, err error) {
	b := make([]byte, secretBytes+4)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("issue token: no randomness: %w", err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:secretBytes])
	id = "tok-" + hex.EncodeToString(b[secretBytes:])
	return secret, id, nil
}

// HashSecret is what the store keeps of a token: its SHA-256.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// LooksLikeToken reports whether s has the shape of a countersign token.
// Engines use it to tell a token from some other password cheaply.
func LooksLikeToken(s string) bool {
	if len(s) != secretLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(TokenPrefix):])
	return err == nil
}

// Authenticate returns the token the secret belongs to if it is known, not
// revoked and not expired by the store's clock. Errors: ErrTokenInvalid,
// ErrTokenRevoked, ErrTokenExpired, or a wrapped store error (the store
// could not answer; refuse, but do not tell the person to log in again).
func (ts *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !LooksLikeToken(secret) {
		return Token{}, ErrTokenInvalid
	}
	now, err := ts.st.Now(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("check token: read the store's clock: %w", err)
	}
	hash := HashSecret(secret)
	t, err := ts.st.TokenByHash(ctx, hash)
	switch {
	case err != nil && isNotFound(err):
		return Token{}, ErrTokenInvalid
	case err != nil:
		return Token{}, fmt.Errorf("check token: %w", err)
	case subtle.ConstantTimeCompare(t.Hash, hash) != 1:
		// A store that answered with another token is broken: refuse.
		return Token{}, ErrTokenInvalid
	case t.RevokedAt != nil:
		return Token{}, ErrTokenRevoked
	case !now.Before(t.ExpiresAt):
		return Token{}, ErrTokenExpired
	}
	if len(ts.roles) > 0 {
		t.Identity.Roles = RolesFor(t.Identity.Groups, ts.roles)
	}
	return t, nil
}

// AuthenticateAPI authenticates a bearer token of the HTTP API: it must
// carry the api scope. A resource token (a database password) is refused.
func (ts *Tokens) AuthenticateAPI(ctx context.Context, secret string) (Token, error) {
	t, err := ts.Authenticate(ctx, secret)
	if err != nil {
		return Token{}, err
	}
	if !t.AllowsAPI() {
		return Token{}, fmt.Errorf("%w: it is a database password (%s) and cannot call the API; use the token of 'countersign login'",
			ErrTokenScope, scopeList(t.Scopes))
	}
	return t, nil
}

// AuthenticateResource authenticates a token given as the password of the
// resource: it must carry "resources" or "resource:NAME" for this resource.
// An API token from login is refused, so a leaked API token is no database
// password, and a leaked database password can never approve.
func (ts *Tokens) AuthenticateResource(ctx context.Context, secret, resource string) (Token, error) {
	t, err := ts.Authenticate(ctx, secret)
	if err != nil {
		return Token{}, err
	}
	if resource == "" || !t.AllowsResource(resource) {
		return Token{}, fmt.Errorf("%w: it is not a password for resource %q (it allows %s); run 'countersign connect %s' for one",
			ErrTokenScope, resource, scopeList(t.Scopes), resource)
	}
	return t, nil
}

func scopeList(scopes []Scope) string {
	if len(scopes) == 0 {
		return "nothing"
	}
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// isNotFound reports whether err means "no such record". identity cannot
// import store (store imports identity), so it recognises store.ErrNotFound
// by its text anywhere in the chain.
func isNotFound(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "not found" || e == ErrTokenInvalid {
			return true
		}
	}
	return false
}
