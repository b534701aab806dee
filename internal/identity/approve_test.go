package identity_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

func TestCanApproveFresh(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	oidcAt := func(ago time.Duration) identity.Identity {
		return identity.Identity{Issuer: "https://idp", Subject: "u-1", Email: "bo@example.com", Source: identity.SourceOIDC, AuthTime: now.Add(-ago)}
	}
	local := identity.Identity{Issuer: identity.LocalIssuer, Subject: "carol", Source: identity.SourceLocal}
	service := identity.Identity{Issuer: identity.LocalIssuer, Subject: "ci", Source: identity.SourceService}
	tests := []struct {
		name       string
		id         identity.Identity
		oidc       bool
		mayApprove bool
		maxAge     time.Duration
		want       string // "" = allowed
	}{
		{"no OIDC: local identity", local, false, false, 0, ""},
		{"no OIDC: service identity", service, false, false, 0, ""},
		{"no OIDC: stale OIDC-looking identity", oidcAt(48 * time.Hour), false, false, 0, ""},
		{"OIDC: fresh login", oidcAt(time.Minute), true, false, 15 * time.Minute, ""},
		{"OIDC: login exactly max age ago", oidcAt(15 * time.Minute), true, false, 15 * time.Minute, ""},
		{"OIDC: login older than max age", oidcAt(16 * time.Minute), true, false, 15 * time.Minute, "login within the last 15m0s"},
		{"OIDC: default max age applies to 0", oidcAt(20 * time.Minute), true, false, 0, "login within the last 15m0s"},
		{"OIDC: longer max age", oidcAt(20 * time.Minute), true, false, time.Hour, ""},
		{"OIDC: no login time", identity.Identity{Subject: "u-2", Source: identity.SourceOIDC}, true, false, time.Hour, "login time"},
		{"OIDC configured: local identity refused", local, true, false, time.Hour, "identity.local.may_approve"},
		{"OIDC configured: service identity refused", service, true, false, time.Hour, "minted"},
		{"OIDC configured, may_approve: local identity", local, true, true, time.Hour, ""},
		{"OIDC configured, may_approve: service identity", service, true, true, time.Hour, ""},
		{"OIDC configured: unknown source", identity.Identity{Subject: "x", AuthTime: now}, true, true, time.Hour, "no known source"},
		{"OIDC configured: bogus source", identity.Identity{Subject: "x", Source: "root", AuthTime: now}, true, true, time.Hour, "no known source"},
	}
	for _, tc := range tests {
		err := identity.CanApproveFresh(tc.id, tc.oidc, tc.mayApprove, tc.maxAge, now)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, identity.ErrNotFresh) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want ErrNotFresh mentioning %q", tc.name, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), "countersign login"):
			t.Errorf("%s: error %q does not say what to do", tc.name, err)
		}
	}
}
