package review

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
)

// Actor is who votes and how they reached countersign.
type Actor struct {
	Identity identity.Identity
	// Via names the path: "api", "cli", "web", "webhook".
	Via string
	// Scopes are the scopes of the token the actor used. Voting needs
	// identity.ScopeAPI: a resource token is a database password and can
	// never approve. The zero Actor has none and is refused.
	Scopes []identity.Scope
}

// Approve is the one function through which every approval passes. It
// refuses every segregation-of-duties violation (see the package doc),
// counts each person once, and approves the review when the required
// number of distinct approvals is reached.
func (s *Service) Approve(ctx context.Context, reviewID string, by Actor, comment string) (Review, error) {
	return s.vote(ctx, reviewID, by, comment, true)
}

// Reject is Approve's twin: the same checks, and one rejection rejects.
func (s *Service) Reject(ctx context.Context, reviewID string, by Actor, comment string) (Review, error) {
	return s.vote(ctx, reviewID, by, comment, false)
}

func (s *Service) vote(ctx context.Context, reviewID string, by Actor, comment string, approve bool) (Review, error) {
	by.Identity = s.current(by.Identity)
	r, now, err := s.get(ctx, reviewID)
	if err != nil {
		return Review{}, err
	}
	p, err := s.policy(r.Resource)
	if err != nil {
		return r, err
	}
	if err := s.mayVote(r, p, by, now); err != nil {
		return r, err
	}
	v := Vote{ReviewID: r.ID, Voter: personOf(by.Identity), Approve: approve, Via: by.Via, Comment: comment, At: now}
	ok, err := s.store.AddVote(ctx, v, now)
	switch {
	case errors.Is(err, ErrDuplicate):
		return r, conflict("%s already voted on review %s; one person counts once", by.Identity.Display(), r.ID)
	case err != nil:
		return r, storeErr(err)
	case !ok:
		return s.notOpen(ctx, r.ID)
	}
	return s.afterVote(ctx, r.ID, v)
}

// mayVote holds every refusal that does not need the store.
func (s *Service) mayVote(r Review, p *policy.Policy, by Actor, now time.Time) error {
	who := by.Identity.Display()
	switch {
	case r.Status != StatusPending:
		return conflict("review %s is %s; only a pending review can be decided", r.ID, r.Status)
	case !slices.Contains(by.Scopes, identity.ScopeAPI):
		return refused("this token cannot vote: only an API token from 'countersign login' can; a resource token is only a database password")
	case by.Identity.Same(r.Initiator):
		return refused("%s initiated review %s and cannot decide it; another approver from %v must", who, r.ID, r.Approvers)
	case by.Identity.MaybeSame(r.Initiator):
		return refused("%s may be %s, who initiated review %s, under another identity (the same email, or an identity the operator named after them), and cannot decide it; another approver from %v must",
			who, r.Initiator.Display(), r.ID, r.Approvers)
	case !p.IsApprover(by.Identity):
		return refused("%s may not decide reviews on %s: that needs the approver role and membership of one of %v", who, r.Resource, p.Approvers)
	}
	if err := s.freshEnough(by.Identity, now); err != nil {
		return typed(ErrRefused, err)
	}
	for _, v := range r.Votes {
		if v.Voter.MaybeSame(by.Identity) {
			return conflict("%s already voted on review %s; one person counts once", who, r.ID)
		}
	}
	return nil
}

// freshEnough applies the login rules (identity.CanApproveFresh): where
// OIDC is configured only a login younger than approve_max_age may vote,
// and minted or service identities only with identity.local.may_approve.
func (s *Service) freshEnough(id identity.Identity, now time.Time) error {
	return identity.CanApproveFresh(id, s.ident.OIDC != nil, s.ident.Local.MayApprove, s.ident.ApproveMaxAge, now)
}

// afterVote decides the review when the vote settles it, then records the
// vote and wakes the review's waiters.
func (s *Service) afterVote(ctx context.Context, id string, v Vote) (Review, error) {
	r, now, err := s.get(ctx, id)
	if err != nil {
		return r, err
	}
	decided := false
	if r.Status == StatusPending && (!v.Approve || r.Approvals() >= r.Required) {
		if decided, err = s.decide(ctx, &r, v.Approve, now); err != nil {
			return r, err
		}
		if decided && r.Type == TypeGrant && r.Status == StatusApproved {
			data := map[string]any{"access": r.Access, "ends_at": r.ValidUntil, "initiator": r.Initiator.Display()}
			if err := s.record(ctx, recording.TypeGrantStarted, r, v.Voter, data); err != nil {
				return r, err
			}
		}
	}
	typ := recording.TypeReviewApproved
	if !v.Approve {
		typ = recording.TypeReviewRejected
	}
	if err := s.record(ctx, typ, r, v.Voter, voteData(v, r)); err != nil {
		return r, err
	}
	if err := s.notify.Notify(ctx, r.ID); err != nil {
		s.log.Warn("review waiters not notified", "review", r.ID, "err", err)
	}
	if decided {
		s.emitDecided(ctx, r, v, now)
	}
	return r, nil
}

// emitDecided announces a decision this vote made (not every vote: a
// notification per decision is what a channel wants).
func (s *Service) emitDecided(ctx context.Context, r Review, v Vote, now time.Time) {
	kind := EventRejected
	if r.Status == StatusApproved {
		kind = EventApproved
	}
	s.emit(ctx, Event{Kind: kind, Review: r, Actor: v.Voter, Comment: v.Comment, At: now})
	if r.Type == TypeGrant && r.Status == StatusApproved {
		s.emit(ctx, Event{Kind: EventGrantStarted, Review: r, Actor: v.Voter, At: now})
	}
}

// decide moves the review to approved or rejected; decided reports whether
// this call did (false: another vote decided it first, or it expired
// meanwhile, and r is re-read).
func (s *Service) decide(ctx context.Context, r *Review, approve bool, now time.Time) (decided bool, err error) {
	status, until := StatusRejected, time.Time{}
	if approve {
		status, until = StatusApproved, now.Add(r.ValidFor)
		if r.Type == TypeGrant {
			until = now.Add(r.Duration)
		}
	}
	ok, err := s.store.DecideReview(ctx, r.ID, status, now, until)
	if err != nil {
		return false, storeErr(err)
	}
	if !ok {
		got, _, err := s.get(ctx, r.ID)
		*r = got
		return false, err
	}
	r.Status, r.DecidedAt, r.ValidUntil = status, now, until
	return true, nil
}

// notOpen explains why the store refused a vote on a review that looked
// pending a moment ago.
func (s *Service) notOpen(ctx context.Context, id string) (Review, error) {
	r, _, err := s.get(ctx, id)
	if err != nil {
		return r, err
	}
	return r, conflict("review %s is %s; only a pending review can be decided", id, r.Status)
}
