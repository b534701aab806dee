package guard

import (
	"context"
	"fmt"
	"strings"

	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Writes made under a grant inside a transaction must not commit after the
// grant ended (invariant 7): COMMIT is transaction control, classified
// read, so without this it would be allowed and make the writes permanent
// after the end. The guard therefore remembers, per session, the grants
// that allowed writes of the session's open transaction, and once one of
// them ended it refuses every operation of that transaction but a full
// ROLLBACK. Both engines turn a refusal into something that cannot commit:
// PostgreSQL's upstream transaction is aborted by the failing stand-in
// statement, MySQL's COMMIT never reaches the upstream.
//
// The guard learns where a transaction ends only from Done, in the order
// the engine decided the operations, so a write counts from its decision
// (pending, before its outcome is known: a pipelined COMMIT may be decided
// before the write's result arrives) until an outcome shows its
// transaction over: committed before the end, rolled back, or failed
// without effect. What is unsure counts as held: the refusal costs a
// ROLLBACK, a wrong allow would commit writes after the grant's end.

// codeGrantEndedInTx refuses the operations of a transaction holding writes
// under a grant that ended.
const codeGrantEndedInTx = "grant_ended_in_transaction"

// txGrants is what the guard knows of one session's grant writes.
type txGrants struct {
	// pending are grant-allowed writes decided but not yet done, by their
	// decision sequence number, to the grant id.
	pending map[uint64]string
	// open are grants whose writes are done inside the still open
	// transaction.
	open map[string]bool
	// ended are grants of pending or open that ended, to why ("was
	// revoked", "ran out").
	ended map[string]string
}

func (t *txGrants) uses(grant string) bool {
	if t.open[grant] {
		return true
	}
	for _, id := range t.pending {
		if id == grant {
			return true
		}
	}
	return false
}

// held lists the grants of writes the open transaction may hold.
func (t *txGrants) held() []string {
	var ids []string
	for id := range t.open {
		ids = append(ids, id)
	}
	for _, id := range t.pending {
		if !t.open[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// tidy forgets ended grants the transaction no longer holds writes of, and
// reports whether nothing is left to remember.
func (t *txGrants) tidy() bool {
	for id := range t.ended {
		if !t.uses(id) {
			delete(t.ended, id)
		}
	}
	return len(t.pending) == 0 && len(t.open) == 0 && len(t.ended) == 0
}

// grantWrite remembers that a grant allowed a write of the session. It is
// called before the grant is watched, so an end seen by the watch finds it.
func (g *Gate) grantWrite(s *Session, op *Operation, grant string) {
	g.txmu.Lock()
	defer g.txmu.Unlock()
	t := g.txs[s.ID]
	if t == nil {
		t = &txGrants{pending: map[uint64]string{}, open: map[string]bool{}, ended: map[string]string{}}
		g.txs[s.ID] = t
	}
	t.pending[op.seq] = grant
}

// txGrantEnded marks the sessions whose open transaction holds writes made
// under the grant that ended.
func (g *Gate) txGrantEnded(grant, why string, sessions []string) {
	g.txmu.Lock()
	defer g.txmu.Unlock()
	for _, id := range sessions {
		if t := g.txs[id]; t != nil && t.uses(grant) {
			t.ended[grant] = why
		}
	}
}

// txRefusal refuses an operation of a transaction that holds writes made
// under a grant that ended; only a full ROLLBACK passes. The grants are
// also asked for at the store's clock, so the refusal does not wait for
// the watch to notice an end that already passed.
func (g *Gate) txRefusal(ctx context.Context, s *Session, op *Operation) (Verdict, bool) {
	g.txmu.Lock()
	t := g.txs[s.ID]
	if t == nil || plainRollback(op) {
		// (The map first: most sessions hold no grant writes, and
		// plainRollback reads the text.)
		g.txmu.Unlock()
		return Verdict{}, false
	}
	grant, why := endedHeld(t)
	held := t.held()
	g.txmu.Unlock()
	if grant == "" {
		for _, id := range held {
			r, err := g.reviews.Get(ctx, id)
			if err != nil {
				return g.failed("review_failed", err, s), true
			}
			if r.Status == review.StatusApproved {
				continue
			}
			grant, why = id, endedWhy(r)
			g.txGrantEnded(id, why, []string{s.ID})
			break
		}
	}
	if grant == "" {
		return Verdict{}, false
	}
	return Verdict{Decision: Deny, Code: codeGrantEndedInTx, GrantID: grant,
		Message: fmt.Sprintf("grant %s %s while this transaction held writes made under it, so they must not commit: "+
			"run ROLLBACK (every other statement is refused until the transaction is rolled back), then ask for a review or a new grant ('countersign grants request')", grant, why)}, true
}

// endedHeld is a grant that ended while the transaction holds its writes.
func endedHeld(t *txGrants) (grant, why string) {
	for id, w := range t.ended {
		if t.uses(id) && (grant == "" || id < grant) {
			grant, why = id, w
		}
	}
	return grant, why
}

func endedWhy(r review.Review) string {
	if r.Status == review.StatusRevoked {
		return "was revoked"
	}
	return "ran out"
}

// txDone follows the session's transaction from an operation's outcome.
func (g *Gate) txDone(s *Session, op *Operation, out Outcome) {
	g.txmu.Lock()
	defer g.txmu.Unlock()
	t := g.txs[s.ID]
	if t == nil {
		return
	}
	grant, wrote := t.pending[op.seq]
	delete(t.pending, op.seq)
	if op.seq != 0 && !out.Withdrawn {
		// Done comes in decision order: a write decided earlier and still
		// pending was withdrawn without a word and never ran.
		for seq := range t.pending {
			if seq < op.seq {
				delete(t.pending, seq)
			}
		}
	}
	switch {
	case out.Withdrawn:
	case out.Committed, plainRollback(op) && out.ErrorCode == "", op.seq == 0 && out.RolledBack:
		// The transaction ended (an operation the guard never decided is
		// the engine's own rollback, e.g. MySQL's COM_RESET_CONNECTION).
		clear(t.open)
	case wrote && (out.ErrorCode == "" || op.Class.Statements > 1):
		// A single statement that failed changed nothing; one of several
		// may have run before the failing one.
		t.open[grant] = true
	}
	if t.tidy() {
		delete(g.txs, s.ID)
	}
}

// forgetTx drops a closed session.
func (g *Gate) forgetTx(session string) {
	g.txmu.Lock()
	defer g.txmu.Unlock()
	delete(g.txs, session)
}

// plainRollback reports whether the operation is exactly one full
// ROLLBACK (or PostgreSQL's ABORT), which ends the transaction and its
// writes: ROLLBACK TO SAVEPOINT keeps the writes made before the savepoint,
// and anything with a comment or a second statement in it is not
// recognized, so it fails closed (the client can send a plain ROLLBACK).
func plainRollback(op *Operation) bool {
	if op.Class.Kind != sqlkind.Read || len(op.Params) != 0 {
		return false
	}
	text := strings.TrimSpace(op.Text)
	text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
	words := strings.Fields(strings.ToLower(text))
	if len(words) == 0 || words[0] != "rollback" && words[0] != "abort" {
		return false
	}
	for _, w := range words[1:] {
		switch w {
		case "work", "transaction", "and", "no", "chain", "release":
		default:
			return false
		}
	}
	return true
}
