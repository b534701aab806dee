package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/jackc/pgx/v5"
)

// UpsertIdentity records the identity as last seen; last_login is the
// database's clock.
func (p *Postgres) UpsertIdentity(ctx context.Context, id identity.Identity) error {
	groups, err := encodeList(id.Groups)
	if err != nil {
		return err
	}
	roles, err := encodeList(id.Roles)
	if err != nil {
		return err
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO identities
		(issuer, subject, email, email_verified, name, groups, roles, source, auth_time, last_login)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp())
		ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email,
		email_verified = excluded.email_verified, name = excluded.name, groups = excluded.groups,
		roles = excluded.roles, source = excluded.source, auth_time = excluded.auth_time,
		last_login = excluded.last_login`,
		id.Issuer, id.Subject, id.Email, id.EmailVerified, id.Name, string(groups), string(roles),
		string(id.Source), nullTime(id.AuthTime))
	if err != nil {
		return fmt.Errorf("store: recording identity %s: %w", id.Key(), err)
	}
	return nil
}

// Identity returns the identity as last recorded by UpsertIdentity, and
// when that was; ErrNotFound if it never was.
func (p *Postgres) Identity(ctx context.Context, issuer, subject string) (identity.Identity, time.Time, error) {
	var (
		id            identity.Identity
		groups, roles []byte
		auth          *time.Time
		lastSeen      time.Time
	)
	err := p.pool.QueryRow(ctx, `SELECT issuer, subject, email, email_verified, name, groups, roles,
		source, auth_time, last_login FROM identities WHERE issuer = $1 AND subject = $2`, issuer, subject).
		Scan(&id.Issuer, &id.Subject, &id.Email, &id.EmailVerified, &id.Name, &groups, &roles,
			&id.Source, &auth, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, time.Time{}, fmt.Errorf("store: identity %s|%s: %w", issuer, subject, ErrNotFound)
	}
	if err != nil {
		return id, time.Time{}, fmt.Errorf("store: reading identity: %w", err)
	}
	if id.Groups, err = decodeList[string](groups, "groups"); err != nil {
		return id, time.Time{}, err
	}
	if id.Roles, err = decodeList[identity.Role](roles, "roles"); err != nil {
		return id, time.Time{}, err
	}
	if auth != nil {
		id.AuthTime = auth.UTC()
	}
	return id, lastSeen.UTC(), nil
}

// CreateToken stores the token's hash and metadata; an existing id or hash
// is ErrDuplicate.
func (p *Postgres) CreateToken(ctx context.Context, t identity.Token) error {
	row, err := tokenRow(t)
	if err != nil {
		return err
	}
	var revoked *time.Time
	if t.RevokedAt != nil {
		revoked = t.RevokedAt
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO tokens
		(id, hash, issuer, subject, identity, scopes, created_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.Hash, t.Identity.Issuer, t.Identity.Subject, string(row.identity), string(row.scopes),
		t.CreatedAt, t.ExpiresAt, revoked)
	if err != nil {
		return pgDuplicate(err, "storing token "+t.ID)
	}
	return nil
}

const pgTokenColumns = `id, hash, identity, scopes, created_at, expires_at, revoked_at`

// TokenByHash returns the token with the hash, revoked or expired ones too.
func (p *Postgres) TokenByHash(ctx context.Context, hash []byte) (identity.Token, error) {
	t, err := scanPGToken(p.pool.QueryRow(ctx, `SELECT `+pgTokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	return t, err
}

// ListTokens lists tokens newest first, of one issuer/subject when set.
func (p *Postgres) ListTokens(ctx context.Context, f TokenFilter) ([]identity.Token, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+pgTokenColumns+` FROM tokens
		WHERE ($1 = '' OR issuer = $1) AND ($2 = '' OR subject = $2)
		ORDER BY created_at DESC, id DESC`, f.Issuer, f.Subject)
	if err != nil {
		return nil, fmt.Errorf("store: listing tokens: %w", err)
	}
	defer rows.Close()
	var out []identity.Token
	for rows.Next() {
		t, err := scanPGToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing tokens: %w", err)
	}
	return out, nil
}

func scanPGToken(row pgx.Row) (identity.Token, error) {
	var (
		t                identity.Token
		ident, scopes    []byte
		created, expires time.Time
		revoked          *time.Time
	)
	if err := row.Scan(&t.ID, &t.Hash, &ident, &scopes, &created, &expires, &revoked); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return t, err
		}
		return t, fmt.Errorf("store: reading token: %w", err)
	}
	var r time.Time
	if revoked != nil {
		r = revoked.UTC()
	}
	return finishToken(t, ident, scopes, created.UTC(), expires.UTC(), revoked != nil, r)
}

// RevokeToken sets revoked_at to the database's clock. Revoking a revoked
// token keeps the first revocation time.
func (p *Postgres) RevokeToken(ctx context.Context, id string) error {
	tag, err := p.pool.Exec(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, clock_timestamp())
		WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: revoking token %q: %w", id, err)
	}
	return revoked(rowsAffected(tag.RowsAffected()), id)
}

type rowsAffected int64

func (n rowsAffected) RowsAffected() (int64, error) { return int64(n), nil }

// AddAdminEvent records an administrative action; a zero Time is the
// database's clock.
func (p *Postgres) AddAdminEvent(ctx context.Context, e AdminEvent) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO admin_events (time, actor, action, detail)
		VALUES (COALESCE($1, clock_timestamp()), $2, $3, $4)`, nullTime(e.Time), e.Actor, e.Action, e.Detail)
	if err != nil {
		return fmt.Errorf("store: recording admin event %s: %w", e.Action, err)
	}
	return nil
}

// AdminEvents lists administrative actions newest first, at most limit
// (0 = all).
func (p *Postgres) AdminEvents(ctx context.Context, limit int) ([]AdminEvent, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, time, actor, action, detail FROM admin_events
		ORDER BY id DESC LIMIT $1`, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: listing admin events: %w", err)
	}
	defer rows.Close()
	var out []AdminEvent
	for rows.Next() {
		var e AdminEvent
		if err := rows.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: reading admin event: %w", err)
		}
		e.Time = e.Time.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing admin events: %w", err)
	}
	return out, nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
