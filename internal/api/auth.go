package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/countersign/countersign/internal/identity"
)

// authedHandler is a handler that runs for an authenticated API token.
type authedHandler func(w http.ResponseWriter, r *http.Request, caller identity.Token) error

// authed checks the bearer token before h runs and answers h's error.
func (s *server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, caller)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *server) authenticate(r *http.Request) (identity.Token, error) {
	secret, ok := bearer(r)
	if !ok {
		return identity.Token{}, errorf(http.StatusUnauthorized, CodeUnauthenticated,
			"no token: send 'Authorization: Bearer TOKEN' (run 'countersign login', or ask your operator for a token)")
	}
	t, err := s.Tokens.AuthenticateAPI(r.Context(), secret)
	switch {
	case err == nil:
		// The roles are those the token's groups have in the role table
		// the gateway runs with, not those of when it was issued: a role
		// the operator took from a group is gone from every live token
		// (a break-glass token, a listing, a vote).
		t.Identity.Roles = identity.RolesFor(t.Identity.Groups, s.roles)
		return t, nil
	case errors.Is(err, identity.ErrTokenScope):
		return identity.Token{}, errorf(http.StatusForbidden, CodeForbidden, "%s", err.Error())
	case errors.Is(err, identity.ErrTokenInvalid), errors.Is(err, identity.ErrTokenExpired), errors.Is(err, identity.ErrTokenRevoked):
		return identity.Token{}, errorf(http.StatusUnauthorized, CodeUnauthenticated, "%s", err.Error())
	}
	// The store could not answer: refuse, but do not send the person to log
	// in again, the token may be fine.
	s.log.ErrorContext(r.Context(), "api: cannot check a token", "err", err)
	return identity.Token{}, errorf(http.StatusServiceUnavailable, CodeUnavailable,
		"the gateway cannot check tokens right now (its store does not answer); try again shortly")
}

// bearer returns the token of an "Authorization: Bearer X" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
