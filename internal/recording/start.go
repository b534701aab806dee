package recording

import (
	"context"
	"fmt"
	"slices"
)

// Unclosed is a chain found at start that ended without a Final
// checkpoint and has events after its last checkpoint: a process that
// crashed (or a replica that is still running). Its tail stays unsigned.
type Unclosed struct {
	Writer            string `json:"writer"`
	LastCheckpointSeq int64  `json:"last_checkpoint_seq"` // 0: never signed
	LastSeq           int64  `json:"last_seq"`
	Unsigned          int64  `json:"unsigned"` // events after LastCheckpointSeq
}

func (u Unclosed) String() string {
	return fmt.Sprintf("chain %s ended without a closing checkpoint: %d unsigned events after seq %d (a crash?)",
		u.Writer, u.Unsigned, u.LastCheckpointSeq)
}

// chainStart is the data of a chain's first event.
type chainStart struct {
	// The checkpoint this chain starts from (DESIGN: each chain starts from
	// its predecessor's last checkpoint); empty for the first chain.
	Predecessor     string     `json:"predecessor,omitempty"`
	PredecessorSeq  int64      `json:"predecessor_seq,omitempty"`
	PredecessorHash hexBytes   `json:"predecessor_hash,omitempty"`
	KeyID           string     `json:"key_id"`
	Unclosed        []Unclosed `json:"unclosed,omitempty"`
}

// scan looks at every earlier chain: it finds the predecessor (the newest
// chain with a checkpoint) and the chains left unclosed.
func (l *Log) scan(ctx context.Context) (chainStart, error) {
	start := chainStart{KeyID: KeyID(l.PublicKey())}
	writers, err := l.st.Writers(ctx)
	if err != nil {
		return start, fmt.Errorf("recording: listing chains: %w", err)
	}
	if slices.Contains(writers, l.opts.Writer) {
		return start, fmt.Errorf("recording: writer %s already has a chain; every process needs a new writer id (leave it empty)", l.opts.Writer)
	}
	for _, w := range writers {
		cps, err := l.st.Checkpoints(ctx, w)
		if err != nil {
			return start, fmt.Errorf("recording: checkpoints of %s: %w", w, err)
		}
		last, ok := lastCheckpoint(cps)
		if ok {
			start.Predecessor, start.PredecessorSeq, start.PredecessorHash = w, last.Seq, last.Hash
		}
		if last.Final {
			continue
		}
		u, err := l.unsignedTail(ctx, w, last.Seq)
		if err != nil {
			return start, err
		}
		if u.Unsigned > 0 {
			start.Unclosed = append(start.Unclosed, u)
			l.log.Warn("recording: " + u.String())
		}
	}
	l.unclosed = start.Unclosed
	return start, nil
}

// unsignedTail counts a chain's events after seq, a page at a time.
func (l *Log) unsignedTail(ctx context.Context, w string, seq int64) (Unclosed, error) {
	u := Unclosed{Writer: w, LastCheckpointSeq: seq, LastSeq: seq}
	for {
		evs, err := l.st.Events(ctx, w, u.LastSeq+1, pageSize)
		if err != nil {
			return u, fmt.Errorf("recording: events of %s: %w", w, err)
		}
		if len(evs) == 0 {
			return u, nil
		}
		u.Unsigned += int64(len(evs))
		u.LastSeq = evs[len(evs)-1].Seq
	}
}

// lastCheckpoint is the checkpoint with the highest seq (a Final one wins a
// tie).
func lastCheckpoint(cps []Checkpoint) (Checkpoint, bool) {
	var last Checkpoint
	for _, c := range cps {
		if c.Seq > last.Seq || (c.Seq == last.Seq && c.Final) {
			last = c
		}
	}
	return last, len(cps) > 0
}
