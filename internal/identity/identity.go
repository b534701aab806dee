package identity

import (
	"slices"
	"time"
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

// Same reports whether two identities are the same person: the same issuer
// and subject, or the same verified email under any issuer.
func (id Identity) Same(o Identity) bool {
	if id.Issuer == o.Issuer && id.Subject == o.Subject {
		return true
	}
	return id.EmailVerified && o.EmailVerified && id.Email != "" && equalFoldASCII(id.Email, o.Email)
}

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

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
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
