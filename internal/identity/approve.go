package identity

import (
	"errors"
	"fmt"
	"time"
)

// DefaultApproveMaxAge is identity.approve_max_age when the config leaves
// it out (or gives a non-positive value).
const DefaultApproveMaxAge = 15 * time.Minute

// ErrNotFresh wraps every refusal of CanApproveFresh.
var ErrNotFresh = errors.New("approval refused")

// CanApproveFresh holds the identity-side conditions of approving; the
// review package calls it before its own checks (roles, groups, SoD).
//
// Without OIDC every identity passes: there is no fresher proof to ask for.
// With OIDC, an operator-minted (local or service) identity is refused
// unless mayApproveLocal (identity.local.may_approve), and an OIDC identity
// needs a login no older than maxAge at now (the store's clock). Anything
// else (an unknown source, a missing login time) is refused.
func CanApproveFresh(id Identity, oidcConfigured, mayApproveLocal bool, maxAge time.Duration, now time.Time) error {
	if !oidcConfigured {
		return nil
	}
	if maxAge <= 0 {
		maxAge = DefaultApproveMaxAge
	}
	switch id.Source {
	case SourceLocal, SourceService:
		if mayApproveLocal {
			return nil
		}
		return fmt.Errorf("%w: %s is an identity minted with 'countersign token issue' and cannot approve where OIDC is configured; "+
			"log in with 'countersign login' (or set identity.local.may_approve: true)", ErrNotFresh, id.Display())
	case SourceOIDC:
		return checkFresh(id, maxAge, now)
	default:
		return fmt.Errorf("%w: the identity %s has no known source (%q); log in with 'countersign login'", ErrNotFresh, id.Display(), id.Source)
	}
}

func checkFresh(id Identity, maxAge time.Duration, now time.Time) error {
	if id.AuthTime.IsZero() {
		return fmt.Errorf("%w: the login time of %s is unknown; run 'countersign login' and approve again", ErrNotFresh, id.Display())
	}
	age := now.Sub(id.AuthTime)
	if age > maxAge {
		return fmt.Errorf("%w: approving needs a login within the last %s, and %s last logged in %s ago; run 'countersign login' and approve again",
			ErrNotFresh, maxAge, id.Display(), age.Round(time.Second))
	}
	return nil
}
