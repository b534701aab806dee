package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// run is the committer: the only goroutine that chains, stores and signs.
// One goroutine means one head and no lock around it.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.wake:
			l.drain()
		case <-tick.C:
			if l.head.Seq > l.lastCP.Seq {
				l.checkpoint(false) //nolint:errcheck // logged; the next tick retries
			}
		case <-l.stop:
			l.drain()
			l.closeErr = l.finish()
			return
		}
	}
}

// drain commits everything queued, MaxBatch events at a time.
func (l *Log) drain() {
	for {
		batch := l.take()
		if len(batch) == 0 {
			return
		}
		l.commit(batch)
		if l.head.Seq-l.lastCP.Seq >= int64(l.opts.CheckpointEvery) {
			l.checkpoint(false) //nolint:errcheck // logged; retried after the next batch
		}
	}
}

func (l *Log) take() []pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(l.queue), l.opts.MaxBatch)
	l.batch = append(l.batch[:0], l.queue[:n]...)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:]) // let finished Commits be collected
	l.queue = l.queue[:rest]
	return l.batch
}

// commit chains the batch from the durable head, stores it in one call
// and finishes every Commit. On a store error every Commit fails and the
// head stays where it was, so the next batch chains from the last durable
// hash.
func (l *Log) commit(batch []pending) {
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.c.Finish(0, fmt.Errorf("recording: %w before the event was written", err))
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	l.events = l.events[:0]
	prev := l.head
	// One block for the batch's hashes; never reused, since the events
	// (and the head) keep pointing into it.
	hashes := make([]byte, 0, HashSize*len(live))
	for _, p := range live {
		e := p.e
		e.Writer, e.Seq, e.PrevHash = l.opts.Writer, prev.Seq+1, prev.Hash
		// Time never runs backwards within a chain, so a time window of an
		// export is one contiguous run of events.
		e.Time = eventTime(l.opts.Clock())
		if e.Time.Before(prev.Time) {
			e.Time = prev.Time
		}
		hashes, l.scratch = appendChainHash(hashes, l.scratch, prev.Hash, e)
		e.Hash = hashes[len(hashes)-HashSize : len(hashes) : len(hashes)]
		l.events = append(l.events, e)
		prev = e
	}
	err := l.st.AppendEvents(l.watch.arm(), l.events)
	l.watch.disarm()
	if err != nil {
		err = fmt.Errorf("recording: the event could not be stored, so the operation is refused: %w", err)
		for _, p := range live {
			p.c.Finish(0, err)
		}
		l.log.Error("recording: group commit failed", "writer", l.opts.Writer, "events", len(live), "err", err)
		l.resync()
		return
	}
	l.head = prev
	for i, p := range live {
		p.c.Finish(l.events[i].Seq, nil)
	}
	l.toSinks(l.events)
}

// resync adopts events a failed AppendEvents may have stored anyway (a
// commit whose acknowledgement was lost), so the chain goes on from them
// instead of colliding with their seqs forever.
func (l *Log) resync() {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	evs, err := l.st.Events(ctx, l.opts.Writer, l.head.Seq+1, 0)
	if err != nil {
		return // the next batch finds out whether the store is back
	}
	for _, e := range evs {
		if e.Seq != l.head.Seq+1 || !bytes.Equal(e.PrevHash, l.head.Hash) {
			l.log.Error("recording: stored events do not follow this chain's head", "writer", l.opts.Writer, "seq", e.Seq)
			return
		}
		l.head = e
	}
	if len(evs) > 0 {
		l.log.Warn("recording: a failed commit was stored after all; its operations were refused",
			"writer", l.opts.Writer, "events", len(evs))
		l.toSinks(evs)
	}
}

// checkpoint signs and stores (seq, hash) of the head.
func (l *Log) checkpoint(final bool) error {
	cp := Checkpoint{Writer: l.opts.Writer, Seq: l.head.Seq, Hash: l.head.Hash,
		Time: eventTime(l.opts.Clock()), Final: final}
	SignCheckpoint(l.opts.Key, &cp)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := l.st.AddCheckpoint(ctx, cp); err != nil {
		l.log.Error("recording: checkpoint not stored", "writer", l.opts.Writer, "seq", cp.Seq, "err", err)
		return fmt.Errorf("recording: checkpoint at seq %d: %w", cp.Seq, err)
	}
	l.lastCP = cp
	for _, s := range l.opts.Sinks {
		s.Checkpoint(cp)
	}
	return nil
}

// finish closes the chain: chain.close, then the Final checkpoint over it.
func (l *Log) finish() error {
	data, _ := json.Marshal(map[string]int64{"events": l.head.Seq + 1})
	c := NewCommit()
	l.commit([]pending{{ctx: context.Background(), c: c, e: Stored{Type: TypeChainClose, Data: data}}})
	if err := c.Wait(context.Background()); err != nil {
		return fmt.Errorf("recording: closing the chain %s: %w; its tail stays unsigned", l.opts.Writer, err)
	}
	return l.checkpoint(true)
}

// writeNow commits one bookkeeping event before the committer runs.
func (l *Log) writeNow(ctx context.Context, typ string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c := NewCommit()
	l.commit([]pending{{ctx: ctx, c: c, e: Stored{Type: typ, Data: data}}})
	return c.Wait(ctx)
}

func (l *Log) toSinks(evs []Stored) {
	for _, s := range l.opts.Sinks {
		for _, e := range evs {
			s.Event(e)
		}
	}
}
