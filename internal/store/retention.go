package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/countersign/countersign/internal/recording"
)

// RetentionMark is recording's signed "events 1..Through of this chain were
// deleted by retention"; the alias keeps store's signatures readable.
type RetentionMark = recording.RetentionMark

// Both stores are what retention needs (recording.Pruner).
var (
	_ recording.Pruner = (*SQLite)(nil)
	_ recording.Pruner = (*Postgres)(nil)
)

// DeleteEvents deletes at most limit of writer's events with seq <=
// throughSeq, lowest first: one short transaction per call, so the
// recording's group commits wait for it only briefly.
func (s *SQLite) DeleteEvents(ctx context.Context, writer string, throughSeq int64, limit int) (int64, error) {
	if err := s.waitIndexed(ctx); err != nil { // journal.go
		return 0, err
	}
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE writer = ? AND seq IN
			(SELECT seq FROM events WHERE writer = ? AND seq <= ? ORDER BY seq LIMIT ?)`,
			writer, writer, throughSeq, sqlLimit(limit))
		if err != nil {
			return fmt.Errorf("store: deleting old events of %s: %w", writer, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// DeleteCheckpoints deletes writer's checkpoints with seq < beforeSeq but
// those whose seq is in keep.
func (s *SQLite) DeleteCheckpoints(ctx context.Context, writer string, beforeSeq int64, keep []int64) (int64, error) {
	if err := s.waitIndexed(ctx); err != nil { // journal.go
		return 0, err
	}
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM checkpoints WHERE writer = ? AND seq < ?`, writer, beforeSeq)
		if err != nil {
			return fmt.Errorf("store: reading old checkpoints of %s: %w", writer, err)
		}
		var seqs []int64
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return fmt.Errorf("store: reading old checkpoints of %s: %w", writer, err)
			}
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: reading old checkpoints of %s: %w", writer, err)
		}
		for _, seq := range seqs {
			if containsSeq(keep, seq) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM checkpoints WHERE writer = ? AND seq = ?`, writer, seq); err != nil {
				return fmt.Errorf("store: deleting checkpoint %s/%d: %w", writer, seq, err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// PutRetentionMark stores m, unless the writer's mark already reaches as
// far: a mark never moves back.
func (s *SQLite) PutRetentionMark(ctx context.Context, m RetentionMark) error {
	if err := s.waitIndexed(ctx); err != nil { // journal.go
		return err
	}
	at, err := toNanos(m.Time)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO retention_marks (writer, through, hash, time, signature, key_id)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (writer) DO UPDATE SET through = excluded.through, hash = excluded.hash,
				time = excluded.time, signature = excluded.signature, key_id = excluded.key_id
			WHERE excluded.through > retention_marks.through`,
			m.Writer, m.Through, m.Hash, at, m.Signature, m.KeyID)
		if err != nil {
			return fmt.Errorf("store: storing the retention mark of %s: %w", m.Writer, err)
		}
		return nil
	})
}

// RetentionMarks lists every writer's mark.
func (s *SQLite) RetentionMarks(ctx context.Context) ([]RetentionMark, error) {
	if err := s.waitIndexed(ctx); err != nil { // journal.go
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT writer, through, hash, time, signature, key_id FROM retention_marks ORDER BY writer`)
	if err != nil {
		return nil, fmt.Errorf("store: reading retention marks: %w", err)
	}
	defer rows.Close()
	var out []RetentionMark
	for rows.Next() {
		var (
			m  RetentionMark
			at int64
		)
		if err := rows.Scan(&m.Writer, &m.Through, &m.Hash, &at, &m.Signature, &m.KeyID); err != nil {
			return nil, fmt.Errorf("store: reading a retention mark: %w", err)
		}
		m.Time = fromNanos(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading retention marks: %w", err)
	}
	return out, nil
}

// DeleteEvents deletes at most limit of writer's events with seq <=
// throughSeq, lowest first.
func (p *Postgres) DeleteEvents(ctx context.Context, writer string, throughSeq int64, limit int) (int64, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM events WHERE writer = $1 AND seq IN
		(SELECT seq FROM events WHERE writer = $1 AND seq <= $2 ORDER BY seq LIMIT $3)`,
		writer, throughSeq, sqlLimit(limit))
	if err != nil {
		return 0, fmt.Errorf("store: deleting old events of %s: %w", writer, err)
	}
	return tag.RowsAffected(), nil
}

// DeleteCheckpoints deletes writer's checkpoints with seq < beforeSeq but
// those whose seq is in keep.
func (p *Postgres) DeleteCheckpoints(ctx context.Context, writer string, beforeSeq int64, keep []int64) (int64, error) {
	if keep == nil {
		keep = []int64{}
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM checkpoints WHERE writer = $1 AND seq < $2 AND NOT (seq = ANY($3::bigint[]))`,
		writer, beforeSeq, keep)
	if err != nil {
		return 0, fmt.Errorf("store: deleting old checkpoints of %s: %w", writer, err)
	}
	return tag.RowsAffected(), nil
}

// PutRetentionMark stores m, unless the writer's mark already reaches as
// far: a mark never moves back.
func (p *Postgres) PutRetentionMark(ctx context.Context, m RetentionMark) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO retention_marks (writer, through, hash, time, signature, key_id)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (writer) DO UPDATE SET through = excluded.through, hash = excluded.hash,
			time = excluded.time, signature = excluded.signature, key_id = excluded.key_id
		WHERE excluded.through > retention_marks.through`,
		m.Writer, m.Through, m.Hash, m.Time, m.Signature, m.KeyID)
	if err != nil {
		return fmt.Errorf("store: storing the retention mark of %s: %w", m.Writer, err)
	}
	return nil
}

// RetentionMarks lists every writer's mark.
func (p *Postgres) RetentionMarks(ctx context.Context) ([]RetentionMark, error) {
	rows, err := p.pool.Query(ctx, `SELECT writer, through, hash, time, signature, key_id FROM retention_marks ORDER BY writer`)
	if err != nil {
		return nil, fmt.Errorf("store: reading retention marks: %w", err)
	}
	defer rows.Close()
	var out []RetentionMark
	for rows.Next() {
		var m RetentionMark
		if err := rows.Scan(&m.Writer, &m.Through, &m.Hash, &m.Time, &m.Signature, &m.KeyID); err != nil {
			return nil, fmt.Errorf("store: reading a retention mark: %w", err)
		}
		m.Time = m.Time.UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading retention marks: %w", err)
	}
	return out, nil
}

func containsSeq(list []int64, seq int64) bool {
	for _, v := range list {
		if v == seq {
			return true
		}
	}
	return false
}
