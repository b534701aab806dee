package identity

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// identityFrom reads a verified ID token's claims. A claim present with a
// type it cannot mean refuses the login rather than being guessed at.
func (o *OIDC) identityFrom(idt *oidc.IDToken) (Identity, error) {
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: cannot read the ID token's claims: %v", ErrLoginRefused, err)
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("%w: the ID token has no subject (sub); the identity provider is misconfigured for identity.oidc.client_id", ErrLoginRefused)
	}
	id := Identity{Issuer: idt.Issuer, Subject: idt.Subject, Source: SourceOIDC}
	var err error
	if id.Email, err = stringClaim(claims, "email"); err != nil {
		return Identity{}, err
	}
	if id.EmailVerified, err = boolClaim(claims, "email_verified"); err != nil {
		return Identity{}, err
	}
	if id.Name, err = stringClaim(claims, "name"); err != nil {
		return Identity{}, err
	}
	if id.Name == "" {
		if id.Name, err = stringClaim(claims, "preferred_username"); err != nil {
			return Identity{}, err
		}
	}
	if id.Groups, err = groupsClaim(claims, o.cfg.GroupsClaim); err != nil {
		return Identity{}, err
	}
	id.Roles = RolesFor(id.Groups, o.cfg.Roles)
	if id.AuthTime, err = o.authTime(claims); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// authTime is the auth_time claim, else now (the token was just issued
// for this login). With MaxAge set it must be present and recent enough.
func (o *OIDC) authTime(claims map[string]json.RawMessage) (time.Time, error) {
	now := o.cfg.Now()
	raw, ok := claims["auth_time"]
	if !ok || string(raw) == "null" {
		if o.cfg.MaxAge > 0 {
			return time.Time{}, fmt.Errorf("%w: the identity provider did not say when you logged in (no auth_time claim although max_age was asked for); the provider behind identity.oidc.issuer must honour max_age", ErrLoginRefused)
		}
		return now, nil
	}
	var secs json.Number
	if err := json.Unmarshal(raw, &secs); err != nil {
		return time.Time{}, fmt.Errorf("%w: the ID token's auth_time claim is not a number; check the claims the identity provider sends for identity.oidc.client_id", ErrLoginRefused)
	}
	f, err := secs.Float64()
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: the ID token's auth_time claim is not a number; check the claims the identity provider sends for identity.oidc.client_id", ErrLoginRefused)
	}
	at := time.Unix(int64(f), 0)
	if o.cfg.MaxAge > 0 && now.Sub(at) > o.cfg.MaxAge+time.Minute {
		return time.Time{}, fmt.Errorf("%w: your login at the identity provider is from %s, older than %s; log out there and run 'countersign login' again",
			ErrLoginRefused, at.UTC().Format(time.RFC3339), o.cfg.MaxAge)
	}
	return at, nil
}

func stringClaim(claims map[string]json.RawMessage, name string) (string, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: the ID token's %s claim is not a string; check the claims the identity provider sends for identity.oidc.client_id", ErrLoginRefused, name)
	}
	return s, nil
}

// boolClaim accepts true/false and, as some providers send, "true"/"false".
func boolClaim(claims map[string]json.RawMessage, name string) (bool, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	switch string(raw) {
	case "true", `"true"`:
		return true, nil
	case "false", `"false"`:
		return false, nil
	}
	return false, fmt.Errorf("%w: the ID token's %s claim is not a boolean; check the claims the identity provider sends for identity.oidc.client_id", ErrLoginRefused, name)
}

// groupsClaim reads the configured groups claim: absent is no groups, a
// string is one group, a list must hold only strings.
func groupsClaim(claims map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: the ID token's %q claim is neither a string nor a list of strings; check identity.oidc.groups_claim", ErrLoginRefused, name)
	}
	out := list[:0]
	for _, g := range list {
		if g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
