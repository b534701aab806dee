package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// UpsertIdentity records the identity as last seen; last_login is the
// store's clock.
func (s *SQLite) UpsertIdentity(ctx context.Context, id identity.Identity) error {
	groups, err := encodeList(id.Groups)
	if err != nil {
		return err
	}
	roles, err := encodeList(id.Roles)
	if err != nil {
		return err
	}
	auth, err := toNanos(id.AuthTime)
	if err != nil {
		return err
	}
	now, _ := s.Now(ctx)
	_, err = s.w.ExecContext(ctx, `INSERT INTO identities
		(issuer, subject, email, email_verified, name, groups, roles, source, auth_time, last_login)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email,
		email_verified = excluded.email_verified, name = excluded.name, groups = excluded.groups,
		roles = excluded.roles, source = excluded.source, auth_time = excluded.auth_time,
		last_login = excluded.last_login`,
		id.Issuer, id.Subject, id.Email, id.EmailVerified, id.Name, string(groups), string(roles),
		string(id.Source), auth, now.UnixNano())
	if err != nil {
		return fmt.Errorf("store: recording identity %s: %w", id.Key(), err)
	}
	return nil
}

// Identity returns the identity as last recorded by UpsertIdentity, and
// when that was; ErrNotFound if it never was.
func (s *SQLite) Identity(ctx context.Context, issuer, subject string) (identity.Identity, time.Time, error) {
	var (
		id             identity.Identity
		groups, roles  string
		auth, lastSeen int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT issuer, subject, email, email_verified, name, groups, roles,
		source, auth_time, last_login FROM identities WHERE issuer = ? AND subject = ?`, issuer, subject).
		Scan(&id.Issuer, &id.Subject, &id.Email, &id.EmailVerified, &id.Name, &groups, &roles,
			&id.Source, &auth, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return id, time.Time{}, fmt.Errorf("store: identity %s|%s: %w", issuer, subject, ErrNotFound)
	}
	if err != nil {
		return id, time.Time{}, fmt.Errorf("store: reading identity: %w", err)
	}
	if id.Groups, err = decodeList[string]([]byte(groups), "groups"); err != nil {
		return id, time.Time{}, err
	}
	if id.Roles, err = decodeList[identity.Role]([]byte(roles), "roles"); err != nil {
		return id, time.Time{}, err
	}
	id.AuthTime = fromNanos(auth)
	return id, fromNanos(lastSeen), nil
}

// CreateToken stores the token's hash and metadata; an existing id or hash
// is ErrDuplicate.
func (s *SQLite) CreateToken(ctx context.Context, t identity.Token) error {
	row, err := tokenRow(t)
	if err != nil {
		return err
	}
	created, err := toNanos(t.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := toNanos(t.ExpiresAt)
	if err != nil {
		return err
	}
	var revoked any
	if t.RevokedAt != nil {
		if revoked, err = toNanos(*t.RevokedAt); err != nil {
			return err
		}
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO tokens
		(id, hash, issuer, subject, identity, scopes, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Identity.Issuer, t.Identity.Subject, string(row.identity), string(row.scopes),
		created, expires, revoked)
	if err != nil {
		return sqliteDuplicate(err, "storing token "+t.ID)
	}
	return nil
}

const sqliteTokenColumns = `id, hash, identity, scopes, created_at, expires_at, revoked_at`

// TokenByHash returns the token with the hash, revoked or expired ones too.
func (s *SQLite) TokenByHash(ctx context.Context, hash []byte) (identity.Token, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+sqliteTokenColumns+` FROM tokens WHERE hash = ?`, hash)
	t, err := scanSQLiteToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	return t, err
}

// ListTokens lists tokens newest first, of one issuer/subject when set.
func (s *SQLite) ListTokens(ctx context.Context, f TokenFilter) ([]identity.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteTokenColumns+` FROM tokens
		WHERE (? = '' OR issuer = ?) AND (? = '' OR subject = ?)
		ORDER BY created_at DESC, id DESC`, f.Issuer, f.Issuer, f.Subject, f.Subject)
	if err != nil {
		return nil, fmt.Errorf("store: listing tokens: %w", err)
	}
	defer rows.Close()
	var out []identity.Token
	for rows.Next() {
		t, err := scanSQLiteToken(rows)
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

func scanSQLiteToken(row interface{ Scan(...any) error }) (identity.Token, error) {
	var (
		t                identity.Token
		ident, scopes    string
		created, expires int64
		revoked          sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Hash, &ident, &scopes, &created, &expires, &revoked); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return t, err
		}
		return t, fmt.Errorf("store: reading token: %w", err)
	}
	return finishToken(t, []byte(ident), []byte(scopes), fromNanos(created), fromNanos(expires),
		revoked.Valid, fromNanos(revoked.Int64))
}

// RevokeToken sets revoked_at to the store's clock. Revoking a revoked
// token keeps the first revocation time.
func (s *SQLite) RevokeToken(ctx context.Context, id string) error {
	now, _ := s.Now(ctx)
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
		now.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("store: revoking token %q: %w", id, err)
	}
	return revoked(res, id)
}

// revoked turns "no row updated" into ErrNotFound.
func revoked(res interface{ RowsAffected() (int64, error) }, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: revoking token %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: token %q: %w", id, ErrNotFound)
	}
	return nil
}

// AddAdminEvent records an administrative action; a zero Time is the
// store's clock.
func (s *SQLite) AddAdminEvent(ctx context.Context, e AdminEvent) error {
	if e.Time.IsZero() {
		e.Time, _ = s.Now(ctx)
	}
	at, err := toNanos(e.Time)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO admin_events (time, actor, action, detail) VALUES (?, ?, ?, ?)`,
		at, e.Actor, e.Action, e.Detail)
	if err != nil {
		return fmt.Errorf("store: recording admin event %s: %w", e.Action, err)
	}
	return nil
}

// AdminEvents lists administrative actions newest first, at most limit
// (0 = all).
func (s *SQLite) AdminEvents(ctx context.Context, limit int) ([]AdminEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, actor, action, detail FROM admin_events
		ORDER BY id DESC LIMIT ?`, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: listing admin events: %w", err)
	}
	defer rows.Close()
	var out []AdminEvent
	for rows.Next() {
		var (
			e  AdminEvent
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: reading admin event: %w", err)
		}
		e.Time = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing admin events: %w", err)
	}
	return out, nil
}
