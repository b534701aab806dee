package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/identity"
	"github.com/oauth2-proxy/mockoidc"
)

// newOIDC runs a real OIDC provider (mockoidc: discovery, JWKS, signed ID
// tokens) and the gateway side of it.
func newOIDC(t *testing.T, user mockoidc.User) *identity.OIDC {
	t.Helper()
	m := startIDP(t)
	m.QueueUser(user)
	o, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{
		Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"}, Roles: RoleTable(testConfig().Identity.Roles),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// browse plays the browser and the CLI's loopback listener: it follows the
// provider's redirects and returns the query the callback received.
func browse(t *testing.T, f *fixture) (state, code string) {
	t.Helper()
	got := make(chan [2]string, 1)
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- [2]string{r.URL.Query().Get("state"), r.URL.Query().Get("code")}
	}))
	defer lb.Close()
	a := f.do(t, "POST", "/v1/login/start", "", map[string]string{"redirect_uri": lb.URL + "/callback"})
	var ls LoginStart
	if err := json.Unmarshal(a.body, &ls); err != nil || a.status != 200 {
		t.Fatalf("login/start: %d %s", a.status, a.body)
	}
	res, err := http.Get(ls.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	q := <-got
	if q[0] != ls.State {
		t.Fatalf("callback state %q, want %q", q[0], ls.State)
	}
	return q[0], q[1]
}

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newOIDC(t, &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"engineers"}}))
	state, code := browse(t, f)
	a := f.do(t, "POST", "/v1/login/finish", "", map[string]string{"state": state, "code": code})
	if a.status != 200 {
		t.Fatalf("login/finish: %d %s", a.status, a.body)
	}
	var got Issued
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Identity.Source != "oidc" || got.Identity.Subject != "u-alice" || strings.Join(got.Identity.Roles, ",") != "creator" {
		t.Fatalf("login identity %+v", got.Identity)
	}
	me := f.do(t, "GET", "/v1/me", got.Token, nil)
	if me.status != 200 || !strings.Contains(string(me.body), "alice@example.com") {
		t.Fatalf("me with the login's token: %d %s", me.status, me.body)
	}
	if _, err := f.tokens.AuthenticateResource(context.Background(), got.Token, "pg-prod"); err == nil {
		t.Fatal("the login's API token is a database password")
	}
	// The same state and code again: a replay.
	again := f.do(t, "POST", "/v1/login/finish", "", map[string]string{"state": state, "code": code})
	if e := again.errBody(t); again.status != 401 || e.Code != CodeUnauthenticated || !strings.Contains(e.Message, "already finished") {
		t.Fatalf("replayed login: %d %s", again.status, again.body)
	}
	wantEvents(t, f.st, map[string]int{"token.issue": 1})
}

func TestLoginBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, newOIDC(t, &mockoidc.MockUser{Subject: "u-x"}))
	tests := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"remote redirect", "/v1/login/start", `{"redirect_uri":"https://evil.example/cb"}`, 400, "not allowed"},
		{"no redirect", "/v1/login/start", `{}`, 400, "redirect_uri"},
		{"unknown state", "/v1/login/finish", `{"state":"nope","code":"c"}`, 401, "run 'countersign login' again"},
		{"no code", "/v1/login/finish", `{"state":"nope"}`, 400, "state and the code"},
		{"unknown device handle", "/v1/login/device/poll", `{"handle":"nope"}`, 401, "countersign login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "POST", tt.path, "", tt.body)
			if e := a.errBody(t); a.status != tt.status || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("%d %s, want %d with %q", a.status, a.body, tt.status, tt.msg)
			}
		})
	}
}
