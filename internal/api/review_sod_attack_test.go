package api

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// The attacks of this file are a creator's, from outside, over HTTP: get
// their own change approved (segregation of duties, DESIGN.md invariant 3)
// by showing up as a second identity, or count twice. The gateway under
// attack is the real API over TLS, the real review service and recording,
// a real SQLite store and a real OIDC provider (mockoidc: discovery, JWKS,
// signed ID tokens) logged into through the real code flow.

// sodGateway is one API replica of the attack; several share a store.
type sodGateway struct {
	*fixture
	idp *mockoidc.MockOIDC
}

// newSODGateway starts an API replica over the store at dbPath, with OIDC
// configured (so approvals need a fresh login), logging in at idp.
func newSODGateway(t *testing.T, dbPath string, idp *mockoidc.MockOIDC, mayApprove bool, edit ...func(*config.Config)) *sodGateway {
	t.Helper()
	cfg := surfacesConfig()
	cfg.Identity.OIDC = &config.OIDC{Issuer: idp.Issuer(), ClientID: idp.ClientID}
	cfg.Identity.Local.MayApprove = mayApprove
	cfg.Resources[0].Policy.Review.Approvals = 2
	cfg.Identity.Roles["oncall"] = []string{"creator", "breakglass"}
	cfg.Resources[0].Policy.Access = append(cfg.Resources[0].Policy.Access, "oncall")
	cfg.Resources[0].Policy.Breakglass = []string{"oncall"}
	for _, e := range edit {
		e(cfg)
	}
	login, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{
		Issuer: idp.Issuer(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"}, Roles: RoleTable(cfg.Identity.Roles),
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := serveSurfaces(t, dbPath, cfg, login)
	return &sodGateway{fixture: f, idp: idp}
}

// startIDP runs a real OIDC provider.
func startIDP(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// login is `countersign login` as user: the code flow through the
// provider, ending in the API token the gateway issues.
func (g *sodGateway) login(t *testing.T, user mockoidc.User) string {
	t.Helper()
	g.idp.QueueUser(user)
	state, code := browse(t, g.fixture)
	a := g.do(t, "POST", "/v1/login/finish", "", map[string]string{"state": state, "code": code})
	var got Issued
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 {
		t.Fatalf("login of %s: %d %s", user.ID(), a.status, a.body)
	}
	return got.Token
}

// minted is `countersign token issue --user NAME [--email E] --groups G`:
// the identity the operator mints (cli.mintedIdentity), with its default
// scopes api and resources.
func (g *sodGateway) minted(t *testing.T, name, email string, groups ...string) string {
	t.Helper()
	id := identity.Identity{Issuer: identity.LocalIssuer, Subject: name, Name: name, Source: identity.SourceLocal,
		Email: email, EmailVerified: email != "", Groups: groups, AuthTime: time.Now(),
		Roles: identity.RolesFor(groups, RoleTable(surfacesConfig().Identity.Roles))}
	secret, _, err := g.tokens.Issue(context.Background(), id, []identity.Scope{identity.ScopeAPI, identity.ScopeResources}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// requestGrant is `countersign grants request pg-prod --access write` as
// the holder of token; it returns the grant review's id.
func (g *sodGateway) requestGrant(t *testing.T, token string) string {
	t.Helper()
	a := g.do(t, "POST", "/v1/grants", token, GrantRequest{Resource: "pg-prod", Access: []string{"write"}, For: "1h", Reason: "attack"})
	var req GrantRequested
	if err := json.Unmarshal(a.body, &req); err != nil || a.status != 201 {
		t.Fatalf("grant request: %d %s", a.status, a.body)
	}
	return req.Review.ID
}

func (g *sodGateway) review(t *testing.T, id string) ReviewJSON {
	t.Helper()
	var rv ReviewJSON
	if err := json.Unmarshal(g.fixture.do(t, "GET", "/v1/reviews/"+id, g.minted(t, "auditor-"+id, "", "audit"), nil).body, &rv); err != nil {
		t.Fatal(err)
	}
	return rv
}

// TestSelfApprovalUnderASecondIdentity: the creator holds an identity the
// operator minted for them (a pipeline, the quickstart) and logs in with
// OIDC as an approver, and approves with the login what the minted
// identity asked for. Each row is a way the two identities name one
// person; every one must be refused as the initiator.
func TestSelfApprovalUnderASecondIdentity(t *testing.T) {
	t.Parallel()
	idp := startIDP(t)
	g := newSODGateway(t, filepath.Join(t.TempDir(), "s.db"), idp, false)
	tests := []struct {
		name string
		// the minted identity's --user and --email
		user, email string
		// the OIDC login's subject and email
		sub, oidcEmail string
		// the provider does not say the email is verified (Entra ID sends
		// no email_verified claim at all)
		unverified bool
	}{
		{"email differing in non-ASCII case", "jorg", "JÖRG@example.com", "u-jorg", "jörg@example.com", false},
		{"email in another Unicode normal form (NFD vs NFC)", "jose", "jose\u0301@example.com", "u-jose", "jos\u00e9@example.com", false},
		{"email with a Kelvin sign for k", "kate", "\u212Aate@example.com", "u-kate", "kate@example.com", false},
		{"local name is the OIDC email", "mallory@example.com", "", "u-mallory", "Mallory@example.com", false},
		{"local name is the OIDC subject", "u-trent", "", "u-trent", "trent@example.com", false},
		{"provider without email_verified", "pat", "pat@example.com", "u-pat", "Pat@example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creator := g.minted(t, tt.user, tt.email, "engineers")
			id := g.requestGrant(t, creator)
			approver := g.login(t, &mockoidc.MockUser{Subject: tt.sub, Email: tt.oidcEmail, EmailVerified: !tt.unverified, Groups: []string{"dba-leads"}})
			for _, verb := range []string{"approve", "reject"} {
				a := g.do(t, "POST", "/v1/reviews/"+id+"/"+verb, approver, nil)
				if a.status != 403 || !strings.Contains(string(a.body), "cannot decide it") {
					t.Fatalf("%s of their own grant under a second identity: %d %s", verb, a.status, a.body)
				}
			}
			if rv := g.review(t, id); rv.Status != "pending" || rv.Approvals != 0 {
				t.Fatalf("the review moved: %+v", rv)
			}
		})
	}
}

// TestOnePersonCountsOnceAcrossReplicas: an approval needs two people; one
// approver logs in twice (two API tokens) and fires approvals at two API
// replicas over one store at once, alternating tokens. One counts, the
// review stays pending, and a second person then approves it.
func TestOnePersonCountsOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	idp := startIDP(t)
	db := filepath.Join(t.TempDir(), "s.db")
	replicas := []*sodGateway{newSODGateway(t, db, idp, false), newSODGateway(t, db, idp, false)}
	creator := replicas[0].login(t, &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"engineers"}})
	id := replicas[0].requestGrant(t, creator)
	bob := &mockoidc.MockUser{Subject: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"dba-leads"}}
	tokens := []string{replicas[0].login(t, bob), replicas[1].login(t, bob)}

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := replicas[i%2].do(t, "POST", "/v1/reviews/"+id+"/approve", tokens[(i/2)%2], nil)
			mu.Lock()
			statuses[a.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[409] != 15 {
		t.Fatalf("answers %v, want one 200 and fifteen 409", statuses)
	}
	if rv := replicas[1].review(t, id); rv.Status != "pending" || rv.Approvals != 1 {
		t.Fatalf("after one person's racing approvals: %s with %d approvals", rv.Status, rv.Approvals)
	}
	carol := replicas[1].login(t, &mockoidc.MockUser{Subject: "u-carol", Email: "carol@example.com", EmailVerified: true, Groups: []string{"dba-leads"}})
	if a := replicas[1].do(t, "POST", "/v1/reviews/"+id+"/approve", carol, nil); a.status != 200 || !strings.Contains(string(a.body), `"status": "approved"`) {
		t.Fatalf("a second person's approval: %d %s", a.status, a.body)
	}
}

// TestTokensThatCannotVote: every token that is not a fresh API login is
// refused at both vote endpoints, and the review does not move.
func TestTokensThatCannotVote(t *testing.T) {
	t.Parallel()
	idp := startIDP(t)
	g := newSODGateway(t, filepath.Join(t.TempDir(), "s.db"), idp, false)
	creator := g.login(t, &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"engineers", "oncall"}})
	id := g.requestGrant(t, creator)
	bob := g.login(t, &mockoidc.MockUser{Subject: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"dba-leads", "oncall"}})
	connect := func(body map[string]string) string {
		a := g.do(t, "POST", "/v1/connect", bob, body)
		var got Issued
		if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 {
			t.Fatalf("connect %v: %d %s", body, a.status, a.body)
		}
		return got.Token
	}
	revoked := g.login(t, &mockoidc.MockUser{Subject: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"dba-leads"}})
	toks, err := g.st.ListTokens(context.Background(), store.TokenFilter{Issuer: idp.Issuer(), Subject: "u-bob"})
	if err != nil || len(toks) == 0 {
		t.Fatalf("bob's tokens: %v", err)
	}
	if err := g.tokens.Revoke(context.Background(), toks[0].ID); err != nil { // newest first: the second login
		t.Fatal(err)
	}
	expired, _, err := g.tokens.Issue(context.Background(), identity.Identity{Issuer: idp.Issuer(), Subject: "u-bob", Email: "bob@example.com",
		EmailVerified: true, Groups: []string{"dba-leads"}, Roles: []identity.Role{identity.RoleApprover}, Source: identity.SourceOIDC, AuthTime: time.Now()},
		[]identity.Scope{identity.ScopeAPI}, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		status      int
	}{
		{"resource token of an approver", connect(map[string]string{"resource": "pg-prod"}), 403},
		{"break-glass token of an approver", connect(map[string]string{"resource": "pg-prod", "breakglass": "outage"}), 403},
		{"revoked API token of an approver", revoked, 401},
		{"expired API token of an approver", expired, 401},
		{"minted approver where OIDC is configured", g.minted(t, "dora", "dora@example.com", "dba-leads"), 403},
		{"bearer that is no token", "cst_" + strings.Repeat("A", 43), 401},
	}
	for _, tt := range tests {
		for _, verb := range []string{"approve", "reject"} {
			if a := g.do(t, "POST", "/v1/reviews/"+id+"/"+verb, tt.token, nil); a.status != tt.status {
				t.Fatalf("%s, %s: %d %s, want %d", tt.name, verb, a.status, a.body, tt.status)
			}
		}
	}
	if rv := g.review(t, id); rv.Status != "pending" || rv.Approvals != 0 {
		t.Fatalf("the review moved: %+v", rv)
	}
}

// TestRoleRemovedFromAGroupStopsOldTokens: the operator takes the approver
// role away from a group (identity.roles) and restarts the gateway. An API
// token issued before, whose identity still carries the roles of the old
// table, must not approve, nor mint a break-glass token with a breakglass
// role the group no longer has: roles are the groups mapped through the
// table the gateway runs with.
func TestRoleRemovedFromAGroupStopsOldTokens(t *testing.T) {
	t.Parallel()
	idp := startIDP(t)
	db := filepath.Join(t.TempDir(), "s.db")
	withOps := func(roles ...string) func(*config.Config) {
		return func(c *config.Config) {
			c.Identity.Roles["ops"] = roles
			c.Resources[0].Policy.Access = append(c.Resources[0].Policy.Access, "ops")
			c.Resources[0].Policy.Review.Approvers = append(c.Resources[0].Policy.Review.Approvers, "ops")
			c.Resources[0].Policy.Breakglass = append(c.Resources[0].Policy.Breakglass, "ops")
		}
	}
	before := newSODGateway(t, db, idp, false, withOps("approver", "breakglass"))
	creator := before.login(t, &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"engineers"}})
	id := before.requestGrant(t, creator)
	old := before.login(t, &mockoidc.MockUser{Subject: "u-oscar", Email: "oscar@example.com", EmailVerified: true, Groups: []string{"ops"}})

	after := newSODGateway(t, db, idp, false, withOps("creator"))
	if a := after.do(t, "POST", "/v1/reviews/"+id+"/approve", old, nil); a.status != 403 || !strings.Contains(string(a.body), "may not decide") {
		t.Fatalf("an approval with the roles of the old table: %d %s", a.status, a.body)
	}
	if a := after.do(t, "POST", "/v1/connect", old, map[string]string{"resource": "pg-prod", "breakglass": "outage"}); a.status != 403 {
		t.Fatalf("a break-glass token with the roles of the old table: %d %s", a.status, a.body)
	}
	if rv := after.review(t, id); rv.Status != "pending" || rv.Approvals != 0 {
		t.Fatalf("the review moved: %+v", rv)
	}
}

// loggedInAt is a provider user whose ID token says when they last proved
// who they are at the provider (auth_time): a provider session may be
// hours old while the code flow that reuses it is new.
type loggedInAt struct {
	*mockoidc.MockUser
	at time.Time
}

func (u loggedInAt) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	claims, err := u.MockUser.Claims(scope, c)
	return withAuthTime{Claims: claims, at: u.at.Unix()}, err
}

// withAuthTime adds auth_time to the provider's claims.
type withAuthTime struct {
	jwt.Claims
	at int64
}

func (c withAuthTime) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.Claims)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["auth_time"] = c.at
	return json.Marshal(m)
}

// TestApproveNeedsARecentLoginAtTheProvider: a new token from a provider
// session older than approve_max_age (the provider says when the person
// last logged in) does not approve; one from a recent login does.
func TestApproveNeedsARecentLoginAtTheProvider(t *testing.T) {
	t.Parallel()
	idp := startIDP(t)
	g := newSODGateway(t, filepath.Join(t.TempDir(), "s.db"), idp, false, func(c *config.Config) {
		c.Identity.ApproveMaxAge = 15 * time.Minute
		c.Resources[0].Policy.Review.Approvals = 1
	})
	creator := g.login(t, &mockoidc.MockUser{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"engineers"}})
	id := g.requestGrant(t, creator)
	bob := &mockoidc.MockUser{Subject: "u-bob", Email: "bob@example.com", EmailVerified: true, Groups: []string{"dba-leads"}}
	stale := g.login(t, loggedInAt{bob, time.Now().Add(-time.Hour)})
	if a := g.do(t, "POST", "/v1/reviews/"+id+"/approve", stale, nil); a.status != 403 || !strings.Contains(string(a.body), "last logged in") {
		t.Fatalf("an approval from an hour-old provider login: %d %s", a.status, a.body)
	}
	fresh := g.login(t, loggedInAt{bob, time.Now()})
	if a := g.do(t, "POST", "/v1/reviews/"+id+"/approve", fresh, nil); a.status != 200 {
		t.Fatalf("an approval from a fresh login: %d %s", a.status, a.body)
	}
}
