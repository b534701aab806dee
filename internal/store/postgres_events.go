package store

import (
	"context"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
)

// Both statements travel in one pgx batch: one round trip, and one
// implicit transaction (the batch ends with a single Sync), committed
// durably (synchronous_commit) before the batch returns. The events go in
// as arrays, so a batch of 1000 is still one statement.
const (
	pgAddWriters = `INSERT INTO writers (writer)
		SELECT w FROM unnest($1::text[]) AS w
		WHERE NOT EXISTS (SELECT 1 FROM writers WHERE writer = w)
		ON CONFLICT (writer) DO NOTHING`
	pgAppendEvents = `INSERT INTO events
		(writer, seq, time, type, session, resource, actor, data, prev_hash, hash)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
			$6::text[], $7::text[], $8::bytea[], $9::bytea[], $10::bytea[])`
)

// AppendEvents stores the batch in one transaction; an existing
// (writer, seq) fails the whole batch with ErrDuplicate.
func (p *Postgres) AppendEvents(ctx context.Context, events []recording.Stored) error {
	if len(events) == 0 {
		return nil
	}
	c := columnsOf(events)
	b := &pgx.Batch{}
	b.Queue(pgAddWriters, c.writers)
	b.Queue(pgAppendEvents, c.writer, c.seq, c.time, c.typ, c.session, c.resource, c.actor,
		c.data, c.prevHash, c.hash)
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		return pgDuplicate(err, fmt.Sprintf("appending %d events of %s from seq %d",
			len(events), events[0].Writer, events[0].Seq))
	}
	return nil
}

// eventColumns is a batch of events, column by column.
type eventColumns struct {
	writers                               []string // distinct
	writer, typ, session, resource, actor []string
	seq                                   []int64
	time                                  []time.Time
	data, prevHash, hash                  [][]byte
}

func columnsOf(events []recording.Stored) eventColumns {
	n := len(events)
	c := eventColumns{
		writer: make([]string, n), typ: make([]string, n), session: make([]string, n),
		resource: make([]string, n), actor: make([]string, n), seq: make([]int64, n),
		time: make([]time.Time, n), data: make([][]byte, n), prevHash: make([][]byte, n),
		hash: make([][]byte, n),
	}
	for i, e := range events {
		if i == 0 || e.Writer != events[i-1].Writer {
			c.writers = append(c.writers, e.Writer)
		}
		c.writer[i], c.typ[i], c.session[i], c.resource[i], c.actor[i] = e.Writer, e.Type, e.Session, e.Resource, e.Actor
		c.seq[i], c.time[i] = e.Seq, e.Time
		c.data[i], c.prevHash[i], c.hash[i] = e.Data, e.PrevHash, e.Hash
	}
	return c
}

// Events lists a writer's events from fromSeq in order, at most limit
// (0 = all).
func (p *Postgres) Events(ctx context.Context, writer string, fromSeq int64, limit int) ([]recording.Stored, error) {
	rows, err := p.pool.Query(ctx, `SELECT writer, seq, time, type, session, resource, actor, data,
		prev_hash, hash FROM events WHERE writer = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
		writer, fromSeq, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: reading events of %s: %w", writer, err)
	}
	defer rows.Close()
	var out []recording.Stored
	for rows.Next() {
		var (
			e    recording.Stored
			data []byte
		)
		if err := rows.Scan(&e.Writer, &e.Seq, &e.Time, &e.Type, &e.Session, &e.Resource, &e.Actor,
			&data, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("store: reading an event of %s: %w", writer, err)
		}
		e.Time, e.Data = e.Time.UTC(), data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading events of %s: %w", writer, err)
	}
	return out, nil
}

// Writers lists every chain's writer, oldest first.
func (p *Postgres) Writers(ctx context.Context) ([]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT writer FROM writers ORDER BY created_at, writer`)
	if err != nil {
		return nil, fmt.Errorf("store: listing writers: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: listing writers: %w", err)
	}
	return out, nil
}

// AddCheckpoint stores a signed checkpoint; one per (writer, seq).
func (p *Postgres) AddCheckpoint(ctx context.Context, c Checkpoint) error {
	b := &pgx.Batch{}
	b.Queue(pgAddWriters, []string{c.Writer})
	b.Queue(`INSERT INTO checkpoints (writer, seq, hash, time, signature, key_id, final)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.Writer, c.Seq, c.Hash, c.Time, c.Signature, c.KeyID, c.Final)
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		return pgDuplicate(err, fmt.Sprintf("storing checkpoint %s/%d", c.Writer, c.Seq))
	}
	return nil
}

// Checkpoints lists a writer's checkpoints in seq order.
func (p *Postgres) Checkpoints(ctx context.Context, writer string) ([]Checkpoint, error) {
	rows, err := p.pool.Query(ctx, `SELECT writer, seq, hash, time, signature, key_id, final
		FROM checkpoints WHERE writer = $1 ORDER BY seq`, writer)
	if err != nil {
		return nil, fmt.Errorf("store: reading checkpoints of %s: %w", writer, err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		if err := rows.Scan(&c.Writer, &c.Seq, &c.Hash, &c.Time, &c.Signature, &c.KeyID, &c.Final); err != nil {
			return nil, fmt.Errorf("store: reading a checkpoint of %s: %w", writer, err)
		}
		c.Time = c.Time.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading checkpoints of %s: %w", writer, err)
	}
	return out, nil
}
