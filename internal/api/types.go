package api

import (
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// IdentityJSON is an identity as the API shows it.
type IdentityJSON struct {
	Key     string   `json:"key"`
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Name    string   `json:"name,omitempty"`
	Display string   `json:"display"`
	Source  string   `json:"source"`
	Groups  []string `json:"groups"`
	Roles   []string `json:"roles"`
}

// TokenJSON describes a token, never its secret.
type TokenJSON struct {
	ID        string     `json:"id"`
	Identity  string     `json:"identity"` // display name
	Key       string     `json:"key"`      // identity key
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Me is the answer of GET /v1/me.
type Me struct {
	Identity IdentityJSON `json:"identity"`
	Groups   []string     `json:"groups"`
	Roles    []string     `json:"roles"`
	Token    TokenJSON    `json:"token"`
}

// Issued is the answer of every call that makes a token: the secret, shown
// this once.
type Issued struct {
	Token     string       `json:"token"`
	ID        string       `json:"id"`
	ExpiresAt time.Time    `json:"expires_at"`
	Identity  IdentityJSON `json:"identity"`
	// Resource and User are set by /v1/connect: the database name and user
	// name a client connects with.
	Resource string `json:"resource,omitempty"`
	Type     string `json:"type,omitempty"` // postgres | mysql | kubernetes
	User     string `json:"user,omitempty"`
}

// TokenList is the answer of GET /v1/tokens.
type TokenList struct {
	Tokens []TokenJSON `json:"tokens"`
}

func identityJSON(id identity.Identity) IdentityJSON {
	roles := make([]string, len(id.Roles))
	for i, r := range id.Roles {
		roles[i] = string(r)
	}
	return IdentityJSON{
		Key: id.Key(), Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, Name: id.Name,
		Display: id.Display(), Source: string(id.Source), Groups: nonNil(id.Groups), Roles: roles,
	}
}

func tokenJSON(t identity.Token) TokenJSON {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = string(s)
	}
	return TokenJSON{
		ID: t.ID, Identity: t.Identity.Display(), Key: t.Identity.Key(), Scopes: scopes,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
