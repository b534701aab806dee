package review

import (
	"context"
	"errors"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// sweepBatch bounds one look-up of the sweeper; Sweep keeps going until a
// look-up comes back short.
const sweepBatch = 100

// Sweep stores the expiry of every review whose time ran out by the store's
// clock, records it and announces it: review.expired for a pending review
// past review_timeout and for an approved operation review nobody used
// within valid_for; grant.ended for a grant past its end. Each transition is
// a conditional UPDATE, so replicas sweeping one store at once record each
// expiry once. It returns how many this call expired.
//
// Expiry is enforced without it (every read judges it with Effective, and
// votes, consumption and grants check the store's clock); Sweep puts it in
// the recording and wakes notifications.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, full, err := s.sweepBatch(ctx)
		total += n
		if err != nil || !full {
			return total, err
		}
	}
}

func (s *Service) sweepBatch(ctx context.Context) (n int, full bool, err error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return 0, false, storeErr(err)
	}
	due, err := s.store.DueReviews(ctx, now, sweepBatch)
	if err != nil {
		return 0, false, storeErr(err)
	}
	var errs []error
	for _, r := range due {
		ok, err := s.expire(ctx, r, now)
		if ok {
			n++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// A batch of failures would come back whole next time: stop there.
	return n, len(due) == sweepBatch && len(errs) == 0, errors.Join(errs...)
}

// expire moves one due review to expired and, if this replica won, records
// and announces it. The record follows the store's change so that losers
// record nothing; if recording fails the expiry still holds (it is also
// judged at every read) and the error is returned and logged.
func (s *Service) expire(ctx context.Context, r Review, now time.Time) (bool, error) {
	from := r.Status
	ok, err := s.store.ExpireReview(ctx, r.ID, from, now)
	if err != nil || !ok {
		if err != nil {
			err = storeErr(err)
		}
		return false, err
	}
	r.Status = StatusExpired
	kind, data := expiryOf(r, from)
	if err := s.record(ctx, string(kind), r, identity.Identity{}, data); err != nil {
		return true, err
	}
	_ = s.notify.Notify(ctx, r.ID)
	s.emit(ctx, Event{Kind: kind, Review: r, At: now})
	return true, nil
}

func expiryOf(r Review, from Status) (EventKind, map[string]any) {
	switch {
	case r.Type == TypeGrant && from == StatusApproved:
		return EventGrantEnded, map[string]any{"access": r.Access, "ended_at": r.ValidUntil,
			"initiator": r.Initiator.Display(), "why": "ran out"}
	case from == StatusApproved:
		return EventExpired, map[string]any{"was": string(from), "valid_until": r.ValidUntil,
			"why": "approved but not used within valid_for"}
	default:
		return EventExpired, map[string]any{"was": string(from), "expires_at": r.ExpiresAt,
			"approvals": r.Approvals(), "required": r.Required, "why": "not decided within review_timeout"}
	}
}

// Run sweeps every interval until ctx ends; the gateway starts it once per
// process (replicas may all run it). Failures are logged and retried at the
// next tick.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("review sweep failed; retrying at the next tick", "expired", n, "err", err)
		} else if n > 0 {
			s.log.Info("reviews expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
