package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// Postgres is the store of several gateway replicas: they share one
// database, and its clock.
type Postgres struct {
	desc string        // the URL without its password, for errors
	pool *pgxpool.Pool // every query of this package
	db   *sql.DB       // the same pool through database/sql (goose)
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the database the URL names and migrates it.
// Replicas starting at once take turns: migrations run under a PostgreSQL
// advisory lock.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	p := &Postgres{desc: Describe(url)}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can quote the URL; ours does not.
		return nil, fmt.Errorf("store: %s is not a valid PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE", p.desc)
	}
	if p.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("store: connecting to %s: %w", p.desc, err)
	}
	if err := p.pool.Ping(ctx); err != nil {
		p.pool.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w; check that PostgreSQL runs there and the database exists", p.desc, err)
	}
	p.db = stdlib.OpenDBFromPool(p.pool)
	err = migrate(ctx, p.db, goose.DialectPostgres, "migrations/postgres", goose.WithSessionLocker(pgMigrationLock{}))
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%w (store %s)", err, p.desc)
	}
	return p, nil
}

// Now is the database server's clock, read at the call:
// clock_timestamp(), not now(), which is the start of the transaction.
func (p *Postgres) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := p.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("store: reading the clock of %s: %w", p.desc, err)
	}
	return t.UTC(), nil
}

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: %s does not answer: %w", p.desc, err)
	}
	return nil
}

// Close closes the pool.
func (p *Postgres) Close() error {
	var err error
	if p.db != nil {
		err = p.db.Close()
	}
	if p.pool != nil {
		p.pool.Close()
	}
	return err
}

// pgDuplicate wraps a unique violation into ErrDuplicate.
func pgDuplicate(err error, what string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("store: %s: %w", what, ErrDuplicate)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}
