package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/countersign/countersign/internal/recording"
)

// insertChunks is the number of multi-row insert statements: they insert
// 1, 2, 4, ... 64 events each, so a group commit of n events runs about
// log2(n) statements instead of n. Each statement executed has a fixed
// cost in the driver (argument conversion, a VM reset) that is large next
// to inserting one small row.
const insertChunks = 7

// sqliteEventValues is the number of values one event row binds.
const sqliteEventValues = 10

// appendPath holds the recording's insert statements, prepared on the
// writer's driver connection (they belong to that connection and are
// prepared again if database/sql ever replaces it).
type appendPath struct {
	mu      sync.Mutex
	conn    any // the driver connection the statements were prepared on
	inserts [insertChunks]driver.Stmt
	args    []driver.NamedValue
}

// appendConn is what AppendEvents needs of the driver's connection.
type appendConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
}

// insertBatch stores journaled events in one transaction on the writer
// connection (the indexer's and the replay's path; AppendEvents, in
// journal.go, makes them durable first). An existing (writer, seq) fails
// the whole batch with ErrDuplicate.
//
// It runs on the driver connection itself rather than through a sql.Tx:
// database/sql gives a transaction a cancelable context, for which the
// driver starts a goroutine per statement to interrupt it. The statements
// run without a context instead; ctx bounds the wait for the connection,
// and the only wait after that, for SQLite's lock, is bounded by
// busy_timeout (WAL readers never block the writer).
func (s *SQLite) insertBatch(ctx context.Context, events []recording.Stored) error {
	var now int64
	if s.hasNewWriter(events) {
		t, err := s.Now(ctx)
		if err != nil {
			return err
		}
		now = t.UnixNano()
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: storing events: %w", err)
	}
	defer conn.Close()
	var added []string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(appendConn)
		if !ok {
			return fmt.Errorf("store: the SQLite driver's connection is a %T, which cannot run the recording's appends", dc)
		}
		s.appends.mu.Lock()
		defer s.appends.mu.Unlock()
		return s.withoutSync(c, func() error {
			var err error
			added, err = s.appendTx(c, events, now)
			return err
		})
	})
	if err == nil {
		// Remembered only once committed: a rolled-back batch must
		// register its writer again.
		for _, w := range added {
			s.known.Store(w, struct{}{})
		}
	}
	return err
}

// withoutSync runs fn with synchronous=NORMAL on c: the events fn
// inserts are durable in the journal already, so their commit need not
// fsync the WAL; syncSQLite makes them durable before a segment that holds
// them is deleted. c is the writer connection, held: no other write sees
// NORMAL. A connection that cannot be set back to FULL is dropped.
func (s *SQLite) withoutSync(c appendConn, fn func() error) error {
	bg := context.Background() // see insertBatch
	if _, err := c.ExecContext(bg, `PRAGMA synchronous = NORMAL`, nil); err != nil {
		return fmt.Errorf("store: PRAGMA synchronous: %w", err)
	}
	err := fn()
	if _, rerr := c.ExecContext(bg, `PRAGMA synchronous = FULL`, nil); rerr != nil {
		s.appends.conn, s.appends.inserts = nil, [insertChunks]driver.Stmt{}
		return fmt.Errorf("%w: setting synchronous back to FULL failed (%v), so the connection is dropped (%v)", driver.ErrBadConn, rerr, err)
	}
	return err
}

// syncSQLite fsyncs the database file and its WAL: what transactions
// committed with synchronous=NORMAL wrote is durable when it returns.
// fsync flushes a file whoever wrote it, so SQLite's own descriptors
// need not be used. The directory is synced too: SQLite syncs it when it
// first syncs a WAL it created, which with synchronous=NORMAL may not have
// happened yet (a WAL made at open and holding only the indexer's
// commits), and without it the WAL's name may not survive a power loss.
func (s *SQLite) syncSQLite() error {
	if err := s.syncFiles(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("store: syncing the directory of %s: %w", s.path, err)
	}
	return nil
}

// syncFiles fsyncs the WAL, then the database file.
func (s *SQLite) syncFiles() error {
	for _, p := range []string{s.path + "-wal", s.path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: opening %s to sync it: %w", p, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("store: syncing %s: %w", p, err)
		}
	}
	return nil
}

// appendTx is one transaction: the batch's new writers, then its events.
// The caller holds s.appends.mu.
func (s *SQLite) appendTx(c appendConn, events []recording.Stored, now int64) (added []string, err error) {
	bg := context.Background() // see insertBatch
	if err := s.prepareAppends(bg, c); err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(bg, driver.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if rerr := tx.Rollback(); rerr != nil {
			// A connection left inside a transaction would fail every
			// later append: database/sql drops a connection whose Raw
			// callback returns ErrBadConn, and the next append opens a
			// fresh one (and prepares its statements anew).
			for _, p := range s.appends.inserts {
				if p != nil {
					p.Close()
				}
			}
			s.appends.conn, s.appends.inserts = nil, [insertChunks]driver.Stmt{}
			err = fmt.Errorf("%w: %w; rolling back failed as well (%v), so the connection is dropped", driver.ErrBadConn, err, rerr)
		}
	}()
	last := ""
	for i, e := range events {
		if (i > 0 && e.Writer == last) || s.isKnown(e.Writer) {
			continue
		}
		last = e.Writer
		if _, err := c.ExecContext(bg, `INSERT INTO writers (writer, created_at) VALUES (?, ?)
			ON CONFLICT (writer) DO NOTHING`, []driver.NamedValue{{Ordinal: 1, Value: e.Writer}, {Ordinal: 2, Value: now}}); err != nil {
			return nil, fmt.Errorf("store: registering writer %s: %w", e.Writer, err)
		}
		added = append(added, e.Writer)
	}
	for rest := events; len(rest) > 0; {
		k := min(bits.Len(uint(len(rest)))-1, insertChunks-1)
		chunk := rest[:1<<k]
		rest = rest[len(chunk):]
		args := s.appends.args[:0]
		for _, e := range chunk {
			at, err := toNanos(e.Time)
			if err != nil {
				return nil, err
			}
			for _, v := range [sqliteEventValues]driver.Value{e.Writer, e.Seq, at, e.Type, e.Session, e.Resource,
				e.Actor, []byte(e.Data), e.PrevHash, e.Hash} {
				args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
			}
		}
		s.appends.args = args
		_, err := s.appends.inserts[k].(driver.StmtExecContext).ExecContext(bg, args)
		clear(args) // the batch's bytes are not kept until the next one
		if err != nil {
			return nil, sqliteDuplicate(err, fmt.Sprintf("appending events %s/%d-%d", chunk[0].Writer, chunk[0].Seq, chunk[len(chunk)-1].Seq))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	return added, nil
}

func (s *SQLite) isKnown(w string) bool {
	_, ok := s.known.Load(w)
	return ok
}

// hasNewWriter reports whether the batch names a writer this process has
// not registered. A batch nearly always holds one writer, registered
// long ago.
func (s *SQLite) hasNewWriter(events []recording.Stored) bool {
	for i, e := range events {
		if (i == 0 || e.Writer != events[i-1].Writer) && !s.isKnown(e.Writer) {
			return true
		}
	}
	return false
}

// prepareAppends prepares the multi-row inserts on c, unless they already
// are. The caller holds s.appends.mu.
func (s *SQLite) prepareAppends(ctx context.Context, c appendConn) error {
	if s.appends.conn == c {
		return nil
	}
	// Statements of a connection database/sql replaced are not closed: that
	// connection and its statements are gone with it.
	s.appends.conn, s.appends.inserts = nil, [insertChunks]driver.Stmt{}
	for k := range s.appends.inserts {
		var q strings.Builder
		q.WriteString(`INSERT INTO events (writer, seq, time, type, session, resource, actor, data, prev_hash, hash) VALUES `)
		for i := range 1 << k {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?,?)")
		}
		st, err := c.PrepareContext(ctx, q.String())
		if err != nil {
			for _, p := range s.appends.inserts[:k] {
				p.Close()
			}
			s.appends.inserts = [insertChunks]driver.Stmt{}
			return fmt.Errorf("store: preparing the recording's inserts: %w", err)
		}
		s.appends.inserts[k] = st
	}
	s.appends.conn = c
	return nil
}

// closeAppends finalizes the insert statements on their own connection,
// before the writer is closed. The connection is taken before the mutex,
// in the order AppendEvents takes them.
func (s *SQLite) closeAppends() error {
	conn, err := s.w.Conn(context.Background())
	if err != nil {
		return nil // closed already: so are its statements
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		s.appends.mu.Lock()
		defer s.appends.mu.Unlock()
		if s.appends.conn == nil || dc != s.appends.conn {
			return nil
		}
		var errs []error
		for _, st := range s.appends.inserts {
			errs = append(errs, st.Close())
		}
		s.appends.conn, s.appends.inserts = nil, [insertChunks]driver.Stmt{}
		return errors.Join(errs...)
	})
}

// addWriters registers each chain of the batch the first time it appears.
// A batch nearly always holds one writer, and this process has usually
// registered it already (s.known), so this is usually no statement at
// all: the recording's group commit is on every operation's path.
func (s *SQLite) addWriters(ctx context.Context, tx *sql.Tx, events []recording.Stored) (added []string, err error) {
	last := ""
	var now int64
	for i, e := range events {
		if i > 0 && e.Writer == last {
			continue
		}
		last = e.Writer
		if _, ok := s.known.Load(e.Writer); ok {
			continue
		}
		if now == 0 {
			t, err := s.Now(ctx)
			if err != nil {
				return nil, err
			}
			now = t.UnixNano()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO writers (writer, created_at) VALUES (?, ?)
			ON CONFLICT (writer) DO NOTHING`, e.Writer, now); err != nil {
			return nil, fmt.Errorf("store: registering writer %s: %w", e.Writer, err)
		}
		added = append(added, e.Writer)
	}
	return added, nil
}

// Events lists a writer's events from fromSeq in order, at most limit
// (0 = all).
func (s *SQLite) Events(ctx context.Context, writer string, fromSeq int64, limit int) ([]recording.Stored, error) {
	if err := s.waitIndexed(ctx); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT writer, seq, time, type, session, resource, actor, data,
		prev_hash, hash FROM events WHERE writer = ? AND seq >= ? ORDER BY seq LIMIT ?`,
		writer, fromSeq, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: reading events of %s: %w", writer, err)
	}
	defer rows.Close()
	var out []recording.Stored
	for rows.Next() {
		var (
			e    recording.Stored
			at   int64
			data []byte
		)
		if err := rows.Scan(&e.Writer, &e.Seq, &at, &e.Type, &e.Session, &e.Resource, &e.Actor,
			&data, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("store: reading an event of %s: %w", writer, err)
		}
		e.Time, e.Data = fromNanos(at), data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading events of %s: %w", writer, err)
	}
	return out, nil
}

// Writers lists every chain's writer, oldest first.
func (s *SQLite) Writers(ctx context.Context) ([]string, error) {
	if err := s.waitIndexed(ctx); err != nil {
		return nil, err
	}
	return queryStrings(ctx, s.r, `SELECT writer FROM writers ORDER BY created_at, rowid`)
}

// AddCheckpoint stores a signed checkpoint; one per (writer, seq).
func (s *SQLite) AddCheckpoint(ctx context.Context, c Checkpoint) error {
	if err := s.waitIndexed(ctx); err != nil {
		return err
	}
	at, err := toNanos(c.Time)
	if err != nil {
		return err
	}
	// The writer is registered here without remembering it: a checkpoint
	// is rare, and a rolled-back one must not leave it marked known.
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.addWriters(ctx, tx, []recording.Stored{{Writer: c.Writer}}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (writer, seq, hash, time, signature, key_id, final)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.Writer, c.Seq, c.Hash, at, c.Signature, c.KeyID, c.Final)
		if err != nil {
			return sqliteDuplicate(err, fmt.Sprintf("storing checkpoint %s/%d", c.Writer, c.Seq))
		}
		return nil
	})
}

// Checkpoints lists a writer's checkpoints in seq order.
func (s *SQLite) Checkpoints(ctx context.Context, writer string) ([]Checkpoint, error) {
	if err := s.waitIndexed(ctx); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT writer, seq, hash, time, signature, key_id, final
		FROM checkpoints WHERE writer = ? ORDER BY seq`, writer)
	if err != nil {
		return nil, fmt.Errorf("store: reading checkpoints of %s: %w", writer, err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var (
			c  Checkpoint
			at int64
		)
		if err := rows.Scan(&c.Writer, &c.Seq, &c.Hash, &at, &c.Signature, &c.KeyID, &c.Final); err != nil {
			return nil, fmt.Errorf("store: reading a checkpoint of %s: %w", writer, err)
		}
		c.Time = fromNanos(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading checkpoints of %s: %w", writer, err)
	}
	return out, nil
}

// queryStrings runs a query of one text column.
func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}
