package review

import (
	"context"
	"errors"
	"fmt"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// errNotGrant is returned when RevokeGrant is given an operation review.
var errNotGrant = errors.New("only a grant can be revoked; this is not one")

// RevokeGrant ends a grant early. The initiator, any approver of the
// resource and an admin may revoke; live sessions see it at their next
// operation (the guard asks ActiveGrant each time).
func (s *Service) RevokeGrant(ctx context.Context, id string, by Actor) (Review, error) {
	r, now, err := s.get(ctx, id)
	if err != nil {
		return r, err
	}
	if r.Type != TypeGrant {
		return r, typed(ErrConflict, fmt.Errorf("%s: %w", id, errNotGrant))
	}
	p, err := s.policy(r.Resource)
	if err != nil {
		return r, err
	}
	who := s.current(by.Identity)
	if !who.Same(r.Initiator) && !p.IsApprover(who) && !who.HasRole(identity.RoleAdmin) {
		return r, refused("%s may not revoke grant %s: only its initiator, an approver of %s or an admin may", who.Display(), id, r.Resource)
	}
	ok, err := s.store.RevokeGrant(ctx, id, who.Key(), now)
	if err != nil {
		return r, storeErr(err)
	}
	if !ok {
		return r, conflict("grant %s is %s; only an active grant can be revoked", id, r.Status)
	}
	r.Status, r.RevokedAt, r.RevokedBy = StatusRevoked, now, who.Key()
	if err := s.record(ctx, recording.TypeGrantEnded, r, who, map[string]any{"revoked_by": who.Display()}); err != nil {
		return r, err
	}
	_ = s.notify.Notify(ctx, id)
	s.emit(ctx, Event{Kind: EventGrantEnded, Review: r, Actor: who, At: now})
	return r, nil
}
