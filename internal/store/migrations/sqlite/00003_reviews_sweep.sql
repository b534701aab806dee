-- +goose Up
-- The sweeper (review.Service.Sweep) looks for pending reviews past their
-- expiry and approved reviews and grants past their validity; these keep
-- that look-up from scanning every review ever made.
CREATE INDEX reviews_due_pending ON reviews (expires_at) WHERE status = 'pending';
CREATE INDEX reviews_due_approved ON reviews (valid_until) WHERE status = 'approved';

-- +goose Down
DROP INDEX reviews_due_approved;
DROP INDEX reviews_due_pending;
