package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// BenchmarkAppendEvents measures the recording's group commit: one durable
// transaction per batch (synchronous=FULL on SQLite, synchronous_commit on
// PostgreSQL). events/s is durable events per second from one committer.
func BenchmarkAppendEvents(b *testing.B) {
	backends := []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "bench.db") }},
		{"postgres", func(b *testing.B) string { return freshDatabase(b) }},
	}
	// The same commits with synchronous=NORMAL on the writer connection.
	// SQLite's AppendEvents is durable by its journal's fdatasync either
	// way (journal.go); NORMAL only spares the indexer's transactions
	// their fsync. Not a setting countersign offers.
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("sqlite-sync-normal/batch=%d", size), func(b *testing.B) {
			st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer st.Close()
			store.SetSynchronousForTest(b, st, "NORMAL")
			benchAppend(b, st, size)
		})
	}
	for _, be := range backends {
		// 8: about what the gateway commits at once under pgbench -S with 8
		// clients (3 to 4 statements, an operation and an outcome event each).
		for _, size := range []int{1, 8, 64, 512} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, size), func(b *testing.B) {
				st, err := store.Open(context.Background(), be.url(b))
				if err != nil {
					b.Fatalf("Open: %v", err)
				}
				defer st.Close()
				benchAppend(b, st, size)
			})
		}
	}
}

func benchAppend(b *testing.B, st store.Store, size int) {
	ctx := context.Background()
	// One batch, renumbered each round: the store does not check hashes,
	// and building fresh chains would measure the hashing, not the store.
	batch := storetest.Chain("bench", 1, size)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	seq := int64(1)
	for b.Loop() {
		for i := range batch {
			batch[i].Seq = seq
			seq++
		}
		if err := st.AppendEvents(ctx, batch); err != nil {
			b.Fatalf("AppendEvents: %v", err)
		}
	}
	// Reading back waits for SQLite's journal indexer, whose CPU counts.
	if _, err := st.Events(ctx, "bench", seq-1, 1); err != nil {
		b.Fatalf("Events: %v", err)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(seq-1), "cpu-µs/event")
	b.ReportMetric(float64(seq-1)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(max(1, (seq-1)/int64(size))), "µs/commit")
}

// cpuTime is the process's user and system CPU time so far, in ns: the
// store's background work (SQLite's journal indexer) included.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
