package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/store"
)

// fixture is a real API over TLS on a real SQLite store.
type fixture struct {
	srv    *httptest.Server
	st     store.Store
	tokens *identity.Tokens
}

func testConfig() *config.Config {
	return &config.Config{
		Identity: config.Identity{
			Roles:       map[string][]string{"engineers": {"creator"}, "platform-admins": {"admin"}, "oncall": {"creator", "breakglass"}},
			APITokenTTL: 12 * time.Hour,
			ResourceTTL: time.Hour,
		},
		Resources: []config.Resource{
			{Name: "pg-prod", Type: "postgres", Policy: config.Policy{Access: []string{"engineers", "oncall"}, Breakglass: []string{"oncall"}}},
			{Name: "pg-closed", Type: "postgres"},
		},
	}
}

func newFixture(t *testing.T, login Login) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, tokens: identity.NewTokens(st)}
	h := New(Options{Config: testConfig(), Store: st, Tokens: f.tokens, Login: login, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler),
		Info: Info{Version: "test", Postgres: "127.0.0.1:15432", CAPEM: "PEM"}})
	f.srv = httptest.NewTLSServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// mint issues a token directly, as `countersign token issue` does.
func (f *fixture) mint(t *testing.T, user string, groups []string, scopes ...identity.Scope) (string, identity.Token) {
	t.Helper()
	id := identity.Identity{Issuer: identity.LocalIssuer, Subject: user, Groups: groups, Source: identity.SourceLocal,
		Roles: identity.RolesFor(groups, RoleTable(testConfig().Identity.Roles))}
	secret, tok, err := f.tokens.Issue(context.Background(), id, scopes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

type answer struct {
	status int
	body   []byte
}

func (a answer) errBody(t *testing.T) Error {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("error body is not the JSON error shape: %s", a.body)
	}
	return e.Error
}

func (f *fixture) do(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

func TestRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, _ := f.mint(t, "alice", []string{"engineers"}, identity.ScopeAPI, identity.ScopeResources)
	nobody, _ := f.mint(t, "nobody", nil, identity.ScopeAPI)
	dbOnly, _ := f.mint(t, "bob", []string{"engineers"}, identity.ResourceScope("pg-prod"))
	expired, _, err := f.tokens.Issue(context.Background(),
		identity.Identity{Issuer: identity.LocalIssuer, Subject: "eve", Source: identity.SourceLocal}, []identity.Scope{identity.ScopeAPI}, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	revoked, rtok := f.mint(t, "mallory", nil, identity.ScopeAPI)
	if err := f.tokens.Revoke(context.Background(), rtok.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string // "" for success
		msg          string // in the message, or in the body on success
	}{
		{"healthz", "GET", "/healthz", "", nil, 200, "", `"ok"`},
		{"readyz", "GET", "/readyz", "", nil, 200, "", `"ready"`},
		{"metrics", "GET", "/metrics", "", nil, 200, "", "countersign_reviews_pending"},
		{"info", "GET", "/v1/info", "", nil, 200, "", `"postgres": "127.0.0.1:15432"`},
		{"me without token", "GET", "/v1/me", "", nil, 401, CodeUnauthenticated, "Authorization: Bearer"},
		{"me with garbage", "GET", "/v1/me", "hello", nil, 401, CodeUnauthenticated, "not valid"},
		{"me with revoked", "GET", "/v1/me", revoked, nil, 401, CodeUnauthenticated, "revoked"},
		{"me with expired", "GET", "/v1/me", expired, nil, 401, CodeUnauthenticated, "expired"},
		{"me with basic auth", "GET", "/v1/me", "", nil, 401, CodeUnauthenticated, "no token"},
		{"me with resource token", "GET", "/v1/me", dbOnly, nil, 403, CodeForbidden, "database password"},
		{"me", "GET", "/v1/me", alice, nil, 200, "", `"creator"`},
		{"unknown path", "GET", "/v1/nope", alice, nil, 404, CodeNotFound, "no endpoint GET /v1/nope"},
		{"wrong method", "POST", "/v1/me", alice, nil, 405, CodeMethod, "allowed: GET"},
		{"connect unknown resource", "POST", "/v1/connect", alice, `{"resource":"nope"}`, 404, CodeNotFound, `"nope"`},
		{"connect without access", "POST", "/v1/connect", nobody, `{"resource":"pg-prod"}`, 403, CodeForbidden, "one of the groups engineers"},
		{"connect to closed resource", "POST", "/v1/connect", alice, `{"resource":"pg-closed"}`, 403, CodeForbidden, "nobody may connect"},
		{"connect with resource token", "POST", "/v1/connect", dbOnly, `{"resource":"pg-prod"}`, 403, CodeForbidden, "database password"},
		{"connect empty body", "POST", "/v1/connect", alice, "", 400, CodeBadRequest, "empty"},
		{"connect broken JSON", "POST", "/v1/connect", alice, "{", 400, CodeBadRequest, "not valid JSON"},
		{"connect unknown field", "POST", "/v1/connect", alice, `{"resource":"pg-prod","ttl":"9h"}`, 400, CodeBadRequest, "unknown field"},
		{"connect two objects", "POST", "/v1/connect", alice, `{"resource":"pg-prod"}{}`, 400, CodeBadRequest, "exactly one"},
		{"connect no name", "POST", "/v1/connect", alice, `{}`, 400, CodeBadRequest, "name the resource"},
		{"connect huge body", "POST", "/v1/connect", alice, `{"resource":"` + strings.Repeat("a", 2<<20) + `"}`, 413, CodeTooLarge, "1 MiB"},
		{"connect", "POST", "/v1/connect", alice, `{"resource":"pg-prod"}`, 200, "", `"resource": "pg-prod"`},
		{"login start without OIDC", "POST", "/v1/login/start", "", `{"redirect_uri":"http://127.0.0.1:1/cb"}`, 404, CodeNotConfigured, "countersign token issue"},
		{"login finish without OIDC", "POST", "/v1/login/finish", "", `{}`, 404, CodeNotConfigured, "identity.oidc"},
		{"device without OIDC", "POST", "/v1/login/device/start", "", nil, 404, CodeNotConfigured, "identity.oidc"},
		{"list all as non-admin", "GET", "/v1/tokens?all=true", alice, nil, 403, CodeForbidden, "admin role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, tt.method, tt.path, tt.token, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", a.status, tt.status, a.body)
			}
			if tt.code == "" {
				if !strings.Contains(string(a.body), tt.msg) {
					t.Fatalf("body lacks %q: %s", tt.msg, a.body)
				}
				return
			}
			e := a.errBody(t)
			if e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("error %s %q, want %s containing %q", e.Code, e.Message, tt.code, tt.msg)
			}
		})
	}
}

func TestConnectMintsResourceOnlyToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, _ := f.mint(t, "alice", []string{"engineers"}, identity.ScopeAPI)
	a := f.do(t, "POST", "/v1/connect", alice, map[string]string{"resource": "pg-prod"})
	if a.status != 200 {
		t.Fatalf("connect: %d %s", a.status, a.body)
	}
	var got Issued
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.Resource != "pg-prod" || got.Token == "" {
		t.Fatalf("connect answer %+v", got)
	}
	ctx := context.Background()
	if _, err := f.tokens.AuthenticateResource(ctx, got.Token, "pg-prod"); err != nil {
		t.Fatalf("resource token is no password for its resource: %v", err)
	}
	if _, err := f.tokens.AuthenticateResource(ctx, got.Token, "pg-closed"); err == nil {
		t.Fatal("resource token is a password for another resource")
	}
	if _, err := f.tokens.AuthenticateResource(ctx, alice, "pg-prod"); err == nil {
		t.Fatal("the API token is a database password")
	}
	if a := f.do(t, "GET", "/v1/me", got.Token, nil); a.status != 403 {
		t.Fatalf("resource token called the API: %d", a.status)
	}
	if d := time.Until(got.ExpiresAt); d > time.Hour+time.Minute || d < 50*time.Minute {
		t.Fatalf("resource token lives %v, want the configured hour", d)
	}
	wantEvents(t, f.st, map[string]int{"token.issue": 1})
}

func wantEvents(t *testing.T, st store.Store, want map[string]int) {
	t.Helper()
	evs, err := st.AdminEvents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range evs {
		got[e.Action]++
	}
	for action, n := range want {
		if got[action] != n {
			t.Errorf("%d %s admin events, want %d (all: %v)", got[action], action, n, got)
		}
	}
}

func TestTokensListAndRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, aliceTok := f.mint(t, "alice", []string{"engineers"}, identity.ScopeAPI)
	_, alice2 := f.mint(t, "alice", []string{"engineers"}, identity.ScopeAPI)
	bob, bobTok := f.mint(t, "bob", []string{"engineers"}, identity.ScopeAPI)
	admin, _ := f.mint(t, "root", []string{"platform-admins"}, identity.ScopeAPI)

	var list TokenList
	a := f.do(t, "GET", "/v1/tokens", alice, nil)
	if err := json.Unmarshal(a.body, &list); err != nil || len(list.Tokens) != 2 {
		t.Fatalf("alice lists %s", a.body)
	}
	for _, tok := range list.Tokens {
		if tok.Key != aliceTok.Identity.Key() {
			t.Fatalf("alice sees another's token %+v", tok)
		}
	}
	a = f.do(t, "GET", "/v1/tokens?all=true", admin, nil)
	if err := json.Unmarshal(a.body, &list); err != nil || len(list.Tokens) != 4 {
		t.Fatalf("admin lists %s", a.body)
	}
	if strings.Contains(string(a.body), alice) {
		t.Fatal("a token list holds a secret")
	}

	steps := []struct {
		name   string
		token  string
		id     string
		status int
	}{
		{"alice cannot revoke bob's", alice, bobTok.ID, 404},
		{"alice revokes her other token", alice, alice2.ID, 200},
		{"unknown id", admin, "tok-nope", 404},
		{"admin revokes bob's", admin, bobTok.ID, 200},
		{"bob's revoked token no longer works", bob, bobTok.ID, 401},
		{"alice revokes the token she calls with", alice, aliceTok.ID, 200},
		{"then it no longer works", alice, aliceTok.ID, 401},
	}
	for _, s := range steps {
		if a := f.do(t, "DELETE", "/v1/tokens/"+s.id, s.token, nil); a.status != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, a.status, s.status, a.body)
		}
	}
	wantEvents(t, f.st, map[string]int{"token.revoke": 3})
}

func TestReadyzFailsWhenStoreCloses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.st.Close()
	a := f.do(t, "GET", "/readyz", "", nil)
	if a.status != 503 || a.errBody(t).Code != CodeUnavailable {
		t.Fatalf("readyz on a closed store: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/healthz", "", nil); a.status != 200 {
		t.Fatalf("healthz: %d", a.status)
	}
}
