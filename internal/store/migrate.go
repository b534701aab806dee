package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema of both backends, one numbered file per
// change: migrations/sqlite/NNNNN_name.sql and migrations/postgres/
// NNNNN_name.sql, same number and meaning in both. See doc.go for how to
// add one.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// migrate brings the database's schema up to the newest embedded version.
// It is forward only: a database whose recorded version is newer than any
// embedded migration (a newer countersign ran on it) is refused, because
// this binary does not know its schema.
func migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect, dir string, opts ...goose.ProviderOption) error {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return fmt.Errorf("store: embedded migrations %s: %w", dir, err)
	}
	p, err := goose.NewProvider(dialect, db, sub, append(opts, goose.WithDisableGlobalRegistry(true))...)
	if err != nil {
		return fmt.Errorf("store: preparing migrations: %w", err)
	}
	if err := checkNotNewer(ctx, p); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrating the schema: %w", err)
	}
	return nil
}

// checkNotNewer refuses a database migrated by a newer countersign.
func checkNotNewer(ctx context.Context, p *goose.Provider) error {
	have, err := p.GetDBVersion(ctx)
	if err != nil {
		// A fresh database has no version table yet; Up creates it.
		return nil
	}
	srcs := p.ListSources()
	newest := srcs[len(srcs)-1].Version
	if have > newest {
		return fmt.Errorf("store: the database's schema is at version %d but this countersign knows only up to %d; run the newer countersign (schemas only move forward)", have, newest)
	}
	return nil
}

// pgMigrationLock serialises migrations across replicas that start at
// once: a session advisory lock (goose's lock id, so the goose CLI takes
// turns with us too) held while goose runs. pg_advisory_lock waits in the
// server, so the next replica starts the moment the lock is free instead
// of polling; the caller's ctx bounds the wait.
type pgMigrationLock struct{}

var _ lock.SessionLocker = pgMigrationLock{}

func (pgMigrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lock.DefaultLockID); err != nil {
		return fmt.Errorf("waiting for the migration lock: %w", err)
	}
	return nil
}

func (pgMigrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lock.DefaultLockID); err != nil {
		return fmt.Errorf("releasing the migration lock: %w", err)
	}
	return nil
}
