package identity_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
)

var alice = identity.Identity{Issuer: "https://idp.example", Subject: "u-alice", Email: "alice@example.com",
	Groups: []string{"engineers"}, Roles: []identity.Role{identity.RoleCreator}, Source: identity.SourceOIDC}

func TestIssueStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newTokenEnv(t)
	ts := identity.NewTokens(env)
	secret, tok, err := ts.Issue(ctx, alice, []identity.Scope{identity.ScopeAPI}, 12*time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if !regexp.MustCompile(`^cst_[A-Za-z0-9_-]{43}$`).MatchString(secret) {
		t.Errorf("the secret does not look like cst_ + 32 bytes base64url")
	}
	if !regexp.MustCompile(`^tok-[0-9a-f]{8}$`).MatchString(tok.ID) {
		t.Errorf("token id = %q, want tok- and 8 hex digits", tok.ID)
	}
	stored, err := env.ListTokens(ctx, store.TokenFilter{})
	if err != nil || len(stored) != 1 {
		t.Fatalf("store holds %d tokens (%v), want 1", len(stored), err)
	}
	sum := sha256.Sum256([]byte(secret))
	if !bytes.Equal(stored[0].Hash, sum[:]) {
		t.Errorf("stored hash is not the SHA-256 of the secret")
	}
	if want := stored[0].CreatedAt.Add(12 * time.Hour); !stored[0].ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (store clock + ttl)", stored[0].ExpiresAt, want)
	}
	// The store's files: the hash is there, the secret is nowhere.
	if !env.fileBytesContain(t, sum[:]) {
		t.Fatalf("the token's hash is not in the store's files: the check below would prove nothing")
	}
	if env.fileBytesContain(t, []byte(secret[len(identity.TokenPrefix):])) {
		t.Errorf("the store's files hold the secret token")
	}
	got, err := ts.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Identity.Key() != alice.Key() || !slices.Equal(got.Identity.Roles, alice.Roles) {
		t.Errorf("Authenticate = %+v, %v", got, err)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	t.Parallel()
	ts := identity.NewTokens(newTokenEnv(t))
	api := []identity.Scope{identity.ScopeAPI}
	tests := []struct {
		name   string
		id     identity.Identity
		scopes []identity.Scope
		ttl    time.Duration
		want   string
	}{
		{"no subject", identity.Identity{Issuer: "x"}, api, time.Hour, "subject"},
		{"zero ttl", alice, api, 0, "ttl"},
		{"negative ttl", alice, api, -time.Hour, "ttl"},
		{"no scopes", alice, nil, time.Hour, "scope"},
		{"unknown scope", alice, []identity.Scope{"admin"}, time.Hour, `unknown scope "admin"`},
		{"empty resource scope", alice, []identity.Scope{identity.ResourceScope("")}, time.Hour, "unknown scope"},
	}
	for _, tc := range tests {
		_, _, err := ts.Issue(context.Background(), tc.id, tc.scopes, tc.ttl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestExpiryAndRevocationTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newTokenEnv(t)
	ts := identity.NewTokens(st)
	api := []identity.Scope{identity.ScopeAPI}

	expiring, _, err := ts.Issue(ctx, alice, api, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	revoked, revTok, err := ts.Issue(ctx, alice, api, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{expiring, revoked} {
		if _, err := ts.Authenticate(ctx, s); err != nil {
			t.Fatalf("fresh token refused: %v", err)
		}
	}
	if err := ts.Revoke(ctx, revTok.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := ts.AuthenticateAPI(ctx, revoked); !errors.Is(err, identity.ErrTokenRevoked) {
		t.Errorf("revoked token: err = %v, want ErrTokenRevoked", err)
	}
	st.advance(time.Hour - time.Minute)
	if _, err := ts.Authenticate(ctx, expiring); err != nil {
		t.Errorf("token refused before its expiry: %v", err)
	}
	st.advance(time.Minute)
	if _, err := ts.AuthenticateAPI(ctx, expiring); !errors.Is(err, identity.ErrTokenExpired) {
		t.Errorf("token at its expiry: err = %v, want ErrTokenExpired", err)
	}
	if err := ts.Revoke(ctx, "tok-00000000"); err == nil || !strings.Contains(err.Error(), "countersign token list") {
		t.Errorf("revoke unknown id: err = %v, want one pointing at 'countersign token list'", err)
	}
}

func TestAuthenticateRefusesUnknownTokens(t *testing.T) {
	t.Parallel()
	ts := identity.NewTokens(newTokenEnv(t))
	for _, s := range []string{
		"", "cst_", "not-a-token", "Bearer cst_xyz",
		"cst_" + strings.Repeat("A", 43), // right shape, never issued
		"cst_" + strings.Repeat("!", 43), // right length, not base64url
		"CST_" + strings.Repeat("A", 43),
	} {
		_, err := ts.Authenticate(context.Background(), s)
		if !errors.Is(err, identity.ErrTokenInvalid) {
			t.Errorf("Authenticate(%q): err = %v, want ErrTokenInvalid", s, err)
			continue
		}
		if !strings.Contains(err.Error(), "run 'countersign login' (or ask your operator for a token)") || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("error %q should say what to do and never echo the token", err)
		}
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := identity.NewTokens(newTokenEnv(t))
	issue := func(scopes ...identity.Scope) string {
		s, _, err := ts.Issue(ctx, alice, scopes, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	apiTok := issue(identity.ScopeAPI)
	pgProd := issue(identity.ResourceScope("pg-prod"))
	operator := issue(identity.ScopeAPI, identity.ScopeResources)

	tests := []struct {
		name     string
		secret   string
		resource string // "" = the API
		ok       bool
		want     string
	}{
		{"API token calls the API", apiTok, "", true, ""},
		{"API token is no database password", apiTok, "pg-prod", false, "not a password for resource \"pg-prod\""},
		{"resource token is its resource's password", pgProd, "pg-prod", true, ""},
		{"resource token refused by another resource", pgProd, "mysql-prod", false, "countersign connect mysql-prod"},
		{"resource token refused by a prefix resource", pgProd, "pg-prod2", false, "not a password"},
		{"resource token refused by the API", pgProd, "", false, "cannot call the API"},
		{"resource token with no resource", pgProd, "", false, "cannot call the API"},
		{"operator token calls the API", operator, "", true, ""},
		{"operator token is every resource's password", operator, "mysql-prod", true, ""},
	}
	for _, tc := range tests {
		var err error
		if tc.resource == "" {
			_, err = ts.AuthenticateAPI(ctx, tc.secret)
		} else {
			_, err = ts.AuthenticateResource(ctx, tc.secret, tc.resource)
		}
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && (!errors.Is(err, identity.ErrTokenScope) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want ErrTokenScope mentioning %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), tc.secret):
			t.Errorf("%s: error echoes the token", tc.name)
		}
	}
	if _, err := ts.AuthenticateResource(ctx, operator, ""); !errors.Is(err, identity.ErrTokenScope) {
		t.Errorf("empty resource name: err = %v, want ErrTokenScope", err)
	}
}

// failingStore is a store that cannot answer: tokens are refused, but not
// with "log in again".
type failingStore struct{ *tokenEnv }

var errDown = errors.New("database is down")

func (failingStore) TokenByHash(context.Context, []byte) (identity.Token, error) {
	return identity.Token{}, errDown
}

func TestAuthenticateStoreFailureIsNotInvalid(t *testing.T) {
	t.Parallel()
	ts := identity.NewTokens(failingStore{tokenEnv: newTokenEnv(t)})
	_, err := ts.Authenticate(context.Background(), "cst_"+strings.Repeat("A", 43))
	if !errors.Is(err, errDown) || errors.Is(err, identity.ErrTokenInvalid) {
		t.Errorf("err = %v, want the store's error, not ErrTokenInvalid", err)
	}
}
