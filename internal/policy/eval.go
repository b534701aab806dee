package policy

import (
	"slices"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/sqlkind"
)

// MayConnect reports whether the identity may open a session: it is a
// member of one of the access groups. No groups listed admits nobody.
func (p *Policy) MayConnect(id identity.Identity) bool {
	return id.InAnyGroup(p.Access)
}

// NeedsReview reports whether an operation of the kind must be reviewed.
// A kind outside the known range counts as unknown, and unknown is reviewed
// whenever any kind is.
func (p *Policy) NeedsReview(k sqlkind.Kind) bool {
	if _, known := sqlkind.ParseKind(k.String()); !known {
		k = sqlkind.Unknown
	}
	return p.reviewed[k]
}

// Reviewed lists the reviewed kinds, in Kind order.
func (p *Policy) Reviewed() []sqlkind.Kind {
	var out []sqlkind.Kind
	for k := sqlkind.Unknown; k <= sqlkind.Admin; k++ {
		if p.reviewed[k] {
			out = append(out, k)
		}
	}
	return out
}

// IsApprover reports whether the identity both holds the approver role and
// is a member of one of the resource's approver groups. It says nothing
// about segregation of duties; the review service checks that.
func (p *Policy) IsApprover(id identity.Identity) bool {
	return id.HasRole(identity.RoleApprover) && id.InAnyGroup(p.Approvers)
}

// MayBreakglass reports whether the identity may run a held operation at
// once: it may connect, holds the breakglass role and is a member of one of
// the break-glass groups.
func (p *Policy) MayBreakglass(id identity.Identity) bool {
	return p.MayConnect(id) && id.HasRole(identity.RoleBreakglass) && id.InAnyGroup(p.Breakglass)
}

// MayGrant reports whether the access (a kind name or unmask) may be
// granted on this resource.
func (p *Policy) MayGrant(access string) bool {
	return slices.Contains(p.GrantAllow, access)
}

// GrantCovers reports whether a grant of the accesses lets an operation of
// the kind run without its own review. Unknown is never covered.
func GrantCovers(accesses []string, k sqlkind.Kind) bool {
	if k == sqlkind.Unknown || k == sqlkind.Read {
		return false
	}
	if _, known := sqlkind.ParseKind(k.String()); !known {
		return false
	}
	return slices.Contains(accesses, k.String())
}
