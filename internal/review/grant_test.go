package review_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

func grantReq(who identity.Identity, access string, d time.Duration) review.Request {
	return review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: who,
		Access: []string{access}, Duration: d, Reason: "incident 42"}
}

func TestGrantRequestLimits(t *testing.T) {
	e := newEnv(t, setup{})
	tests := []struct {
		name string
		req  review.Request
	}{
		{"too long", grantReq(alice, "write", 5*time.Hour)},
		{"zero", grantReq(alice, "write", 0)},
		{"not allowed", grantReq(alice, "admin", time.Hour)},
		{"unknown access", grantReq(alice, "unknown", time.Hour)},
		{"cannot connect", grantReq(person("https://idp-a", "x", "", "nobody"), "write", time.Hour)},
	}
	for _, tt := range tests {
		if _, err := e.svc.Create(context.Background(), tt.req); err == nil {
			t.Errorf("%s: grant request accepted", tt.name)
		}
	}
}

func TestGrantLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	g, err := e.svc.Create(ctx, grantReq(alice, "write", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	covers := func(a []string) bool { return slices.Contains(a, "write") }
	if _, ok, _ := e.svc.ActiveGrant(ctx, "pg-prod", alice, covers); ok {
		t.Fatal("a pending grant is active")
	}
	if _, err := e.svc.Approve(ctx, g.ID, api(aliceB), ""); err == nil {
		t.Fatal("the initiator approved their own grant")
	}
	if _, err := e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.svc.ActiveGrant(ctx, "pg-prod", alice, covers); !ok || err != nil {
		t.Fatalf("approved grant not active: %v", err)
	}
	if _, ok, _ := e.svc.ActiveGrant(ctx, "pg-prod", bob, covers); ok {
		t.Fatal("alice's grant covers bob")
	}
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(dave)); err == nil {
		t.Fatal("an outsider revoked the grant")
	}
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(alice)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.svc.ActiveGrant(ctx, "pg-prod", alice, covers); ok {
		t.Fatal("a revoked grant is active")
	}
	if !slices.Contains(e.rec.types(), "grant.started") || !slices.Contains(e.rec.types(), "grant.ended") {
		t.Fatalf("events %v", e.rec.types())
	}
}

func TestGrantRevokers(t *testing.T) {
	for _, who := range []identity.Identity{alice, carol, admin} {
		e := newEnv(t, setup{})
		ctx := context.Background()
		g, _ := e.svc.Create(ctx, grantReq(alice, "write", time.Hour))
		if _, err := e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RevokeGrant(ctx, g.ID, api(who)); err != nil {
			t.Errorf("%s could not revoke: %v", who.Subject, err)
		}
	}
}
