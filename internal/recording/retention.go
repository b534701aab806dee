package recording

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TypeRetention is the Log's record of one chain's old segments about to be
// deleted: written durably before anything is deleted, like every other
// effect.
const TypeRetention = "retention"

// retentionTag keeps a retention mark's signed encoding apart from events
// and checkpoints.
const retentionTag = "countersign.retention.v1"

// deleteChunk bounds the events one delete removes: on SQLite the delete
// holds the write lock, which the group commit of every operation needs.
const deleteChunk = 5000

// RetentionMark says, under the trail's key, that a chain's events 1..Through
// were deleted by retention and that Hash was the chain hash at Through (the
// hash its kept checkpoint signs). Verify accepts a chain whose first
// stored event is Through+1 (or earlier) only with a mark that verifies;
// without one, a missing head is a deletion. One mark per writer; a newer
// mark replaces an older one with a lower Through.
type RetentionMark struct {
	Writer    string
	Through   int64
	Hash      []byte
	Time      time.Time
	Signature []byte
	KeyID     string
}

// retentionMessage is what a mark's signature covers: the tag, writer,
// through, hash and time, in the checkpoint's field encoding.
func retentionMessage(m RetentionMark) []byte {
	b := make([]byte, 0, 64+len(m.Writer)+len(m.Hash))
	b = appendField(b, retentionTag)
	b = appendField(b, m.Writer)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Through))
	b = appendField(b, m.Hash)
	return binary.BigEndian.AppendUint64(b, uint64(m.Time.UnixNano()))
}

// SignRetentionMark fills m.KeyID and m.Signature.
func SignRetentionMark(key ed25519.PrivateKey, m *RetentionMark) {
	m.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	m.Signature = ed25519.Sign(key, retentionMessage(*m))
}

// CheckRetentionMark reports whether one of keys signed m.
func CheckRetentionMark(m RetentionMark, keys ...ed25519.PublicKey) bool {
	return signedByOne(retentionMessage(m), m.Signature, keys)
}

// Pruner is a Store that retention can delete old segments from.
// internal/store's SQLite and PostgreSQL stores are Pruners.
type Pruner interface {
	Store
	// DeleteEvents deletes at most limit of writer's events with
	// Seq <= throughSeq, lowest seq first, and says how many it deleted.
	DeleteEvents(ctx context.Context, writer string, throughSeq int64, limit int) (int64, error)
	// DeleteCheckpoints deletes writer's checkpoints with Seq < beforeSeq,
	// except those whose seq is in keep.
	DeleteCheckpoints(ctx context.Context, writer string, beforeSeq int64, keep []int64) (int64, error)
	// PutRetentionMark stores m unless the writer has a mark with a higher
	// or equal Through.
	PutRetentionMark(ctx context.Context, m RetentionMark) error
	// RetentionMarks lists every writer's mark.
	RetentionMarks(ctx context.Context) ([]RetentionMark, error)
}

// markReader is what Verify needs to accept chains that retention cut.
type markReader interface {
	RetentionMarks(ctx context.Context) ([]RetentionMark, error)
}

// retentionEvent is the data of a TypeRetention event.
type retentionEvent struct {
	Writer  string    `json:"writer"`
	Through int64     `json:"through"`
	Hash    hexBytes  `json:"hash"`
	Cutoff  time.Time `json:"cutoff"`
	From    int64     `json:"from"` // first event stored before this run
}

// Pruned is what retention did to one chain.
type Pruned struct {
	Writer      string
	Through     int64 // events up to here are gone; the checkpoint here stays
	Events      int64 // deleted by this run
	Checkpoints int64
}

// RetentionResult is what one Retain run did.
type RetentionResult struct {
	Pruned []Pruned
	// Refused names chains left alone because the part to be deleted did
	// not verify: deleting it would hide the break ('audit verify' says
	// where).
	Refused []string
}

// Retain deletes, chain by chain, the whole segments whose signed
// checkpoint is older than cutoff: every event up to the newest checkpoint
// signed before cutoff (the anchor), and the checkpoints before it. What
// remains verifies: the anchor checkpoint stays and its signature vouches
// for the hash the first kept event follows, and a signed RetentionMark
// says that the head is gone on purpose. Events after a chain's last
// checkpoint are never deleted.
//
// Before deleting, Retain verifies the segment it deletes (a break there
// would otherwise vanish under a signed mark) and appends a TypeRetention
// event to this Log's chain, durably. A chain whose segment does not
// verify is left alone and named in Refused.
func (l *Log) Retain(ctx context.Context, st Pruner, cutoff time.Time) (RetentionResult, error) {
	var res RetentionResult
	keys := []ed25519.PublicKey{l.PublicKey()}
	marks, err := marksByWriter(ctx, st)
	if err != nil {
		return res, err
	}
	writers, err := st.Writers(ctx)
	if err != nil {
		return res, fmt.Errorf("recording: retention: listing chains: %w", err)
	}
	keep, err := predecessorCheckpoints(ctx, st, writers)
	if err != nil {
		return res, err
	}
	for _, w := range writers {
		cps, err := st.Checkpoints(ctx, w)
		if err != nil {
			return res, fmt.Errorf("recording: retention: checkpoints of %s: %w", w, err)
		}
		var anchor Checkpoint
		for _, cp := range cps {
			if cp.Time.Before(cutoff) && cp.Seq > anchor.Seq {
				anchor = cp
			}
		}
		mark, marked := marks[w]
		if marked {
			// The mark is read from the store, which whoever attacks the
			// trail can write: a forged one reaching past the last
			// checkpoint would have this process delete the unsigned tail.
			// Only a mark under the trail's key, at a signed checkpoint of
			// the same hash, is an order to delete.
			if problem := markProblem(mark, cps, keys); problem != "" {
				l.log.Error("recording: retention left a chain alone: its retention mark is not one retention wrote; run 'countersign audit verify'",
					"writer", w, "problem", problem)
				res.Refused = append(res.Refused, fmt.Sprintf("writer %s: %s", w, problem))
				continue
			}
		}
		if marked && anchor.Seq <= mark.Through {
			// Already cut there; finish a run that was interrupted while
			// deleting (the mark and the record are written first).
			p, err := resume(ctx, st, mark, keep[w])
			if err != nil {
				return res, err
			}
			if p.Events > 0 || p.Checkpoints > 0 {
				res.Pruned = append(res.Pruned, p)
			}
			continue
		}
		if anchor.Seq == 0 {
			continue // nothing old enough
		}
		from, problem, err := checkSegment(ctx, st, w, cps, anchor, mark, marked, keys)
		if err != nil {
			return res, err
		}
		if problem != "" {
			l.log.Error("recording: retention left a chain alone: the part it would delete does not verify; run 'countersign audit verify'",
				"writer", w, "problem", problem)
			res.Refused = append(res.Refused, fmt.Sprintf("writer %s: %s", w, problem))
			continue
		}
		p, err := l.cut(ctx, st, anchor, from, cutoff, keep[w])
		if err != nil {
			return res, err
		}
		res.Pruned = append(res.Pruned, p)
	}
	return res, nil
}

// cut records, marks and deletes one chain's head up to anchor.
func (l *Log) cut(ctx context.Context, st Pruner, anchor Checkpoint, from int64, cutoff time.Time, keep []int64) (Pruned, error) {
	w := anchor.Writer
	ev := retentionEvent{Writer: w, Through: anchor.Seq, Hash: anchor.Hash, Cutoff: cutoff.UTC(), From: from}
	if err := l.Append(ctx, Event{Type: TypeRetention, Data: ev}).Wait(ctx); err != nil {
		return Pruned{Writer: w}, fmt.Errorf("recording: retention of %s not recorded, so nothing was deleted: %w", w, err)
	}
	m := RetentionMark{Writer: w, Through: anchor.Seq, Hash: anchor.Hash, Time: eventTime(l.opts.Clock())}
	SignRetentionMark(l.opts.Key, &m)
	if err := st.PutRetentionMark(ctx, m); err != nil {
		return Pruned{Writer: w}, fmt.Errorf("recording: retention mark of %s: %w; nothing was deleted", w, err)
	}
	p, err := resume(ctx, st, m, keep)
	if err == nil {
		l.log.Info("recording: retention deleted old events", "writer", w, "through_seq", anchor.Seq,
			"events", p.Events, "checkpoints", p.Checkpoints)
	}
	return p, err
}

// resume deletes what a mark covers: events through it, chunk by chunk,
// and the checkpoints before it but those in keep.
func resume(ctx context.Context, st Pruner, m RetentionMark, keep []int64) (Pruned, error) {
	p := Pruned{Writer: m.Writer, Through: m.Through}
	for {
		n, err := st.DeleteEvents(ctx, m.Writer, m.Through, deleteChunk)
		p.Events += n
		if err != nil {
			return p, fmt.Errorf("recording: retention: deleting events of %s: %w (the next run goes on; what is deleted is covered by its mark)", m.Writer, err)
		}
		if n < deleteChunk {
			break
		}
	}
	n, err := st.DeleteCheckpoints(ctx, m.Writer, m.Through, keep)
	p.Checkpoints = n
	if err != nil {
		return p, fmt.Errorf("recording: retention: deleting checkpoints of %s: %w", m.Writer, err)
	}
	return p, nil
}

// checkSegment verifies writer w's stored events up to the anchor: they
// must chain, reach the anchor with its hash, and start at seq 1 or right
// after what an earlier mark covers. It returns the first stored seq and
// the problem found ("" when the segment verifies).
func checkSegment(ctx context.Context, st Store, w string, cps []Checkpoint, anchor Checkpoint,
	mark RetentionMark, marked bool, keys []ed25519.PublicKey) (int64, string, error) {
	// A window check takes the first event's prev_hash as given; whether
	// that start is allowed is judged here, against the mark.
	chk := newChainCheck(w, keys, func(string, int64) ([]byte, bool, error) { return nil, false, nil }, true)
	for _, cp := range cps {
		if cp.Seq <= anchor.Seq {
			chk.checkpoint(cp)
		}
	}
	first := int64(0)
	for from := int64(1); !chk.broken(); {
		page, err := st.Events(ctx, w, from, pageSize)
		if err != nil {
			return 0, "", fmt.Errorf("recording: retention: events of %s: %w", w, err)
		}
		for _, e := range page {
			if first == 0 {
				first = e.Seq
			}
			if e.Seq > anchor.Seq {
				page = nil
				break
			}
			chk.event(e)
		}
		if len(page) < pageSize {
			break
		}
		from = page[len(page)-1].Seq + 1
	}
	if first == 0 {
		return 0, fmt.Sprintf("no events are stored up to the checkpoint at %d", anchor.Seq), nil
	}
	if first > 1 {
		if err := excuse(markOrNil(mark, marked), first, keys); err != nil {
			return first, fmt.Sprintf("%s (%v)", missing(1, first-1), err), nil
		}
	}
	rep := chk.end()
	switch {
	case rep.Problem != "":
		return first, rep.Problem, nil
	case rep.SignedSeq != anchor.Seq:
		return first, fmt.Sprintf("the events do not reach the checkpoint at %d", anchor.Seq), nil
	}
	return first, "", nil
}

// markProblem says why a stored mark must not be acted on ("" when it may):
// it must verify under keys and name a checkpoint that verifies and signs
// the same hash (retention keeps that checkpoint).
func markProblem(m RetentionMark, cps []Checkpoint, keys []ed25519.PublicKey) string {
	if !CheckRetentionMark(m, keys...) {
		return fmt.Sprintf("its retention mark (through seq %d) does not verify (forged, changed, or signed by another key, id %s)", m.Through, m.KeyID)
	}
	for _, cp := range cps {
		if cp.Seq == m.Through && bytes.Equal(cp.Hash, m.Hash) && CheckSignature(cp, keys...) {
			return ""
		}
	}
	return fmt.Sprintf("its retention mark (through seq %d) names no signed checkpoint with its hash", m.Through)
}

func markOrNil(m RetentionMark, ok bool) *RetentionMark {
	if !ok {
		return nil
	}
	return &m
}

// predecessorCheckpoints are the checkpoints that a stored chain.start
// names: the chain after them starts from their hash, so they stay.
func predecessorCheckpoints(ctx context.Context, st Store, writers []string) (map[string][]int64, error) {
	keep := map[string][]int64{}
	for _, w := range writers {
		evs, err := st.Events(ctx, w, 1, 1)
		if err != nil {
			return nil, fmt.Errorf("recording: retention: first event of %s: %w", w, err)
		}
		if len(evs) == 0 || evs[0].Seq != 1 || evs[0].Type != TypeChainStart {
			continue
		}
		var s chainStart
		if json.Unmarshal(evs[0].Data, &s) == nil && s.Predecessor != "" {
			keep[s.Predecessor] = append(keep[s.Predecessor], s.PredecessorSeq)
		}
	}
	return keep, nil
}

// marksByWriter reads the retention marks of a store that keeps them.
func marksByWriter(ctx context.Context, st Store) (map[string]RetentionMark, error) {
	out := map[string]RetentionMark{}
	mr, ok := st.(markReader)
	if !ok {
		return out, nil
	}
	ms, err := mr.RetentionMarks(ctx)
	if err != nil {
		return nil, fmt.Errorf("recording: reading retention marks: %w", err)
	}
	for _, m := range ms {
		if have, ok := out[m.Writer]; !ok || m.Through > have.Through {
			out[m.Writer] = m
		}
	}
	return out, nil
}

// errNoMark is why a missing head is not excused.
var errNoMark = errors.New("no retention mark")

// excuse says whether a chain whose first stored event is first may start
// there: a mark signed by one of keys covers every seq before it.
func excuse(m *RetentionMark, first int64, keys []ed25519.PublicKey) error {
	switch {
	case m == nil:
		return errNoMark
	case !CheckRetentionMark(*m, keys...):
		return fmt.Errorf("its retention mark (through seq %d) does not verify (forged, changed, or signed by another key, id %s)", m.Through, m.KeyID)
	case m.Through < first-1:
		return fmt.Errorf("its retention mark covers only seq 1-%d", m.Through)
	}
	return nil
}
