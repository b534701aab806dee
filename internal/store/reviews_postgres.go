package store

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// The review store of PostgreSQL: every transition is one conditional
// UPDATE (or INSERT ... SELECT), which PostgreSQL re-checks on the newest row
// version after a concurrent writer commits, so races have one winner.

var _ review.Store = (*Postgres)(nil)

func (p *Postgres) reviews() *reviewSQL { return &reviewSQL{w: p.db, r: p.db, postgres: true} }

// CreateReview implements review.Store.
func (p *Postgres) CreateReview(ctx context.Context, r review.Review) error {
	return p.reviews().CreateReview(ctx, r)
}

// Review implements review.Store.
func (p *Postgres) Review(ctx context.Context, id string) (review.Review, error) {
	return p.reviews().Review(ctx, id)
}

// ListReviews implements review.Store.
func (p *Postgres) ListReviews(ctx context.Context, f review.Filter) ([]review.Review, error) {
	return p.reviews().ListReviews(ctx, f)
}

// AddVote implements review.Store.
func (p *Postgres) AddVote(ctx context.Context, v review.Vote, now time.Time) (bool, error) {
	return p.reviews().AddVote(ctx, v, now)
}

// DecideReview implements review.Store.
func (p *Postgres) DecideReview(ctx context.Context, id string, status review.Status, now, validUntil time.Time) (bool, error) {
	return p.reviews().DecideReview(ctx, id, status, now, validUntil)
}

// ApprovedFor implements review.Store.
func (p *Postgres) ApprovedFor(ctx context.Context, resource, initiatorKey string, digest []byte, now time.Time) ([]string, error) {
	return p.reviews().ApprovedFor(ctx, resource, initiatorKey, digest, now)
}

// ConsumeReview implements review.Store.
func (p *Postgres) ConsumeReview(ctx context.Context, id, initiatorKey, session string, now time.Time) (bool, error) {
	return p.reviews().ConsumeReview(ctx, id, initiatorKey, session, now)
}

// RestoreReview implements review.Store.
func (p *Postgres) RestoreReview(ctx context.Context, id string, now time.Time) (bool, error) {
	return p.reviews().RestoreReview(ctx, id, now)
}

// ActiveGrants implements review.Store.
func (p *Postgres) ActiveGrants(ctx context.Context, resource, initiatorKey string, now time.Time) ([]review.Review, error) {
	return p.reviews().ActiveGrants(ctx, resource, initiatorKey, now)
}

// RevokeGrant implements review.Store.
func (p *Postgres) RevokeGrant(ctx context.Context, id, by string, now time.Time) (bool, error) {
	return p.reviews().RevokeGrant(ctx, id, by, now)
}
