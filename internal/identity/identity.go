package identity

import (
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Role is a countersign role, granted through groups (identity.roles).
type Role string

const (
	RoleCreator    Role = "creator"
	RoleApprover   Role = "approver"
	RoleAuditor    Role = "auditor"
	RoleAdmin      Role = "admin"
	RoleBreakglass Role = "breakglass"
)

// KnownRoles lists every role a config may name.
var KnownRoles = []Role{RoleCreator, RoleApprover, RoleAuditor, RoleAdmin, RoleBreakglass}

// Source says how an identity was established.
type Source string

const (
	SourceOIDC    Source = "oidc"    // a verified OIDC login
	SourceLocal   Source = "local"   // minted by `countersign token issue --user`
	SourceService Source = "service" // minted by `countersign token issue --service`
)

// LocalIssuer is the issuer of identities minted by the operator.
const LocalIssuer = "countersign:local"

// Identity is who acts. Issuer and Subject together are the key: never the
// email alone.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	Roles         []Role
	Source        Source
	// AuthTime is when the person last proved who they are (the OIDC login);
	// approvals need a fresh one where OIDC is configured.
	AuthTime time.Time
	// Breakglass is the reason given to `countersign connect --breakglass`,
	// set only on the identity of a resource token minted that way: every
	// operation of its sessions that would be held runs at once as
	// break-glass, recorded with this reason. The guard still checks the
	// breakglass role and the resource's breakglass groups each time.
	Breakglass string
}

// Key is the identity's unique key, issuer and subject.
func (id Identity) Key() string { return id.Issuer + "|" + id.Subject }

// Same reports whether two identities are the same person: the same subject
// under the same issuer (however its case or trailing slash was written),
// or the same verified email under any issuer, compared as people read
// addresses (Unicode compatibility normal form, case folded: "JÖRG@x" and
// "jörg@x", or é precomposed and é as e plus an accent, are one mailbox).
// It may let one identity act on another's behalf (read its reviews, revoke
// its grant); refusals of segregation of duties use MaybeSame.
func (id Identity) Same(o Identity) bool {
	if id.Subject == o.Subject && sameIssuer(id.Issuer, o.Issuer) {
		return true
	}
	return id.EmailVerified && o.EmailVerified && SameEmail(id.Email, o.Email)
}

// MaybeSame reports whether o could be the same person as id, for the
// refusals of segregation of duties (the initiator may not decide, one
// person counts once). Beyond Same: the same email where only one side's
// is verified, by the provider or by the operator who minted the identity
// (some providers, Entra ID among them, send no email_verified claim at
// all, and a person's pipeline identity and their login must still be one
// person); and an identity the operator minted (LocalIssuer) whose name is
// the other's subject or email, which is how an operator names a person's
// pipeline or quickstart identity. Each rule only ever refuses more; none
// may let anyone do anything (read a review, revoke a grant): an
// unverified address or a coinciding name is a hint, not a proof.
func (id Identity) MaybeSame(o Identity) bool {
	if id.Same(o) {
		return true
	}
	if (id.EmailVerified || o.EmailVerified) && SameEmail(id.Email, o.Email) {
		return true
	}
	return mintedAs(id, o) || mintedAs(o, id)
}

// sameIssuer compares issuers as the operator may have written one issuer
// over time (identity.oidc.issuer with and without a trailing slash, the
// host in another case): identities keyed under either are one person.
func sameIssuer(a, b string) bool {
	return a == b || strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// mintedAs reports whether minted is an operator-minted identity named
// after other: its name is other's subject or email (verified or not).
// Only across issuers: two minted identities are told apart by name alone.
func mintedAs(minted, other Identity) bool {
	if minted.Issuer != LocalIssuer || other.Issuer == LocalIssuer || minted.Subject == "" {
		return false
	}
	return minted.Subject == other.Subject || SameEmail(minted.Subject, other.Email)
}

// SameEmail reports whether two addresses are one mailbox to a person:
// equal after NFKC normalisation and Unicode case folding. The store's
// one-vote-per-email constraint lower-cases what it is given, so review
// hands it CanonicalEmail.
func SameEmail(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return strings.EqualFold(norm.NFKC.String(a), norm.NFKC.String(b))
}

// CanonicalEmail is the NFKC form of an address: lower-casing it (as the
// store does) then makes every pair SameEmail accepts equal but for the
// rare letters whose folding and lower case differ.
func CanonicalEmail(email string) string { return norm.NFKC.String(email) }

// HasRole reports whether the identity holds the role.
func (id Identity) HasRole(r Role) bool { return slices.Contains(id.Roles, r) }

// InAnyGroup reports whether the identity is a member of any of groups.
func (id Identity) InAnyGroup(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(id.Groups, g) {
			return true
		}
	}
	return false
}

// Display is a short human name: email, else name, else subject.
func (id Identity) Display() string {
	switch {
	case id.Email != "":
		return id.Email
	case id.Name != "":
		return id.Name
	default:
		return id.Subject
	}
}

// RolesFor maps groups to roles through the configured table, each role once,
// in KnownRoles order.
func RolesFor(groups []string, table map[string][]Role) []Role {
	var out []Role
	for _, r := range KnownRoles {
		for _, g := range groups {
			if slices.Contains(table[g], r) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
