package guard

import (
	"context"
	"strings"

	"github.com/countersign/countersign/internal/recording"
)

// Done implements Guard. A review consumed by the session's operations
// becomes final (review.used) when the transaction commits and is restored
// (while still valid) when it rolls back; an autocommit statement that
// failed counts as rolled back. Done cannot refuse anything any more, so
// its failures are logged.
func (g *Gate) Done(ctx context.Context, s *Session, op *Operation, v Verdict, out Outcome) {
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx) // (engines pass Background: no allocation then)
	}
	g.txDone(s, op, out)
	if out.Withdrawn {
		// Nothing ran: whatever the session consumed stays as it is until
		// its transaction ends.
		return
	}
	switch {
	case out.Committed:
		for _, id := range g.release(s.ID) {
			g.used(ctx, s, id, out)
		}
	case out.RolledBack && partialRollback(op):
		// ROLLBACK TO SAVEPOINT reports "ROLLBACK" too, but the writes
		// before the savepoint stay and may still commit: a review they
		// consumed must not be usable again, so it stays claimed.
	case out.RolledBack || (out.ErrorCode != "" && !op.State.InTransaction):
		for _, id := range g.release(s.ID) {
			if _, err := g.reviews.Restore(ctx, id); err != nil {
				g.log.Error("approval not restored after rollback", "review", id, "session", s.ID, "err", err)
			}
		}
	}
}

func (g *Gate) used(ctx context.Context, s *Session, id string, out Outcome) {
	r, err := g.reviews.Get(ctx, id)
	if err == nil {
		err = g.reviews.Record(ctx, recording.TypeReviewUsed, r, s.Identity,
			map[string]any{"command_tag": out.CommandTag, "rows": out.Rows, "session": s.ID})
	}
	if err != nil {
		g.log.Error("review use not recorded", "review", id, "session", s.ID, "err", err)
	}
}

// claim remembers that the session's open transaction consumed the review.
func (g *Gate) claim(session, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.claimed[session] = append(g.claimed[session], id)
}

// release forgets and returns the session's consumed reviews.
func (g *Gate) release(session string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := g.claimed[session]
	delete(g.claimed, session)
	return ids
}

// Forget drops what the guard remembers of a closed session. Its consumed
// reviews stay consumed: without an outcome the guard cannot know whether
// their transaction committed, and a used approval must not run twice.
func (g *Gate) Forget(session string) {
	g.release(session)
	g.forgetGrants(session)
	g.forgetTx(session)
}

// partialRollback reports whether a "rolled back" outcome may come from
// something other than a full ROLLBACK: any text but a plain ROLLBACK that
// names one (ROLLBACK TO SAVEPOINT, however spelt or commented). A literal
// that merely contains the word costs only the restore of an approval.
func partialRollback(op *Operation) bool {
	return !plainRollback(op) && strings.Contains(strings.ToLower(op.Text), "rollback")
}
