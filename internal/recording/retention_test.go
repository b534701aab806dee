package recording_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// clock is a settable Clock: retention judges age by the times events
// and checkpoints carry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

// agedTrail is an old closed chain (seq 1 chain.start, 2-51 written on day
// 0, 52-101 on day 10, 102 chain.close; checkpoints every 20 and a Final
// one at 102, all kept by a witness file) and a running chain opened on
// day 20 that applies retention.
type agedTrail struct {
	key     ed25519.PrivateKey
	old     string
	witness string
	clock   *clock
	log     *recording.Log
}

func (a agedTrail) pub() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

func writeAged(t *testing.T, st recording.Store) agedTrail {
	t.Helper()
	ctx := context.Background()
	a := agedTrail{key: newKey(t), clock: &clock{t: day(0)}, witness: filepath.Join(t.TempDir(), "witness.jsonl")}
	sink, err := recording.NewFileSink(a.witness, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := openLog(t, st, recording.Options{Key: a.key, CheckpointEvery: 20, Clock: a.clock.now, Sinks: []recording.Sink{sink}})
	a.old = old.Writer()
	for i := range 100 {
		if i == 50 {
			a.clock.set(day(10))
		}
		c := old.Append(ctx, recording.Event{Type: recording.TypeOperation, SessionID: "s-1", Resource: "pg-prod",
			Data: map[string]any{"n": i, "text": "update t set x = 7"}})
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a.clock.set(day(20))
	a.log = openLog(t, st, recording.Options{Key: a.key, Clock: a.clock.now})
	t.Cleanup(func() { a.log.Close(context.Background()) })
	return a
}

// lastCheckpointBefore is where retention must cut: the newest checkpoint
// signed before cutoff.
func lastCheckpointBefore(t *testing.T, st recording.Store, w string, cutoff time.Time) int64 {
	t.Helper()
	cps, err := st.Checkpoints(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	for _, c := range cps {
		if c.Time.Before(cutoff) && c.Seq > seq {
			seq = c.Seq
		}
	}
	return seq
}

func retain(t *testing.T, a agedTrail, st recording.Pruner, cutoff time.Time) recording.RetentionResult {
	t.Helper()
	res, err := a.log.Retain(context.Background(), st, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runRetention deletes the old chain's segments signed before day 5, checks
// that the rest verifies (with the witness too), then attacks what is left
// and demands that verify names the broken place.
func runRetention(t *testing.T, newStore func(t *testing.T) tamperStore) {
	tests := []struct {
		name    string
		attack  func(t *testing.T, st tamperStore, w string, cut int64)
		problem string // substring of the old chain's Problem; "" = intact
		seq     func(cut int64) int64
	}{
		{name: "intact", attack: func(*testing.T, tamperStore, string, int64) {}},
		{name: "event after the cut deleted", problem: "event 60 missing (deleted)", seq: func(int64) int64 { return 60 },
			attack: func(t *testing.T, st tamperStore, w string, _ int64) { st.deleteEvent(t, w, 60) }},
		{name: "first kept event deleted too", problem: "missing (deleted) (retention removed only events 1-", seq: func(c int64) int64 { return c + 1 },
			attack: func(t *testing.T, st tamperStore, w string, cut int64) { st.deleteEvent(t, w, cut+1) }},
		{name: "first kept event changed", problem: "hash mismatch (the event was changed)", seq: func(c int64) int64 { return c + 1 },
			attack: func(t *testing.T, st tamperStore, w string, cut int64) { st.changeData(t, w, cut+1) }},
		{name: "mark moved forward without the key", problem: "retention mark (through seq", seq: func(int64) int64 { return 1 },
			attack: func(t *testing.T, st tamperStore, w string, cut int64) {
				st.setMarkThrough(t, w, cut+5)
				for s := cut + 1; s <= cut+5; s++ {
					st.deleteEvent(t, w, s)
				}
			}},
		{name: "mark deleted", problem: "missing (deleted)", seq: func(int64) int64 { return 1 },
			attack: func(t *testing.T, st tamperStore, w string, _ int64) { st.deleteMark(t, w) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := newStore(t)
			a := writeAged(t, st)
			cut := lastCheckpointBefore(t, st, a.old, day(5))
			if cut < 20 || cut > 51 {
				t.Fatalf("no checkpoint of day 0 to cut at (got seq %d)", cut)
			}
			res := retain(t, a, st, day(5))
			if len(res.Pruned) != 1 || res.Pruned[0].Writer != a.old || res.Pruned[0].Through != cut ||
				res.Pruned[0].Events != cut || len(res.Refused) != 0 {
				t.Fatalf("retention: %+v; want %s cut through %d", res, a.old, cut)
			}
			if evs, _ := st.Events(ctx, a.old, 1, 1); len(evs) != 1 || evs[0].Seq != cut+1 {
				t.Fatalf("after retention the old chain starts at %v, want seq %d", evs, cut+1)
			}
			tc.attack(t, st, a.old, cut)
			rep, err := recording.Verify(ctx, st, a.pub(), recording.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Chains[0]
			if c.Writer != a.old {
				t.Fatalf("first chain is %s, want %s", c.Writer, a.old)
			}
			if tc.problem == "" {
				if !rep.OK() || c.Retained != cut || c.FirstSeq != cut+1 || c.LastSeq != 102 || !c.Closed {
					t.Fatalf("after retention the trail does not verify cleanly: %+v\n%s", c, rep)
				}
				wrep, err := recording.VerifyWitness(ctx, st, a.witness, a.pub())
				if err != nil || !wrep.OK() {
					t.Fatalf("witness after retention: %v\n%s", err, wrep)
				}
				var buf bytes.Buffer
				if err := recording.Export(ctx, st, &buf, time.Time{}, time.Time{}); err != nil {
					t.Fatal(err)
				}
				if xrep, err := recording.VerifyExport(&buf, a.pub()); err != nil || !xrep.OK() {
					t.Fatalf("export after retention: %v\n%s", err, xrep)
				}
				return
			}
			if rep.OK() || !strings.Contains(c.Problem, tc.problem) || c.BrokenSeq != tc.seq(cut) {
				t.Fatalf("problem %q at %d; want %q at %d\n%s", c.Problem, c.BrokenSeq, tc.problem, tc.seq(cut), rep)
			}
		})
	}
}

func TestRetentionMemory(t *testing.T) {
	runRetention(t, func(*testing.T) tamperStore { return newMemStore() })
}

// A second run deletes the whole old chain but its Final checkpoint, which
// the next chain starts from; a third run finds nothing to do. The
// retention runs are in the trail.
func TestRetentionWholeChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	a := writeAged(t, st)
	retain(t, a, st, day(5))
	res := retain(t, a, st, day(15))
	if len(res.Pruned) != 1 || res.Pruned[0].Through != 102 {
		t.Fatalf("second run: %+v", res)
	}
	if res := retain(t, a, st, day(15)); len(res.Pruned) != 0 {
		t.Fatalf("third run did something: %+v", res)
	}
	if evs, _ := st.Events(ctx, a.old, 1, 0); len(evs) != 0 {
		t.Fatalf("%d events of the old chain left", len(evs))
	}
	rep := verifyOK(t, st, a.pub())
	if c := rep.Chains[0]; !c.Closed || c.Retained != 102 || c.Events != 0 {
		t.Fatalf("wholly deleted chain: %+v\n%s", c, rep)
	}
	if wrep, err := recording.VerifyWitness(ctx, st, a.witness, a.pub()); err != nil || !wrep.OK() {
		t.Fatalf("witness: %v\n%s", err, wrep)
	}
	if err := a.log.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := st.Events(ctx, a.log.Writer(), 1, 0)
	var runs int
	for _, e := range evs {
		if e.Type == recording.TypeRetention && strings.Contains(string(e.Data), a.old) {
			runs++
		}
	}
	if runs != 2 {
		t.Fatalf("%d retention events in the trail, want 2", runs)
	}
	// The kept Final checkpoint is what the running chain starts from.
	st.deleteTail(t, a.old, 1)
	rep, _ = recording.Verify(ctx, st, a.pub(), recording.VerifyOptions{})
	if rep.OK() {
		t.Fatalf("deleting the kept checkpoint went unnoticed:\n%s", rep)
	}
}

// Deleting what is left of a cut chain altogether (its checkpoint, mark and
// listing) is named by the retention event that cut it, even once the
// chain.start that named it as predecessor is cut too.
func TestRetentionNamesDeletedChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	key := newKey(t)
	clk := &clock{t: day(0)}
	old := openLog(t, st, recording.Options{Key: key, Clock: clk.now})
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	clk.set(day(20))
	l := openLog(t, st, recording.Options{Key: key, Clock: clk.now, CheckpointEvery: 1})
	defer l.Close(ctx)
	if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: 1}).Wait(ctx); err != nil {
		t.Fatal(err) // seq 2, signed on day 20
	}
	clk.set(day(25))
	if res, err := l.Retain(ctx, st, day(10)); err != nil || len(res.Pruned) != 1 { // old, wholly; event seq 3
		t.Fatalf("first run: %+v %v", res, err)
	}
	if res, err := l.Retain(ctx, st, day(22)); err != nil || len(res.Pruned) != 1 || res.Pruned[0].Through != 2 {
		t.Fatalf("second run (this chain's own head): %+v %v", res, err)
	}
	verifyOK(t, st, key.Public().(ed25519.PublicKey))
	st.mu.Lock()
	st.writers = slices.DeleteFunc(st.writers, func(w string) bool { return w == old.Writer() })
	delete(st.marks, old.Writer())
	delete(st.cps, old.Writer())
	st.mu.Unlock()
	rep, err := recording.Verify(ctx, st, key.Public().(ed25519.PublicKey), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[0]; rep.OK() || c.BrokenSeq != 3 || !strings.Contains(c.Problem, "retention cut chain "+old.Writer()+", which is missing") {
		t.Fatalf("a whole cut chain deleted: %+v\n%s", c, rep)
	}
}

// Retention never hides a break: a chain whose old part does not verify is
// left alone, and verify still names the deletion.
func TestRetentionRefusesBrokenSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	a := writeAged(t, st)
	st.deleteEvent(t, a.old, 10)
	res := retain(t, a, st, day(5))
	if len(res.Pruned) != 0 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0], "event 10 missing") {
		t.Fatalf("retention of a broken chain: %+v", res)
	}
	rep, err := recording.Verify(ctx, st, a.pub(), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[0]; c.BrokenSeq != 10 {
		t.Fatalf("after a refused retention: %+v", c)
	}
}

// Nothing newer than the cutoff, and no unsigned tail, is ever deleted.
func TestRetentionKeepsUnsignedTail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	key := newKey(t)
	clk := &clock{t: day(0)}
	crashed := openLog(t, st, recording.Options{Key: key, CheckpointEvery: 10, Clock: clk.now})
	for i := range 25 {
		if err := crashed.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clk.set(day(30))
	l := openLog(t, st, recording.Options{Key: key, Clock: clk.now})
	defer l.Close(ctx)
	res, err := l.Retain(ctx, st, day(20))
	if err != nil || len(res.Pruned) != 1 || res.Pruned[0].Through != 20 {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	evs, _ := st.Events(ctx, crashed.Writer(), 1, 0)
	if len(evs) != 6 || evs[0].Seq != 21 {
		t.Fatalf("the unsigned tail was touched: %d events left", len(evs))
	}
	rep := verifyOK(t, st, key.Public().(ed25519.PublicKey))
	if c := rep.Chains[0]; c.Unsigned != 6 || c.Retained != 20 {
		t.Fatalf("crashed chain after retention: %+v", c)
	}
}

// retainDuring runs retention once, from inside Verify's first read of the
// chain's events: a live gateway's hourly run racing `audit verify`.
type retainDuring struct {
	*memStore
	once  sync.Once
	run   func()
	chain string
}

func (r *retainDuring) Events(ctx context.Context, w string, from int64, limit int) ([]recording.Stored, error) {
	if w == r.chain {
		r.once.Do(r.run)
	}
	return r.memStore.Events(ctx, w, from, limit)
}

// TestVerifyWhileRetentionRuns: Verify reads the marks, then retention
// stores a mark and deletes the events under it, then Verify reads the
// chain. The chain is checked again with the new mark and verifies; the
// same gap without a mark is still a failure.
func TestVerifyWhileRetentionRuns(t *testing.T) {
	st := newMemStore()
	a := writeAged(t, st)
	race := &retainDuring{memStore: st, chain: a.old, run: func() {
		if res, err := a.log.Retain(context.Background(), st, day(5)); err != nil || len(res.Pruned) != 1 {
			t.Errorf("retention: %+v %v", res, err)
		}
	}}
	rep, err := recording.Verify(context.Background(), race, a.pub(), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("a retention run during verify made the trail look broken:\n%s", rep)
	}
	if _, err := st.DeleteEvents(context.Background(), a.old, 60, 100); err != nil {
		t.Fatal(err)
	}
	if rep, err := recording.Verify(context.Background(), st, a.pub(), recording.VerifyOptions{}); err != nil || rep.OK() {
		t.Fatalf("events deleted past the mark verified: %v\n%s", err, rep)
	}
}
