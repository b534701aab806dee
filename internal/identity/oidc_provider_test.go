package identity_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/countersign/countersign/internal/identity"
)

// This file runs a real OIDC provider (oauth2-proxy/mockoidc) over HTTP:
// discovery, JWKS, authorize, token, all signed with RS256. Tests shape
// what it issues through the User it hands out and through middleware, set
// before the server starts.

// testRoles is the identity.roles table of the tests.
var testRoles = map[string][]identity.Role{
	"engineers": {identity.RoleCreator},
	"dba-leads": {identity.RoleApprover},
	"audit":     {identity.RoleAuditor},
}

// startProvider starts a mockoidc server, applying setup before it serves.
func startProvider(t *testing.T, setup func(m *mockoidc.MockOIDC)) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatalf("mockoidc: %v", err)
	}
	if setup != nil {
		setup(m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("start mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// newOIDC connects the gateway side to the provider.
func newOIDC(t *testing.T, m *mockoidc.MockOIDC, edit func(*identity.OIDCConfig)) *identity.OIDC {
	t.Helper()
	cfg := identity.OIDCConfig{
		Issuer:       m.Issuer(),
		ClientID:     m.ClientID,
		ClientSecret: m.ClientSecret,
		Scopes:       []string{"openid", "email", "profile", "groups"},
		Roles:        testRoles,
	}
	if edit != nil {
		edit(&cfg)
	}
	o, err := identity.NewOIDC(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return o
}

// loopback is the CLI's loopback redirect listener: it captures the code
// and state the provider redirects the browser to.
type loopback struct {
	srv   *httptest.Server
	mu    sync.Mutex
	query url.Values
}

func newLoopback(t *testing.T) *loopback {
	lb := &loopback{}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lb.mu.Lock()
		lb.query = r.URL.Query()
		lb.mu.Unlock()
		_, _ = w.Write([]byte("You are logged in; return to the terminal."))
	}))
	t.Cleanup(lb.srv.Close)
	return lb
}

func (lb *loopback) redirectURI() string { return lb.srv.URL + "/callback" }

// browse plays the browser: it opens the authorization URL and follows the
// redirect to the loopback listener, then returns what arrived there.
func (lb *loopback) browse(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	res, err := http.Get(authURL)
	if err != nil {
		t.Fatalf("browse %s: %v", authURL, err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("authorization ended with HTTP %d at %s", res.StatusCode, res.Request.URL)
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.query.Get("code"), lb.query.Get("state")
}

// login runs Start, the browser and returns state and code for Finish.
func login(t *testing.T, o *identity.OIDC) (state, code, authURL string) {
	t.Helper()
	lb := newLoopback(t)
	authURL, state, err := o.Start(context.Background(), lb.redirectURI())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	code, gotState := lb.browse(t, authURL)
	if gotState != state || code == "" {
		t.Fatalf("loopback got state %q code %q, want state %q and a code", gotState, code, state)
	}
	return state, code, authURL
}

// claimsUser is a mockoidc user whose ID token claims a test shapes: edit
// changes the registered claims (iss, aud, exp, nonce), extra adds claims.
type claimsUser struct {
	sub   string
	extra map[string]any
	edit  func(*mockoidc.IDTokenClaims)
}

func (u claimsUser) ID() string { return u.sub }

func (u claimsUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub})
}

func (u claimsUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if u.edit != nil {
		u.edit(base)
	}
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, err
	}
	for k, v := range u.extra {
		claims[k] = v
	}
	return claims, nil
}

// fixedClock is a clock a test moves by hand.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
