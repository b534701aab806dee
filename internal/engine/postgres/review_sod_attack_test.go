package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5"
)

// Invariant 4 (an approval runs its statement once), attacked by a creator
// through the real gateway and PostgreSQL: COMMIT AND CHAIN commits the
// transaction that used the approval but leaves the session in a (new)
// transaction, so the outcome looks neither committed nor rolled back; a
// ROLLBACK of the empty chained transaction must not give the approval
// back, or the same approved UPDATE runs a second time.
//
// It failed while relay.go's finishBatch counted a COMMIT as committing
// only when the session ended up idle (endsTxFinal now).
func TestCommitAndChainKeepsApprovalUsed(t *testing.T) {
	t.Parallel()
	for _, chain := range []string{"COMMIT AND CHAIN", "END AND CHAIN"} {
		t.Run(chain, func(t *testing.T) {
			t.Parallel()
			g := newGrantTxEnv(t)
			c := g.connect(t)
			ctx := context.Background()
			stmt := "UPDATE " + g.table + " SET name = name || 'x' WHERE id = 1"
			id := g.approvedWrite(t, c, stmt, true)
			for _, s := range []string{"BEGIN", stmt, chain, "ROLLBACK", "BEGIN"} {
				if _, err := c.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			_, again := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
			_, _ = c.Exec(ctx, "COMMIT")
			if n := g.count(t, "name = 'adax'"); n != 1 || again == nil {
				t.Fatalf("the approved write must run exactly once: rows with name 'adax': %d (twice is 'adaxx'); second run: %v", n, again)
			}
			got, err := g.svc.Get(ctx, id)
			if err != nil || got.Status != review.StatusConsumed {
				t.Fatalf("the review after its committed use: %s (%v)", got.Status, err)
			}
		})
	}
}

// Invariant 4 through the real gateway: once approved, the statement runs
// only under the session state it was reviewed in. Each attack changes
// something the digest binds (search_path, a transaction around it; a
// set_config is itself held for review) on a fresh connection and runs the approved text:
// each is refused with a new review. Then it runs once as reviewed, and a
// rerun after its use is refused.
func TestApprovalBoundToSessionState(t *testing.T) {
	t.Parallel()
	g := newGrantTxEnv(t)
	ctx := context.Background()
	stmt := "UPDATE " + g.table + " SET name = name || 'y' WHERE id = 1"
	c := g.connect(t)
	g.approvedWrite(t, c, stmt, false)
	attacks := []struct {
		name   string
		before []string
	}{
		{"SET search_path", []string{"SET search_path = pg_temp, public"}},
		{"inside a transaction", []string{"BEGIN"}},
	}
	for _, a := range attacks {
		c := g.connect(t)
		for _, s := range a.before {
			if _, err := c.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("%s: %s: %v", a.name, s, err)
			}
		}
		if _, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err == nil || !strings.Contains(err.Error(), "approval required") {
			t.Fatalf("%s: the approved text ran under another session state: %v", a.name, err)
		}
	}
	c = g.connect(t)
	if _, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("the approved write as reviewed: %v", err)
	}
	if _, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("the approved write ran a second time")
	}
	if n := g.count(t, "name = 'aday'"); n != 1 {
		t.Fatalf("the approved write must have run exactly once: %d rows named 'aday'", n)
	}
}
