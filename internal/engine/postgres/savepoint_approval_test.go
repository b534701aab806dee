package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5"
)

// Invariant 4 (an approval runs its statement once): PostgreSQL tags
// ROLLBACK TO SAVEPOINT "ROLLBACK", but the transaction goes on. Were that
// taken for a rollback of the whole transaction, the approval the UPDATE
// used would be given back and the same UPDATE could run a second time in
// the same transaction.
func TestRollbackToSavepointKeepsApprovalUsed(t *testing.T) {
	t.Parallel()
	g := newGrantTxEnv(t)
	c := g.connect(t)
	ctx := context.Background()
	stmt := "UPDATE " + g.table + " SET name = name || 'x' WHERE id = 1"
	g.approvedWrite(t, c, stmt, true)
	steps := []struct {
		sql     string
		refused bool
	}{
		{"BEGIN", false},
		{stmt, false}, // the approval is used
		{"SAVEPOINT s", false},
		{"ROLLBACK TO SAVEPOINT s", false},
		{stmt, true}, // the same approval again: refused
	}
	for _, s := range steps {
		_, err := c.Exec(ctx, s.sql, pgx.QueryExecModeSimpleProtocol)
		if s.refused != (err != nil) {
			t.Fatalf("%s: err = %v, want refused = %v", s.sql, err, s.refused)
		}
	}
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("after a full ROLLBACK the approval is restored, but the write failed: %v", err)
	}
	if _, err := c.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if n := g.count(t, "name = 'adax'"); n != 1 {
		t.Fatalf("the approved write must have run exactly once: rows with name 'adax': %d (twice would be 'adaxx')", n)
	}
}

// approvedWrite has stmt refused on c with a review id (mode reject),
// inside a transaction when inTx (the digest binds it, so a statement to
// run in one is reviewed in one), has carol approve that review, and
// returns its id.
func (g *grantTxEnv) approvedWrite(t *testing.T, c *pgx.Conn, stmt string, inTx bool) string {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string) error { _, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); return err }
	if inTx {
		if err := exec("BEGIN"); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec(stmt); err == nil || !strings.Contains(err.Error(), "r-") {
		t.Fatalf("the write was not refused with a review id (mode reject): %v", err)
	}
	if inTx {
		if err := exec("ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := g.svc.List(ctx, review.Filter{Type: review.TypeOperation, Status: review.StatusPending})
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending reviews: %v (%v)", pending, err)
	}
	carol := grantTxPerson("carol", "dba-leads")
	if _, err := g.svc.Approve(ctx, pending[0].ID, review.Actor{Identity: carol, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, ""); err != nil {
		t.Fatal(err)
	}
	return pending[0].ID
}
