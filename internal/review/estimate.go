package review

import "context"

// Estimator guesses how many rows the statement of an operation review
// would change, without running it: `reviews show` displays the guess so
// approvers see what they approve. It lives with the engine that knows the
// upstream (PostgreSQL's EXPLAIN without ANALYZE); this package and the API
// only see this interface.
//
// It must never execute anything: an implementation explains only what it
// can prove the planner cannot run code for, and answers with why not
// otherwise.
type Estimator interface {
	// EstimateRows returns the estimated rows and ok, or ok false and why
	// there is no estimate (a sentence for the approver).
	EstimateRows(ctx context.Context, r Review) (rows int64, ok bool, why string)
}
