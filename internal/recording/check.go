package recording

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// lookahead is how many events the checker holds back, so that an event
// whose predecessor link points at a later event is named as reordered
// rather than merely changed.
const lookahead = 16

// resolveFunc finds the hash of writer's checkpoint at seq.
type resolveFunc func(writer string, seq int64) (hash []byte, found bool, err error)

// chainCheck verifies one writer's events, fed in order, against the
// checkpoints it was given. It stops at the first broken place.
type chainCheck struct {
	rep     ChainReport
	keys    []ed25519.PublicKey
	resolve resolveFunc
	// window: the events may start after seq 1 (an export of a time
	// window); the first one's PrevHash is taken as given.
	window bool
	// mark: the chain's retention mark, when the store has one. A chain
	// that starts after seq 1 must have a mark that covers the gap.
	mark *RetentionMark
	// pruned: the chains this chain's verified retention events name, by
	// the seq of the event; each must still be in the store.
	pruned map[int64]string
	notes  []string

	prev    []byte
	started bool
	held    []Stored               // events not yet checked (the lookahead)
	cps     map[int64][]Checkpoint // checkpoints not yet reached, by seq
	lastCP  Checkpoint
	scratch []byte
	err     error // a store error from resolve
}

func newChainCheck(writer string, keys []ed25519.PublicKey, resolve resolveFunc, window bool) *chainCheck {
	return &chainCheck{rep: ChainReport{Writer: writer}, keys: keys, resolve: resolve,
		window: window, cps: map[int64][]Checkpoint{}}
}

func (c *chainCheck) broken() bool { return c.rep.Problem != "" || c.err != nil }

func (c *chainCheck) fail(seq int64, format string, args ...any) {
	if c.rep.Problem == "" {
		c.rep.Problem, c.rep.BrokenSeq = fmt.Sprintf(format, args...), seq
	}
}

// checkpoint registers a checkpoint; it is checked when the chain reaches
// its seq.
func (c *chainCheck) checkpoint(cp Checkpoint) {
	if c.broken() {
		return
	}
	if cp.Seq <= c.rep.LastSeq && c.started {
		c.fail(cp.Seq, "checkpoint at seq %d comes after event %d, out of place", cp.Seq, c.rep.LastSeq)
		return
	}
	c.cps[cp.Seq] = append(c.cps[cp.Seq], cp)
}

// event feeds the next event.
func (c *chainCheck) event(e Stored) {
	if c.broken() {
		return
	}
	c.held = append(c.held, e)
	if len(c.held) > lookahead {
		c.step(c.held[0], c.held[1:])
		c.held = c.held[:copy(c.held, c.held[1:])]
	}
}

// end checks the held events and what is left of the checkpoints.
func (c *chainCheck) end() ChainReport {
	for i := range c.held {
		if c.broken() {
			break
		}
		c.step(c.held[i], c.held[i+1:])
	}
	c.held = nil
	if !c.started && !c.broken() && c.mark != nil && !c.window {
		c.allRetained()
	}
	if !c.broken() {
		for seq := range c.cps {
			if seq > c.rep.LastSeq {
				c.fail(seq, "checkpoint at seq %d covers events that are missing (the tail was deleted)", seq)
			}
		}
	}
	if c.rep.Problem == "" {
		c.rep.Unsigned = c.rep.LastSeq - c.rep.SignedSeq
		c.rep.Closed = c.lastCP.Final && c.lastCP.Seq == c.rep.LastSeq && c.rep.LastSeq > 0
	}
	return c.rep
}

func (c *chainCheck) step(e Stored, next []Stored) {
	want := c.rep.LastSeq + 1
	if !c.started {
		c.rep.FirstSeq = e.Seq
		switch {
		case e.Seq != 1 && !c.window:
			if !c.startRetained(e) {
				return
			}
		case !c.startFrom(e):
			return
		}
		want = e.Seq
	}
	switch {
	case e.Seq < want:
		c.fail(e.Seq, "events out of order at %d (seq %d appears twice or late)", e.Seq, e.Seq)
		return
	case e.Seq > want:
		c.fail(want, "%s", missing(want, e.Seq-1))
		return
	}
	if !bytes.Equal(e.PrevHash, c.prev) {
		c.badLink(e, next)
		return
	}
	var h []byte
	h, c.scratch = ChainHash(c.scratch, c.prev, e)
	if !bytes.Equal(h, e.Hash) {
		c.fail(e.Seq, "event %d: hash mismatch (the event was changed)", e.Seq)
		return
	}
	if c.mark != nil && e.Seq == c.mark.Through && !bytes.Equal(h, c.mark.Hash) {
		c.fail(e.Seq, "event %d: hash differs from the one its retention mark names (the event was changed)", e.Seq)
		return
	}
	c.prev, c.rep.LastSeq, c.started = h, e.Seq, true
	c.rep.Events++
	if e.Type == TypeRetention {
		var r retentionEvent
		if json.Unmarshal(e.Data, &r) == nil && r.Writer != "" {
			if c.pruned == nil {
				c.pruned = map[int64]string{}
			}
			c.pruned[e.Seq] = r.Writer
		}
	}
	c.reach(e.Seq, h)
}

func missing(from, to int64) string {
	if from == to {
		return fmt.Sprintf("event %d missing (deleted)", from)
	}
	return fmt.Sprintf("events %d-%d missing (deleted)", from, to)
}

// badLink names why e does not follow the previous event.
func (c *chainCheck) badLink(e Stored, next []Stored) {
	for _, n := range next {
		if bytes.Equal(n.Hash, e.PrevHash) {
			c.fail(e.Seq, "events out of order at %d (it follows event %d's content)", e.Seq, n.Seq)
			return
		}
	}
	if e.Seq == c.rep.FirstSeq {
		c.fail(e.Seq, "event %d: does not start from the hash its chain names (the start was changed)", e.Seq)
		return
	}
	c.fail(e.Seq, "event %d: does not follow event %d (an event was deleted and the rest renumbered, or event %d was changed and rehashed)",
		e.Seq, e.Seq-1, e.Seq-1)
}

// startFrom sets the hash the chain starts from: a window's first
// PrevHash, the predecessor checkpoint a chain.start names, or zeros.
func (c *chainCheck) startFrom(e Stored) bool {
	if e.Seq != 1 {
		c.prev = e.PrevHash
		c.notes = append(c.notes, fmt.Sprintf("writer %s: starts at seq %d; its first prev_hash is taken as given", c.rep.Writer, e.Seq))
		return true
	}
	c.prev = zeroHash
	if e.Type != TypeChainStart {
		return true
	}
	var st chainStart
	if err := json.Unmarshal(e.Data, &st); err != nil || st.Predecessor == "" {
		return true // a changed start fails its own hash next
	}
	c.prev = st.PredecessorHash
	hash, found, err := c.resolve(st.Predecessor, st.PredecessorSeq)
	switch {
	case err != nil:
		c.err = err
		return false
	case !found && c.window:
		c.notes = append(c.notes, fmt.Sprintf("writer %s: starts from checkpoint %d of %s, which this file does not hold",
			c.rep.Writer, st.PredecessorSeq, st.Predecessor))
	case !found:
		c.fail(1, "event 1: starts from checkpoint %d of %s, which is missing (was that chain deleted?)", st.PredecessorSeq, st.Predecessor)
		return false
	case !bytes.Equal(hash, st.PredecessorHash):
		c.fail(1, "event 1: the checkpoint it starts from (%s at seq %d) has another hash", st.Predecessor, st.PredecessorSeq)
		return false
	}
	return true
}

// reach checks the checkpoints at seq against the recomputed hash h.
func (c *chainCheck) reach(seq int64, h []byte) {
	cps, ok := c.cps[seq]
	if !ok {
		return
	}
	delete(c.cps, seq)
	for _, cp := range cps {
		if !CheckSignature(cp, c.keys...) {
			c.fail(seq, "checkpoint at seq %d: the signature does not verify (signed by another key, id %s, or changed)", seq, cp.KeyID)
			return
		}
		if !bytes.Equal(cp.Hash, h) {
			c.fail(seq, "checkpoint at seq %d does not match the chain (events up to %d were changed and rehashed)", seq, seq)
			return
		}
		c.rep.Checkpoints++
		c.rep.SignedSeq = seq
		if cp.Seq > c.lastCP.Seq || cp.Final {
			c.lastCP = cp
		}
	}
}

// startRetained judges a chain whose first stored event comes after seq 1:
// only a retention mark signed by the trail's key excuses the gap. The
// first event then follows its prev_hash as given, and the checkpoint
// retention kept right before it (when stored) must sign that hash.
func (c *chainCheck) startRetained(e Stored) bool {
	if err := excuse(c.mark, e.Seq, c.keys); err != nil {
		switch {
		case errors.Is(err, errNoMark):
			c.fail(1, "%s", missing(1, e.Seq-1))
		case CheckRetentionMark(*c.mark, c.keys...):
			c.fail(c.mark.Through+1, "%s (retention removed only events 1-%d)", missing(c.mark.Through+1, e.Seq-1), c.mark.Through)
		default:
			c.fail(1, "%s: %v", missing(1, e.Seq-1), err)
		}
		return false
	}
	c.prev = e.PrevHash
	c.rep.Retained = e.Seq - 1
	if e.Seq-1 == c.mark.Through && !bytes.Equal(e.PrevHash, c.mark.Hash) {
		c.fail(e.Seq, "event %d: does not follow the hash its retention mark names (the start was changed)", e.Seq)
		return false
	}
	if _, ok := c.cps[e.Seq-1]; ok {
		c.reach(e.Seq-1, e.PrevHash)
		if c.broken() {
			return false
		}
	}
	c.notes = append(c.notes, fmt.Sprintf("writer %s: events 1-%d were deleted by retention (mark signed %s); verified from seq %d",
		c.rep.Writer, e.Seq-1, c.mark.Time.UTC().Format(time.RFC3339), e.Seq))
	return true
}

// allRetained judges a chain whose every event retention deleted: its mark
// must verify and the checkpoint it kept must sign the mark's hash.
func (c *chainCheck) allRetained() {
	m := c.mark
	if err := excuse(m, m.Through+1, c.keys); err != nil {
		c.fail(1, "no events are stored: %v", err)
		return
	}
	c.rep.FirstSeq, c.rep.LastSeq, c.rep.Retained = m.Through+1, m.Through, m.Through
	if _, ok := c.cps[m.Through]; !ok {
		c.fail(m.Through, "the checkpoint at seq %d that retention kept is missing", m.Through)
		return
	}
	c.reach(m.Through, m.Hash)
	if !c.broken() {
		c.notes = append(c.notes, fmt.Sprintf("writer %s: all its events (1-%d) were deleted by retention (mark signed %s)",
			c.rep.Writer, m.Through, m.Time.UTC().Format(time.RFC3339)))
	}
}
