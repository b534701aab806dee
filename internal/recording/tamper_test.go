package recording_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// tamperStore is a Store an attacker with write access to it can change.
type tamperStore interface {
	recording.Store
	changeData(t *testing.T, w string, seq int64)
	deleteEvent(t *testing.T, w string, seq int64)
	swapSeq(t *testing.T, w string, a, b int64)
	deleteTail(t *testing.T, w string, from int64)
	recording.Pruner
	setMarkThrough(t *testing.T, w string, through int64) // without signing again
	deleteMark(t *testing.T, w string)
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// trail is a closed chain of 100 operation events: seq 1 is chain.start,
// 2-101 the operations, 102 chain.close; checkpoints every 20 and a Final
// one at 102. A file sink kept the witness.
type trail struct {
	key     ed25519.PrivateKey
	writer  string
	witness string
}

func writeTrail(t *testing.T, st recording.Store) trail {
	t.Helper()
	ctx := context.Background()
	witness := filepath.Join(t.TempDir(), "witness.jsonl")
	sink, err := recording.NewFileSink(witness, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr := trail{key: newKey(t), witness: witness}
	l, err := recording.Open(ctx, st, recording.Options{Key: tr.key, CheckpointEvery: 20, Sinks: []recording.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	tr.writer = l.Writer()
	for i := range 100 {
		c := l.Append(ctx, recording.Event{Type: recording.TypeOperation, SessionID: "s-1", Resource: "pg-prod",
			Actor: "https://idp|alice", Data: map[string]any{"n": i, "text": "update t set x = 7"}})
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

// runTamper attacks a trail in the store and demands that verification
// names the broken place.
func runTamper(t *testing.T, newStore func(t *testing.T) tamperStore) {
	tests := []struct {
		name    string
		attack  func(t *testing.T, st tamperStore, w string)
		problem string // substring of the chain's Problem; "" = intact
		seq     int64
		witness string // substring of a witness finding (VerifyWitness)
	}{
		{name: "intact", attack: func(*testing.T, tamperStore, string) {}},
		{name: "one byte changed", problem: "event 42: hash mismatch (the event was changed)", seq: 42,
			attack: func(t *testing.T, st tamperStore, w string) { st.changeData(t, w, 42) }},
		{name: "event deleted", problem: "event 43 missing (deleted)", seq: 43,
			attack: func(t *testing.T, st tamperStore, w string) { st.deleteEvent(t, w, 43) }},
		{name: "two events swapped", problem: "events out of order at 17", seq: 17,
			attack: func(t *testing.T, st tamperStore, w string) { st.swapSeq(t, w, 17, 18) }},
		{name: "first event deleted", problem: "event 1 missing (deleted)", seq: 1,
			attack: func(t *testing.T, st tamperStore, w string) { st.deleteEvent(t, w, 1) }},
		{name: "tail deleted with its checkpoints", witness: "at seq 100 is missing from the store",
			attack: func(t *testing.T, st tamperStore, w string) { st.deleteTail(t, w, 90) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := newStore(t)
			tr := writeTrail(t, st)
			tc.attack(t, st, tr.writer)
			pub := tr.key.Public().(ed25519.PublicKey)
			rep, err := recording.Verify(ctx, st, pub, recording.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Chains[0]
			if !strings.Contains(c.Problem, tc.problem) || (tc.problem == "") != (c.Problem == "") || c.BrokenSeq != tc.seq {
				t.Fatalf("problem %q at %d; want %q at %d\n%s", c.Problem, c.BrokenSeq, tc.problem, tc.seq, rep)
			}
			if tc.problem != "" && rep.OK() {
				t.Fatalf("a broken chain verified:\n%s", rep)
			}
			wrep, err := recording.VerifyWitness(ctx, st, tr.witness, pub)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(wrep.Witness, "\n")
			if tc.witness == "" && got != "" || !strings.Contains(got, tc.witness) {
				t.Fatalf("witness found %q; want %q", got, tc.witness)
			}
			if tc.problem == "" && tc.witness == "" && (!rep.OK() || !wrep.OK() || !c.Closed || c.Unsigned != 0 || c.LastSeq != 102) {
				t.Fatalf("intact trail did not verify cleanly:\n%s", rep)
			}
			if tc.witness != "" && (!rep.OK() || wrep.OK()) {
				t.Fatalf("a cut tail must pass the store alone and fail with the witness:\n%s\n%s", rep, wrep)
			}
		})
	}
}

func TestTamperMemory(t *testing.T) {
	runTamper(t, func(*testing.T) tamperStore { return newMemStore() })
}

// An attacker who changes an event and recomputes every later hash (but
// has no key) is caught by the next checkpoint.
func TestTamperRehashed(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	tr := writeTrail(t, st)
	evs, _ := st.Events(ctx, tr.writer, 1, 0)
	var prev []byte
	for i := range evs {
		if evs[i].Seq == 42 {
			evs[i].Data = []byte(`{"n":40,"text":"select 1"}`)
		}
		if evs[i].Seq >= 42 {
			evs[i].PrevHash = prev
			evs[i].Hash, _ = recording.ChainHash(nil, prev, evs[i])
		}
		prev = evs[i].Hash
	}
	st.events[tr.writer] = evs
	rep, err := recording.Verify(ctx, st, tr.key.Public().(ed25519.PublicKey), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[0]; c.BrokenSeq != 60 || !strings.Contains(c.Problem, "checkpoint at seq 60 does not match") {
		t.Fatalf("got %q at %d", c.Problem, c.BrokenSeq)
	}
}

// A cut tail (no witness) is still visible: unsigned, unclosed; Strict
// fails it.
func TestCutTailStrict(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	tr := writeTrail(t, st)
	st.deleteTail(t, tr.writer, 90)
	rep, err := recording.Verify(ctx, st, tr.key.Public().(ed25519.PublicKey), recording.VerifyOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Chains[0]
	if rep.OK() || c.Unsigned != 9 || c.Closed || c.SignedSeq != 80 {
		t.Fatalf("strict verify of a cut tail: %+v\n%s", c, rep)
	}
}

func TestOtherKeyFails(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	writeTrail(t, st)
	rep, err := recording.Verify(ctx, st, newKey(t).Public().(ed25519.PublicKey), recording.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[0]; rep.OK() || c.BrokenSeq != 20 || !strings.Contains(c.Problem, "signature does not verify") {
		t.Fatalf("got %q at %d", c.Problem, c.BrokenSeq)
	}
}
