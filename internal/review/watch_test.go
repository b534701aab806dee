package review_test

import (
	"context"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// TestWatchGrant: the watch reports a grant's end once, whether it is
// revoked, runs out, or runs out while the store cannot be read (fail
// closed: the end last read stands).
func TestWatchGrant(t *testing.T) {
	cases := []struct {
		name     string
		duration time.Duration
		act      func(t *testing.T, e *env, fs *failingStore, id string)
		want     review.Status
	}{
		{"revoked", time.Hour, func(t *testing.T, e *env, _ *failingStore, id string) {
			if _, err := e.svc.RevokeGrant(context.Background(), id, api(bob)); err != nil {
				t.Fatal(err)
			}
		}, review.StatusRevoked},
		{"runs out", time.Second, func(*testing.T, *env, *failingStore, string) {}, review.StatusExpired},
		{"runs out while the store is down", time.Second, func(_ *testing.T, _ *env, fs *failingStore, _ string) {
			fs.mu.Lock()
			fs.fail = true
			fs.mu.Unlock()
		}, review.StatusExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fs := &failingStore{Store: openStore(t)}
			e := newEnv(t, setup{store: fs})
			g, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: alice,
				Access: []string{"write"}, Duration: tc.duration})
			if err != nil {
				t.Fatal(err)
			}
			if g, err = e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
				t.Fatal(err)
			}
			ended := make(chan review.Review, 2)
			stop := e.svc.WatchGrant(g, func(r review.Review) { ended <- r })
			defer stop()
			tc.act(t, e, fs, g.ID)
			select {
			case r := <-ended:
				if r.ID != g.ID || r.Status != tc.want {
					t.Fatalf("ended with %s %s, want %s %s", r.ID, r.Status, g.ID, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the watch did not report the grant's end")
			}
		})
	}
}
