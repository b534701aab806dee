package store

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// The review store of SQLite: writes on the single writer connection (so
// conditional UPDATEs are serialised), reads on the WAL readers.

var _ review.Store = (*SQLite)(nil)

func (s *SQLite) reviews() *reviewSQL { return &reviewSQL{w: s.w, r: s.r} }

// CreateReview implements review.Store.
func (s *SQLite) CreateReview(ctx context.Context, r review.Review) error {
	return s.reviews().CreateReview(ctx, r)
}

// Review implements review.Store.
func (s *SQLite) Review(ctx context.Context, id string) (review.Review, error) {
	return s.reviews().Review(ctx, id)
}

// ListReviews implements review.Store.
func (s *SQLite) ListReviews(ctx context.Context, f review.Filter) ([]review.Review, error) {
	return s.reviews().ListReviews(ctx, f)
}

// AddVote implements review.Store.
func (s *SQLite) AddVote(ctx context.Context, v review.Vote, now time.Time) (bool, error) {
	return s.reviews().AddVote(ctx, v, now)
}

// DecideReview implements review.Store.
func (s *SQLite) DecideReview(ctx context.Context, id string, status review.Status, now, validUntil time.Time) (bool, error) {
	return s.reviews().DecideReview(ctx, id, status, now, validUntil)
}

// ApprovedFor implements review.Store.
func (s *SQLite) ApprovedFor(ctx context.Context, resource, initiatorKey string, digest []byte, now time.Time) ([]string, error) {
	return s.reviews().ApprovedFor(ctx, resource, initiatorKey, digest, now)
}

// ConsumeReview implements review.Store.
func (s *SQLite) ConsumeReview(ctx context.Context, id, initiatorKey, session string, now time.Time) (bool, error) {
	return s.reviews().ConsumeReview(ctx, id, initiatorKey, session, now)
}

// RestoreReview implements review.Store.
func (s *SQLite) RestoreReview(ctx context.Context, id string, now time.Time) (bool, error) {
	return s.reviews().RestoreReview(ctx, id, now)
}

// ActiveGrants implements review.Store.
func (s *SQLite) ActiveGrants(ctx context.Context, resource, initiatorKey string, now time.Time) ([]review.Review, error) {
	return s.reviews().ActiveGrants(ctx, resource, initiatorKey, now)
}

// RevokeGrant implements review.Store.
func (s *SQLite) RevokeGrant(ctx context.Context, id, by string, now time.Time) (bool, error) {
	return s.reviews().RevokeGrant(ctx, id, by, now)
}
