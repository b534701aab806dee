package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/review"
)

// CodeConflict: the request is valid but the thing it acts on is not in a
// state that allows it (a decided review, a second vote, an ended grant).
const CodeConflict = "conflict"

// Default and largest number of rows a list endpoint returns.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// compilePolicies compiles each resource's policy for the read-side
// questions (is this identity an approver of the resource?). A policy that
// does not compile is left out, so nobody is an approver of it here; the
// gateway refuses to start with one anyway.
func compilePolicies(cfg *config.Config) map[string]*policy.Policy {
	out := map[string]*policy.Policy{}
	if cfg == nil {
		return out
	}
	for _, r := range cfg.Resources {
		if p, err := policy.Compile(r, cfg.Identity.Roles); err == nil {
			out[r.Name] = p
		}
	}
	return out
}

// readsAll says whether the identity may read every review, session and
// the whole trail: auditors and admins.
func readsAll(id identity.Identity) bool {
	return id.HasRole(identity.RoleAuditor) || id.HasRole(identity.RoleAdmin)
}

// needAuditor refuses callers that are neither auditor nor admin.
func needAuditor(id identity.Identity, what string) error {
	if readsAll(id) {
		return nil
	}
	return errorf(http.StatusForbidden, CodeForbidden,
		"%s needs the auditor or admin role (yours: %s); ask an admin to add you to a group that grants it", what, roleNames(id.Roles))
}

func roleNames(roles []identity.Role) string {
	if len(roles) == 0 {
		return "none"
	}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// mayReadReview: auditors and admins read every review, the initiator
// reads their own, approvers of the resource read its reviews.
func (s *server) mayReadReview(id identity.Identity, r review.Review) bool {
	if readsAll(id) || id.Same(r.Initiator) {
		return true
	}
	p := s.policies[r.Resource]
	return p != nil && p.IsApprover(id)
}

func (s *server) needReviews() error {
	if s.Reviews == nil {
		return errorf(http.StatusNotFound, CodeNotConfigured, "this gateway serves no reviews (it was started without the review service)")
	}
	return nil
}

// reviewError turns an error of the review service into an answer by its
// kind (review.ErrNotFound, ErrRefused, ErrConflict, ErrInvalid,
// ErrUnavailable). A refusal's text is meant for the person and is sent; a
// store or recording failure, or an error of no known kind, is logged and
// not sent (it may name internals).
func (s *server) reviewError(r *http.Request, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, review.ErrUnavailable):
		s.log.ErrorContext(r.Context(), "api: the review service failed", "path", r.URL.Path, "err", err)
		return errorf(http.StatusServiceUnavailable, CodeUnavailable,
			"the gateway's store or recording failed, so nothing was changed; retry, and tell an operator if it persists")
	case errors.Is(err, review.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%s", msg)
	case errors.Is(err, identity.ErrNotFresh):
		return errorf(http.StatusForbidden, CodeForbidden, "%s", msg)
	case errors.Is(err, review.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "%s", msg)
	case errors.Is(err, review.ErrRefused):
		return errorf(http.StatusForbidden, CodeForbidden, "%s", msg)
	case errors.Is(err, review.ErrInvalid):
		return errorf(http.StatusBadRequest, CodeBadRequest, "%s", msg)
	}
	return err // internal: logged by writeError, not sent
}

// flag reads a boolean query parameter: 1, true or yes.
func flag(q url.Values, name string) bool {
	switch strings.ToLower(q.Get(name)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// listLimit reads ?limit (default 100, at most 1000).
func listLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errorf(http.StatusBadRequest, CodeBadRequest, "limit=%q: give a positive number (at most %d)", v, maxListLimit)
	}
	return min(n, maxListLimit), nil
}

// ParseWhen reads a point in time: RFC 3339, or a duration back from now
// ("24h", "30m", "7d").
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor a duration back from now (24h, 7d)", s)
	}
	return now.Add(-d), nil
}

// ParseDuration is time.ParseDuration that also takes whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q is not a duration: write 90m, 4h or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write 90m, 4h or 7d", s)
	}
	return d, nil
}

// queryTime reads a ParseWhen query parameter, refusing a bad one.
func (s *server) queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	now, err := s.Store.Now(r.Context())
	if err != nil {
		return time.Time{}, fmt.Errorf("store clock: %w", err)
	}
	t, err := ParseWhen(v, now)
	if err != nil {
		return t, errorf(http.StatusBadRequest, CodeBadRequest, "%s: %v", name, err)
	}
	return t, nil
}
