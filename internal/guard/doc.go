// Package guard decides: it joins the session's identity, the resource's
// policy, reviews and grants into one Verdict per operation (Decide), and
// tells reviews how an allowed operation ended (Done).
//
// The order inside Decide: compute the operation digest (invariant 4);
// on a resource with masking rules, look up an active unmask grant of the
// identity and, without one, refuse ("masked_filter") an operation that
// uses a `filter: deny` column other than as output (Operation.FilterUses),
// whose filter uses could not be traced while a filter: deny rule applies
// (FilterUnresolved), or whose results cannot be masked (Unmaskable); an
// allowed operation under an unmask grant carries Verdict.Unmask; then allow a kind the policy does not review; else use an approved, unconsumed
// review of this exact digest and initiator (consumed atomically); else an
// active grant covering the kind; else break-glass (a leading
// `/* breakglass: reason */` comment from an identity allowed to), recorded
// loudly with a retrospective review; else create a review and hold (mode
// wait) or refuse with its id (mode reject). Kind unknown is the most
// dangerous kind and is never covered by a grant.
//
// It fails closed: the zero Verdict denies, and any store or recording
// error, an unconfigured resource or a missing digest key denies with a
// message that says so. A consumed approval is final when its transaction
// commits and restored when it rolls back; one whose outcome never arrives
// stays consumed.
//
// Time is enforced (invariant 7): every operation under a grant registers
// its session with a watch of that grant (review.Service.WatchGrant); when
// the grant runs out or is revoked, each such live session's Interrupt is
// called (the engine cancels what runs upstream) and its GrantEnds count
// moves, so an operation decided just before the end is withdrawn before
// it starts. The next operation asks for an active grant again and is
// refused. A transaction that holds writes made under the grant must not
// commit them after its end (txgrant.go): every later operation of it but
// a full ROLLBACK is refused ("grant_ended_in_transaction"), checked also
// at the store's clock so the refusal does not wait for the watch.
package guard
