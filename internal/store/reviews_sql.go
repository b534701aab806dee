package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// reviewSQL implements review.Store over database/sql for both dialects.
// Times are stored as unix microseconds (BIGINT) so that both engines
// compare them the same way; the times compared are always the store's
// clock as read by the caller (Store.Now). Every transition is one
// conditional statement, so of two racing callers exactly one wins.
type reviewSQL struct {
	w, r     *sql.DB // writes, reads (the same pool for PostgreSQL)
	postgres bool    // placeholders $n instead of ?
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// q rewrites ? placeholders to $n for PostgreSQL. The statements here hold
// no ? inside string literals.
func (s *reviewSQL) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

const reviewColumns = `id, type, resource, dialect, initiator_key, initiator_issuer, initiator_subject,
 initiator_email, initiator_email_verified, initiator_name, initiator_source, session_id, kind,
 access, duration_us, text, digest, state, params, objects, reason, status, approvers, required,
 created_at, expires_at, decided_at, valid_until, valid_for_us, consumed_at, consumed_by, revoked_at, revoked_by`

// CreateReview implements review.Store.
func (s *reviewSQL) CreateReview(ctx context.Context, r review.Review) error {
	in := r.Initiator
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO reviews (`+reviewColumns+`)
 VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`),
		r.ID, string(r.Type), r.Resource, r.Dialect, in.Key(), in.Issuer, in.Subject,
		in.Email, b2i(in.EmailVerified), in.Name, string(in.Source), r.SessionID, r.Kind.String(),
		jsonText(r.Access), int64(r.Duration/time.Microsecond), r.Text, r.Digest, jsonText(r.State),
		jsonText(r.Params), jsonText(r.Objects), r.Reason, string(r.Status), jsonText(r.Approvers), r.Required,
		micros(r.CreatedAt), micros(r.ExpiresAt), micros(r.DecidedAt), micros(r.ValidUntil),
		int64(r.ValidFor/time.Microsecond), micros(r.ConsumedAt), r.ConsumedBy, micros(r.RevokedAt), r.RevokedBy)
	if err != nil {
		return fmt.Errorf("create review %s: %w", r.ID, err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanReview(sc rowScanner) (review.Review, error) {
	var r review.Review
	var typ, kind, source, status, access, state, params, objects, approvers string
	var verified int
	var durUS, validForUS, created, expires, decided, validUntil, consumed, revoked int64
	var key string
	err := sc.Scan(&r.ID, &typ, &r.Resource, &r.Dialect, &key, &r.Initiator.Issuer, &r.Initiator.Subject,
		&r.Initiator.Email, &verified, &r.Initiator.Name, &source, &r.SessionID, &kind,
		&access, &durUS, &r.Text, &r.Digest, &state, &params, &objects, &r.Reason, &status, &approvers, &r.Required,
		&created, &expires, &decided, &validUntil, &validForUS, &consumed, &r.ConsumedBy, &revoked, &r.RevokedBy)
	if err != nil {
		return r, err
	}
	r.Type, r.Status, r.Initiator.Source = review.Type(typ), review.Status(status), identity.Source(source)
	r.Initiator.EmailVerified = verified != 0
	if r.Kind, _ = sqlkind.ParseKind(kind); kind == "" {
		r.Kind = sqlkind.Unknown
	}
	r.Duration, r.ValidFor = time.Duration(durUS)*time.Microsecond, time.Duration(validForUS)*time.Microsecond
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = fromMicros(created), fromMicros(expires), fromMicros(decided)
	r.ValidUntil, r.ConsumedAt, r.RevokedAt = fromMicros(validUntil), fromMicros(consumed), fromMicros(revoked)
	for _, f := range []struct {
		src string
		dst any
	}{{access, &r.Access}, {state, &r.State}, {params, &r.Params}, {objects, &r.Objects}, {approvers, &r.Approvers}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return r, fmt.Errorf("review %s: corrupt column: %w", r.ID, err)
		}
	}
	return r, nil
}

// Review implements review.Store.
func (s *reviewSQL) Review(ctx context.Context, id string) (review.Review, error) {
	r, err := scanReview(s.r.QueryRowContext(ctx, s.q(`SELECT `+reviewColumns+` FROM reviews WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, review.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read review %s: %w", id, err)
	}
	r.Votes, err = s.votes(ctx, id)
	return r, err
}

func (s *reviewSQL) votes(ctx context.Context, id string) ([]review.Vote, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT voter_issuer, voter_subject, voter_email, voter_email_verified,
 voter_name, voter_source, approve, via, comment, at FROM review_votes WHERE review_id = ? ORDER BY at, voter_key`), id)
	if err != nil {
		return nil, fmt.Errorf("read votes of %s: %w", id, err)
	}
	defer rows.Close()
	var out []review.Vote
	for rows.Next() {
		v := review.Vote{ReviewID: id}
		var verified, approve int
		var source string
		var at int64
		if err := rows.Scan(&v.Voter.Issuer, &v.Voter.Subject, &v.Voter.Email, &verified,
			&v.Voter.Name, &source, &approve, &v.Via, &v.Comment, &at); err != nil {
			return nil, fmt.Errorf("read votes of %s: %w", id, err)
		}
		v.Voter.EmailVerified, v.Approve, v.Voter.Source, v.At = verified != 0, approve != 0, identity.Source(source), fromMicros(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// ListReviews implements review.Store.
func (s *reviewSQL) ListReviews(ctx context.Context, f review.Filter) ([]review.Review, error) {
	query := `SELECT ` + reviewColumns + ` FROM reviews WHERE 1 = 1`
	var args []any
	for _, c := range []struct{ col, val string }{
		{"resource", f.Resource}, {"type", string(f.Type)}, {"status", string(f.Status)}, {"initiator_key", f.InitiatorKey},
	} {
		if c.val != "" {
			query += " AND " + c.col + " = ?"
			args = append(args, c.val)
		}
	}
	query += " ORDER BY created_at DESC, id"
	if f.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	var out []review.Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list reviews: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	for i := range out {
		if out[i].Votes, err = s.votes(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddVote implements review.Store. The UNIQUE constraints on (review,
// voter key) and (review, verified email) make a second vote of one person
// fail however many race.
func (s *reviewSQL) AddVote(ctx context.Context, v review.Vote, now time.Time) (bool, error) {
	email := ""
	if v.Voter.EmailVerified {
		email = strings.ToLower(v.Voter.Email)
	}
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO review_votes (review_id, voter_key, voter_issuer, voter_subject,
 voter_email, voter_email_verified, voter_name, voter_source, verified_email, approve, via, comment, at)
 SELECT id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT),
 CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT)
 FROM reviews WHERE id = ? AND status = 'pending' AND expires_at > ?`),
		v.Voter.Key(), v.Voter.Issuer, v.Voter.Subject, v.Voter.Email, b2i(v.Voter.EmailVerified), v.Voter.Name,
		string(v.Voter.Source), email, b2i(v.Approve), v.Via, v.Comment, micros(now), v.ReviewID, micros(now))
	if err != nil {
		if isUniqueViolation(err) {
			return false, review.ErrDuplicate
		}
		return false, fmt.Errorf("add vote to %s: %w", v.ReviewID, err)
	}
	return affected(res)
}

// isUniqueViolation recognises both engines' unique-constraint errors
// without importing their driver types.
func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // SQLite
		strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value") // PostgreSQL
}

func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// DecideReview implements review.Store. An approval also needs, in the
// same statement, enough approving votes, so a stale count cannot approve.
func (s *reviewSQL) DecideReview(ctx context.Context, id string, status review.Status, now, validUntil time.Time) (bool, error) {
	query := `UPDATE reviews SET status = ?, decided_at = ?, valid_until = ?
 WHERE id = ? AND status = 'pending' AND expires_at > ?`
	args := []any{string(status), micros(now), micros(validUntil), id, micros(now)}
	switch status {
	case review.StatusApproved:
		query += ` AND required <= (SELECT COUNT(*) FROM review_votes WHERE review_id = ? AND approve = 1)`
		args = append(args, id)
	case review.StatusRejected:
	default:
		return false, fmt.Errorf("decide review %s: %q is not a decision", id, status)
	}
	res, err := s.w.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return false, fmt.Errorf("decide review %s: %w", id, err)
	}
	return affected(res)
}

// ApprovedFor implements review.Store.
func (s *reviewSQL) ApprovedFor(ctx context.Context, resource, initiatorKey string, digest []byte, now time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM reviews WHERE resource = ? AND initiator_key = ?
 AND digest = ? AND type = 'operation' AND status = 'approved' AND valid_until > ? ORDER BY created_at, id`),
		resource, initiatorKey, digest, micros(now))
	if err != nil {
		return nil, fmt.Errorf("find approved reviews: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find approved reviews: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ConsumeReview implements review.Store: one conditional UPDATE, so two
// sessions racing for one approval cannot both have it.
func (s *reviewSQL) ConsumeReview(ctx context.Context, id, initiatorKey, session string, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE reviews SET status = 'consumed', consumed_at = ?, consumed_by = ?
 WHERE id = ? AND initiator_key = ? AND type = 'operation' AND status = 'approved' AND valid_until > ?`),
		micros(now), session, id, initiatorKey, micros(now))
	if err != nil {
		return false, fmt.Errorf("consume review %s: %w", id, err)
	}
	return affected(res)
}

// RestoreReview implements review.Store.
func (s *reviewSQL) RestoreReview(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE reviews SET status = 'approved', consumed_at = 0, consumed_by = ''
 WHERE id = ? AND status = 'consumed' AND valid_until > ?`), id, micros(now))
	if err != nil {
		return false, fmt.Errorf("restore review %s: %w", id, err)
	}
	return affected(res)
}

// ActiveGrants implements review.Store.
func (s *reviewSQL) ActiveGrants(ctx context.Context, resource, initiatorKey string, now time.Time) ([]review.Review, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+reviewColumns+` FROM reviews WHERE resource = ?
 AND initiator_key = ? AND type = 'grant' AND status = 'approved' AND valid_until > ? ORDER BY created_at, id`),
		resource, initiatorKey, micros(now))
	if err != nil {
		return nil, fmt.Errorf("active grants: %w", err)
	}
	defer rows.Close()
	var out []review.Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, fmt.Errorf("active grants: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RevokeGrant implements review.Store.
func (s *reviewSQL) RevokeGrant(ctx context.Context, id, by string, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE reviews SET status = 'revoked', revoked_at = ?, revoked_by = ?
 WHERE id = ? AND type = 'grant' AND status = 'approved' AND valid_until > ?`), micros(now), by, id, micros(now))
	if err != nil {
		return false, fmt.Errorf("revoke grant %s: %w", id, err)
	}
	return affected(res)
}
