package cli

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
)

// The gateway's metrics are observed at the protocol-free seams every
// engine already passes through (the guard, the recording and the store),
// so a new engine is counted without code of its own.

// countingGuard counts every verdict by resource, kind and decision; a
// hold is counted as held, and its outcome again when the wait ends.
type countingGuard struct {
	guard.Guard
	m *metrics.Metrics
}

func (g countingGuard) Decide(ctx context.Context, s *guard.Session, op *guard.Operation) guard.Verdict {
	v := g.Guard.Decide(ctx, s, op)
	kind := op.Class.Kind.String()
	g.m.Operation(s.Resource, kind, v.Decision.String())
	if v.Decision == guard.Hold && v.Wait != nil {
		wait := v.Wait
		v.Wait = func(ctx context.Context) guard.Verdict {
			final := wait(ctx)
			g.m.Operation(s.Resource, kind, final.Decision.String())
			return final
		}
	}
	return v
}

// sessionCounter keeps the open-session gauge from the session events
// every engine records, and makes the guard forget a closed session (its
// consumed approvals stay consumed; see guard.Gate.Forget).
type sessionCounter struct {
	recording.Recorder
	m      *metrics.Metrics
	forget func(session string)
}

func (r sessionCounter) Append(ctx context.Context, e recording.Event) *recording.Commit {
	switch e.Type {
	case recording.TypeSessionOpen:
		r.m.SessionOpened(e.Resource)
	case recording.TypeSessionClose:
		r.m.SessionClosed(e.Resource)
		r.forget(e.SessionID)
	}
	return r.Recorder.Append(ctx, e)
}

// timedStore times the recording's group commits, the store operation on
// every operation's path.
type timedStore struct {
	store.Store
	m *metrics.Metrics
}

func (s timedStore) AppendEvents(ctx context.Context, events []recording.Stored) error {
	start := time.Now() // not TimeStore: its closure is an allocation per group commit
	err := s.Store.AppendEvents(ctx, events)
	s.m.StoreLatency("append_events", time.Since(start))
	return err
}

// watchPending refreshes the pending-reviews gauge until ctx ends.
func watchPending(ctx context.Context, reviews *review.Service, m *metrics.Metrics, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		done := m.TimeStore("list_pending")
		list, err := reviews.List(ctx, review.Filter{Status: review.StatusPending})
		done()
		if err == nil {
			m.SetReviewsPending(len(list))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
