package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Reviews runs the review.Store contract against st, subtests in parallel,
// each on a resource name of its own. Every transition is attacked at its
// edge and by racing goroutines.
func Reviews(t *testing.T, st review.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st review.Store)
	}{
		{"RoundTrip", reviewRoundTrip},
		{"OneVotePerPerson", reviewOneVotePerPerson},
		{"ConcurrentVotes", reviewConcurrentVotes},
		{"VoteEdgeOfExpiry", reviewVoteEdge},
		{"DecideNeedsVotes", reviewDecideNeedsVotes},
		{"ConsumeOnce", reviewConsumeOnce},
		{"RestoreWhileValid", reviewRestore},
		{"Grants", reviewGrants},
		{"List", reviewList},
		{"Sweep", reviewSweep},
		{"SweepRace", reviewSweepRace},
	}
	// The group returns when every parallel subtest is done, so the
	// caller may close st when Reviews returns.
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tt.fn(t, st)
			})
		}
	})
}

var (
	suiteAlice = identity.Identity{Issuer: "https://idp", Subject: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Source: identity.SourceOIDC}
	suiteBob   = identity.Identity{Issuer: "https://idp", Subject: "bob", Email: "bob@example.com", EmailVerified: true, Source: identity.SourceOIDC}
	suiteBobB  = identity.Identity{Issuer: "https://other", Subject: "b2", Email: "BOB@example.com", EmailVerified: true}
	suiteCarol = identity.Identity{Issuer: "https://idp", Subject: "carol"}
)

// resourceOf names the subtest's resource, so parallel subtests sharing a
// store never see each other's reviews.
func resourceOf(t *testing.T) string {
	return "res-" + strings.ReplaceAll(t.Name(), "/", "-")
}

func suiteNow(t *testing.T, st review.Store) time.Time {
	t.Helper()
	now, err := st.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return now.Truncate(time.Microsecond)
}

// suiteReview stores a pending review on the subtest's own resource
// (resourceOf) with a unique id.
func suiteReview(t *testing.T, st review.Store, prefix string, typ review.Type, required int) review.Review {
	t.Helper()
	now := suiteNow(t, st)
	r := review.Review{
		ID: unique(prefix), Type: typ, Resource: resourceOf(t), Dialect: "postgres", Initiator: suiteAlice, SessionID: "s-1",
		Kind: sqlkind.Write, Text: "UPDATE t SET a = $1", Digest: []byte{1, 2, 3, 0, 255},
		State:   review.SessionState{SearchPath: "public", Role: "app", InTransaction: true},
		Params:  []review.Param{{Format: 1, Type: 23, Value: []byte{0, 0, 0, 1}}, {Null: true}},
		Objects: []string{"public.t"}, Reason: "ticket 7", Status: review.StatusPending,
		Approvers: []string{"dba-leads"}, Required: required, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour), ValidFor: time.Hour,
	}
	if typ == review.TypeGrant {
		r.Access, r.Duration, r.Text, r.Digest, r.Params = []string{"write"}, 2*time.Hour, "", nil, nil
	}
	if err := st.CreateReview(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func reviewRoundTrip(t *testing.T, st review.Store) {
	ctx := context.Background()
	want := suiteReview(t, st, "r-round", review.TypeOperation, 1)
	got, err := st.Review(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.Initiator.Source = identity.SourceOIDC
	if !reflect.DeepEqual(reviewNormal(got), reviewNormal(want)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if err := st.CreateReview(ctx, want); err == nil {
		t.Fatal("a duplicate id was stored")
	}
	if _, err := st.Review(ctx, "r-missing"); !errors.Is(err, review.ErrNotFound) {
		t.Fatalf("missing review: %v", err)
	}
}

// normal makes times comparable (location) and nil/empty slices equal.
func reviewNormal(r review.Review) review.Review {
	for _, p := range []*time.Time{&r.CreatedAt, &r.ExpiresAt, &r.DecidedAt, &r.ValidUntil, &r.ConsumedAt, &r.RevokedAt} {
		if !p.IsZero() {
			*p = p.UTC()
		}
	}
	if len(r.Votes) == 0 {
		r.Votes = nil
	}
	return r
}

func reviewVote(id string, who identity.Identity, approve bool) review.Vote {
	return review.Vote{ReviewID: id, Voter: who, Approve: approve, Via: "api", Comment: "c"}
}

func reviewOneVotePerPerson(t *testing.T, st review.Store) {
	ctx := context.Background()
	r := suiteReview(t, st, "r-votes", review.TypeOperation, 3)
	now := suiteNow(t, st)
	steps := []struct {
		who identity.Identity
		ok  bool
		dup bool
	}{
		{suiteBob, true, false},
		{suiteBob, false, true},   // same key
		{suiteBobB, false, true},  // same verified email, another issuer
		{suiteCarol, true, false}, // no verified email: keyed by issuer|subject only
	}
	for i, s := range steps {
		ok, err := st.AddVote(ctx, reviewVote(r.ID, s.who, true), now)
		if ok != s.ok || errors.Is(err, review.ErrDuplicate) != s.dup || (err != nil && !s.dup) {
			t.Fatalf("step %d: ok %v err %v", i, ok, err)
		}
	}
	got, err := st.Review(ctx, r.ID)
	if err != nil || len(got.Votes) != 2 || got.Votes[0].Comment != "c" || !got.Votes[0].Approve {
		t.Fatalf("votes %+v err %v", got.Votes, err)
	}
}

func reviewConcurrentVotes(t *testing.T, st review.Store) {
	ctx := context.Background()
	r := suiteReview(t, st, "r-race", review.TypeOperation, 2)
	now := suiteNow(t, st)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		who := suiteBob
		if i%2 == 1 {
			who = suiteBobB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.AddVote(ctx, reviewVote(r.ID, who, true), now)
			if err != nil && !errors.Is(err, review.ErrDuplicate) {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d votes of one person counted", wins.Load())
	}
}

func reviewVoteEdge(t *testing.T, st review.Store) {
	ctx := context.Background()
	r := suiteReview(t, st, "r-edge", review.TypeOperation, 1)
	if ok, err := st.AddVote(ctx, reviewVote(r.ID, suiteBob, true), r.ExpiresAt); ok || err != nil {
		t.Fatalf("vote at expiry: %v %v", ok, err)
	}
	if ok, err := st.AddVote(ctx, reviewVote(r.ID, suiteBob, true), r.ExpiresAt.Add(-time.Microsecond)); !ok || err != nil {
		t.Fatalf("vote before expiry: %v %v", ok, err)
	}
	if ok, _ := st.DecideReview(ctx, r.ID, review.StatusApproved, r.ExpiresAt, r.ExpiresAt.Add(time.Hour)); ok {
		t.Fatal("decided at expiry")
	}
	if ok, _ := st.AddVote(ctx, reviewVote("r-missing", suiteCarol, true), r.CreatedAt); ok {
		t.Fatal("voted on a missing review")
	}
}

func reviewDecideNeedsVotes(t *testing.T, st review.Store) {
	ctx := context.Background()
	r := suiteReview(t, st, "r-decide", review.TypeOperation, 2)
	now := suiteNow(t, st)
	until := now.Add(time.Hour)
	if ok, _ := st.DecideReview(ctx, r.ID, review.StatusApproved, now, until); ok {
		t.Fatal("approved without votes")
	}
	for _, who := range []identity.Identity{suiteBob, suiteCarol} {
		if ok, err := st.AddVote(ctx, reviewVote(r.ID, who, true), now); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if ok, err := st.DecideReview(ctx, r.ID, review.StatusApproved, now, until); !ok || err != nil {
		t.Fatalf("approve with 2 of 2: %v %v", ok, err)
	}
	if ok, _ := st.DecideReview(ctx, r.ID, review.StatusRejected, now, time.Time{}); ok {
		t.Fatal("decided twice")
	}
	if _, err := st.DecideReview(ctx, r.ID, review.StatusConsumed, now, until); err == nil {
		t.Fatal("consumed is not a decision")
	}
	got, _ := st.Review(ctx, r.ID)
	if got.Status != review.StatusApproved || !got.DecidedAt.Equal(now) || !got.ValidUntil.Equal(until) {
		t.Fatalf("%+v", got)
	}
}

func approvedReview(t *testing.T, st review.Store, id string) (review.Review, time.Time) {
	t.Helper()
	ctx := context.Background()
	r := suiteReview(t, st, id, review.TypeOperation, 1)
	now := suiteNow(t, st)
	if ok, err := st.AddVote(ctx, reviewVote(r.ID, suiteBob, true), now); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := st.DecideReview(ctx, r.ID, review.StatusApproved, now, now.Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	return r, now
}

func reviewConsumeOnce(t *testing.T, st review.Store) {
	ctx := context.Background()
	r, now := approvedReview(t, st, "r-consume")
	key := suiteAlice.Key()
	ids, err := st.ApprovedFor(ctx, resourceOf(t), key, r.Digest, now)
	if err != nil || len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("ApprovedFor = %v %v", ids, err)
	}
	for _, miss := range []struct {
		res, key string
		digest   []byte
	}{{"pg-dev", key, r.Digest}, {resourceOf(t), suiteBob.Key(), r.Digest}, {resourceOf(t), key, append(bytes.Clone(r.Digest), 0)}} {
		if ids, _ := st.ApprovedFor(ctx, miss.res, miss.key, miss.digest, now); len(ids) != 0 {
			t.Fatalf("ApprovedFor(%v) found %v", miss, ids)
		}
	}
	if ok, _ := st.ConsumeReview(ctx, r.ID, suiteBob.Key(), "s", now); ok {
		t.Fatal("another identity consumed it")
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := st.ConsumeReview(ctx, r.ID, key, "s", now); ok && err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("consumed %d times", wins.Load())
	}
	if ids, _ := st.ApprovedFor(ctx, resourceOf(t), key, r.Digest, now); len(ids) != 0 {
		t.Fatal("a consumed review is still offered")
	}
}

func reviewRestore(t *testing.T, st review.Store) {
	ctx := context.Background()
	r, now := approvedReview(t, st, "r-restore")
	if ok, _ := st.RestoreReview(ctx, r.ID, now); ok {
		t.Fatal("restored an unconsumed review")
	}
	if ok, _ := st.ConsumeReview(ctx, r.ID, suiteAlice.Key(), "s", now); !ok {
		t.Fatal("consume")
	}
	if ok, _ := st.RestoreReview(ctx, r.ID, now.Add(time.Hour)); ok {
		t.Fatal("restored at valid_until")
	}
	if ok, err := st.RestoreReview(ctx, r.ID, now); !ok || err != nil {
		t.Fatal("restore within validity", err)
	}
	if ok, _ := st.ConsumeReview(ctx, r.ID, suiteAlice.Key(), "s", now.Add(time.Hour)); ok {
		t.Fatal("consumed at valid_until")
	}
}

func reviewGrants(t *testing.T, st review.Store) {
	ctx := context.Background()
	g := suiteReview(t, st, "g-1", review.TypeGrant, 1)
	now := suiteNow(t, st)
	if gs, _ := st.ActiveGrants(ctx, resourceOf(t), suiteAlice.Key(), now); len(gs) != 0 {
		t.Fatal("a pending grant is active")
	}
	if ok, _ := st.AddVote(ctx, reviewVote(g.ID, suiteBob, true), now); !ok {
		t.Fatal("vote")
	}
	end := now.Add(g.Duration)
	if ok, _ := st.DecideReview(ctx, g.ID, review.StatusApproved, now, end); !ok {
		t.Fatal("decide")
	}
	if ok, _ := st.ConsumeReview(ctx, g.ID, suiteAlice.Key(), "s", now); ok {
		t.Fatal("a grant was consumed as an operation review")
	}
	gs, err := st.ActiveGrants(ctx, resourceOf(t), suiteAlice.Key(), now)
	if err != nil || len(gs) != 1 || gs[0].Access[0] != "write" || gs[0].Duration != 2*time.Hour {
		t.Fatalf("active grants %+v %v", gs, err)
	}
	if gs, _ := st.ActiveGrants(ctx, resourceOf(t), suiteAlice.Key(), end); len(gs) != 0 {
		t.Fatal("a grant outlived its end")
	}
	if ok, err := st.RevokeGrant(ctx, g.ID, suiteBob.Key(), now); !ok || err != nil {
		t.Fatal("revoke", err)
	}
	if ok, _ := st.RevokeGrant(ctx, g.ID, suiteBob.Key(), now); ok {
		t.Fatal("revoked twice")
	}
	if gs, _ := st.ActiveGrants(ctx, resourceOf(t), suiteAlice.Key(), now); len(gs) != 0 {
		t.Fatal("a revoked grant is active")
	}
}

func reviewList(t *testing.T, st review.Store) {
	ctx := context.Background()
	res := resourceOf(t)
	suiteReview(t, st, "r-a", review.TypeOperation, 1)
	suiteReview(t, st, "g-b", review.TypeGrant, 1)
	tests := []struct {
		f    review.Filter
		want int
	}{
		{review.Filter{Resource: res}, 2},
		{review.Filter{Resource: res, Type: review.TypeGrant}, 1},
		{review.Filter{Resource: res + "-other"}, 0},
		{review.Filter{Resource: res, InitiatorKey: suiteAlice.Key(), Status: review.StatusPending}, 2},
		{review.Filter{Resource: res, Status: review.StatusApproved}, 0},
		{review.Filter{Resource: res, Limit: 1}, 1},
	}
	for _, tt := range tests {
		got, err := st.ListReviews(ctx, tt.f)
		if err != nil || len(got) != tt.want {
			t.Fatalf("ListReviews(%+v) = %d, %v; want %d", tt.f, len(got), err, tt.want)
		}
	}
}
