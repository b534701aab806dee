package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

const (
	// indexBatchEvents is about the most events the indexer stores in one
	// SQLite transaction: the fsync of a commit is paid once for them all.
	indexBatchEvents = 4096
	// indexTimeout bounds one indexer transaction.
	indexTimeout = 30 * time.Second
	// indexDelay is how long the indexer waits for the next append before
	// storing a short queue, when it stored something less than indexDelay
	// ago (appends keep coming): each SQLite transaction has a fixed cost
	// in the driver (begin, commit, the WAL frames of the pages it
	// touched), which a group commit of a few events no longer pays on the
	// data path but the machine still does. Short, because it is also how
	// far behind another process reading the file may be once appends
	// pause.
	indexDelay = 2 * time.Millisecond
	// indexMaxDelay bounds how long appends that keep coming closer than
	// indexDelay apart hold a short queue back: about how far behind a
	// reader in another process is under steady load. At pgbench rates it
	// makes a transaction take some hundred events instead of ten.
	indexMaxDelay = 20 * time.Millisecond
	// indexEager is the queue length (records) that is stored at once.
	indexEager = 256
)

// runIndexer stores what is journaled in SQLite until the journal closes,
// then once more everything left.
func (s *SQLite) runIndexer() {
	j := s.journal
	defer func() {
		j.qmu.Lock()
		j.stopped = true
		j.broadcast()
		j.qmu.Unlock()
		close(j.done)
	}()
	for {
		select {
		case <-j.wake:
			s.indexAll(j.linger())
			j.lastPass = time.Now()
		case <-j.stop:
			s.indexAll(true)
			return
		}
	}
}

// linger lets a short queue grow while appends keep coming, when the
// indexer stored something less than indexDelay ago: it returns once an
// indexDelay passed without an append, the queue is indexEager records
// long, a reader waits, or indexMaxDelay has passed. Then a transaction
// takes many batches. It looks at the queue once per indexDelay rather
// than waking at every append. After a quiet spell it stores at once, so
// that another process reading the file (an operator, a test) sees a lone
// operation's events about a millisecond after its result. It reports
// whether the journal is closing meanwhile.
func (j *journal) linger() (stopping bool) {
	seen, short := j.queueState()
	if !short || time.Since(j.lastPass) > indexDelay {
		return false
	}
	deadline := time.Now().Add(indexMaxDelay)
	t := time.NewTimer(indexDelay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-j.hurry:
			return false
		case <-j.stop:
			return true
		}
		journaled, short := j.queueState()
		left := time.Until(deadline)
		if journaled == seen || !short || left <= 0 {
			return false
		}
		seen = journaled
		t.Reset(min(indexDelay, left))
	}
}

// queueState is how many records were journaled since open, and whether
// the queue is worth letting grow: fewer than indexEager records and no
// reader waiting.
func (j *journal) queueState() (journaled uint64, short bool) {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	return j.journaled, len(j.queue) < indexEager && j.waiters == 0
}

// indexAll stores everything queued, a transaction of up to about
// indexBatchEvents events at a time. A failure is logged and retried with
// a growing pause (reads wait meanwhile, and name the error when their
// context ends); when stopping, the first failure ends it, and what is
// left stays in its segment for the next Open.
func (s *SQLite) indexAll(stopping bool) {
	j := s.journal
	backoff := 10 * time.Millisecond
	var (
		recs   []journalRecord
		events []recording.Stored
	)
	for {
		j.qmu.Lock()
		recs = append(recs[:0], j.queue[:min(len(j.queue), indexBatchEvents)]...)
		j.qmu.Unlock()
		if len(recs) == 0 {
			return
		}
		n, events := gather(recs, events[:0])
		err := s.storeEvents(events)
		clear(events) // the records' events are not kept alive by this buffer
		if err == nil {
			j.indexedDone(n)
			backoff = 10 * time.Millisecond
			continue
		}
		j.indexFailed(err)
		if stopping {
			return
		}
		select {
		case <-time.After(backoff):
		case <-j.stop:
			stopping = true
		}
		backoff = min(2*backoff, maxIndexBackoff)
	}
}

// gather collects the events of records from the head of recs until
// about indexBatchEvents; n is how many records that took.
func gather(recs []journalRecord, events []recording.Stored) (n int, _ []recording.Stored) {
	for _, r := range recs {
		if n > 0 && len(events) >= indexBatchEvents {
			break
		}
		events = append(events, r.events...)
		n++
	}
	return n, events
}

// indexedDone drops the first n records from the queue, deletes the
// segments they emptied, and wakes the readers waiting for them.
func (j *journal) indexedDone(n int) {
	var done []*segment
	j.qmu.Lock()
	for _, r := range j.queue[:n] {
		j.queuedBytes -= r.size
		r.seg.pending--
		if r.seg.sealed && r.seg.pending == 0 {
			j.forget(r.seg)
			done = append(done, r.seg)
		}
	}
	rest := copy(j.queue, j.queue[n:])
	clear(j.queue[rest:])
	j.queue = j.queue[:rest]
	j.indexed += uint64(n)
	j.indexErr = nil
	j.broadcast()
	j.qmu.Unlock()
	for _, seg := range done {
		j.remove(seg)
	}
}

func (j *journal) indexFailed(err error) {
	j.qmu.Lock()
	first := j.indexErr == nil
	j.indexErr = err
	j.broadcast()
	j.qmu.Unlock()
	if first {
		j.log.Error("store: the journal's events cannot be stored in SQLite; retrying (reads of the recording wait)", "err", err)
	}
}

// broadcast wakes every waitIndexed; j.qmu is held.
func (j *journal) broadcast() {
	close(j.progress)
	j.progress = make(chan struct{})
}

// waitIndexed returns when every batch journaled before the call is in
// SQLite. When ctx ends first, or the indexer has stopped, the error
// names the indexer's last error.
func (s *SQLite) waitIndexed(ctx context.Context) error {
	j := s.journal
	j.qmu.Lock()
	defer j.qmu.Unlock()
	target := j.journaled
	if j.indexed < target {
		j.waiters++
		defer func() { j.waiters-- }() // runs before the deferred Unlock
		select {
		case j.hurry <- struct{}{}:
		default:
		}
	}
	for j.indexed < target {
		if j.stopped {
			return fmt.Errorf("store: %d journaled batches are not in SQLite and the store is closed (indexer: %v)", target-j.indexed, j.indexErr)
		}
		wait := j.progress
		j.qmu.Unlock()
		select {
		case <-wait:
			j.qmu.Lock()
		case <-ctx.Done():
			j.qmu.Lock()
			return fmt.Errorf("store: waiting for journaled events to reach SQLite: %w (the indexer's last error: %v)", ctx.Err(), j.indexErr)
		}
	}
	return nil
}

// storeEvents inserts journaled events into SQLite. When some are there
// already (a replay after a crash that came after their transaction), it
// stores each one that is missing and checks each one that is not.
func (s *SQLite) storeEvents(events []recording.Stored) error {
	ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
	defer cancel()
	err := s.insertBatch(ctx, events)
	if errors.Is(err, ErrDuplicate) {
		err = s.reconcileEvents(ctx, events)
	}
	return err
}

// reconcileEvents stores, in one transaction, each event SQLite lacks; an
// event SQLite holds identically (every field, byte for byte) is skipped,
// one that differs is an error: two different events under one (writer,
// seq), and neither is dropped silently.
func (s *SQLite) reconcileEvents(ctx context.Context, events []recording.Stored) error {
	var added []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if added, err = s.addWriters(ctx, tx, events); err != nil {
			return err
		}
		for _, e := range events {
			at, err := toNanos(e.Time)
			if err != nil {
				return err
			}
			held, err := holdsSame(ctx, tx, e, at)
			if err != nil {
				return err
			}
			if held {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (writer, seq, time, type, session, resource, actor, data, prev_hash, hash)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Writer, e.Seq, at, e.Type, e.Session, e.Resource, e.Actor,
				[]byte(e.Data), e.PrevHash, e.Hash); err != nil {
				return fmt.Errorf("store: storing event %s/%d: %w", e.Writer, e.Seq, err)
			}
		}
		return nil
	})
	if err == nil {
		for _, w := range added {
			s.known.Store(w, struct{}{})
		}
	}
	return err
}

// holdsSame reports whether SQLite holds e already, every field byte for
// byte; one that differs at e's (writer, seq) is an error.
func holdsSame(ctx context.Context, tx *sql.Tx, e recording.Stored, at int64) (bool, error) {
	var (
		old     recording.Stored
		oldAt   int64
		oldData []byte
	)
	err := tx.QueryRowContext(ctx, `SELECT type, session, resource, actor, data, prev_hash, hash, time
		FROM events WHERE writer = ? AND seq = ?`, e.Writer, e.Seq).Scan(&old.Type, &old.Session, &old.Resource,
		&old.Actor, &oldData, &old.PrevHash, &old.Hash, &oldAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: reading event %s/%d: %w", e.Writer, e.Seq, err)
	case oldAt == at && old.Type == e.Type && old.Session == e.Session && old.Resource == e.Resource &&
		old.Actor == e.Actor && bytes.Equal(oldData, e.Data) && bytes.Equal(old.PrevHash, e.PrevHash) && bytes.Equal(old.Hash, e.Hash):
		return true, nil
	}
	return false, fmt.Errorf("store: event %s/%d of the journal (hash %x) differs from the one SQLite holds (hash %x): "+
		"two different events claim one place in the chain", e.Writer, e.Seq, e.Hash, old.Hash)
}
