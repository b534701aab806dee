package review_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
)

// sweepEnv is a service on a store whose clock the test moves.
func sweepEnv(t *testing.T, s setup) (*env, *movedClock, *hookLog) {
	t.Helper()
	clock := &movedClock{Store: openStore(t)}
	h := &hookLog{}
	s.store, s.events = clock, h.add
	return newEnv(t, s), clock, h
}

func (r *recorder) count(typ string) int {
	n := 0
	for _, got := range r.types() {
		if got == typ {
			n++
		}
	}
	return n
}

func sweep(t *testing.T, svc *review.Service) int {
	t.Helper()
	n, err := svc.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return n
}

func TestSweepExpiresPendingReview(t *testing.T) {
	e, clock, h := sweepEnv(t, setup{reviewTimeout: time.Hour})
	r := e.create(t, alice, "UPDATE t SET a = 1")
	if n := sweep(t, e.svc); n != 0 {
		t.Fatalf("swept %d before anything expired", n)
	}
	clock.advance(time.Hour)
	if n := sweep(t, e.svc); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if n := sweep(t, e.svc); n != 0 {
		t.Fatalf("a second sweep expired %d again", n)
	}
	if got := e.rec.count(recording.TypeReviewExpired); got != 1 {
		t.Fatalf("review.expired recorded %d times", got)
	}
	if got, _ := e.store.Review(context.Background(), r.ID); got.Status != review.StatusExpired {
		t.Fatalf("stored status %q", got.Status)
	}
	if _, err := e.svc.Approve(context.Background(), r.ID, api(bob), ""); err == nil {
		t.Fatal("an expired review was approved")
	}
	if k := h.kinds(); !slices.Equal(k, []review.EventKind{review.EventCreated, review.EventExpired}) {
		t.Fatalf("events %v", k)
	}
}

// An approved operation review is unusable past valid_for, swept or not.
func TestSweepApprovedUnusedReview(t *testing.T) {
	ctx := context.Background()
	e, clock, h := sweepEnv(t, setup{validFor: 10 * time.Minute})
	r := e.create(t, alice, "DELETE FROM t")
	voted(t)(e.svc.Approve(ctx, r.ID, api(bob), ""))
	clock.advance(10 * time.Minute)
	if _, ok, err := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s-2"); ok || err != nil {
		t.Fatalf("consumed past valid_for before the sweep: %v %v", ok, err)
	}
	if n := sweep(t, e.svc); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if ok, err := e.svc.ConsumeID(ctx, r.ID, alice, "s-2"); ok || err != nil {
		t.Fatalf("consumed after the sweep: %v %v", ok, err)
	}
	if got, _ := e.svc.Get(ctx, r.ID); got.Status != review.StatusExpired {
		t.Fatalf("status %q", got.Status)
	}
	if k := h.kinds(); k[len(k)-1] != review.EventExpired {
		t.Fatalf("events %v", k)
	}
}

// A consumed review (its operation ran) is not expired by the sweep.
func TestSweepLeavesConsumedReview(t *testing.T) {
	ctx := context.Background()
	e, clock, _ := sweepEnv(t, setup{})
	r := e.create(t, alice, "DELETE FROM t")
	voted(t)(e.svc.Approve(ctx, r.ID, api(bob), ""))
	if ok, err := e.svc.ConsumeID(ctx, r.ID, alice, "s-1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	clock.advance(48 * time.Hour)
	if n := sweep(t, e.svc); n != 0 {
		t.Fatalf("swept a consumed review")
	}
}

func TestSweepEndsGrantOnce(t *testing.T) {
	ctx := context.Background()
	e, clock, h := sweepEnv(t, setup{})
	g, err := e.svc.Create(ctx, grantReq(alice, "write", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	voted(t)(e.svc.Approve(ctx, g.ID, api(bob), ""))
	clock.advance(time.Hour)
	covers := func([]string) bool { return true }
	if _, ok, _ := e.svc.ActiveGrant(ctx, "pg-prod", alice, covers); ok {
		t.Fatal("a grant outlived its end before the sweep")
	}
	if n := sweep(t, e.svc); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	sweep(t, e.svc)
	if got := e.rec.count(recording.TypeGrantEnded); got != 1 {
		t.Fatalf("grant.ended recorded %d times", got)
	}
	want := []review.EventKind{review.EventCreated, review.EventApproved, review.EventGrantStarted, review.EventGrantEnded}
	if k := h.kinds(); !slices.Equal(k, want) {
		t.Fatalf("events %v, want %v", k, want)
	}
}

// A revoked grant already recorded its end; the sweep does not again.
func TestSweepSkipsRevokedGrant(t *testing.T) {
	ctx := context.Background()
	e, clock, _ := sweepEnv(t, setup{})
	g, _ := e.svc.Create(ctx, grantReq(alice, "write", time.Hour))
	voted(t)(e.svc.Approve(ctx, g.ID, api(bob), ""))
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(alice)); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour)
	sweep(t, e.svc)
	if got := e.rec.count(recording.TypeGrantEnded); got != 1 {
		t.Fatalf("grant.ended recorded %d times", got)
	}
}

// Replicas sweeping one store at once record each expiry once.
func TestSweepReplicasRecordOnce(t *testing.T) {
	clock := &movedClock{Store: openStore(t)}
	replicas := make([]*env, 4)
	for i := range replicas {
		replicas[i] = newEnv(t, setup{store: clock, reviewTimeout: time.Hour})
	}
	const reviews = 30
	for i := range reviews {
		replicas[0].create(t, alice, "UPDATE t SET a = "+string(rune('a'+i)))
	}
	clock.advance(time.Hour)
	var wg sync.WaitGroup
	for _, e := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Sweep(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, e := range replicas {
		total += e.rec.count(recording.TypeReviewExpired)
	}
	if total != reviews {
		t.Fatalf("review.expired recorded %d times for %d reviews", total, reviews)
	}
}

// Run sweeps at once and then every tick, and returns when ctx ends.
func TestRunSweepsUntilCancelled(t *testing.T) {
	clock := &movedClock{Store: openStore(t)}
	h := &hookLog{ch: make(chan review.Event, 8)}
	e := newEnv(t, setup{store: clock, events: h.add, reviewTimeout: time.Hour})
	r := e.create(t, alice, "UPDATE t SET a = 1")
	<-h.ch // created
	clock.advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.Run(ctx, time.Millisecond); close(done) }()
	if ev := <-h.ch; ev.Kind != review.EventExpired || ev.Review.ID != r.ID {
		t.Fatalf("event %+v", ev)
	}
	cancel()
	<-done
}
