package review_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

// TestVoteRefusals attacks Approve and Reject: every refusal of the package
// doc, each through both.
func TestVoteRefusals(t *testing.T) {
	stale := bob
	stale.AuthTime = time.Now().Add(-time.Hour)
	minted := bob
	minted.Source = identity.SourceLocal
	tests := []struct {
		name string
		s    setup
		by   review.Actor
		want string
	}{
		{"initiator", setup{}, api(alice), "initiated review"},
		{"initiator under another issuer, same verified email", setup{}, api(aliceB), "initiated review"},
		{"approver not in the group", setup{}, api(dave), "may not decide"},
		{"in the group without the role", setup{}, api(erin), "may not decide"},
		{"resource token", setup{}, review.Actor{Identity: bob, Scopes: []identity.Scope{identity.ResourceScope("pg-prod")}}, "cannot vote"},
		{"zero actor", setup{}, review.Actor{}, "cannot vote"},
		{"stale login with OIDC", setup{oidc: true}, api(stale), "approval refused"},
		{"minted identity with OIDC", setup{oidc: true}, api(minted), "approval refused"},
	}
	for _, tt := range tests {
		for _, approve := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s approve=%v", tt.name, approve), func(t *testing.T) {
				e := newEnv(t, tt.s)
				r := e.create(t, alice, "UPDATE t SET a = 1")
				vote := e.svc.Approve
				if !approve {
					vote = e.svc.Reject
				}
				_, err := vote(context.Background(), r.ID, tt.by, "")
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				if !errors.Is(err, review.ErrRefused) || errors.Is(err, review.ErrConflict) {
					t.Fatalf("a segregation-of-duties refusal is not of kind ErrRefused alone: %v", err)
				}
				got, err := e.svc.Get(context.Background(), r.ID)
				if err != nil || got.Status != review.StatusPending || len(got.Votes) != 0 {
					t.Fatalf("review changed: %+v %v", got, err)
				}
			})
		}
	}
}

func TestVoteAllowed(t *testing.T) {
	minted := bob
	minted.Source = identity.SourceLocal
	tests := []struct {
		name string
		s    setup
		by   review.Actor
	}{
		{"fresh OIDC login", setup{oidc: true}, api(bob)},
		{"minted without OIDC", setup{}, api(minted)},
		{"minted with may_approve", setup{oidc: true, mayApprove: true}, api(minted)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.s)
			r := e.create(t, alice, "UPDATE t SET a = 1")
			got, err := e.svc.Approve(context.Background(), r.ID, tt.by, "ok")
			if err != nil || got.Status != review.StatusApproved {
				t.Fatalf("Approve = %v, %v", got.Status, err)
			}
		})
	}
}

func TestApprovalsCountDistinctPeople(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 2})
	r := e.create(t, alice, "DELETE FROM t")
	steps := []struct {
		by      identity.Identity
		wantErr bool
		status  review.Status
	}{
		{bob, false, review.StatusPending},
		{bob, true, review.StatusPending},  // the same identity again
		{bobB, true, review.StatusPending}, // the same verified email, another issuer
		{carol, false, review.StatusApproved},
		{aliceB, true, review.StatusApproved}, // decided already (and the initiator)
	}
	for i, s := range steps {
		got, err := e.svc.Approve(ctx, r.ID, api(s.by), "")
		if (err != nil) != s.wantErr {
			t.Fatalf("step %d (%s): err = %v", i, s.by.Subject, err)
		}
		got, _ = e.svc.Get(ctx, r.ID)
		if got.Status != s.status {
			t.Fatalf("step %d: status %s, want %s", i, got.Status, s.status)
		}
	}
	got, _ := e.svc.Get(ctx, r.ID)
	if got.Approvals() != 2 {
		t.Fatalf("approvals = %d, want 2", got.Approvals())
	}
}

// TestConcurrentDoubleApproval: 20 goroutines approve as one person, half
// of them under a second issuer with the same verified email. One counts.
func TestConcurrentDoubleApproval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 2})
	r := e.create(t, alice, "DELETE FROM t")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		who := bob
		if i%2 == 1 {
			who = bobB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Approve(ctx, r.ID, api(who), ""); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, err := e.svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || got.Approvals() != 1 || got.Status != review.StatusPending {
		t.Fatalf("wins %d, approvals %d, status %s; want 1, 1, pending", wins, got.Approvals(), got.Status)
	}
}

func TestRejectionRejects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 2})
	r := e.create(t, alice, "DROP TABLE t")
	if _, err := e.svc.Approve(ctx, r.ID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Reject(ctx, r.ID, api(carol), "no")
	if err != nil || got.Status != review.StatusRejected {
		t.Fatalf("Reject = %s, %v", got.Status, err)
	}
	if _, err := e.svc.Approve(ctx, r.ID, api(aliceB), ""); err == nil {
		t.Fatal("a rejected review took another vote")
	}
}

func TestExpiredReviewCannotBeDecided(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{reviewTimeout: time.Nanosecond})
	r := e.create(t, alice, "UPDATE t SET a = 2")
	_, err := e.svc.Approve(ctx, r.ID, api(bob), "")
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want expired", err)
	}
}

// TestApprovalRacingExpiry drives the store's conditional insert at the
// exact edge: a vote at the expiry instant is refused, one just before it
// counts.
func TestApprovalRacingExpiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	r := e.create(t, alice, "UPDATE t SET a = 3")
	stored, err := e.store.Review(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := review.Vote{ReviewID: r.ID, Voter: bob, Approve: true}
	if ok, err := e.store.AddVote(ctx, v, stored.ExpiresAt); ok || err != nil {
		t.Fatalf("vote at expiry: ok %v err %v", ok, err)
	}
	if ok, err := e.store.DecideReview(ctx, r.ID, review.StatusApproved, stored.ExpiresAt, stored.ExpiresAt.Add(time.Hour)); ok || err != nil {
		t.Fatalf("decide at expiry: ok %v err %v", ok, err)
	}
	before := stored.ExpiresAt.Add(-time.Microsecond)
	if ok, err := e.store.AddVote(ctx, v, before); !ok || err != nil {
		t.Fatalf("vote before expiry: ok %v err %v", ok, err)
	}
	if ok, err := e.store.DecideReview(ctx, r.ID, review.StatusApproved, stored.ExpiresAt, stored.ExpiresAt.Add(time.Hour)); ok || err != nil {
		t.Fatalf("decide at expiry after a vote: ok %v err %v", ok, err)
	}
}

// TestDecideNeedsTheVotes: the store refuses an approval without enough
// approving votes, whatever the caller believes.
func TestDecideNeedsTheVotes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 2})
	r := e.create(t, alice, "UPDATE t SET a = 4")
	if _, err := e.svc.Approve(ctx, r.ID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if ok, err := e.store.DecideReview(ctx, r.ID, review.StatusApproved, now, now.Add(time.Hour)); ok || err != nil {
		t.Fatalf("approved with 1 of 2 votes: ok %v err %v", ok, err)
	}
}

func TestRecordingFailureRefusesTheVote(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	r := e.create(t, alice, "UPDATE t SET a = 5")
	e.rec.fail = true
	if _, err := e.svc.Approve(ctx, r.ID, api(bob), ""); err == nil || !strings.Contains(err.Error(), "recording failed") {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.svc.Create(ctx, review.Request{Type: review.TypeOperation, Resource: "pg-prod",
		Initiator: alice, Digest: []byte("d")}); err == nil {
		t.Fatal("a review was created without its event")
	}
}

func TestUnknownReview(t *testing.T) {
	e := newEnv(t, setup{})
	_, err := e.svc.Approve(context.Background(), "r-nope", api(bob), "")
	if !errors.Is(err, review.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

// TestConcurrentDistinctApprovers: two approvers at once with approvals: 2;
// the review is approved once, with both votes.
func TestConcurrentDistinctApprovers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 2})
	r := e.create(t, alice, "DELETE FROM t")
	var wg sync.WaitGroup
	for _, who := range []identity.Identity{bob, carol} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Approve(ctx, r.ID, api(who), ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := e.svc.Get(ctx, r.ID)
	if err != nil || got.Status != review.StatusApproved || got.Approvals() != 2 {
		t.Fatalf("%s with %d approvals (%v)", got.Status, got.Approvals(), err)
	}
}

// TestBreakglassReviewAcknowledged: the retrospective review goes through
// the same function: the initiator cannot acknowledge it, an approver can.
func TestBreakglassReviewAcknowledged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{approvals: 3})
	r, err := e.svc.Create(ctx, review.Request{Type: review.TypeBreakglass, Resource: "pg-prod",
		Initiator: alice, Digest: []byte("d"), Reason: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	retro, err := e.svc.List(ctx, review.Filter{Type: review.TypeBreakglass, Status: review.StatusPending})
	if err != nil || len(retro) != 1 {
		t.Fatalf("retro list: %d %v", len(retro), err)
	}
	if _, err := e.svc.Approve(ctx, r.ID, api(aliceB), ""); err == nil {
		t.Fatal("the initiator acknowledged their own break-glass")
	}
	got, err := e.svc.Approve(ctx, r.ID, api(bob), "seen")
	if err != nil || got.Status != review.StatusApproved {
		t.Fatalf("%s %v", got.Status, err)
	}
	if _, ok, _ := e.svc.Consume(ctx, "pg-prod", []byte("d"), alice, "s"); ok {
		t.Fatal("an acknowledged break-glass review was usable as an approval")
	}
}

// failingStore is the real store whose clock stops answering on demand.
type failingStore struct {
	review.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) Now(ctx context.Context) (time.Time, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return time.Time{}, errors.New("connection refused")
	}
	return f.Store.Now(ctx)
}

// TestErrorKinds: every refusal has exactly one kind a surface can branch
// on, and its message still says what to do.
func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	kinds := []error{review.ErrRefused, review.ErrConflict, review.ErrInvalid, review.ErrUnavailable, review.ErrNotFound}
	tests := []struct {
		name string
		do   func(t *testing.T, e *env, fs *failingStore) error
		kind error
		msg  string
	}{
		{"self approval", func(t *testing.T, e *env, _ *failingStore) error {
			_, err := e.svc.Approve(ctx, e.create(t, alice, "UPDATE t SET a = 1").ID, api(alice), "")
			return err
		}, review.ErrRefused, "cannot decide it"},
		{"second vote", func(t *testing.T, e *env, _ *failingStore) error {
			r := e.create(t, alice, "UPDATE t SET a = 1")
			if _, err := e.svc.Approve(ctx, r.ID, api(bob), ""); err != nil {
				t.Fatal(err)
			}
			_, err := e.svc.Approve(ctx, r.ID, api(bob), "")
			return err
		}, review.ErrConflict, "already voted"},
		{"decided review", func(t *testing.T, e *env, _ *failingStore) error {
			r := e.create(t, alice, "UPDATE t SET a = 1")
			if _, err := e.svc.Reject(ctx, r.ID, api(bob), ""); err != nil {
				t.Fatal(err)
			}
			_, err := e.svc.Approve(ctx, r.ID, api(carol), "")
			return err
		}, review.ErrConflict, "only a pending review"},
		{"unknown review", func(t *testing.T, e *env, _ *failingStore) error {
			_, err := e.svc.Approve(ctx, "r-nope", api(bob), "")
			return err
		}, review.ErrNotFound, "reviews list"},
		{"grant beyond the limit", func(t *testing.T, e *env, _ *failingStore) error {
			_, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: alice,
				Access: []string{"write"}, Duration: 100 * time.Hour})
			return err
		}, review.ErrRefused, "grants.max_duration"},
		{"revoke an operation review", func(t *testing.T, e *env, _ *failingStore) error {
			_, err := e.svc.RevokeGrant(ctx, e.create(t, alice, "UPDATE t SET a = 1").ID, api(admin))
			return err
		}, review.ErrConflict, "only a grant"},
		{"unknown resource", func(t *testing.T, e *env, _ *failingStore) error {
			_, err := e.svc.Create(ctx, review.Request{Type: review.TypeOperation, Resource: "pg-nope", Initiator: alice, Digest: []byte("d")})
			return err
		}, review.ErrInvalid, "not configured"},
		{"store down", func(t *testing.T, e *env, fs *failingStore) error {
			r := e.create(t, alice, "UPDATE t SET a = 1")
			fs.mu.Lock()
			fs.fail = true
			fs.mu.Unlock()
			_, err := e.svc.Approve(ctx, r.ID, api(bob), "")
			return err
		}, review.ErrUnavailable, "retry"},
		{"recording down", func(t *testing.T, e *env, _ *failingStore) error {
			r := e.create(t, alice, "UPDATE t SET a = 1")
			e.rec.mu.Lock()
			e.rec.fail = true
			e.rec.mu.Unlock()
			_, err := e.svc.Approve(ctx, r.ID, api(bob), "")
			return err
		}, review.ErrUnavailable, "recording failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &failingStore{Store: openStore(t)}
			e := newEnv(t, setup{store: fs, approvals: 2})
			err := tt.do(t, e, fs)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want a message with %q", err, tt.msg)
			}
			for _, k := range kinds {
				if errors.Is(err, k) != (k == tt.kind) {
					t.Errorf("errors.Is(err, %v) = %v; err = %v", k, errors.Is(err, k), err)
				}
			}
		})
	}
}
