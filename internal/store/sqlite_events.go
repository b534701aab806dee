package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/countersign/countersign/internal/recording"
)

// AppendEvents stores the batch in one transaction on the writer
// connection with a prepared statement; synchronous=FULL makes it durable
// when Commit returns. An existing (writer, seq) fails the whole batch
// with ErrDuplicate.
func (s *SQLite) AppendEvents(ctx context.Context, events []recording.Stored) error {
	if len(events) == 0 {
		return nil
	}
	var added []string
	err := s.writeTx(ctx, func(tx *sql.Tx) (err error) {
		if added, err = s.addWriters(ctx, tx, events); err != nil {
			return err
		}
		stmt := tx.StmtContext(ctx, s.insertEvent)
		for _, e := range events {
			at, err := toNanos(e.Time)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, e.Writer, e.Seq, at, e.Type, e.Session, e.Resource,
				e.Actor, []byte(e.Data), e.PrevHash, e.Hash); err != nil {
				return sqliteDuplicate(err, fmt.Sprintf("appending event %s/%d", e.Writer, e.Seq))
			}
		}
		return nil
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
	return queryStrings(ctx, s.r, `SELECT writer FROM writers ORDER BY created_at, rowid`)
}

// AddCheckpoint stores a signed checkpoint; one per (writer, seq).
func (s *SQLite) AddCheckpoint(ctx context.Context, c Checkpoint) error {
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
