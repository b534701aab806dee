package review_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/review"
)

func approved(t *testing.T, e *env, text string) review.Review {
	t.Helper()
	r := e.create(t, alice, text)
	got, err := e.svc.Approve(context.Background(), r.ID, api(bob), "")
	if err != nil || got.Status != review.StatusApproved {
		t.Fatalf("approve: %v %v", got.Status, err)
	}
	return got
}

// TestConsumeRace: 20 sessions race for one approval; one runs.
func TestConsumeRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	r := approved(t, e, "UPDATE t SET a = 1")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, ok, err := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s-x")
			if err != nil {
				t.Error(err)
			}
			if ok && id == r.ID {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d sessions consumed one approval", wins.Load())
	}
}

func TestConsumeBindsDigestInitiatorResource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	r := approved(t, e, "UPDATE t SET a = 1")
	tests := []struct {
		name     string
		resource string
		digest   []byte
		who      func() string
	}{
		{"other digest", "pg-prod", []byte("digest:UPDATE t SET a = 2"), nil},
		{"other resource", "pg-dev", r.Digest, nil},
	}
	for _, tt := range tests {
		if _, ok, err := e.svc.Consume(ctx, tt.resource, tt.digest, alice, "s"); ok || err != nil {
			t.Fatalf("%s: consumed (%v)", tt.name, err)
		}
	}
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", r.Digest, bob, "s"); ok {
		t.Fatal("another identity consumed alice's approval")
	}
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", r.Digest, aliceB, "s"); ok {
		t.Fatal("the initiator's other issuer consumed the approval (key is issuer+subject)")
	}
}

func TestRestoreAfterRollback(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	r := approved(t, e, "UPDATE t SET a = 1")
	id, ok, err := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s")
	if !ok || err != nil {
		t.Fatal("first consume failed", err)
	}
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s"); ok {
		t.Fatal("consumed twice")
	}
	if ok, err := e.svc.Restore(ctx, id); !ok || err != nil {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s"); !ok {
		t.Fatal("a restored approval could not be used")
	}
}

func TestNoRestoreWhenExpired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{validFor: time.Nanosecond})
	r := approved(t, e, "UPDATE t SET a = 1")
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", r.Digest, alice, "s"); ok {
		t.Fatal("an approval past valid_for was used")
	}
	now := r.DecidedAt
	if ok, err := e.store.ConsumeReview(ctx, r.ID, alice.Key(), "s", now.Add(-time.Microsecond)); !ok || err != nil {
		t.Fatalf("consume inside validity: %v %v", ok, err)
	}
	if ok, _ := e.store.RestoreReview(ctx, r.ID, r.ValidUntil); ok {
		t.Fatal("restored past valid_until")
	}
}

func TestWaitWakesOnDecision(t *testing.T) {
	ctx := context.Background()
	for _, approve := range []bool{true, false} {
		e := newEnv(t, setup{})
		r := e.create(t, alice, "UPDATE t SET a = 9")
		done := make(chan review.Review)
		go func() {
			got, err := e.svc.Wait(ctx, r.ID)
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		vote := e.svc.Approve
		want := review.StatusApproved
		if !approve {
			vote, want = e.svc.Reject, review.StatusRejected
		}
		if _, err := vote(ctx, r.ID, api(bob), ""); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got.Status != want {
			t.Fatalf("Wait returned %s, want %s", got.Status, want)
		}
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	e := newEnv(t, setup{})
	r := e.create(t, alice, "UPDATE t SET a = 9")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := e.svc.Wait(ctx, r.ID); err == nil || got.Status == review.StatusApproved {
		t.Fatalf("Wait = %s, %v", got.Status, err)
	}
}
