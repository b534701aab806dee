package postgres

import (
	"context"
	"runtime"
	"testing"

	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
)

// TestLargeResultMemory: a 1M-row result (about 110 MB on the wire) passes
// through the gateway, without masking rules, in both protocols, while
// the heap of this process (gateway and pgx client together) stays an
// order of magnitude below the result: rows are relayed as they come,
// never collected. Not parallel: it measures the process's heap, which
// other tests share.
func TestLargeResultMemory(t *testing.T) {
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	const rows, limit = 1000000, 32 << 20
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			r, err := c.Query(ctx, "SELECT g, repeat('x', 100) FROM generate_series(1, $1::int) g", mode, rows)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			var peak uint64
			var wire int64
			for r.Next() {
				n++
				wire += int64(len(r.RawValues()[1])) + 16
				if n%50000 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if n != rows {
				t.Fatalf("got %d rows, want %d", n, rows)
			}
			grew := int64(peak) - int64(base)
			t.Logf("%d rows, about %d MiB of row data; heap in use grew by at most %d MiB", n, wire>>20, max(grew, 0)>>20)
			if grew > limit {
				t.Fatalf("the heap grew by %d MiB while %d MiB streamed through", grew>>20, wire>>20)
			}
		})
	}
	// The result was relayed, not held: recorded with its row count.
	var counted int
	for _, e := range ev.rec.OfType("operation.outcome") {
		if e.Data.(*recording.OutcomeData).Rows == rows {
			counted++
		}
	}
	if counted != 2 {
		t.Fatalf("%d outcomes recorded %d rows, want 2", counted, rows)
	}
}
