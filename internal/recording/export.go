package recording

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Export writes the trail as JSON lines (Line): per writer, oldest first,
// its events in seq order with prev_hash and hash, each checkpoint right
// after the event it covers. since and until (zero: unbounded) select the
// contiguous run of events with since <= time < until; event times never
// run backwards within a chain, so a window is one run that VerifyExport
// checks from its first event's prev_hash.
func Export(ctx context.Context, st Store, w io.Writer, since, until time.Time) error {
	writers, err := st.Writers(ctx)
	if err != nil {
		return fmt.Errorf("recording: export: listing chains: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	for _, wr := range writers {
		if err := exportChain(ctx, st, bw, wr, since, until); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("recording: export: %w", err)
	}
	return nil
}

func exportChain(ctx context.Context, st Store, w *bufio.Writer, writer string, since, until time.Time) error {
	cps, err := st.Checkpoints(ctx, writer)
	if err != nil {
		return fmt.Errorf("recording: export: checkpoints of %s: %w", writer, err)
	}
	slices.SortStableFunc(cps, func(a, b Checkpoint) int { return int(a.Seq - b.Seq) })
	for from := int64(1); ; {
		page, err := st.Events(ctx, writer, from, pageSize)
		if err != nil {
			return fmt.Errorf("recording: export: events of %s: %w", writer, err)
		}
		for _, e := range page {
			if !until.IsZero() && !e.Time.Before(until) {
				return nil
			}
			for len(cps) > 0 && cps[0].Seq < e.Seq {
				cps = cps[1:] // before the window
			}
			if e.Time.Before(since) {
				continue
			}
			if _, err := w.Write(marshalLine(EventLine(e))); err != nil {
				return fmt.Errorf("recording: export: %w", err)
			}
			for len(cps) > 0 && cps[0].Seq == e.Seq {
				if _, err := w.Write(marshalLine(CheckpointLine(cps[0]))); err != nil {
					return fmt.Errorf("recording: export: %w", err)
				}
				cps = cps[1:]
			}
		}
		if len(page) < pageSize {
			return nil
		}
		from = page[len(page)-1].Seq + 1
	}
}

// VerifyExport verifies an export (or a file sink's file) without a store:
// each writer's events must follow each other, every hash must recompute,
// and every checkpoint in it must carry pub's signature over the
// recomputed hash at its seq. An export of a window that starts after seq 1
// is verified from its first event's prev_hash (a Note says so). Set
// Report.Strict to fail on unsigned tails too.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	keys := []ed25519.PublicKey{pub}
	seen := map[string]map[int64][]byte{} // checkpoints read so far
	resolve := func(w string, seq int64) ([]byte, bool, error) {
		h, ok := seen[w][seq]
		return h, ok, nil
	}
	checks := map[string]*chainCheck{}
	var order []string
	chain := func(w string) *chainCheck {
		if c, ok := checks[w]; ok {
			return c
		}
		c := newChainCheck(w, keys, resolve, true)
		checks[w] = c
		order = append(order, w)
		return c
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return rep, fmt.Errorf("recording: line %d is not a trail line: %w", n, err)
		}
		switch l.Kind {
		case LineEvent:
			chain(l.Writer).event(l.Stored())
		case LineCheckpoint:
			if seen[l.Writer] == nil {
				seen[l.Writer] = map[int64][]byte{}
			}
			seen[l.Writer][l.Seq] = l.Hash
			chain(l.Writer).checkpoint(l.Checkpoint())
		default:
			return rep, fmt.Errorf("recording: line %d: unknown kind %q", n, l.Kind)
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("recording: reading the export: %w", err)
	}
	for _, w := range order {
		c := checks[w]
		rep.Chains = append(rep.Chains, c.end())
		rep.Notes = append(rep.Notes, c.notes...)
	}
	return rep, nil
}
