package review_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// hookLog is an Events hook that keeps what it was given.
type hookLog struct {
	mu     sync.Mutex
	events []review.Event
	ch     chan review.Event // optional: also sent here, without blocking
}

func (h *hookLog) add(_ context.Context, e review.Event) {
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
	if h.ch != nil {
		select {
		case h.ch <- e:
		default:
		}
	}
}

func (h *hookLog) kinds() []review.EventKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []review.EventKind
	for _, e := range h.events {
		out = append(out, e.Kind)
	}
	return out
}

// movedClock is the real store whose clock can be moved forward, so expiry
// is tested without sleeping.
type movedClock struct {
	review.Store
	ahead atomic.Int64
}

func (m *movedClock) Now(ctx context.Context) (time.Time, error) {
	now, err := m.Store.Now(ctx)
	return now.Add(time.Duration(m.ahead.Load())), err
}

func (m *movedClock) advance(d time.Duration) { m.ahead.Add(int64(d)) }

func TestEventsHook(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
		want []review.EventKind
	}{
		{"created then approved", func(t *testing.T, e *env) {
			r := e.create(t, alice, "UPDATE t SET a = 1")
			voted(t)(e.svc.Approve(ctx, r.ID, api(bob), "ok"))
		}, []review.EventKind{review.EventCreated, review.EventApproved}},
		{"rejected", func(t *testing.T, e *env) {
			r := e.create(t, alice, "DELETE FROM t")
			voted(t)(e.svc.Reject(ctx, r.ID, api(bob), "no"))
		}, []review.EventKind{review.EventCreated, review.EventRejected}},
		{"grant started and revoked", func(t *testing.T, e *env) {
			g, err := e.svc.Create(ctx, grantReq(alice, "write", time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			voted(t)(e.svc.Approve(ctx, g.ID, api(bob), ""))
			if _, err := e.svc.RevokeGrant(ctx, g.ID, api(alice)); err != nil {
				t.Fatal(err)
			}
		}, []review.EventKind{review.EventCreated, review.EventApproved, review.EventGrantStarted, review.EventGrantEnded}},
		{"break-glass announced once", func(t *testing.T, e *env) {
			r, err := e.svc.Create(ctx, review.Request{Type: review.TypeBreakglass, Resource: "pg-prod", Initiator: alice,
				Kind: sqlkind.Write, Text: "DELETE FROM t", Digest: []byte("d"), Reason: "outage"})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.Record(ctx, recording.TypeBreakglass, r, alice, map[string]any{"reason": "outage"}); err != nil {
				t.Fatal(err)
			}
		}, []review.EventKind{review.EventBreakglass}},
		{"a vote short of the count announces nothing", func(t *testing.T, e *env) {
			r := e.create(t, alice, "UPDATE t SET a = 2")
			voted(t)(e.svc.Approve(ctx, r.ID, api(bob), ""))
		}, []review.EventKind{review.EventCreated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &hookLog{}
			s := setup{events: h.add}
			if tt.name == "a vote short of the count announces nothing" {
				s.approvals = 2
			}
			e := newEnv(t, s)
			tt.run(t, e)
			if got := h.kinds(); !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEventCarriesActorAndComment(t *testing.T) {
	h := &hookLog{}
	e := newEnv(t, setup{events: h.add})
	r := e.create(t, alice, "UPDATE t SET a = 3")
	voted(t)(e.svc.Reject(context.Background(), r.ID, api(bob), "wrong table"))
	last := h.events[len(h.events)-1]
	if !last.Actor.Same(bob) || last.Comment != "wrong table" || last.Review.ID != r.ID || last.At.IsZero() ||
		last.Review.Status != review.StatusRejected {
		t.Fatalf("event %+v", last)
	}
}

// A hook that panics does not undo or fail the change it announces.
func TestEventsHookPanicIsContained(t *testing.T) {
	e := newEnv(t, setup{events: func(context.Context, review.Event) { panic("bad hook") }})
	r := e.create(t, alice, "UPDATE t SET a = 4")
	if got, err := e.svc.Get(context.Background(), r.ID); err != nil || got.Status != review.StatusPending {
		t.Fatalf("after a panicking hook: %+v %v", got, err)
	}
}

// voted fails the test when the vote it is given failed:
// voted(t)(svc.Approve(...)).
func voted(t *testing.T) func(review.Review, error) {
	return func(_ review.Review, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}
