package recording_test

import (
	"context"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// TestRetentionIgnoresForgedMark: whoever can write the store plants a
// retention mark the trail's key never signed, reaching far past the last
// checkpoint. Retention must not take it as an order to delete: the
// unsigned tail (and everything else) stays for 'audit verify' to judge.
func TestRetentionIgnoresForgedMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		mark func(w string, good recording.RetentionMark) recording.RetentionMark
	}{
		{"unsigned", func(w string, _ recording.RetentionMark) recording.RetentionMark {
			return recording.RetentionMark{Writer: w, Through: 1 << 40, Hash: make([]byte, 32), Time: day(1)}
		}},
		{"signed by another key", func(w string, _ recording.RetentionMark) recording.RetentionMark {
			m := recording.RetentionMark{Writer: w, Through: 1 << 40, Hash: make([]byte, 32), Time: day(1)}
			recording.SignRetentionMark(newKey(t), &m)
			return m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			key := newKey(t)
			clk := &clock{t: day(0)}
			crashed := openLog(t, st, recording.Options{Key: key, CheckpointEvery: 10, Clock: clk.now})
			for i := range 25 {
				if err := crashed.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.PutRetentionMark(ctx, tt.mark(crashed.Writer(), recording.RetentionMark{})); err != nil {
				t.Fatal(err)
			}
			clk.set(day(30))
			l := openLog(t, st, recording.Options{Key: key, Clock: clk.now})
			defer l.Close(ctx)
			res, _ := l.Retain(ctx, st, day(20))
			evs, _ := st.Events(ctx, crashed.Writer(), 1, 0)
			if len(evs) != 26 {
				t.Fatalf("retention obeyed a forged mark: %d of 26 events left (result %+v)", len(evs), res)
			}
			if len(res.Refused) != 1 {
				t.Fatalf("the chain with a forged mark is not named in Refused: %+v", res)
			}
		})
	}
}
