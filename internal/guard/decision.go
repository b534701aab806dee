package guard

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Decision is what the guard says about an operation. The zero value is
// Deny, so a forgotten case refuses.
type Decision int

const (
	Deny Decision = iota
	Hold
	Allow
)

func (d Decision) String() string {
	switch d {
	case Deny:
		return "deny"
	case Hold:
		return "hold"
	case Allow:
		return "allow"
	}
	return fmt.Sprintf("decision(%d)", int(d))
}

// Session is one client connection of one identity to one resource. The
// engine fills it at startup; it is read-only afterwards except for State.
type Session struct {
	ID            string
	Identity      identity.Identity
	Resource      string
	Dialect       sqlkind.Dialect
	ClientAddr    string
	ClientProgram string
	// Interrupt, set by the engine, cancels what the session's upstream
	// runs now, if anything, and tells the client why. The guard calls it
	// from its own goroutine when a grant that allowed the session's
	// operations ends (invariant 7: a running operation is cancelled). It
	// must not block for long and must be safe to call while the session
	// works. Nil: the engine cannot interrupt, and only the next operation
	// is refused.
	Interrupt func(reason string)

	// grantEnds counts the ends of grants that allowed operations of the
	// session (see GrantEnds).
	grantEnds atomic.Uint64
}

// GrantEnds counts how many times a grant that allowed operations of the
// session ended. An engine reads it before Decide and again just before it
// forwards an operation allowed under a grant: if it moved, the grant may
// have ended in between, when Interrupt found nothing running to cancel,
// and the operation must not start (invariant 7).
func (s *Session) GrantEnds() uint64 { return s.grantEnds.Load() }

// State is the session state that changes name resolution or privilege; it
// is bound into every operation digest (invariant 4).
type State struct {
	SearchPath    string
	Role          string
	Schema        string // MySQL's current schema
	InTransaction bool
	// Variables names the MySQL user variables the operation reads
	// ("@amount, @id"), and VariableValues holds their values when it was
	// decided (the engine's encoding): both are bound into the digest, so
	// an approval does not carry over to the same text after SET @amount
	// changed what it does. The values are not shown or recorded: a
	// variable may hold a value masking keeps from the client.
	Variables      string
	VariableValues []byte
}

// Param is one bound parameter of a prepared statement.
type Param struct {
	Format int16 // 0 text, 1 binary
	Type   uint32
	Null   bool
	Value  []byte
}

// Operation is one request inside a session. Text and Params are owned by
// the Operation (the engine copies them out of its read buffers).
type Operation struct {
	Text   string
	Params []Param
	State  State
	Class  sqlkind.Classification

	// The engine fills these from the statement's lineage before Decide
	// (for PostgreSQL: pgmask.Annotate); zero values mean "nothing used as
	// a filter" and must only be left so when the statement was analyzed.
	//
	// FilterUses are the table columns the statement uses other than as
	// output (WHERE, JOIN, GROUP BY, ORDER BY, CASE conditions, the data of
	// a write): a `filter: deny` masking rule refuses them.
	FilterUses []mask.Source
	// FilterUnresolved is set when some such use could not be traced; with
	// a filter:deny rule on the resource the operation is refused.
	FilterUnresolved bool
	// Unmaskable says why the operation's results could not be masked (a
	// binary COPY under an active masking rule); non-empty refuses the
	// operation unless an unmask grant covers it.
	Unmaskable string

	// seq orders the session's decisions, so that Done can tell what was
	// decided before an outcome (txgrant.go); 0: never decided.
	seq uint64
}

// Verdict is the guard's answer. The zero Verdict denies.
type Verdict struct {
	Decision Decision
	// Code is a stable machine name for the reason ("access_denied",
	// "approval_required", "approval_rejected", "recording_failed", ...).
	Code string
	// Message tells the person what happened and what to do.
	Message  string
	ReviewID string
	GrantID  string
	// Wait, set when Decision is Hold, blocks until the review is decided,
	// ctx ends or the wait times out, and returns the final verdict
	// (Allow or Deny). Notice is what the client is told while it waits
	// (Hold), or before an allowed operation runs (break-glass).
	Wait   func(ctx context.Context) Verdict `json:"-"`
	Notice string
	// Digest is the operation's keyed digest (invariant 4).
	Digest []byte
	// Unmask is set on an allowed operation when an active unmask grant
	// (UnmaskGrantID) covers the identity and resource: its results are
	// not masked, and the engine records the operation as "unmasked".
	Unmask        bool
	UnmaskGrantID string
}

// Guard decides operations. Implementations must be safe for concurrent use.
type Guard interface {
	// Connect decides whether the identity may open a session on the resource.
	Connect(ctx context.Context, s *Session) Verdict
	// Decide decides one operation of the session.
	Decide(ctx context.Context, s *Session, op *Operation) Verdict
	// Done tells the guard how an allowed operation ended, so an approval is
	// consumed when its transaction commits and restored when it rolls back,
	// and a transaction holding writes under a grant that ended is refused
	// until it rolls back. An engine that withdraws an operation allowed
	// under a grant calls it with Outcome.Withdrawn.
	Done(ctx context.Context, s *Session, op *Operation, v Verdict, outcome Outcome)
}

// Outcome is how an operation ended upstream.
type Outcome struct {
	CommandTag string
	Rows       int64
	ErrorCode  string // SQLSTATE or the dialect's error number; "" on success
	Committed  bool   // the operation's effects are committed (autocommit or COMMIT)
	RolledBack bool
	// Withdrawn says the engine refused the operation after the guard had
	// allowed it (its grant ended before it ran, its recording failed):
	// nothing of it reached the upstream. The other fields are empty.
	Withdrawn bool
}
