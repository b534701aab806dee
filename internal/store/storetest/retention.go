package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
)

// testRetention: old events go lowest first, a chunk at a time, and only
// the named writer's; checkpoints go but those kept; a retention mark
// never moves back.
func testRetention(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	w, other := unique("w-ret"), unique("w-ret-other")
	evs := chain(w, 1, 10)
	appendOK(t, st, evs)
	appendOK(t, st, chain(other, 1, 10))
	for _, seq := range []int64{1, 3, 6, 9} {
		e := evs[seq-1]
		cp := store.Checkpoint{Writer: w, Seq: seq, Hash: e.Hash, Time: e.Time, Signature: []byte("sig"), KeyID: "k"}
		if err := st.AddCheckpoint(ctx, cp); err != nil {
			t.Fatalf("AddCheckpoint(%d): %v", seq, err)
		}
	}
	steps := []struct {
		through int64
		limit   int
		deleted int64
		first   int64 // first event left
	}{
		{6, 2, 2, 3}, {6, 100, 4, 7}, {6, 100, 0, 7}, {0, 100, 0, 7},
	}
	for _, s := range steps {
		n, err := st.DeleteEvents(ctx, w, s.through, s.limit)
		if err != nil || n != s.deleted {
			t.Fatalf("DeleteEvents(through %d, limit %d) = %d, %v; want %d", s.through, s.limit, n, err, s.deleted)
		}
		if got := events(t, st, w, 1, 0); len(got) == 0 || got[0].Seq != s.first || got[len(got)-1].Seq != 10 {
			t.Fatalf("after DeleteEvents(through %d): events %v, want %d..10", s.through, seqsOf(got), s.first)
		}
	}
	if got := events(t, st, other, 1, 0); len(got) != 10 {
		t.Fatalf("another chain lost events: %d left", len(got))
	}
	n, err := st.DeleteCheckpoints(ctx, w, 6, []int64{3})
	if err != nil || n != 1 {
		t.Fatalf("DeleteCheckpoints(before 6, keep 3) = %d, %v; want 1 (seq 1)", n, err)
	}
	cps, err := st.Checkpoints(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, c := range cps {
		seqs = append(seqs, c.Seq)
	}
	if !reflect.DeepEqual(seqs, []int64{3, 6, 9}) {
		t.Fatalf("checkpoints left: %v, want [3 6 9]", seqs)
	}

	at := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
	mark := func(through int64) store.RetentionMark {
		return store.RetentionMark{Writer: w, Through: through, Hash: evs[through-1].Hash, Time: at.Add(time.Duration(through) * time.Second),
			Signature: []byte{byte(through), 1, 2}, KeyID: "k1"}
	}
	for _, through := range []int64{6, 4, 8} {
		if err := st.PutRetentionMark(ctx, mark(through)); err != nil {
			t.Fatalf("PutRetentionMark(%d): %v", through, err)
		}
	}
	marks, err := st.RetentionMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mine []store.RetentionMark
	for _, m := range marks {
		if m.Writer == w {
			mine = append(mine, m)
		}
	}
	if len(mine) != 1 || !reflect.DeepEqual(mine[0], mark(8)) {
		t.Fatalf("RetentionMarks = %+v\nwant the highest only: %+v", mine, mark(8))
	}
}

func seqsOf(evs []recording.Stored) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}
