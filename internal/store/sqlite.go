package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the embedded store: one file, owned by one process. Writes go
// through a single connection (SQLite has one writer at a time anyway; one
// connection means no SQLITE_BUSY between our own writers), reads through
// a small pool that WAL lets run beside the writer.
type SQLite struct {
	path string
	w    *sql.DB // exactly one connection: every write
	r    *sql.DB // read-only connections

	appends appendPath // the recording's insert statements (sqlite_events.go)
	known   sync.Map   // writers registered by this process
	journal *journal   // AppendEvents' durable medium, and its indexer (journal.go)
}

var _ Store = (*SQLite)(nil)

// Pragmas of every connection. synchronous=FULL makes a commit durable
// when it returns (the recording's "durable before effect" rests on it);
// in WAL mode NORMAL could lose the last commits on power loss.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"

// OpenSQLite opens (creating if needed) the SQLite store at path and
// migrates it. The parent directory is created with mode 0700.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if err := checkSQLitePath(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the directory of %s: %w; check the path and its permissions", path, err)
	}
	s := &SQLite{path: path}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.openJournal(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func checkSQLitePath(path string) error {
	switch {
	case path == "":
		return errors.New("store: sqlite:// names no file; write sqlite://PATH, e.g. sqlite://./countersign.db")
	case strings.ContainsAny(path, "?#"), strings.HasPrefix(path, "file:"), path == ":memory:":
		return fmt.Errorf("store: sqlite://%s: the path may not contain '?' or '#' nor be a URI or :memory:; name a plain file", path)
	}
	return nil
}

func (s *SQLite) open(ctx context.Context) error {
	var err error
	// _txlock=immediate: a write transaction takes the write lock when it
	// begins, so it never fails half-way on a lock upgrade.
	s.w, err = sql.Open("sqlite", s.path+"?_txlock=immediate&_pragma=journal_mode(WAL)&"+sqlitePragmas)
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", s.path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: opening %s: %w; check that the path is a writable file", s.path, err)
	}
	if err := migrate(ctx, s.w, goose.DialectSQLite3, "migrations/sqlite"); err != nil {
		return fmt.Errorf("%w (store %s)", err, s.path)
	}
	// Readers open after the writer set WAL mode (a property of the file).
	s.r, err = sql.Open("sqlite", s.path+"?_pragma=query_only(1)&"+sqlitePragmas)
	if err != nil {
		return fmt.Errorf("store: opening %s for reading: %w", s.path, err)
	}
	s.r.SetMaxOpenConns(max(2, runtime.GOMAXPROCS(0)))
	return nil
}

// Now is the process clock in UTC: one process owns the file. It is cut to
// microseconds, as PostgreSQL's is, so a time read from Now is stored and
// read back unchanged by either backend.
func (s *SQLite) Now(context.Context) (time.Time, error) {
	return time.Now().UTC().Truncate(time.Microsecond), nil
}

// Ping checks that both the writer and a reader answer, and that the
// journal is healthy: it takes appends, its indexer is not failing (reads
// of the recording would wait), and SQLite's files could be synced.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.journal.err(); err != nil {
		return err
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: %s does not answer: %w", s.path, err)
	}
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: %s does not answer reads: %w", s.path, err)
	}
	return nil
}

// Close stores what the journal holds in SQLite and deletes its segment,
// then closes every connection. The WAL is checkpointed into the main file
// when the last connection closes.
func (s *SQLite) Close() error {
	var errs []error
	if s.journal != nil {
		errs = append(errs, s.journal.close())
	}
	if s.w != nil {
		errs = append(errs, s.closeAppends())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	errs = append(errs, s.awaitConnsClosed())
	return errors.Join(errs...)
}

// closeWait bounds how long Close waits for connections still in use.
const closeWait = 10 * time.Second

// awaitConnsClosed waits until every connection of both pools is closed.
// database/sql closes a connection that was in use when Close came (a
// query of a goroutine that has not noticed the shutdown) only once it is
// released, and the last SQLite connection to close checkpoints the WAL
// and recreates the -shm file it needs for that: the files would change
// after Close returned, under a backup or a move of the data directory.
func (s *SQLite) awaitConnsClosed() error {
	deadline := time.Now().Add(closeWait)
	for {
		n := 0
		for _, db := range []*sql.DB{s.r, s.w} {
			if db != nil {
				n += db.Stats().OpenConnections
			}
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("store: %d connections to %s were still in use %s after close", n, s.path, closeWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// writeTx runs fn in one write transaction on the writer connection.
func (s *SQLite) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// sqliteDuplicate wraps a unique or primary-key violation into ErrDuplicate.
func sqliteDuplicate(err error, what string) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("store: %s: %w", what, ErrDuplicate)
		}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}
