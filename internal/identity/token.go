package identity

import (
	"slices"
	"time"
)

// Scope limits what a token may be used for.
type Scope string

const (
	// ScopeAPI lets a token call the HTTP API (request, approve, read).
	ScopeAPI Scope = "api"
	// ScopeResources lets a token be the password of every resource its
	// identity may access. Only operator-minted tokens carry it.
	ScopeResources Scope = "resources"
	// A resource token carries "resource:NAME": the password of that one
	// resource, and nothing else.
	resourceScopePrefix = "resource:"
)

// ResourceScope is the scope of a token that is the password of one resource.
func ResourceScope(resource string) Scope { return Scope(resourceScopePrefix + resource) }

// Token is a countersign token as the store keeps it: the hash, never the
// token itself.
type Token struct {
	ID        string // short public id, for list and revoke
	Hash      []byte // SHA-256 of the secret token
	Identity  Identity
	Scopes    []Scope
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// AllowsAPI reports whether the token may call the API.
func (t Token) AllowsAPI() bool { return slices.Contains(t.Scopes, ScopeAPI) }

// AllowsResource reports whether the token is a password for the resource.
func (t Token) AllowsResource(resource string) bool {
	return slices.Contains(t.Scopes, ScopeResources) || slices.Contains(t.Scopes, ResourceScope(resource))
}
