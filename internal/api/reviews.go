package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

// reviewStatuses are the values ?status= takes.
var reviewStatuses = []review.Status{review.StatusPending, review.StatusApproved, review.StatusRejected,
	review.StatusExpired, review.StatusConsumed, review.StatusRevoked}

var reviewTypes = []review.Type{review.TypeOperation, review.TypeGrant, review.TypeBreakglass}

// listReviews lists the reviews the caller may read, newest first.
// ?mine=1: the caller's own; ?to_approve=1: pending reviews the caller may
// decide (an approver of the resource, not the initiator, no vote yet);
// ?retro=1: open break-glass reviews; ?status, ?type, ?resource, ?limit.
func (s *server) listReviews(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	f, keep, err := s.reviewFilter(r, caller.Identity)
	if err != nil {
		return err
	}
	list, err := s.visible(r, caller.Identity, f, keep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ReviewList{Reviews: list})
	return nil
}

// visible lists the reviews of f that id may read and keep accepts, at
// most f.Limit. The store is asked for the most a list returns, so that
// reviews the caller may not read do not use up the limit.
func (s *server) visible(r *http.Request, id identity.Identity, f review.Filter, keep func(review.Review) bool) ([]ReviewJSON, error) {
	limit := f.Limit
	f.Limit = maxListLimit
	rs, err := s.Reviews.List(r.Context(), f)
	if err != nil {
		return nil, s.reviewError(r, err)
	}
	out := []ReviewJSON{}
	for _, rv := range rs {
		if len(out) == limit {
			break
		}
		if s.mayReadReview(id, rv) && keep(rv) {
			out = append(out, reviewJSON(rv))
		}
	}
	return out, nil
}

// reviewFilter reads the query into a store filter and a further test.
func (s *server) reviewFilter(r *http.Request, id identity.Identity) (review.Filter, func(review.Review) bool, error) {
	q := r.URL.Query()
	keep := func(review.Review) bool { return true }
	limit, err := listLimit(q)
	if err != nil {
		return review.Filter{}, keep, err
	}
	f := review.Filter{Resource: q.Get("resource"), Type: review.Type(q.Get("type")), Status: review.Status(q.Get("status")), Limit: limit}
	if f.Status != "" && !slices.Contains(reviewStatuses, f.Status) {
		return f, keep, errorf(http.StatusBadRequest, CodeBadRequest, "status=%q: use one of %v", f.Status, reviewStatuses)
	}
	if f.Type != "" && !slices.Contains(reviewTypes, f.Type) {
		return f, keep, errorf(http.StatusBadRequest, CodeBadRequest, "type=%q: use one of %v", f.Type, reviewTypes)
	}
	switch {
	case flag(q, "mine"):
		f.InitiatorKey = id.Key()
	case flag(q, "to_approve"):
		f.Status = review.StatusPending
		keep = func(rv review.Review) bool { return s.mayDecide(id, rv) }
	case flag(q, "retro"):
		f.Type, f.Status = review.TypeBreakglass, review.StatusPending
	}
	return f, keep, nil
}

// mayDecide is a listing hint only ("what is waiting for me?"): the
// decision itself is review.Service.Approve's, which checks everything.
func (s *server) mayDecide(id identity.Identity, rv review.Review) bool {
	p := s.policies[rv.Resource]
	if p == nil || !p.IsApprover(id) || id.MaybeSame(rv.Initiator) {
		return false
	}
	return !slices.ContainsFunc(rv.Votes, func(v review.Vote) bool { return v.Voter.MaybeSame(id) })
}

// showReview shows one review to whoever may read it; to anyone else it
// does not exist, so ids cannot be probed.
func (s *server) showReview(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	rv, err := s.Reviews.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return s.reviewError(r, err)
	}
	if !s.mayReadReview(caller.Identity, rv) {
		return notYourReview(rv.ID)
	}
	j := reviewJSON(rv)
	s.estimate(r.Context(), rv, &j)
	writeJSON(w, http.StatusOK, j)
	return nil
}

// estimate fills in the rows a pending operation review would change, from
// the Estimator (EXPLAIN without ANALYZE upstream, which never executes
// the statement). A decided review is not estimated again: its moment to
// be judged has passed.
func (s *server) estimate(ctx context.Context, rv review.Review, j *ReviewJSON) {
	if s.Estimator == nil || rv.Type == review.TypeGrant || rv.Status != review.StatusPending {
		return
	}
	rows, ok, why := s.Estimator.EstimateRows(ctx, rv)
	if !ok {
		j.Estimate = NoEstimate + ": " + why
		return
	}
	j.Estimate, j.EstimatedRows = fmt.Sprintf("about %d row(s) (the planner's estimate, EXPLAIN without ANALYZE; nothing ran)", rows), &rows
}

func notYourReview(id string) error {
	return errorf(http.StatusNotFound, CodeNotFound,
		"no review %q that you may read; 'countersign reviews list' shows yours and those you approve", id)
}

func (s *server) approveReview(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	return s.voteReview(w, r, caller, true)
}

func (s *server) rejectReview(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	return s.voteReview(w, r, caller, false)
}

// voteReview hands the vote to review.Service, the one place segregation
// of duties is decided. Nothing here judges who may vote: the actor
// carries the identity and the scopes of the token used, and the service
// refuses what it must.
func (s *server) voteReview(w http.ResponseWriter, r *http.Request, caller identity.Token, approve bool) error {
	if err := s.needReviews(); err != nil {
		return err
	}
	var req VoteRequest
	if err := decodeOptional(w, r, &req); err != nil {
		return err
	}
	actor := review.Actor{Identity: caller.Identity, Via: via(r), Scopes: caller.Scopes}
	vote := s.Reviews.Approve
	if !approve {
		vote = s.Reviews.Reject
	}
	rv, err := vote(r.Context(), r.PathValue("id"), actor, req.Comment)
	if err != nil {
		return s.reviewError(r, err)
	}
	s.log.InfoContext(r.Context(), "review vote", "review", rv.ID, "approve", approve, "by", caller.Identity.Key(), "status", rv.Status)
	writeJSON(w, http.StatusOK, reviewJSON(rv))
	return nil
}

// ClientHeader names the client making the request ("cli" or "web"); it
// only labels the path of a vote in the trail.
const ClientHeader = "X-Countersign-Client"

func via(r *http.Request) string {
	switch c := r.Header.Get(ClientHeader); c {
	case "cli", "web":
		return c
	}
	return "api"
}

// decodeOptional is decode for endpoints whose body may be left out.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	return decode(w, r, v)
}
