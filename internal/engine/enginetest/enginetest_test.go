package enginetest

import (
	"context"
	"errors"
	"testing"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
)

// TestGuardRules: the stand-in guard's verdicts are what its rule says,
// and it keeps every operation it decided.
func TestGuardRules(t *testing.T) {
	ctx := context.Background()
	g := &Guard{}
	g.SetRule(DenyIf("secret"))
	cases := []struct {
		text string
		want guard.Decision
	}{
		{"SELECT 1", guard.Allow},
		{"SELECT secret FROM t", guard.Deny},
		{"", guard.Allow},
	}
	for _, tc := range cases {
		if got := g.Decide(ctx, nil, &guard.Operation{Text: tc.text}).Decision; got != tc.want {
			t.Errorf("Decide(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if n := len(g.Ops()); n != len(cases) || g.LastOp().Text != "" || len(g.OpsOf("SELECT 1")) != 1 {
		t.Fatalf("the guard kept %d operations, last %q", n, g.LastOp().Text)
	}

	release := make(chan guard.Verdict, 1)
	g.SetRule(HoldIf("held", release))
	v := g.Decide(ctx, nil, &guard.Operation{Text: "UPDATE held"})
	if v.Decision != guard.Hold || v.Wait == nil {
		t.Fatalf("HoldIf gave %+v, want a hold", v)
	}
	release <- Allow()
	if got := v.Wait(ctx); got.Decision != guard.Allow {
		t.Fatalf("the released hold gave %+v", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := g.Decide(ctx, nil, &guard.Operation{Text: "UPDATE held"}).Wait(cancelled); got.Code != "withdrawn" {
		t.Fatalf("a withdrawn hold gave %+v", got)
	}
}

// TestRecorderFailAndStall: a failing recorder keeps nothing and says so;
// a stalled event is kept but its commit never finishes.
func TestRecorderFailAndStall(t *testing.T) {
	ctx := context.Background()
	r := &Recorder{}
	if c := r.Append(ctx, recording.Event{Type: "a"}); c.Wait(ctx) != nil {
		t.Fatal("a plain append failed")
	}
	r.SetFail(true)
	if c := r.Append(ctx, recording.Event{Type: "a"}); c.Wait(ctx) == nil {
		t.Fatal("a recorder told to fail did not fail")
	}
	r.SetFail(false)
	r.SetStall(func(e recording.Event) bool { return e.Type == "b" })
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Append(ctx, recording.Event{Type: "b"}).Wait(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("a stalled commit finished (%v)", err)
	}
	if len(r.OfType("a")) != 1 || len(r.OfType("b")) != 1 {
		t.Fatalf("kept %d of type a and %d of type b, want 1 each", len(r.OfType("a")), len(r.OfType("b")))
	}
}
