package review

import (
	"context"
	"time"
)

// watchRetry is how soon WatchGrant reads a grant again after the store
// failed to answer.
const watchRetry = time.Second

// WatchGrant calls ended once, from its own goroutine, when the grant stops
// being active: its time runs out by the store's clock, it is revoked (on
// any replica: a revocation notifies through the Notifier), or it is in any
// state but approved. It wakes on the grant's notifications and at its end,
// never by polling. stop ends the watch; an ended already under way may
// still finish.
//
// It fails closed: while the store cannot be read it retries, and once the
// grant's end has passed by the local clock (corrected by the store's offset
// at the last good read; before one, g.ValidUntil as given) it reports the
// grant ended without waiting for the store.
func (s *Service) WatchGrant(g Review, ended func(Review)) (stop func()) {
	id := g.ID
	ctx, cancel := context.WithCancel(context.Background())
	wake, unsubscribe := s.notify.Subscribe(id)
	go func() {
		defer unsubscribe()
		end := g.ValidUntil // the grant's end on the local clock
		for {
			r, now, err := s.get(ctx, id)
			wait := watchRetry
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && r.Status != StatusApproved:
				ended(r)
				return
			case err == nil:
				end = time.Now().Add(r.ValidUntil.Sub(now))
				wait = time.Until(end)
			case !time.Now().Before(end):
				s.log.Warn("grant state unreadable past its end; treating it as ended", "grant", id, "err", err)
				ended(Review{ID: id, Type: TypeGrant, Status: StatusExpired})
				return
			default:
				s.log.Warn("grant state unreadable; retrying", "grant", id, "in", wait, "err", err)
				wait = min(wait, time.Until(end))
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-wake:
			case <-timer.C:
			}
			timer.Stop()
		}
	}()
	return cancel
}
