package identity_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/countersign/countersign/internal/identity"
)

func TestLoginMapsGroupsToRoles(t *testing.T) {
	t.Parallel()
	authTime := time.Now().Add(-time.Minute).Truncate(time.Second)
	tests := []struct {
		name        string
		user        mockoidc.User
		groupsClaim string
		wantGroups  []string
		wantRoles   []identity.Role
		wantAuth    time.Time // zero: "now" (no auth_time claim)
	}{
		{
			name: "groups list",
			user: &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true,
				PreferredUsername: "alice", Groups: []string{"engineers", "dba-leads", "unmapped"}},
			wantGroups: []string{"engineers", "dba-leads", "unmapped"},
			wantRoles:  []identity.Role{identity.RoleCreator, identity.RoleApprover},
		},
		{
			name:        "single group string in a custom claim, auth_time",
			user:        claimsUser{sub: "u-alice", extra: map[string]any{"team": "audit", "email": "alice@example.com", "email_verified": "true", "name": "Alice", "auth_time": authTime.Unix()}},
			groupsClaim: "team",
			wantGroups:  []string{"audit"},
			wantRoles:   []identity.Role{identity.RoleAuditor},
			wantAuth:    authTime,
		},
		{
			name:       "no groups claim: no roles",
			user:       claimsUser{sub: "u-alice", extra: map[string]any{"email": "alice@example.com"}},
			wantGroups: nil,
			wantRoles:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startProvider(t, func(m *mockoidc.MockOIDC) { m.QueueUser(tc.user) })
			o := newOIDC(t, m, func(c *identity.OIDCConfig) { c.GroupsClaim = tc.groupsClaim })
			state, code, authURL := login(t, o)
			if q := mustQuery(t, authURL); q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" {
				t.Errorf("authorization URL lacks PKCE S256 or nonce: %s", authURL)
			}
			before := time.Now()
			id, err := o.Finish(context.Background(), state, code)
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if id.Issuer != m.Issuer() || id.Subject != "u-alice" || id.Email != "alice@example.com" || id.Source != identity.SourceOIDC {
				t.Errorf("identity = %+v", id)
			}
			if !slices.Equal(id.Groups, tc.wantGroups) || !slices.Equal(id.Roles, tc.wantRoles) {
				t.Errorf("groups %v roles %v, want %v %v", id.Groups, id.Roles, tc.wantGroups, tc.wantRoles)
			}
			switch {
			case !tc.wantAuth.IsZero() && !id.AuthTime.Equal(tc.wantAuth):
				t.Errorf("AuthTime = %v, want auth_time %v", id.AuthTime, tc.wantAuth)
			case tc.wantAuth.IsZero() && id.AuthTime.Before(before):
				t.Errorf("AuthTime = %v, want the time of Finish", id.AuthTime)
			}
		})
	}
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	forged := forgedKeypair(t)
	tests := []struct {
		name  string
		setup func(m *mockoidc.MockOIDC)
		want  string
	}{
		{
			name:  "expired ID token",
			setup: func(m *mockoidc.MockOIDC) { m.FastForward(-2 * time.Hour) },
			want:  "expired",
		},
		{
			name: "wrong audience: a token for another client",
			setup: queueEdited(func(c *mockoidc.IDTokenClaims) {
				c.Audience = jwt.ClaimStrings{"some-other-client"}
			}),
			want: "audience",
		},
		{
			name: "wrong issuer",
			setup: queueEdited(func(c *mockoidc.IDTokenClaims) {
				c.Issuer = "https://idp.attacker.example"
			}),
			want: "issued by a different provider",
		},
		{
			name: "bad signature: signed by another key with the provider's key id",
			setup: func(m *mockoidc.MockOIDC) {
				real := *m.Keypair
				kid, err := real.KeyID()
				if err != nil {
					t.Fatal(err)
				}
				_ = m.AddMiddleware(serveJWKS(&real)) // the provider still publishes its real key
				fake := *forged
				fake.Kid = kid
				m.Keypair = &fake // but what it signs with is another
			},
			want: "signature",
		},
		{
			name:  "nonce of another login",
			setup: queueEdited(func(c *mockoidc.IDTokenClaims) { c.Nonce = "nonce-of-another-login" }),
			want:  "nonce",
		},
		{
			name:  "no nonce",
			setup: queueEdited(func(c *mockoidc.IDTokenClaims) { c.Nonce = "" }),
			want:  "nonce",
		},
		{
			name: "groups claim of the wrong type",
			setup: func(m *mockoidc.MockOIDC) {
				m.QueueUser(claimsUser{sub: "u-bob", extra: map[string]any{"groups": 42}})
			},
			want: "groups",
		},
		{
			name: "no subject",
			setup: func(m *mockoidc.MockOIDC) {
				m.QueueUser(claimsUser{sub: ""})
			},
			want: "subject",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startProvider(t, tc.setup)
			o := newOIDC(t, m, nil)
			state, code, _ := login(t, o)
			id, err := o.Finish(context.Background(), state, code)
			if err == nil {
				t.Fatalf("Finish accepted the login: %+v", id)
			}
			if !errors.Is(err, identity.ErrLoginRefused) || !strings.Contains(err.Error(), tc.want) ||
				!saysWhatToDo(err) {
				t.Errorf("error = %q, want ErrLoginRefused mentioning %q and what to do", err, tc.want)
			}
		})
	}
}

func TestLoginReplayRefused(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil)
	o := newOIDC(t, m, nil)
	ctx := context.Background()

	state, code, authURL := login(t, o)
	if _, err := o.Finish(ctx, state, code); err != nil {
		t.Fatalf("first Finish: %v", err)
	}
	if _, err := o.Finish(ctx, state, code); !errors.Is(err, identity.ErrLoginState) {
		t.Errorf("second Finish with the same state: err = %v, want ErrLoginState", err)
	}

	// A second login whose ID token carries the first login's (used) nonce.
	usedNonce := mustQuery(t, authURL).Get("nonce")
	m.QueueUser(claimsUser{sub: "u-alice", edit: func(c *mockoidc.IDTokenClaims) { c.Nonce = usedNonce }})
	state2, code2, _ := login(t, o)
	if _, err := o.Finish(ctx, state2, code2); !errors.Is(err, identity.ErrLoginRefused) || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("replayed nonce: err = %v, want ErrLoginRefused about the nonce", err)
	}
	// The refused login's state is used up too.
	if _, err := o.Finish(ctx, state2, code2); !errors.Is(err, identity.ErrLoginState) {
		t.Errorf("Finish after a refused login: err = %v, want ErrLoginState", err)
	}
}

func TestFinishUnknownOrExpiredState(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil)
	clock := &fixedClock{now: time.Now()}
	o := newOIDC(t, m, func(c *identity.OIDCConfig) { c.Now = clock.Now })
	ctx := context.Background()

	if _, err := o.Finish(ctx, "made-up-state", "code"); !errors.Is(err, identity.ErrLoginState) {
		t.Errorf("unknown state: err = %v, want ErrLoginState", err)
	}
	state, code, _ := login(t, o)
	clock.Advance(11 * time.Minute)
	if _, err := o.Finish(ctx, state, code); !errors.Is(err, identity.ErrLoginState) ||
		!strings.Contains(err.Error(), "run 'countersign login' again") {
		t.Errorf("expired state: err = %v, want ErrLoginState saying what to do", err)
	}
}

func TestStartRedirectURIs(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil)
	o := newOIDC(t, m, func(c *identity.OIDCConfig) { c.RedirectURIs = []string{"https://gw.example.com/login/callback"} })
	tests := []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1:8765/callback", true},
		{"http://[::1]:8765/callback", true},
		{"http://localhost:8765/", true},
		{"https://gw.example.com/login/callback", true},
		{"https://gw.example.com/login/callback/other", false},
		{"https://attacker.example/callback", false},
		{"http://127.0.0.1.attacker.example:80/callback", false},
		{"http://user@127.0.0.1:8765/callback", false},
		{"http://127.0.0.1/callback", false},
		{"", false},
		{"::not a url", false},
	}
	for _, tc := range tests {
		_, _, err := o.Start(context.Background(), tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("Start(%q): err = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestNewOIDCRefusesIssuerMismatch(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil)
	tests := []struct {
		name string
		cfg  identity.OIDCConfig
		want string
	}{
		{"issuer differs from discovery", identity.OIDCConfig{Issuer: m.Addr() + "/oidc/", ClientID: "x"}, "identity.oidc.issuer"},
		{"no provider there", identity.OIDCConfig{Issuer: m.Addr() + "/nothing", ClientID: "x"}, "identity.oidc.issuer"},
		{"no client id", identity.OIDCConfig{Issuer: m.Issuer()}, "client_id"},
	}
	for _, tc := range tests {
		_, err := identity.NewOIDC(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return u.Query()
}

// queueEdited queues a user whose ID token claims edit changes.
func queueEdited(edit func(*mockoidc.IDTokenClaims)) func(*mockoidc.MockOIDC) {
	return func(m *mockoidc.MockOIDC) {
		m.QueueUser(claimsUser{sub: "u-mallory", edit: edit, extra: map[string]any{"groups": []string{"dba-leads"}}})
	}
}

// saysWhatToDo reports whether a login error tells the person (log in
// again) or the operator (which setting to check) what to do.
func saysWhatToDo(err error) bool {
	return strings.Contains(err.Error(), "run 'countersign login") || strings.Contains(err.Error(), "identity.oidc.")
}

func TestLoginMaxAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		authTime any // nil: no auth_time claim
		want     string
	}{
		{"recent auth_time", time.Now().Add(-2 * time.Minute).Unix(), ""},
		{"old provider session", time.Now().Add(-3 * time.Hour).Unix(), "older than 15m0s"},
		{"no auth_time", nil, "auth_time"},
		{"auth_time not a number", "yesterday", "auth_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := map[string]any{}
			if tc.authTime != nil {
				extra["auth_time"] = tc.authTime
			}
			m := startProvider(t, func(m *mockoidc.MockOIDC) { m.QueueUser(claimsUser{sub: "u-erin", extra: extra}) })
			o := newOIDC(t, m, func(c *identity.OIDCConfig) { c.MaxAge = 15 * time.Minute })
			state, code, authURL := login(t, o)
			if got := mustQuery(t, authURL).Get("max_age"); got != "900" {
				t.Errorf("max_age = %q, want 900", got)
			}
			_, err := o.Finish(context.Background(), state, code)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, identity.ErrLoginRefused) || !strings.Contains(err.Error(), tc.want) || !saysWhatToDo(err)):
				t.Errorf("err = %v, want ErrLoginRefused mentioning %q and what to do", err, tc.want)
			}
		})
	}
}

func TestFinishWithoutCode(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil)
	o := newOIDC(t, m, nil)
	state, _, _ := login(t, o)
	if _, err := o.Finish(context.Background(), state, ""); !errors.Is(err, identity.ErrLoginRefused) {
		t.Errorf("err = %v, want ErrLoginRefused", err)
	}
	// A code the provider never issued: the exchange is refused.
	state, _, _ = login(t, o)
	if _, err := o.Finish(context.Background(), state, "forged-code"); !errors.Is(err, identity.ErrLoginRefused) || !saysWhatToDo(err) {
		t.Errorf("forged code: err = %v, want ErrLoginRefused saying what to do", err)
	}
}
