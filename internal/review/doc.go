// Package review is the review lifecycle and the one place segregation of
// duties is enforced (DESIGN.md invariant 3). Every way to approve or
// reject (API, CLI, web, chat webhook) calls Service.Approve or
// Service.Reject; there is no other path to a decision and no admin
// exemption.
//
// A vote is refused when: the review is expired or already decided; the
// voter may be the initiator (identity.MaybeSame: the same issuer and
// subject; the same email, compared in Unicode compatibility form and case
// folded, where either side's is verified; or an operator-minted identity
// named after the other's subject or email); the voter is not both an
// approver and a member of one of the resource's approver groups, roles
// being the voter's groups mapped through the role table the gateway runs
// with (not the one of when the token was issued); the token used is not
// an API token (a resource token is only a database password); where OIDC
// is configured, the voter's login is older than identity.approve_max_age,
// or the voter is a minted or service identity and
// identity.local.may_approve is off; the same person already voted
// (identity.MaybeSame again; one identity counts once, enforced by UNIQUE
// constraints in the store on the identity key and on the verified email,
// kept in its canonical form, so concurrent votes cannot count twice). Any
// rejection rejects; N distinct approvals approve.
//
// Every clock is the store's (Store.Now), so replicas agree. Every
// transition is a conditional UPDATE in the store: a decision on an expired
// review, a second decision, or two sessions consuming one approval cannot
// both succeed. Waiters are woken by a Notifier (in-process now; PostgreSQL
// LISTEN/NOTIFY across replicas later), never by polling.
//
// Every refusal has one kind a surface branches on with errors.Is
// (ErrRefused, ErrConflict, ErrInvalid, ErrUnavailable, ErrNotFound); its
// message says what to do. WatchGrant tells the guard when a grant ends
// (on time or revoked, on any replica), so live sessions can be cut; an
// Estimator, supplied by the engine that knows the upstream, guesses the
// rows an operation would change without running it.
//
// It fails closed: a store or recording error refuses the vote, the
// creation, or the consumption it was deciding.
package review
