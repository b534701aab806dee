package storetest

import (
	"crypto/sha256"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
)

func person(subject string) identity.Identity {
	return identity.Identity{
		Issuer: "https://idp.example.com", Subject: subject, Email: subject + "@example.com",
		EmailVerified: true, Name: "Person " + subject, Groups: []string{"engineers", "dba-leads"},
		Roles: []identity.Role{identity.RoleCreator, identity.RoleApprover}, Source: identity.SourceOIDC,
		AuthTime: time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC),
	}
}

// token returns a token of the identity, created now, living ttl.
func token(t *testing.T, st store.Store, id identity.Identity, ttl time.Duration) identity.Token {
	n := now(t, st)
	h := sha256.Sum256([]byte(unique("secret")))
	return identity.Token{
		ID: unique("tok"), Hash: h[:], Identity: id,
		Scopes:    []identity.Scope{identity.ScopeAPI, identity.ResourceScope("pg-prod")},
		CreatedAt: n, ExpiresAt: n.Add(ttl),
	}
}

func create(t *testing.T, st store.Store, tok identity.Token) {
	t.Helper()
	if err := st.CreateToken(ctxOf(t), tok); err != nil {
		t.Fatalf("CreateToken %s: %v", tok.ID, err)
	}
}

func testIdentity(t *testing.T, st store.Store) {
	r, ok := st.(store.IdentityReader)
	if !ok {
		t.Fatalf("%T does not implement store.IdentityReader", st)
	}
	ctx := ctxOf(t)
	id := person(unique("ident"))
	_, _, err := r.Identity(ctx, id.Issuer, id.Subject)
	wantErrIs(t, "Identity before any upsert", err, store.ErrNotFound)
	before := now(t, st)
	if err := st.UpsertIdentity(ctx, id); err != nil {
		t.Fatalf("UpsertIdentity: %v", err)
	}
	// The latest login wins: fewer groups, other roles, a new name.
	id.Groups, id.Roles, id.Name, id.EmailVerified = []string{"audit"}, []identity.Role{identity.RoleAuditor}, "Renamed", false
	if err := st.UpsertIdentity(ctx, id); err != nil {
		t.Fatalf("UpsertIdentity again: %v", err)
	}
	got, seen, err := r.Identity(ctx, id.Issuer, id.Subject)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if !reflect.DeepEqual(got, id) {
		t.Errorf("Identity = %+v\nwant       %+v", got, id)
	}
	if seen.Before(before) || seen.After(now(t, st)) {
		t.Errorf("last login %v is not the store's clock at the upsert (after %v)", seen, before)
	}
}

func testTokenRoundTrip(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	want := token(t, st, person(unique("rt")), time.Hour)
	create(t, st, want)
	got, err := st.TokenByHash(ctx, want.Hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TokenByHash = %+v\nwant          %+v", got, want)
	}
	// Empty lists and a zero auth time read back as they were written.
	bare := token(t, st, identity.Identity{Issuer: identity.LocalIssuer, Subject: unique("bare")}, time.Hour)
	bare.Scopes = []identity.Scope{identity.ScopeResources}
	create(t, st, bare)
	if got, err = st.TokenByHash(ctx, bare.Hash); err != nil || !reflect.DeepEqual(got, bare) {
		t.Errorf("TokenByHash(bare) = %+v, %v\nwant                %+v", got, err, bare)
	}
}

func testTokenNotFound(t *testing.T, st store.Store) {
	h := sha256.Sum256([]byte("nobody has this token"))
	_, err := st.TokenByHash(ctxOf(t), h[:])
	wantErrIs(t, "TokenByHash(unknown)", err, store.ErrNotFound)
	// identity recognises ErrNotFound by its text (it cannot import store).
	if store.ErrNotFound.Error() != "not found" {
		t.Errorf("ErrNotFound reads %q; identity.isNotFound relies on \"not found\"", store.ErrNotFound)
	}
	wantErrIs(t, "RevokeToken(unknown)", st.RevokeToken(ctxOf(t), unique("tok-none")), store.ErrNotFound)
}

func testTokenDuplicate(t *testing.T, st store.Store) {
	a := token(t, st, person(unique("dup")), time.Hour)
	create(t, st, a)
	sameID := token(t, st, a.Identity, time.Hour)
	sameID.ID = a.ID
	wantErrIs(t, "CreateToken(same id)", st.CreateToken(ctxOf(t), sameID), store.ErrDuplicate)
	sameHash := token(t, st, a.Identity, time.Hour)
	sameHash.Hash = a.Hash
	wantErrIs(t, "CreateToken(same hash)", st.CreateToken(ctxOf(t), sameHash), store.ErrDuplicate)
}

func testTokenList(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	alice, bob := person(unique("alice")), person(unique("bob"))
	var made []identity.Token
	for i, id := range []identity.Identity{alice, bob, alice} {
		tok := token(t, st, id, time.Hour)
		tok.CreatedAt = tok.CreatedAt.Add(time.Duration(i) * time.Second) // a strict order
		create(t, st, tok)
		made = append(made, tok)
	}
	got, err := st.ListTokens(ctx, store.TokenFilter{Issuer: alice.Issuer, Subject: alice.Subject})
	if err != nil {
		t.Fatalf("ListTokens(alice): %v", err)
	}
	if ids := tokenIDs(got); !slices.Equal(ids, []string{made[2].ID, made[0].ID}) {
		t.Errorf("ListTokens(alice) = %v, want alice's newest first %v", ids, []string{made[2].ID, made[0].ID})
	}
	all, err := st.ListTokens(ctx, store.TokenFilter{})
	if err != nil {
		t.Fatalf("ListTokens(all): %v", err)
	}
	ids := tokenIDs(all)
	for _, m := range made {
		if !slices.Contains(ids, m.ID) {
			t.Errorf("ListTokens(all) misses %s", m.ID)
		}
	}
	if i, j := slices.Index(ids, made[2].ID), slices.Index(ids, made[1].ID); i > j {
		t.Errorf("ListTokens(all) lists %s after the older %s", made[2].ID, made[1].ID)
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("ListTokens(all) is not newest first at %d", i)
		}
	}
}

func tokenIDs(ts []identity.Token) []string {
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func testTokenRevoke(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	tok := token(t, st, person(unique("rev")), time.Hour)
	create(t, st, tok)
	before := now(t, st)
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	after := now(t, st)
	got, err := st.TokenByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatalf("TokenByHash(revoked): %v; revoked tokens must still be found", err)
	}
	if got.RevokedAt == nil || got.RevokedAt.Before(before) || got.RevokedAt.After(after) {
		t.Fatalf("RevokedAt = %v, want the store's clock between %v and %v", got.RevokedAt, before, after)
	}
	first := *got.RevokedAt
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatalf("RevokeToken again: %v", err)
	}
	if again, _ := st.TokenByHash(ctx, tok.Hash); again.RevokedAt == nil || !again.RevokedAt.Equal(first) {
		t.Errorf("a second revoke moved RevokedAt from %v to %v", first, again.RevokedAt)
	}
}

// testTokenExpiry: the store returns expired tokens; identity judges them
// with the store's clock.
func testTokenExpiry(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	tok := token(t, st, person(unique("exp")), time.Microsecond)
	create(t, st, tok)
	for !now(t, st).After(tok.ExpiresAt) { // the store's clock passes ExpiresAt
		time.Sleep(time.Millisecond)
	}
	got, err := st.TokenByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatalf("TokenByHash(expired): %v; expired tokens must still be found", err)
	}
	if n := now(t, st); n.Before(got.ExpiresAt) {
		t.Errorf("store clock %v is before ExpiresAt %v", n, got.ExpiresAt)
	}
}

// testTokenIssueAuthenticate runs identity's token life cycle on the store.
func testTokenIssueAuthenticate(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	ts := identity.NewTokens(st)
	secret, tok, err := ts.Issue(ctx, person(unique("life")), []identity.Scope{identity.ScopeAPI}, time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if got, err := ts.AuthenticateAPI(ctx, secret); err != nil || got.ID != tok.ID {
		t.Fatalf("AuthenticateAPI = %s, %v; want %s", got.ID, err, tok.ID)
	}
	if err := ts.Revoke(ctx, tok.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantErrIs(t, "Authenticate(revoked)", func() error { _, err := ts.Authenticate(ctx, secret); return err }(), identity.ErrTokenRevoked)

	// A role the operator took from a group is gone from a live token:
	// the roles are those of the table the gateway runs with now, for API
	// and resource tokens alike.
	p := person(unique("demoted"))
	db, _, err := ts.Issue(ctx, p, []identity.Scope{identity.ScopeResources}, time.Hour)
	if err != nil {
		t.Fatalf("Issue(resources): %v", err)
	}
	now := identity.NewTokens(st).WithRoles(map[string][]identity.Role{"engineers": {identity.RoleCreator}})
	got, err := now.AuthenticateResource(ctx, db, "pg-prod")
	if err != nil || !slices.Equal(got.Identity.Roles, []identity.Role{identity.RoleCreator}) {
		t.Fatalf("roles of a token issued as %v, under a table that left dba-leads no role: %v (%v); want [creator]", p.Roles, got.Identity.Roles, err)
	}
	if got, err := ts.AuthenticateResource(ctx, db, "pg-prod"); err != nil || !slices.Equal(got.Identity.Roles, p.Roles) {
		t.Fatalf("without a table the token's own roles: %v (%v); want %v", got.Identity.Roles, err, p.Roles)
	}

	short, _, err := ts.Issue(ctx, person(unique("short")), []identity.Scope{identity.ScopeAPI}, time.Microsecond)
	if err != nil {
		t.Fatalf("Issue(short): %v", err)
	}
	for {
		_, err := ts.Authenticate(ctx, short)
		if err == nil {
			time.Sleep(time.Millisecond) // not yet expired by the store's clock
			continue
		}
		wantErrIs(t, "Authenticate(expired)", err, identity.ErrTokenExpired)
		break
	}
}
