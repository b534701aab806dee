package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// dueIDs is the set of review ids DueReviews offers at now.
func dueIDs(t *testing.T, st review.Store, now time.Time) map[string]review.Status {
	t.Helper()
	rs, err := st.DueReviews(context.Background(), now, 1000)
	if err != nil {
		t.Fatalf("DueReviews: %v", err)
	}
	out := map[string]review.Status{}
	for _, r := range rs {
		out[r.ID] = r.Status
	}
	return out
}

// reviewSweep walks each sweepable state across its edge: not due a
// microsecond before, due at the edge, expired once, then never again.
func reviewSweep(t *testing.T, st review.Store) {
	ctx := context.Background()
	pending := suiteReview(t, st, "r-sweep-p", review.TypeOperation, 1)
	approved, at := approvedReview(t, st, "r-sweep-a")
	consumed, _ := approvedReview(t, st, "r-sweep-c")
	if ok, _ := st.ConsumeReview(ctx, consumed.ID, suiteAlice.Key(), "s", at); !ok {
		t.Fatal("consume")
	}
	tests := []struct {
		name string
		id   string
		from review.Status
		edge time.Time
	}{
		{"pending past expires_at", pending.ID, review.StatusPending, pending.ExpiresAt},
		{"approved past valid_until", approved.ID, review.StatusApproved, at.Add(time.Hour)},
	}
	for _, tt := range tests {
		before := tt.edge.Add(-time.Microsecond)
		if _, due := dueIDs(t, st, before)[tt.id]; due {
			t.Errorf("%s: due before its edge", tt.name)
		}
		if ok, err := st.ExpireReview(ctx, tt.id, tt.from, before); ok || err != nil {
			t.Errorf("%s: expired before its edge: %v %v", tt.name, ok, err)
		}
		if got := dueIDs(t, st, tt.edge)[tt.id]; got != tt.from {
			t.Errorf("%s: due at its edge as %q, want %q", tt.name, got, tt.from)
		}
		if ok, err := st.ExpireReview(ctx, tt.id, tt.from, tt.edge); !ok || err != nil {
			t.Errorf("%s: not expired at its edge: %v %v", tt.name, ok, err)
		}
		if ok, _ := st.ExpireReview(ctx, tt.id, tt.from, tt.edge); ok {
			t.Errorf("%s: expired twice", tt.name)
		}
		if _, due := dueIDs(t, st, tt.edge.Add(time.Hour))[tt.id]; due {
			t.Errorf("%s: still due after it expired", tt.name)
		}
		if r, _ := st.Review(ctx, tt.id); r.Status != review.StatusExpired {
			t.Errorf("%s: stored status %q, want expired", tt.name, r.Status)
		}
	}
	if _, due := dueIDs(t, st, at.Add(2*time.Hour))[consumed.ID]; due {
		t.Error("a consumed review is due a sweep")
	}
	if ok, _ := st.AddVote(ctx, reviewVote(pending.ID, suiteBob, true), pending.CreatedAt); ok {
		t.Error("a vote landed on an expired review")
	}
	if ids, _ := st.ApprovedFor(ctx, resourceOf(t), suiteAlice.Key(), approved.Digest, at); len(ids) != 0 {
		t.Errorf("an expired review is offered for use: %v", ids)
	}
	if _, err := st.ExpireReview(ctx, consumed.ID, review.StatusConsumed, at.Add(2*time.Hour)); err == nil {
		t.Error("expiring from consumed was accepted")
	}
}

// reviewSweepRace: replicas sweeping one ended grant at once; exactly one
// of them wins, so grant.ended is recorded once.
func reviewSweepRace(t *testing.T, st review.Store) {
	ctx := context.Background()
	g := suiteReview(t, st, "g-sweep", review.TypeGrant, 1)
	now := suiteNow(t, st)
	if ok, _ := st.AddVote(ctx, reviewVote(g.ID, suiteBob, true), now); !ok {
		t.Fatal("vote")
	}
	end := now.Add(g.Duration)
	if ok, _ := st.DecideReview(ctx, g.ID, review.StatusApproved, now, end); !ok {
		t.Fatal("decide")
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.ExpireReview(ctx, g.ID, review.StatusApproved, end)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("the grant's end was won %d times, want 1", wins.Load())
	}
	if gs, _ := st.ActiveGrants(ctx, resourceOf(t), suiteAlice.Key(), now); len(gs) != 0 {
		t.Error("a swept grant is still active")
	}
}
