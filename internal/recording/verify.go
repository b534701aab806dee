package recording

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Strict makes unsigned events and unclosed chains failures.
	Strict bool
	// Keys are further public keys whose checkpoints count (keys used
	// before a rotation).
	Keys []ed25519.PublicKey
	// Witness is a file sink's file to compare the store with.
	Witness string
}

// Verify recomputes every chain in the store from seq 1, a page at a time:
// seq continuity (a gap is a deletion), hash links (a changed or reordered
// event), and each checkpoint's signature and hash. It reports the first
// broken place of each chain. The error is for a store that cannot be
// read; a broken trail is a Report that is not OK.
func Verify(ctx context.Context, st Store, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	rep := Report{Strict: opts.Strict}
	keys := append([]ed25519.PublicKey{pub}, opts.Keys...)
	writers, err := st.Writers(ctx)
	if err != nil {
		return rep, fmt.Errorf("recording: verify: listing chains: %w", err)
	}
	marks, err := marksByWriter(ctx, st)
	if err != nil {
		return rep, fmt.Errorf("recording: verify: %w", err)
	}
	cache := checkpointCache{st: st, ctx: ctx, byWriter: map[string][]Checkpoint{}, marks: marks}
	known := map[string]bool{}
	for _, w := range writers {
		known[w] = true
	}
	for _, w := range writers {
		c, notes, pruned, err := verifyChain(ctx, st, w, keys, &cache)
		// A live gateway's retention may store a mark and delete what it
		// covers between this run's reads of the marks and of the chain:
		// a chain that looks broken is checked again, whole, when its
		// mark moved meanwhile. Marks are signed and only move forward,
		// so this excuses nothing a fresh run would not.
		for try := 0; err == nil && c.Problem != "" && try < 3; try++ {
			fresh, ferr := marksByWriter(ctx, st)
			if ferr != nil || fresh[w].Through == cache.marks[w].Through {
				break
			}
			cache.marks = fresh
			delete(cache.byWriter, w)
			c, notes, pruned, err = verifyChain(ctx, st, w, keys, &cache)
		}
		if err != nil {
			return rep, err
		}
		// A chain that retention cut stays listed (its kept checkpoint and
		// mark): one that is gone altogether was deleted.
		for _, seq := range slices.Sorted(maps.Keys(pruned)) {
			if gone := pruned[seq]; !known[gone] && c.Problem == "" {
				c.Problem, c.BrokenSeq = fmt.Sprintf("event %d: retention cut chain %s, which is missing from the store (deleted whole?)", seq, gone), seq
			}
		}
		rep.Chains = append(rep.Chains, c)
		rep.Notes = append(rep.Notes, notes...)
	}
	if opts.Witness != "" {
		if err := compareWitness(&rep, &cache, opts.Witness, keys); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// VerifyWitness is Verify with a witness file: every checkpoint the
// witness holds must be in the store with the same hash, and the store's
// chain must reach it. It catches the deletion of a chain's tail together
// with its checkpoints.
func VerifyWitness(ctx context.Context, st Store, witnessFile string, pub ed25519.PublicKey) (Report, error) {
	return Verify(ctx, st, pub, VerifyOptions{Witness: witnessFile})
}

func verifyChain(ctx context.Context, st Store, w string, keys []ed25519.PublicKey, cache *checkpointCache) (ChainReport, []string, map[int64]string, error) {
	cps, err := cache.get(w)
	if err != nil {
		return ChainReport{}, nil, nil, err
	}
	chk := newChainCheck(w, keys, cache.resolve, false)
	if m, ok := cache.marks[w]; ok {
		chk.mark = &m
	}
	for _, cp := range cps {
		chk.checkpoint(cp)
	}
	for from := int64(1); !chk.broken(); {
		page, err := st.Events(ctx, w, from, pageSize)
		if err != nil {
			return ChainReport{}, nil, nil, fmt.Errorf("recording: verify: events of %s: %w", w, err)
		}
		for _, e := range page {
			chk.event(e)
		}
		if len(page) < pageSize {
			break
		}
		from = page[len(page)-1].Seq + 1
	}
	rep := chk.end()
	if chk.err != nil {
		return rep, nil, nil, chk.err
	}
	return rep, chk.notes, chk.pruned, nil
}

// checkpointCache reads each writer's checkpoints once.
type checkpointCache struct {
	st       Store
	ctx      context.Context
	byWriter map[string][]Checkpoint
	marks    map[string]RetentionMark // retention marks by writer
}

func (c *checkpointCache) get(w string) ([]Checkpoint, error) {
	if cps, ok := c.byWriter[w]; ok {
		return cps, nil
	}
	cps, err := c.st.Checkpoints(c.ctx, w)
	if err != nil {
		return nil, fmt.Errorf("recording: verify: checkpoints of %s: %w", w, err)
	}
	c.byWriter[w] = cps
	return cps, nil
}

func (c *checkpointCache) resolve(w string, seq int64) ([]byte, bool, error) {
	cps, err := c.get(w)
	if err != nil {
		return nil, false, err
	}
	if h, ok := findCheckpoint(cps, seq); ok {
		return h, true, nil
	}
	if n := len(cps); n > 0 && cps[n-1].Seq > seq {
		return nil, false, nil // a gap in what the store holds
	}
	// A live gateway signs on while verify runs, and its sinks get each
	// checkpoint after the store has it: a witness checkpoint newer than
	// what was read is looked up once more before it counts as deleted.
	delete(c.byWriter, w)
	if cps, err = c.get(w); err != nil {
		return nil, false, err
	}
	h, ok := findCheckpoint(cps, seq)
	return h, ok, nil
}

func findCheckpoint(cps []Checkpoint, seq int64) ([]byte, bool) {
	for _, cp := range cps {
		if cp.Seq == seq {
			return cp.Hash, true
		}
	}
	return nil, false
}

// grewSince reports whether the store now holds event seq of writer with
// hash: the chain grew after it was verified (a live gateway), rather than
// losing its tail.
func (c *checkpointCache) grewSince(w string, seq int64, hash []byte) bool {
	evs, err := c.st.Events(c.ctx, w, seq, 1)
	return err == nil && len(evs) == 1 && evs[0].Seq == seq && bytes.Equal(evs[0].Hash, hash)
}

// maxLine bounds one JSON line read from a file (an event with captured
// result rows can be large; a longer line is not ours).
const maxLine = 64 << 20

// compareWitness checks every checkpoint of the witness file against the
// store and the verified chains.
func compareWitness(rep *Report, cache *checkpointCache, path string, keys []ed25519.PublicKey) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("recording: witness: %w", err)
	}
	defer f.Close()
	chains := map[string]ChainReport{}
	for _, c := range rep.Chains {
		chains[c.Writer] = c
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxLine)
	bad := 0
	for n := 1; sc.Scan(); n++ {
		if !bytes.Contains(sc.Bytes(), []byte(`"kind":"checkpoint"`)) {
			continue // events: the checkpoints are what the witness vouches for
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			bad++
			continue
		}
		if p := witnessCheckpoint(cache, chains, l.Checkpoint(), keys); p != "" {
			rep.Witness = append(rep.Witness, fmt.Sprintf("witness line %d: %s", n, p))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("recording: witness %s: %w", path, err)
	}
	if bad > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("witness %s: %d unreadable lines skipped (a torn write?)", path, bad))
	}
	return nil
}

func witnessCheckpoint(cache *checkpointCache, chains map[string]ChainReport, cp Checkpoint, keys []ed25519.PublicKey) string {
	if !CheckSignature(cp, keys...) {
		return fmt.Sprintf("checkpoint of %s at seq %d: the signature does not verify (not this trail's key?)", cp.Writer, cp.Seq)
	}
	if m, ok := cache.marks[cp.Writer]; ok && cp.Seq < m.Through && CheckRetentionMark(m, keys...) {
		return "" // deleted by retention, which a signed mark says
	}
	hash, found, err := cache.resolve(cp.Writer, cp.Seq)
	if err != nil {
		return err.Error()
	}
	if !found {
		return fmt.Sprintf("checkpoint of %s at seq %d is missing from the store (the tail was deleted with its checkpoints)", cp.Writer, cp.Seq)
	}
	if !bytes.Equal(hash, cp.Hash) {
		return fmt.Sprintf("checkpoint of %s at seq %d has another hash in the store (replaced)", cp.Writer, cp.Seq)
	}
	if c := chains[cp.Writer]; c.LastSeq < cp.Seq && c.Problem == "" && !cache.grewSince(cp.Writer, cp.Seq, cp.Hash) {
		return fmt.Sprintf("chain %s ends at seq %d, before the witness's checkpoint at seq %d (the tail was deleted)", cp.Writer, c.LastSeq, cp.Seq)
	}
	return ""
}
