package review

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Errors a Store returns; callers test them with errors.Is.
var (
	// ErrNotFound: no review has the id.
	ErrNotFound = errors.New("review not found")
	// ErrDuplicate: this person already voted on the review.
	ErrDuplicate = errors.New("already voted on this review")
)

// Type says what a review covers.
type Type string

const (
	// TypeOperation covers one exact operation (its digest), once.
	TypeOperation Type = "operation"
	// TypeGrant opens accesses (kinds or unmask) for a while.
	TypeGrant Type = "grant"
	// TypeBreakglass is the retrospective review of a break-glass
	// operation; an approver other than the initiator acknowledges it.
	TypeBreakglass Type = "breakglass"
)

// Status is where a review stands. Expiry is judged against the store's
// clock when a review is read (Effective); the sweeper also stores it
// (Service.Sweep), so a review reads expired before and after the sweep.
type Status string

const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusRejected Status = "rejected"
	StatusExpired  Status = "expired"
	// StatusConsumed: an operation review claimed by the operation it
	// covers (final once the transaction commits; Restore undoes it on
	// rollback).
	StatusConsumed Status = "consumed"
	// StatusRevoked: a grant ended early.
	StatusRevoked Status = "revoked"
)

// SessionState is the session state bound into an operation review's
// digest, kept so approvers see it (`reviews show`).
type SessionState struct {
	SearchPath    string `json:"search_path,omitempty"`
	Role          string `json:"role,omitempty"`
	Schema        string `json:"schema,omitempty"`
	InTransaction bool   `json:"in_transaction,omitempty"`
	// Variables names the MySQL user variables the statement reads; their
	// values are bound into the digest, not kept (guard.State).
	Variables string `json:"variables,omitempty"`
}

// Param is one bound parameter of the reviewed operation.
type Param struct {
	Format int16  `json:"format"`
	Type   uint32 `json:"type"`
	Null   bool   `json:"null,omitempty"`
	Value  []byte `json:"value,omitempty"`
}

// Review is one request for approval.
type Review struct {
	ID        string
	Type      Type
	Resource  string
	Dialect   string
	Initiator identity.Identity // Issuer, Subject, Email, EmailVerified, Name
	SessionID string            // the session that created it, if any
	// Kind is the operation's kind (operation and break-glass reviews).
	Kind sqlkind.Kind
	// Access and Duration describe a grant review.
	Access   []string
	Duration time.Duration
	Text     string
	Digest   []byte
	State    SessionState
	Params   []Param
	Objects  []string
	Reason   string
	// Status as stored; Effective judges expiry.
	Status Status
	// Approvers are the resource's approver groups and Required the
	// approvals needed, both as of creation.
	Approvers []string
	Required  int
	CreatedAt time.Time
	// ExpiresAt ends a pending review.
	ExpiresAt time.Time
	DecidedAt time.Time
	// ValidUntil ends an approved operation review's use, or a grant.
	ValidUntil time.Time
	// ValidFor is how long an approval stays usable (operation reviews).
	ValidFor   time.Duration
	ConsumedAt time.Time
	ConsumedBy string // session id
	RevokedAt  time.Time
	RevokedBy  string
	Votes      []Vote
}

// Vote is one approval or rejection.
type Vote struct {
	ReviewID string
	Voter    identity.Identity // Issuer, Subject, Email, EmailVerified, Name
	Approve  bool              // false: a rejection
	Via      string            // api, cli, web, webhook
	Comment  string
	At       time.Time
}

// Effective is the status judged at now (store time): a pending review past
// ExpiresAt, or an approved operation review or grant past ValidUntil, is
// expired.
func (r Review) Effective(now time.Time) Status {
	switch {
	case r.Status == StatusPending && !now.Before(r.ExpiresAt):
		return StatusExpired
	case r.Status == StatusApproved && !r.ValidUntil.IsZero() && !now.Before(r.ValidUntil):
		return StatusExpired
	}
	return r.Status
}

// Approvals counts the people who approved: a vote whose voter may be the
// initiator, or someone who approved before it (identity.MaybeSame), does
// not count. Votes are checked that way before they are stored, but two
// votes of one person under two identities that race each other can both
// be stored where the store's constraints cannot tell them apart (an email
// verified on one side only, an identity the operator named after the
// person); counting people here keeps them from deciding the review.
func (r Review) Approvals() int {
	var counted []identity.Identity
	for _, v := range r.Votes {
		if !v.Approve || v.Voter.MaybeSame(r.Initiator) ||
			slices.ContainsFunc(counted, v.Voter.MaybeSame) {
			continue
		}
		counted = append(counted, v.Voter)
	}
	return len(counted)
}

// Filter narrows List. Zero fields do not filter.
type Filter struct {
	Resource     string
	Type         Type
	Status       Status // judged with Effective, so "pending" excludes expired
	InitiatorKey string // issuer|subject
	Limit        int
}

// Store is what the review service needs persisted. store.SQLite and
// store.Postgres implement it; the storetest suite proves both. Every
// transition takes now, the store's clock as read by the caller, and is
// conditional, so a race has exactly one winner.
type Store interface {
	Now(ctx context.Context) (time.Time, error)
	// CreateReview stores a new review (its Votes are ignored).
	CreateReview(ctx context.Context, r Review) error
	// Review returns the review with its votes, oldest first; ErrNotFound.
	Review(ctx context.Context, id string) (Review, error)
	// ListReviews lists reviews newest first; Filter.Status is matched
	// against the stored status (the service judges expiry).
	ListReviews(ctx context.Context, f Filter) ([]Review, error)
	// AddVote stores the vote if the review is pending and now is before
	// its ExpiresAt; it reports false otherwise. A second vote by the same
	// identity key, or by the same verified email, is ErrDuplicate.
	AddVote(ctx context.Context, v Vote, now time.Time) (bool, error)
	// DecideReview moves a pending, unexpired review to status (approved or
	// rejected), setting DecidedAt = now and ValidUntil; it reports
	// whether it did.
	DecideReview(ctx context.Context, id string, status Status, now, validUntil time.Time) (bool, error)
	// ApprovedFor lists the ids of approved operation reviews, still valid
	// at now, of the resource, initiator key and digest, oldest first.
	ApprovedFor(ctx context.Context, resource, initiatorKey string, digest []byte, now time.Time) ([]string, error)
	// ConsumeReview moves one approved operation review of the initiator,
	// valid at now, to consumed by the session; it reports whether it did.
	ConsumeReview(ctx context.Context, id, initiatorKey, session string, now time.Time) (bool, error)
	// RestoreReview moves a consumed review back to approved if it is still
	// valid at now; it reports whether it did.
	RestoreReview(ctx context.Context, id string, now time.Time) (bool, error)
	// ActiveGrants lists the approved grants of the resource and initiator
	// key, not revoked and valid at now.
	ActiveGrants(ctx context.Context, resource, initiatorKey string, now time.Time) ([]Review, error)
	// RevokeGrant moves an approved grant, valid at now, to revoked.
	RevokeGrant(ctx context.Context, id, by string, now time.Time) (bool, error)
	// DueReviews lists at most limit reviews (with votes) whose time ran
	// out at now: pending ones at or past ExpiresAt, approved operation
	// reviews and grants at or past ValidUntil. The sweeper expires them.
	DueReviews(ctx context.Context, now time.Time, limit int) ([]Review, error)
	// ExpireReview moves the review from status from (pending or approved)
	// to expired if its time ran out at now; it reports whether this call
	// did, so of several replicas sweeping at once exactly one records it.
	ExpireReview(ctx context.Context, id string, from Status, now time.Time) (bool, error)
}
