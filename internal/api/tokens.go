package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
)

// Default token lifetimes, used when the config leaves them zero.
const (
	defaultAPITTL      = 12 * time.Hour
	defaultResourceTTL = time.Hour
)

func (s *server) me(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	id := identityJSON(caller.Identity)
	writeJSON(w, http.StatusOK, Me{Identity: id, Groups: id.Groups, Roles: id.Roles, Token: tokenJSON(caller)})
	return nil
}

type connectRequest struct {
	Resource string `json:"resource"`
	// Breakglass, when set, is the reason for a break-glass token: its
	// sessions run held operations at once, each recorded as break-glass
	// with a retrospective review. Only for the breakglass role and the
	// resource's breakglass groups.
	Breakglass string `json:"breakglass,omitempty"`
}

// connect mints a resource token: the password of one resource, for an
// identity in one of the resource's policy.access groups.
func (s *server) connect(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	var req connectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Resource == "" {
		return errorf(http.StatusBadRequest, CodeBadRequest, `name the resource: {"resource": "NAME"}`)
	}
	res, ok := s.Config.Resource(req.Resource)
	if !ok {
		return errorf(http.StatusNotFound, CodeNotFound, "no resource named %q is configured; check the name with your operator", req.Resource)
	}
	id := caller.Identity
	if len(res.Policy.Access) == 0 {
		return errorf(http.StatusForbidden, CodeForbidden,
			"nobody may connect to %s: its policy.access lists no groups; ask your operator to add the groups that may", res.Name)
	}
	if !id.InAnyGroup(res.Policy.Access) {
		return errorf(http.StatusForbidden, CodeForbidden,
			"%s may not connect to %s: that needs membership in one of the groups %s (yours: %s); ask to be added to one",
			id.Display(), res.Name, strings.Join(res.Policy.Access, ", "), groupList(id.Groups))
	}
	if req.Breakglass = strings.TrimSpace(req.Breakglass); req.Breakglass != "" {
		if p := s.policies[res.Name]; p == nil || !p.MayBreakglass(id) {
			return errorf(http.StatusForbidden, CodeForbidden,
				"%s may not break glass on %s: that needs the breakglass role and membership of one of its policy.breakglass groups; ask for a review or a grant instead",
				id.Display(), res.Name)
		}
		id.Breakglass = req.Breakglass
	}
	ttl := s.Config.Identity.ResourceTTL
	if ttl <= 0 {
		ttl = defaultResourceTTL
	}
	if id.Breakglass != "" {
		// Whoever holds a break-glass token runs held operations
		// unreviewed: keep the window for a leaked one short.
		ttl = min(ttl, BreakglassTokenTTL)
	}
	issued, err := s.issue(r.Context(), caller.Identity, id, []identity.Scope{identity.ResourceScope(res.Name)}, ttl, "connect")
	if err != nil {
		return err
	}
	issued.Resource, issued.Type, issued.User = res.Name, res.Type, DatabaseUser(id)
	writeJSON(w, http.StatusOK, issued)
	return nil
}

// BreakglassTokenTTL caps the lifetime of a break-glass resource token.
const BreakglassTokenTTL = 15 * time.Minute

// DatabaseUser is the user name a client gives with a resource token: the
// subject of a local identity, else its display name. The engines identify
// the person by the token, not by this name.
func DatabaseUser(id identity.Identity) string {
	if id.Source == identity.SourceOIDC {
		return id.Display()
	}
	return id.Subject
}

func groupList(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	return strings.Join(groups, ", ")
}

// issue makes a token and records the admin event. If the event cannot be
// recorded the token is revoked again and the request fails: no token may
// exist that the trail does not know of.
func (s *server) issue(ctx context.Context, actor, id identity.Identity, scopes []identity.Scope, ttl time.Duration, via string) (Issued, error) {
	secret, tok, err := s.Tokens.Issue(ctx, id, scopes, ttl)
	if err != nil {
		return Issued{}, fmt.Errorf("issue a token for %s: %w", id.Display(), err)
	}
	if err := s.adminEvent(ctx, actor, "token.issue", tokenEvent(tok, via)); err != nil {
		if rerr := s.Tokens.Revoke(ctx, tok.ID); rerr != nil {
			s.log.ErrorContext(ctx, "api: cannot revoke an unrecorded token", "token_id", tok.ID, "err", rerr)
		}
		return Issued{}, err
	}
	s.log.InfoContext(ctx, "token issued", "token_id", tok.ID, "identity", id.Key(), "via", via, "expires_at", tok.ExpiresAt)
	return Issued{Token: secret, ID: tok.ID, ExpiresAt: tok.ExpiresAt, Identity: identityJSON(id)}, nil
}

// TokenEvent is the admin event detail of a token issue or revoke.
type TokenEvent struct {
	TokenID   string    `json:"token_id"`
	Identity  string    `json:"identity"`
	Scopes    []string  `json:"scopes,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Via       string    `json:"via"`
	// Breakglass is the reason of a break-glass resource token.
	Breakglass string `json:"breakglass,omitempty"`
}

func tokenEvent(t identity.Token, via string) TokenEvent {
	j := tokenJSON(t)
	return TokenEvent{TokenID: t.ID, Identity: t.Identity.Key(), Scopes: j.Scopes, ExpiresAt: t.ExpiresAt, Via: via,
		Breakglass: t.Identity.Breakglass}
}

func (s *server) adminEvent(ctx context.Context, actor identity.Identity, action string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	done := s.Metrics.TimeStore("add_admin_event")
	defer done()
	if err := s.Store.AddAdminEvent(ctx, store.AdminEvent{Actor: actor.Key(), Action: action, Detail: string(b)}); err != nil {
		return fmt.Errorf("record admin event %s: %w", action, err)
	}
	return nil
}

// listTokens lists the caller's own tokens; an admin may ask for all with
// ?all=true.
func (s *server) listTokens(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	f := store.TokenFilter{Issuer: caller.Identity.Issuer, Subject: caller.Identity.Subject}
	if r.URL.Query().Get("all") == "true" {
		if !caller.Identity.HasRole(identity.RoleAdmin) {
			return errorf(http.StatusForbidden, CodeForbidden, "listing every token needs the admin role; omit all=true to list your own")
		}
		f = store.TokenFilter{}
	}
	toks, err := s.Store.ListTokens(r.Context(), f)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := TokenList{Tokens: make([]TokenJSON, 0, len(toks))}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, tokenJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeToken revokes one of the caller's tokens, or any token for an
// admin. Someone else's token is "not found" to a non-admin, so ids of
// other people's tokens cannot be probed.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	tokID := r.PathValue("id")
	admin := caller.Identity.HasRole(identity.RoleAdmin)
	if !admin {
		own, err := s.Store.ListTokens(r.Context(), store.TokenFilter{Issuer: caller.Identity.Issuer, Subject: caller.Identity.Subject})
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		if !slices.ContainsFunc(own, func(t identity.Token) bool { return t.ID == tokID }) {
			return errorf(http.StatusNotFound, CodeNotFound, "you have no token %q; 'countersign token list' shows yours", tokID)
		}
	}
	if err := s.Store.RevokeToken(r.Context(), tokID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, CodeNotFound, "there is no token %q; 'countersign token list' shows the ids", tokID)
		}
		return fmt.Errorf("revoke token: %w", err)
	}
	if err := s.adminEvent(r.Context(), caller.Identity, "token.revoke", TokenEvent{TokenID: tokID, Via: "api"}); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "token revoked", "token_id", tokID, "by", caller.Identity.Key())
	writeJSON(w, http.StatusOK, map[string]string{"revoked": tokID})
	return nil
}
