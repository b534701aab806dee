package recording_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

func openLog(t testing.TB, st recording.Store, o recording.Options) *recording.Log {
	t.Helper()
	if o.Key == nil {
		o.Key = newKey(t)
	}
	l, err := recording.Open(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func verifyOK(t *testing.T, st recording.Store, pub ed25519.PublicKey) recording.Report {
	t.Helper()
	rep, err := recording.Verify(context.Background(), st, pub, recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("trail does not verify:\n%s", rep)
	}
	return rep
}

// stores are the Stores the Log's tests run against: the in-memory one and
// the real SQLite store.
var stores = []struct {
	name string
	open func(t *testing.T) recording.Store
}{
	{"memory", func(*testing.T) recording.Store { return newMemStore() }},
	{"sqlite", func(t *testing.T) recording.Store { return newSQLiteTamper(t) }},
}

func TestConcurrentAppendOneChain(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			concurrentAppend(t, s.open(t))
		})
	}
}

func concurrentAppend(t *testing.T, st recording.Store) {
	ctx := context.Background()
	l := openLog(t, st, recording.Options{CheckpointEvery: 100})
	const goroutines, each = 50, 40
	var wg sync.WaitGroup
	seqs := make(chan int64, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				c := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: map[string]int{"g": g, "i": i}})
				if err := c.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				seqs <- c.Seq()
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] || s < 2 {
			t.Fatalf("seq %d given twice or to an operation", s)
		}
		seen[s] = true
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := verifyOK(t, st, l.PublicKey()).Chains[0]
	if c.LastSeq != goroutines*each+2 || !c.Closed || c.Unsigned != 0 {
		t.Fatalf("chain: %+v", c)
	}
}

// A store failure fails every Commit waiting on the batch; the chain goes
// on from the last durable hash when the store is back.
func TestStoreFailureFailsCommitsChainRecovers(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			storeFailure(t, &flaky{Store: s.open(t)})
		})
	}
}

// flaky fails AppendEvents and AddCheckpoint while fail is set.
type flaky struct {
	recording.Store
	fail atomic.Bool
}

func (f *flaky) AppendEvents(ctx context.Context, evs []recording.Stored) error {
	if f.fail.Load() {
		return errStoreDown
	}
	return f.Store.AppendEvents(ctx, evs)
}

func (f *flaky) AddCheckpoint(ctx context.Context, c recording.Checkpoint) error {
	if f.fail.Load() {
		return errStoreDown
	}
	return f.Store.AddCheckpoint(ctx, c)
}

func storeFailure(t *testing.T, st *flaky) {
	ctx := context.Background()
	l := openLog(t, st, recording.Options{})
	appendN := func(n int) []*recording.Commit {
		cs := make([]*recording.Commit, n)
		for i := range cs {
			cs[i] = l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i})
		}
		return cs
	}
	for _, c := range appendN(10) {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st.fail.Store(true)
	for _, c := range appendN(30) {
		if err := c.Wait(ctx); !errors.Is(err, errStoreDown) || !strings.Contains(err.Error(), "operation is refused") {
			t.Fatalf("commit during outage: %v", err)
		}
	}
	st.fail.Store(false)
	for _, c := range appendN(10) {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := verifyOK(t, st, l.PublicKey()).Chains[0]; c.LastSeq != 22 {
		t.Fatalf("chain after recovery: %+v", c)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t, newMemStore(), recording.Options{})
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation}).Wait(ctx); !errors.Is(err, recording.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestOpenFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	if _, err := recording.Open(ctx, st, recording.Options{}); err == nil || !strings.Contains(err.Error(), "no signing key") {
		t.Fatalf("open without key: %v", err)
	}
	st.fail.Store(true)
	if _, err := recording.Open(ctx, st, recording.Options{Key: newKey(t)}); !errors.Is(err, errStoreDown) {
		t.Fatalf("open on a failing store: %v", err)
	}
	st.fail.Store(false)
	l := openLog(t, st, recording.Options{Writer: "w-fixed"})
	l.Close(ctx)
	if _, err := recording.Open(ctx, st, recording.Options{Key: newKey(t), Writer: "w-fixed"}); err == nil {
		t.Fatal("a second chain with the same writer id was opened")
	}
}

func TestEventEncodingErrorFailsCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t, newMemStore(), recording.Options{Redact: func([]byte) []byte { return []byte("{not json") }})
	defer l.Close(ctx)
	if err := l.Append(ctx, recording.Event{Data: make(chan int)}).Wait(ctx); err == nil {
		t.Fatal("unencodable data was accepted")
	}
	if err := l.Append(ctx, recording.Event{Data: 1}).Wait(ctx); err == nil || !strings.Contains(err.Error(), "redacted") {
		t.Fatalf("bad redact output: %v", err)
	}
}

func TestRedactHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	redact := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("4111111111111111"), []byte("<card>")) }
	l := openLog(t, st, recording.Options{Redact: redact})
	c := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: map[string]string{"text": "insert 4111111111111111"}})
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	evs, _ := st.Events(ctx, l.Writer(), c.Seq(), 1)
	if !bytes.Contains(evs[0].Data, []byte(`\u003ccard\u003e`)) || bytes.Contains(evs[0].Data, []byte("4111")) {
		t.Fatalf("data after redact: %s", evs[0].Data)
	}
	var buf bytes.Buffer
	if err := recording.Export(ctx, st, &buf, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if rep, err := recording.VerifyExport(&buf, l.PublicKey()); err != nil || !rep.OK() {
		t.Fatalf("export of redacted data: %v\n%s", err, rep)
	}
}

// A crashed process's tail is reported at the next start and left
// unsigned; the new chain starts from the crashed chain's last checkpoint.
func TestUnclosedChainReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	key := newKey(t)
	crashed := openLog(t, st, recording.Options{Key: key, CheckpointEvery: 10})
	for i := range 25 {
		if err := crashed.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: the process died. (Its committer idles; nothing more is appended.)
	next := openLog(t, st, recording.Options{Key: key})
	defer next.Close(ctx)
	u := next.Unclosed()
	want := "chain " + crashed.Writer() + " ended without a closing checkpoint: 6 unsigned events after seq 20 (a crash?)"
	if len(u) != 1 || u[0].String() != want {
		t.Fatalf("unclosed: %v; want %s", u, want)
	}
	evs, _ := st.Events(ctx, next.Writer(), 1, 1)
	var start map[string]any
	json.Unmarshal(evs[0].Data, &start)
	if evs[0].Type != recording.TypeChainStart || start["predecessor"] != crashed.Writer() || start["predecessor_seq"] != 20.0 {
		t.Fatalf("chain.start: %s %s", evs[0].Type, evs[0].Data)
	}
	rep := verifyOK(t, st, key.Public().(ed25519.PublicKey))
	if c := rep.Chains[0]; c.Unsigned != 6 || c.Closed {
		t.Fatalf("crashed chain: %+v", c)
	}
	if len(rep.Warnings()) == 0 {
		t.Fatal("the unsigned tail was not warned about")
	}
}

// Deleting a whole earlier chain breaks the link of the chain after it.
func TestDeletedPredecessorChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	key := newKey(t)
	first := openLog(t, st, recording.Options{Key: key})
	first.Close(ctx)
	second := openLog(t, st, recording.Options{Key: key})
	second.Close(ctx)
	if rep := verifyOK(t, st, key.Public().(ed25519.PublicKey)); len(rep.Chains) != 2 || !rep.Chains[1].Closed {
		t.Fatalf("two chains:\n%s", rep)
	}
	st.deleteTail(t, first.Writer(), 1)
	rep, err := recording.Verify(ctx, st, key.Public().(ed25519.PublicKey), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[1]; !strings.Contains(c.Problem, "which is missing (was that chain deleted?)") {
		t.Fatalf("second chain: %+v", c)
	}
}

func TestTimedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	l := openLog(t, st, recording.Options{CheckpointInterval: 5 * time.Millisecond})
	defer l.Close(ctx)
	if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		cps, _ := st.Checkpoints(ctx, l.Writer())
		if len(cps) > 0 && cps[len(cps)-1].Seq == 2 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
