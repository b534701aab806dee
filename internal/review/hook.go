package review

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// EventKind names what happened to a review. The values are the recording's
// event types, so a notification and the trail use one vocabulary.
type EventKind string

const (
	EventCreated      EventKind = recording.TypeReviewCreated
	EventApproved     EventKind = recording.TypeReviewApproved // decided: approved
	EventRejected     EventKind = recording.TypeReviewRejected // decided: rejected
	EventExpired      EventKind = recording.TypeReviewExpired
	EventGrantStarted EventKind = recording.TypeGrantStarted
	EventGrantEnded   EventKind = recording.TypeGrantEnded
	EventBreakglass   EventKind = recording.TypeBreakglass
)

// Event is what Options.Events receives, after the change is stored and
// recorded.
type Event struct {
	Kind   EventKind
	Review Review
	// Actor caused it: the initiator, the deciding approver, the revoker.
	// The zero Identity is the gateway itself (expiry, a grant's end).
	Actor identity.Identity
	// Comment is the deciding voter's comment, or the break-glass reason.
	Comment string
	// At is the store's time of the change.
	At time.Time
}

// emit hands the event to the hook. The hook must not block (the webhook
// notifier only queues); a hook that panics is logged, never fatal to the
// review change that already happened.
func (s *Service) emit(ctx context.Context, e Event) {
	if s.events == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("review event hook panicked", "event", string(e.Kind), "review", e.Review.ID, "panic", p)
		}
	}()
	s.events(ctx, e)
}
