package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

// GrantRequest is the body of POST /v1/grants.
type GrantRequest struct {
	Resource string   `json:"resource"`
	Access   []string `json:"access"`
	For      string   `json:"for"` // a duration: 90m, 1h, 1d
	Reason   string   `json:"reason"`
}

// GrantRequested is the answer of POST /v1/grants: the grant review and
// what to tell the approvers.
type GrantRequested struct {
	Review  ReviewJSON `json:"review"`
	Message string     `json:"message"`
}

// requestGrant creates a grant review. Its limits (grants.allow,
// grants.max_duration, access to the resource) are review.Service.Create's.
func (s *server) requestGrant(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	var req GrantRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	res, err := s.grantResource(req)
	if err != nil {
		return err
	}
	d, err := ParseDuration(req.For)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeBadRequest, "for: %v", err)
	}
	rv, err := s.Reviews.Create(r.Context(), review.Request{
		Type: review.TypeGrant, Resource: res, Dialect: s.resourceType(res), Initiator: caller.Identity,
		Access: cleanList(req.Access), Duration: d, Reason: strings.TrimSpace(req.Reason),
	})
	if err != nil {
		return s.reviewError(r, err)
	}
	s.log.InfoContext(r.Context(), "grant requested", "review", rv.ID, "resource", res, "by", caller.Identity.Key())
	writeJSON(w, http.StatusCreated, GrantRequested{Review: reviewJSON(rv), Message: fmt.Sprintf(
		"grant %s requested: %s on %s for %s; it needs %d approval(s) from %s: 'countersign reviews approve %s'",
		rv.ID, strings.Join(rv.Access, ","), res, d, rv.Required, strings.Join(rv.Approvers, ", "), rv.ID)})
	return nil
}

func (s *server) grantResource(req GrantRequest) (string, error) {
	switch {
	case req.Resource == "":
		return "", errorf(http.StatusBadRequest, CodeBadRequest, `name the resource: {"resource": "NAME", "access": ["write"], "for": "1h", "reason": "..."}`)
	case strings.TrimSpace(req.Reason) == "":
		return "", errorf(http.StatusBadRequest, CodeBadRequest, "a grant needs a reason the approvers can judge: add --reason \"...\"")
	case req.For == "":
		return "", errorf(http.StatusBadRequest, CodeBadRequest, "say how long the grant lasts: for (--for 1h)")
	}
	if _, ok := s.Config.Resource(req.Resource); !ok {
		return "", errorf(http.StatusNotFound, CodeNotFound, "no resource named %q is configured; check the name with your operator", req.Resource)
	}
	return req.Resource, nil
}

func (s *server) resourceType(name string) string {
	if res, ok := s.Config.Resource(name); ok {
		return res.Type
	}
	return ""
}

func cleanList(in []string) []string {
	var out []string
	for _, a := range in {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// listGrants lists the grants the caller may read, newest first.
// ?mine=1, ?active=1 (approved and not ended), ?resource, ?limit.
func (s *server) listGrants(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := listLimit(q)
	if err != nil {
		return err
	}
	f := review.Filter{Type: review.TypeGrant, Resource: q.Get("resource"), Limit: limit}
	if flag(q, "mine") {
		f.InitiatorKey = caller.Identity.Key()
	}
	if flag(q, "active") {
		f.Status = review.StatusApproved
	}
	list, err := s.visible(r, caller.Identity, f, func(review.Review) bool { return true })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ReviewList{Reviews: list})
	return nil
}

// revokeGrant ends a grant early; who may is review.Service.RevokeGrant's
// decision (the initiator, an approver of the resource, an admin).
func (s *server) revokeGrant(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	rv, err := s.Reviews.RevokeGrant(r.Context(), r.PathValue("id"),
		review.Actor{Identity: caller.Identity, Via: via(r), Scopes: caller.Scopes})
	if err != nil {
		return s.reviewError(r, err)
	}
	s.log.InfoContext(r.Context(), "grant revoked", "grant", rv.ID, "by", caller.Identity.Key())
	writeJSON(w, http.StatusOK, reviewJSON(rv))
	return nil
}
