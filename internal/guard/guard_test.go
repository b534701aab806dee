package guard_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

func TestZeroVerdictDenies(t *testing.T) {
	if (guard.Verdict{}).Decision != guard.Deny {
		t.Fatal("the zero Verdict does not deny")
	}
}

func TestConnect(t *testing.T) {
	e := newEnv(t, "reject", 0)
	ctx := context.Background()
	if v := e.g.Connect(ctx, session(alice, "s1")); v.Decision != guard.Allow {
		t.Fatalf("alice: %+v", v)
	}
	v := e.g.Connect(ctx, session(audit, "s2"))
	if v.Decision != guard.Deny || v.Code != "access_denied" || !strings.Contains(v.Message, "pg-prod") || !strings.Contains(v.Message, "engineers") {
		t.Fatalf("audit: %+v", v)
	}
	s := session(alice, "s3")
	s.Resource = "pg-nope"
	if v := e.g.Connect(ctx, s); v.Decision != guard.Deny {
		t.Fatalf("unknown resource: %+v", v)
	}
	if v := e.g.Decide(ctx, session(audit, "s2"), &guard.Operation{Class: sqlkind.Classification{Kind: sqlkind.Read}}); v.Decision != guard.Deny {
		t.Fatalf("Decide without access: %+v", v)
	}
}

func TestUnreviewedKindAllowed(t *testing.T) {
	e := newEnv(t, "reject", 0)
	op := &guard.Operation{Text: "SELECT 1", Class: sqlkind.Classification{Kind: sqlkind.Read}}
	v := e.g.Decide(context.Background(), session(alice, "s1"), op)
	if v.Decision != guard.Allow || len(v.Digest) != 32 {
		t.Fatalf("%+v", v)
	}
}

func TestUnknownKindIsReviewed(t *testing.T) {
	e := newEnv(t, "reject", 0)
	for _, k := range []sqlkind.Kind{sqlkind.Unknown, sqlkind.Kind(42)} {
		op := &guard.Operation{Text: "DO $$ ... $$", Class: sqlkind.Classification{Kind: k}}
		if v := e.g.Decide(context.Background(), session(alice, "s1"), op); v.Decision != guard.Deny || v.Code != "approval_required" {
			t.Fatalf("kind %v: %+v", k, v)
		}
	}
}

// TestRejectModeRunsExactlyWhatWasApproved: after approval the identical
// operation runs once; any change needs its own review.
func TestRejectModeRunsExactlyWhatWasApproved(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	s := session(alice, "s1")
	op := write("UPDATE t SET a = $1", guard.Param{Type: 23, Value: []byte("1")})
	v := e.g.Decide(ctx, s, op)
	want := "approval required: review " + v.ReviewID + " created; an approver can run 'countersign reviews approve " + v.ReviewID + "'"
	if v.Decision != guard.Deny || v.Code != "approval_required" || v.Message != want {
		t.Fatalf("%+v", v)
	}
	if _, err := e.svc.Approve(ctx, v.ReviewID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	changed := []struct {
		name string
		op   *guard.Operation
	}{
		{"text", write("UPDATE t SET a = $1 ", guard.Param{Type: 23, Value: []byte("1")})},
		{"param", write("UPDATE t SET a = $1", guard.Param{Type: 23, Value: []byte("2")})},
		{"search_path", func() *guard.Operation {
			o := write("UPDATE t SET a = $1", guard.Param{Type: 23, Value: []byte("1")})
			o.State.SearchPath = "evil, public"
			return o
		}()},
	}
	for _, c := range changed {
		if v := e.g.Decide(ctx, s, c.op); v.Decision != guard.Deny || v.Code != "approval_required" {
			t.Fatalf("changed %s ran under another's approval: %+v", c.name, v)
		}
	}
	if v := e.g.Decide(ctx, session(bob, "s9"), op); v.Decision == guard.Allow {
		t.Fatal("another identity used alice's approval")
	}
	got := e.g.Decide(ctx, s, op)
	if got.Decision != guard.Allow || got.ReviewID != v.ReviewID {
		t.Fatalf("approved operation: %+v", got)
	}
	e.g.Done(ctx, s, op, got, guard.Outcome{Committed: true})
	if v := e.g.Decide(ctx, s, op); v.Decision == guard.Allow {
		t.Fatal("an approval ran twice")
	}
	if e.rec.count("review.used") != 1 {
		t.Fatal("review.used not recorded")
	}
}

func approvedOp(t *testing.T, e *env, s *guard.Session, op *guard.Operation) string {
	t.Helper()
	v := e.g.Decide(context.Background(), s, op)
	if _, err := e.svc.Approve(context.Background(), v.ReviewID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	return v.ReviewID
}

func TestRollbackRestores(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	s := session(alice, "s1")
	op := write("DELETE FROM t WHERE id = 1")
	id := approvedOp(t, e, s, op)
	for range 2 {
		v := e.g.Decide(ctx, s, op)
		if v.Decision != guard.Allow || v.ReviewID != id {
			t.Fatalf("%+v", v)
		}
		e.g.Done(ctx, s, op, v, guard.Outcome{RolledBack: true})
	}
	v := e.g.Decide(ctx, s, op)
	e.g.Done(ctx, s, op, v, guard.Outcome{ErrorCode: "23505"}) // autocommit failure
	if v := e.g.Decide(ctx, s, op); v.Decision != guard.Allow {
		t.Fatalf("not restored after a failed autocommit statement: %+v", v)
	}
}

// TestTwoSessionsRaceOneApproval: 20 sessions of the initiator race; one
// runs.
func TestTwoSessionsRaceOneApproval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	op := write("UPDATE t SET b = 2")
	approvedOp(t, e, session(alice, "s0"), op)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v := e.g.Decide(ctx, session(alice, "s"+string(rune('a'+i))), write("UPDATE t SET b = 2")); v.Decision == guard.Allow {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 1 {
		t.Fatalf("%d sessions ran one approval", allowed.Load())
	}
}

func TestWaitMode(t *testing.T) {
	tests := []struct {
		name     string
		act      func(e *env, id string)
		decision guard.Decision
		code     string
	}{
		{"approved", func(e *env, id string) { _, _ = e.svc.Approve(context.Background(), id, api(bob), "") }, guard.Allow, "reviewed"},
		{"rejected", func(e *env, id string) { _, _ = e.svc.Reject(context.Background(), id, api(bob), "not today") }, guard.Deny, "approval_rejected"},
		{"shutdown", func(e *env, _ string) { e.g.Close() }, guard.Deny, "gateway_shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, "wait", time.Hour)
			v := e.g.Decide(ctx, session(alice, "s1"), write("UPDATE t SET c = 3"))
			want := "waiting for approval of review " + v.ReviewID + ": 0 of 1 approvals from dba-leads; approve with: countersign reviews approve " + v.ReviewID
			if v.Decision != guard.Hold || v.Wait == nil || v.Notice != want {
				t.Fatalf("%+v", v)
			}
			done := make(chan guard.Verdict)
			go func() { done <- v.Wait(ctx) }()
			tt.act(e, v.ReviewID)
			got := <-done
			if got.Decision != tt.decision || got.Code != tt.code || got.Message == "" && got.Decision == guard.Deny {
				t.Fatalf("%+v", got)
			}
		})
	}
}

func TestWaitTimeout(t *testing.T) {
	e := newEnv(t, "wait", time.Nanosecond)
	v := e.g.Decide(context.Background(), session(alice, "s1"), write("UPDATE t SET c = 3"))
	if got := v.Wait(context.Background()); got.Decision != guard.Deny || got.Code != "approval_timeout" {
		t.Fatalf("%+v", got)
	}
	r, err := e.svc.Get(context.Background(), v.ReviewID)
	if err != nil || r.Status != review.StatusPending {
		t.Fatalf("review after timeout: %v %v", r.Status, err)
	}
}

func TestGrantCoversKind(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	g := approvedGrant(t, e, alice, time.Hour, "write")
	s := session(alice, "s1")
	if v := e.g.Decide(ctx, s, write("UPDATE t SET x = 1")); v.Decision != guard.Allow || v.GrantID != g.ID {
		t.Fatalf("write under grant: %+v", v)
	}
	for _, k := range []sqlkind.Kind{sqlkind.Schema, sqlkind.Unknown} {
		op := &guard.Operation{Text: "ALTER TABLE t", Class: sqlkind.Classification{Kind: k}}
		if v := e.g.Decide(ctx, s, op); v.Decision == guard.Allow {
			t.Fatalf("a write grant covered %v", k)
		}
	}
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(alice)); err != nil {
		t.Fatal(err)
	}
	if v := e.g.Decide(ctx, s, write("UPDATE t SET x = 1")); v.Decision == guard.Allow {
		t.Fatal("a revoked grant still allows")
	}
}

func TestBreakglass(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	text := "/* breakglass: primary is down */ UPDATE t SET y = 1"
	v := e.g.Decide(ctx, session(oncal, "s1"), write(text))
	if v.Decision != guard.Allow || v.Code != "breakglass" || v.ReviewID == "" {
		t.Fatalf("%+v", v)
	}
	r, err := e.svc.Get(ctx, v.ReviewID)
	if err != nil || r.Type != review.TypeBreakglass || r.Status != review.StatusPending || r.Reason != "primary is down" {
		t.Fatalf("retro review: %+v %v", r, err)
	}
	if e.rec.count("breakglass") != 1 {
		t.Fatal("break-glass not recorded")
	}
	for _, attempt := range []struct {
		who  string
		text string
	}{
		{"alice", text},
		{"olga", "UPDATE t SET y = '/* breakglass: x */'"},
	} {
		id := alice
		if attempt.who == "olga" {
			id = oncal
		}
		if v := e.g.Decide(ctx, session(id, "s2"), write(attempt.text)); v.Decision == guard.Allow {
			t.Fatalf("%s broke glass with %q", attempt.who, attempt.text)
		}
	}
}

func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("store error", func(t *testing.T) {
		e := newEnv(t, "reject", 0)
		e.store.fail.Store(true)
		v := e.g.Decide(ctx, session(alice, "s1"), write("UPDATE t SET z = 1"))
		if v.Decision != guard.Deny || v.Code != "review_failed" || !strings.Contains(v.Message, "store") {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("store error with an approval", func(t *testing.T) {
		e := newEnv(t, "reject", 0)
		op := write("UPDATE t SET z = 2")
		approvedOp(t, e, session(alice, "s1"), op)
		e.store.fail.Store(true)
		if v := e.g.Decide(ctx, session(alice, "s1"), op); v.Decision != guard.Deny {
			t.Fatalf("%+v", v)
		}
	})
	t.Run("recording error", func(t *testing.T) {
		e := newEnv(t, "wait", time.Hour)
		e.rec.fail.Store(true)
		v := e.g.Decide(ctx, session(alice, "s1"), write("UPDATE t SET z = 3"))
		if v.Decision != guard.Deny || !strings.Contains(v.Message, "recording") {
			t.Fatalf("%+v", v)
		}
		if v := e.g.Decide(ctx, session(oncal, "s1"), write("/* breakglass: x */ UPDATE t")); v.Decision != guard.Deny {
			t.Fatalf("break-glass without its record: %+v", v)
		}
	})
}

// TestGrantEndInterruptsSessions: when a grant runs out or is revoked,
// every live session it allowed operations of is interrupted, so a
// statement still running past the end is cancelled (invariant 7); the
// next operation is refused.
func TestGrantEndInterruptsSessions(t *testing.T) {
	cases := []struct {
		name     string
		duration time.Duration
		revoke   bool
		want     string
	}{
		{"runs out", time.Second, false, "ran out"},
		{"revoked", time.Hour, true, "was revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, "reject", 0)
			g := approvedGrant(t, e, alice, tc.duration, "write")
			interrupted := make(chan string, 2)
			s := session(alice, "s1")
			s.Interrupt = func(why string) { interrupted <- why }
			if v := e.g.Decide(ctx, s, write("UPDATE t SET x = 1")); v.Decision != guard.Allow || v.GrantID != g.ID {
				t.Fatalf("write under grant: %+v", v)
			}
			if tc.revoke {
				if _, err := e.svc.RevokeGrant(ctx, g.ID, api(bob)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case why := <-interrupted:
				if !strings.Contains(why, g.ID) || !strings.Contains(why, tc.want) {
					t.Fatalf("interrupt says %q, want the grant id and %q", why, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the session was not interrupted when its grant ended")
			}
			if v := e.g.Decide(ctx, s, write("UPDATE t SET x = 2")); v.Decision == guard.Allow {
				t.Fatalf("the next operation ran after the grant ended: %+v", v)
			}
		})
	}
}

// TestGrantWatchSharedAndForgotten: one watch serves every session of a
// grant; a closed session is not interrupted, a live one is.
func TestGrantWatchSharedAndForgotten(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	g := approvedGrant(t, e, alice, time.Hour, "write")
	var mu sync.Mutex
	var got []string
	live := make(chan struct{}, 1)
	closed, open := session(alice, "closed"), session(alice, "open")
	closed.Interrupt = func(string) { mu.Lock(); got = append(got, "closed"); mu.Unlock() }
	open.Interrupt = func(string) { mu.Lock(); got = append(got, "open"); mu.Unlock(); live <- struct{}{} }
	for _, s := range []*guard.Session{closed, open, open} {
		if v := e.g.Decide(ctx, s, write("UPDATE t SET x = 1")); v.Decision != guard.Allow {
			t.Fatalf("%+v", v)
		}
	}
	e.g.Forget(closed.ID)
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(alice)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-live:
	case <-time.After(30 * time.Second):
		t.Fatal("the live session was not interrupted")
	}
	mu.Lock()
	defer mu.Unlock()
	// The forgotten session left the watch before the revocation, so the
	// one pass over the watch's sessions cannot have reached it.
	if len(got) != 1 || got[0] != "open" {
		t.Fatalf("interrupted %v, want only the open session, once", got)
	}
}

// TestBreakglassToken: a resource token minted with `connect --breakglass
// REASON` breaks glass for each held operation of its sessions, with the
// token's reason; the role is still checked at each operation, so the same
// marker on anyone else's identity is ignored.
func TestBreakglassToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	tokenOf := func(id identity.Identity) identity.Identity {
		id.Breakglass = "failover, ticket 7"
		return id
	}
	cases := []struct {
		name  string
		who   identity.Identity
		allow bool
	}{
		{"on-call with the role", tokenOf(oncal), true},
		{"creator without the role", tokenOf(alice), false},
		{"on-call without a break-glass token", oncal, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := e.g.Decide(ctx, session(tc.who, "s-"+tc.name), write("UPDATE t SET y = 2 -- "+tc.name))
			if (v.Decision == guard.Allow) != tc.allow {
				t.Fatalf("%+v", v)
			}
			if !tc.allow {
				return
			}
			r, err := e.svc.Get(ctx, v.ReviewID)
			if err != nil || v.Code != "breakglass" || r.Type != review.TypeBreakglass || r.Reason != "failover, ticket 7" {
				t.Fatalf("retro review: %+v %v (verdict %+v)", r, err, v)
			}
		})
	}
}
