package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
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

// PREPARE TRANSACTION makes the transaction's work final as far as this
// session goes: COMMIT PREPARED may follow from any session. A ROLLBACK of
// a later transaction must not give back the approval the prepared one
// used, or the approved INSERT runs a second time. Both the INSERT and the
// PREPARE TRANSACTION are writes, so each is approved; it runs on the
// private cluster, the only one here that allows prepared transactions.
func TestPrepareTransactionKeepsApprovalUsed(t *testing.T) {
	t.Parallel()
	if scram.superURL == "" {
		t.Fatal("the private cluster is not running")
	}
	admin := func(sql string) error { return execOn(scram.superURL, sql) }
	g := newGrantTxEnvOn(t, config.Resource{Address: fmt.Sprintf("127.0.0.1:%d", scram.port), Database: "postgres",
		Username: "postgres", Password: scram.super}, admin)
	c := g.connect(t)
	ctx := context.Background()
	gid := "cs_" + randHex(4)
	// An INSERT into a table without a key: the prepared transaction holds
	// no lock a second run would wait for, so the hole shows as a run.
	notes := "notes_" + gid
	if err := admin("CREATE TABLE " + notes + " (note text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin("DROP TABLE " + notes) })
	t.Cleanup(func() { _ = admin("ROLLBACK PREPARED '" + gid + "'") }) // before the DROP
	stmt := "INSERT INTO " + notes + " VALUES ('approved')"
	g.approvedWrite(t, c, stmt, true)
	g.approvedWrite(t, c, "PREPARE TRANSACTION '"+gid+"'", true)
	for _, s := range []string{"BEGIN", stmt, "PREPARE TRANSACTION '" + gid + "'", "BEGIN", "ROLLBACK", "BEGIN"} {
		if _, err := c.Exec(ctx, s, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	_, again := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
	_, _ = c.Exec(ctx, "ROLLBACK")
	if again == nil || !strings.Contains(again.Error(), "approval required") {
		t.Fatalf("the approved INSERT ran a second time after its transaction was prepared: %v", again)
	}
}
