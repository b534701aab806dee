package guard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
)

// txStep is one step of a session: decide an operation (want "allow" or a
// refusal code), report an earlier one's outcome, or revoke the grant.
type txStep struct {
	decide string // the operation's text; its name for done
	kind   sqlkind.Kind
	stmts  int
	want   string

	done string // the text of an operation decided earlier
	out  guard.Outcome

	revoke bool
}

func txOp(text string, k sqlkind.Kind, stmts int) *guard.Operation {
	if stmts == 0 {
		stmts = 1
	}
	return &guard.Operation{Text: text, Class: sqlkind.Classification{Kind: k, Statements: stmts}}
}

const endedInTx = "grant_ended_in_transaction"

// Writes made under a grant inside a transaction must not commit after the
// grant ended: each case is an attack on (or a legitimate use next to)
// that rule, decided by the real guard and review service.
func TestGrantEndHoldsItsTransaction(t *testing.T) {
	R, W := sqlkind.Read, sqlkind.Write
	ok := guard.Outcome{}
	committed := guard.Outcome{Committed: true}
	cases := []struct {
		name  string
		steps []txStep
	}{
		{"commit refused, rollback ends it", []txStep{
			{decide: "BEGIN", kind: R, want: "allow"}, {done: "BEGIN", out: ok},
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: ok},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: endedInTx},
			{decide: "SELECT 1", kind: R, want: endedInTx},
			{decide: "ROLLBACK TO SAVEPOINT s", kind: R, want: endedInTx},
			{decide: "ROLLBACK /* why */", kind: R, want: endedInTx},
			{decide: "ROLLBACK; COMMIT", kind: R, stmts: 2, want: endedInTx},
			{decide: "rollback work;", kind: R, want: "allow"}, {done: "rollback work;", out: guard.Outcome{RolledBack: true}},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"pipelined: commit decided before the write's outcome", []txStep{
			{decide: "BEGIN", kind: R, want: "allow"},
			{decide: "INSERT 1", kind: W, want: "granted"},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: endedInTx},
			{done: "BEGIN", out: ok}, {done: "INSERT 1", out: ok},
			{decide: "COMMIT", kind: R, want: endedInTx},
		}},
		{"a failed ROLLBACK ends nothing", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: ok},
			{revoke: true},
			{decide: "ROLLBACK", kind: R, want: "allow"}, {done: "ROLLBACK", out: guard.Outcome{ErrorCode: "08006"}},
			{decide: "COMMIT", kind: R, want: endedInTx},
		}},
		{"rollback to a savepoint keeps the writes before it", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: ok},
			{decide: "SAVEPOINT s", kind: R, want: "allow"}, {done: "SAVEPOINT s", out: ok},
			{decide: "ROLLBACK TO s", kind: R, want: "allow"}, {done: "ROLLBACK TO s", out: guard.Outcome{CommandTag: "ROLLBACK", RolledBack: true}},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: endedInTx},
		}},
		{"a failed multi-statement write may have written", []txStep{
			{decide: "INSERT 1; INSERT 2", kind: W, stmts: 2, want: "granted"}, {done: "INSERT 1; INSERT 2", out: guard.Outcome{ErrorCode: "1062"}},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: endedInTx},
		}},
		{"the engine's own rollback ends it", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: ok},
			{revoke: true},
			{done: "COM_RESET_CONNECTION", out: guard.Outcome{RolledBack: true}},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"committed before the end", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: ok},
			{decide: "COMMIT", kind: R, want: "allow"}, {done: "COMMIT", out: committed},
			{revoke: true},
			{decide: "BEGIN", kind: R, want: "allow"}, {decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"autocommit write", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: committed},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"a failed single write wrote nothing", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: guard.Outcome{ErrorCode: "23505"}},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"a withdrawn write never ran", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"}, {done: "INSERT 1", out: guard.Outcome{Withdrawn: true}},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
		{"a write withdrawn unannounced is dropped at the next outcome", []txStep{
			{decide: "INSERT 1", kind: W, want: "granted"},
			{decide: "SELECT 1", kind: R, want: "allow"}, {done: "SELECT 1", out: committed},
			{revoke: true},
			{decide: "COMMIT", kind: R, want: "allow"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, "reject", 0)
			g := approvedGrant(t, e, alice, time.Hour, "write")
			s := session(alice, "s1")
			decided := map[string]*guard.Operation{}
			for i, st := range tc.steps {
				switch {
				case st.revoke:
					if _, err := e.svc.RevokeGrant(ctx, g.ID, api(bob)); err != nil {
						t.Fatal(err)
					}
				case st.done != "":
					op := decided[st.done]
					if op == nil {
						op = txOp(st.done, sqlkind.Read, 1) // never decided: the engine's own
					}
					e.g.Done(ctx, s, op, guard.Verdict{Decision: guard.Allow}, st.out)
				default:
					op := txOp(st.decide, st.kind, st.stmts)
					decided[st.decide] = op
					v := e.g.Decide(ctx, s, op)
					got := v.Code
					if v.Decision == guard.Allow && got == "" {
						got = "allow"
					}
					if got != st.want {
						t.Fatalf("step %d, %q: %s (%s), want %s", i, st.decide, got, v.Message, st.want)
					}
					if got == endedInTx && (v.GrantID != g.ID || !strings.Contains(v.Message, "grant "+g.ID+" was revoked") ||
						!strings.Contains(v.Message, "ROLLBACK")) {
						t.Fatalf("step %d, %q: the refusal %+v does not name the grant and ROLLBACK", i, st.decide, v)
					}
				}
			}
		})
	}
}

// The end reaches only the transactions holding writes under the grant:
// another session of the same person, which used the grant in autocommit,
// commits its transaction.
func TestGrantEndSparesOtherSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "reject", 0)
	g := approvedGrant(t, e, alice, time.Hour, "write")
	held, other := session(alice, "s1"), session(alice, "s2")
	ins := txOp("INSERT 1", sqlkind.Write, 1)
	if v := e.g.Decide(ctx, held, ins); v.GrantID != g.ID {
		t.Fatalf("write under the grant: %+v", v)
	}
	e.g.Done(ctx, held, ins, guard.Verdict{}, guard.Outcome{})
	auto := txOp("INSERT 2", sqlkind.Write, 1)
	if v := e.g.Decide(ctx, other, auto); v.GrantID != g.ID {
		t.Fatalf("write under the grant: %+v", v)
	}
	e.g.Done(ctx, other, auto, guard.Verdict{}, guard.Outcome{Committed: true})
	if _, err := e.svc.RevokeGrant(ctx, g.ID, api(bob)); err != nil {
		t.Fatal(err)
	}
	if v := e.g.Decide(ctx, other, txOp("COMMIT", sqlkind.Read, 1)); v.Decision != guard.Allow {
		t.Fatalf("the other session's COMMIT: %+v", v)
	}
	if v := e.g.Decide(ctx, held, txOp("COMMIT", sqlkind.Read, 1)); v.Code != endedInTx {
		t.Fatalf("the holding session's COMMIT: %+v", v)
	}
	// A closed session is forgotten.
	e.g.Forget(held.ID)
	if v := e.g.Decide(ctx, held, txOp("SELECT 1", sqlkind.Read, 1)); v.Decision != guard.Allow {
		t.Fatalf("after Forget: %+v", v)
	}
}

// ROLLBACK TO SAVEPOINT ends with PostgreSQL's tag "ROLLBACK", yet the
// writes before the savepoint stay in the transaction: an approval they
// consumed must not be restored, or the approved statement runs twice and
// both commit (invariant 4). A full ROLLBACK restores it.
func TestSavepointRollbackKeepsApprovalConsumed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		rollback string
		restored bool
	}{
		{"ROLLBACK TO SAVEPOINT s", false},
		{"rollback to s;", false},
		{"ROLLBACK/**/TO s", false},
		{"SELECT 1; ROLLBACK TO s", false},
		{"ROLLBACK", true},
		{"abort", true},
	}
	for _, tc := range cases {
		t.Run(tc.rollback, func(t *testing.T) {
			e := newEnv(t, "reject", 0)
			s := session(alice, "s1")
			op := write("UPDATE t SET a = 1")
			id := approvedOp(t, e, s, op)
			if v := e.g.Decide(ctx, s, op); v.ReviewID != id {
				t.Fatalf("approved write: %+v", v)
			}
			e.g.Done(ctx, s, op, guard.Verdict{}, guard.Outcome{CommandTag: "UPDATE 1"})
			rb := txOp(tc.rollback, sqlkind.Read, strings.Count(tc.rollback, ";")+1)
			e.g.Decide(ctx, s, rb)
			e.g.Done(ctx, s, rb, guard.Verdict{}, guard.Outcome{CommandTag: "ROLLBACK", RolledBack: true})
			again := e.g.Decide(ctx, s, write("UPDATE t SET a = 1"))
			if got := again.Decision == guard.Allow; got != tc.restored {
				t.Fatalf("after %q the approval is usable: %v, want %v (%+v)", tc.rollback, got, tc.restored, again)
			}
		})
	}
}
