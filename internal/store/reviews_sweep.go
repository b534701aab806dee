package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// The sweeper's half of review.Store: finding reviews whose time ran out
// and moving each to expired exactly once. Several replicas sweep the same
// store at once; ExpireReview is one conditional UPDATE, so for each review
// exactly one of them wins and records the event.

// DueReviews implements review.Store.
func (s *reviewSQL) DueReviews(ctx context.Context, now time.Time, limit int) ([]review.Review, error) {
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT ` + reviewColumns + ` FROM reviews WHERE status = 'pending' AND expires_at <= ?
 UNION ALL SELECT ` + reviewColumns + ` FROM reviews WHERE status = 'approved' AND valid_until > 0 AND valid_until <= ?
 ORDER BY id LIMIT ` + strconv.Itoa(limit)
	rows, err := s.r.QueryContext(ctx, s.q(query), micros(now), micros(now))
	if err != nil {
		return nil, fmt.Errorf("find reviews due a sweep: %w", err)
	}
	var out []review.Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("find reviews due a sweep: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find reviews due a sweep: %w", err)
	}
	for i := range out {
		if out[i].Votes, err = s.votes(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ExpireReview implements review.Store.
func (s *reviewSQL) ExpireReview(ctx context.Context, id string, from review.Status, now time.Time) (bool, error) {
	var cond string
	switch from {
	case review.StatusPending:
		cond = `status = 'pending' AND expires_at <= ?`
	case review.StatusApproved:
		cond = `status = 'approved' AND valid_until > 0 AND valid_until <= ?`
	default:
		return false, fmt.Errorf("expire review %s: a %q review cannot expire", id, from)
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE reviews SET status = 'expired' WHERE id = ? AND `+cond), id, micros(now))
	if err != nil {
		return false, fmt.Errorf("expire review %s: %w", id, err)
	}
	return affected(res)
}

// DueReviews implements review.Store.
func (s *SQLite) DueReviews(ctx context.Context, now time.Time, limit int) ([]review.Review, error) {
	return s.reviews().DueReviews(ctx, now, limit)
}

// ExpireReview implements review.Store.
func (s *SQLite) ExpireReview(ctx context.Context, id string, from review.Status, now time.Time) (bool, error) {
	return s.reviews().ExpireReview(ctx, id, from, now)
}

// DueReviews implements review.Store.
func (p *Postgres) DueReviews(ctx context.Context, now time.Time, limit int) ([]review.Review, error) {
	return p.reviews().DueReviews(ctx, now, limit)
}

// ExpireReview implements review.Store.
func (p *Postgres) ExpireReview(ctx context.Context, id string, from review.Status, now time.Time) (bool, error) {
	return p.reviews().ExpireReview(ctx, id, from, now)
}
