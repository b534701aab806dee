package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// TestSQLiteAppendChunks appends batches whose sizes fall on and around
// the boundaries of the multi-row inserts (1, 2, 4, ... 64 rows per
// statement), and batches larger than the largest: every event comes back
// byte for byte, in order, and a duplicate anywhere in a batch, even in
// its last statement, stores none of it.
func TestSQLiteAppendChunks(t *testing.T) {
	t.Parallel()
	sizes := []int{1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000, 1024}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("batch=%d", n), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := openSQLite(t)
			defer st.Close()
			want := storetest.Chain("w-chunks", 1, n)
			if err := st.AppendEvents(ctx, want); err != nil {
				t.Fatalf("AppendEvents(%d): %v", n, err)
			}
			got, err := st.Events(ctx, "w-chunks", 1, 0)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if len(got) != n {
				t.Fatalf("got %d events back, want %d", len(got), n)
			}
			for i := range want {
				w, g := want[i], got[i]
				if g.Seq != w.Seq || !g.Time.Equal(w.Time) || g.Type != w.Type || g.Session != w.Session ||
					g.Resource != w.Resource || g.Actor != w.Actor || !bytes.Equal(g.Data, w.Data) ||
					!bytes.Equal(g.PrevHash, w.PrevHash) || !bytes.Equal(g.Hash, w.Hash) {
					t.Fatalf("event %d differs:\n got  %+v\n want %+v", i, g, w)
				}
			}

			// The next batch repeats the last stored seq at its end, which
			// lands in the batch's last (smallest) insert statement.
			next := storetest.Chain("w-chunks", int64(n)+1, n)
			next[len(next)-1].Seq = int64(n)
			err = st.AppendEvents(ctx, next)
			if !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("AppendEvents(batch ending in a stored seq) = %v, want ErrDuplicate", err)
			}
			after, err := st.Events(ctx, "w-chunks", int64(n)+1, 0)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if len(after) != 0 {
				t.Fatalf("a refused batch left %d events behind; a batch is all or none", len(after))
			}
		})
	}
}
