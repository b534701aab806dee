package review

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// Consume claims one approved, still valid operation review of this exact
// resource, digest and initiator for the session, atomically: of two
// sessions racing for one approval exactly one gets it. ok is false when
// there is none; err is set when the store failed (refuse, fail closed).
func (s *Service) Consume(ctx context.Context, resource string, digest []byte, initiator identity.Identity, session string) (reviewID string, ok bool, err error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return "", false, storeErr(err)
	}
	ids, err := s.store.ApprovedFor(ctx, resource, initiator.Key(), digest, now)
	if err != nil {
		return "", false, storeErr(err)
	}
	for _, id := range ids {
		ok, err := s.store.ConsumeReview(ctx, id, initiator.Key(), session, now)
		if err != nil {
			return "", false, storeErr(err)
		}
		if ok {
			return id, true, nil
		}
	}
	return "", false, nil
}

// ConsumeID claims the review by id, as Consume does; the waiting session
// of an approved review uses it.
func (s *Service) ConsumeID(ctx context.Context, id string, initiator identity.Identity, session string) (bool, error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return false, storeErr(err)
	}
	ok, err := s.store.ConsumeReview(ctx, id, initiator.Key(), session, now)
	if err != nil {
		return false, storeErr(err)
	}
	return ok, nil
}

// Restore gives a consumed review back when the transaction that used it
// rolled back, if it is still valid; it reports whether it did.
func (s *Service) Restore(ctx context.Context, id string) (bool, error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return false, storeErr(err)
	}
	ok, err := s.store.RestoreReview(ctx, id, now)
	if err != nil {
		return false, storeErr(err)
	}
	if ok {
		_ = s.notify.Notify(ctx, id)
	}
	return ok, nil
}

// Wait blocks until the review is no longer pending (approved, rejected,
// expired, ...) or ctx ends, and returns it as it then stands. It wakes on
// the Notifier, and on the review's expiry.
func (s *Service) Wait(ctx context.Context, id string) (Review, error) {
	wake, stop := s.notify.Subscribe(id)
	defer stop()
	for {
		r, now, err := s.get(ctx, id)
		if err != nil || r.Status != StatusPending {
			return r, err
		}
		timer := time.NewTimer(r.ExpiresAt.Sub(now))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return r, ctx.Err()
		}
		timer.Stop()
	}
}

// ActiveGrant returns an approved grant of the initiator on the resource,
// valid now, that opens the access; ok is false when there is none.
func (s *Service) ActiveGrant(ctx context.Context, resource string, initiator identity.Identity, covers func(access []string) bool) (Review, bool, error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return Review{}, false, storeErr(err)
	}
	gs, err := s.store.ActiveGrants(ctx, resource, initiator.Key(), now)
	if err != nil {
		return Review{}, false, storeErr(err)
	}
	for _, g := range gs {
		if g.Effective(now) == StatusApproved && covers(g.Access) {
			return g, true, nil
		}
	}
	return Review{}, false, nil
}
