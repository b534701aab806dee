package identity

import "testing"

// TestSameAttacks: the ways one person shows up as two identities to
// approve their own change or count twice (DESIGN.md invariant 3), and the
// look-alikes that are two people. MaybeSame, which refuses, must catch
// every one; Same, which also lets one identity read another's reviews,
// stays with what a provider or the key proves. Both are symmetric.
func TestSameAttacks(t *testing.T) {
	oidc := func(sub, email string, verified bool) Identity {
		return Identity{Issuer: "https://idp", Subject: sub, Email: email, EmailVerified: verified, Source: SourceOIDC}
	}
	minted := func(name, email string) Identity {
		return Identity{Issuer: LocalIssuer, Subject: name, Name: name, Email: email, EmailVerified: email != "", Source: SourceLocal}
	}
	tests := []struct {
		name        string
		a, b        Identity
		maybe, same bool
	}{
		{"same key", oidc("u1", "", false), oidc("u1", "x@example.com", true), true, true},
		{"issuer with a trailing slash", oidc("u1", "", false), Identity{Issuer: "https://idp/", Subject: "u1"}, true, true},
		{"issuer host in another case", oidc("u1", "", false), Identity{Issuer: "https://IDP", Subject: "u1"}, true, true},
		{"ASCII case of a verified email", minted("jo", "JO@example.com"), oidc("u-jo", "jo@example.com", true), true, true},
		{"non-ASCII case of a verified email", minted("jorg", "JÖRG@example.com"), oidc("u-jorg", "jörg@example.com", true), true, true},
		{"NFD against NFC", minted("jose", "jose\u0301@example.com"), oidc("u-jose", "jos\u00e9@example.com", true), true, true},
		{"Kelvin sign for k", minted("kate", "\u212Aate@example.com"), oidc("u-kate", "kate@example.com", true), true, true},
		{"fullwidth letter", minted("ann", "\uff41nn@example.com"), oidc("u-ann", "ann@example.com", true), true, true},
		{"provider sends no email_verified", minted("pat", "pat@example.com"), oidc("u-pat", "Pat@example.com", false), true, false},
		{"minted name is the verified email", minted("Mallory@example.com", ""), oidc("u-m", "mallory@example.com", true), true, false},
		{"minted name is an unverified email", minted("eve@example.com", ""), oidc("u-eve", "EVE@example.com", false), true, false},
		{"minted name is the subject", minted("u-trent", ""), oidc("u-trent", "trent@example.com", true), true, false},
		{"subject in another case", oidc("u1", "", false), oidc("U1", "", false), false, false},
		{"both emails unverified", oidc("u-1", "x@example.com", false), Identity{Issuer: "https://other", Subject: "u-2", Email: "x@example.com"}, false, false},
		{"two minted identities with one name in two cases", minted("bob", ""), minted("Bob", ""), false, false},
		{"different people", minted("carol", "carol@example.com"), oidc("u-dave", "dave@example.com", true), false, false},
		{"another subject under the same issuer", oidc("u1", "", false), oidc("u2", "", false), false, false},
		{"empty emails", oidc("u1", "", true), minted("x", ""), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, back := tt.a.MaybeSame(tt.b), tt.b.MaybeSame(tt.a); got != tt.maybe || back != tt.maybe {
				t.Fatalf("MaybeSame = %v, reversed %v; want %v", got, back, tt.maybe)
			}
			if got, back := tt.a.Same(tt.b), tt.b.Same(tt.a); got != tt.same || back != tt.same {
				t.Fatalf("Same = %v, reversed %v; want %v", got, back, tt.same)
			}
		})
	}
}
