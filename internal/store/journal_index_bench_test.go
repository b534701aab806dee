package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// BenchmarkIndexEvents measures the journal's indexer alone: one SQLite
// transaction of batch events (storeEvents), as it runs in the background
// under load (at pgbench -S rates with 8 clients a transaction takes about
// 160 events). The events are shaped like the gateway's: an operation
// event and its outcome per statement, with the data's real sizes.
// cpu-µs/event is the process's user+system CPU, SQLite's file writes
// included.
func BenchmarkIndexEvents(b *testing.B) {
	for _, batch := range []int{16, 160, 1024} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			events := gatewayEvents(batch)
			seq := int64(1)
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for b.Loop() {
				for i := range events {
					events[i].Seq = seq
					seq++
				}
				if err := s.storeEvents(events); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			n := float64(seq - 1)
			b.ReportMetric(float64(processCPU()-cpu0)/1e3/n, "cpu-µs/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/n, "µs/event")
		})
	}
}

// gatewayEvents are n events as the PostgreSQL engine writes them for
// pgbench -S: operation and outcome in turn. The store does not check
// hashes, so they are only the right size.
func gatewayEvents(n int) []recording.Stored {
	op, _ := json.Marshal(recording.OperationData{Text: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
		Kind: "read", Objects: []string{"public.pgbench_accounts"}, Statements: 1, Params: 1, Decision: "allow",
		Digest: "hmac-sha256:5d41402abc4b2a76b9719d911017c592ae5b1f0f3c9a6f7b9e1d2c3b4a5f6e7d", SearchPath: `"$user", public`,
		Role: "postgres"})
	out, _ := json.Marshal(recording.OutcomeData{CommandTag: "SELECT 1", Rows: 1,
		Digest: "hmac-sha256:5d41402abc4b2a76b9719d911017c592ae5b1f0f3c9a6f7b9e1d2c3b4a5f6e7d"})
	hash := make([]byte, recording.HashSize)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	evs := make([]recording.Stored, n)
	for i := range evs {
		e := recording.Stored{Writer: "w-0123456789ab", Time: at.Add(time.Duration(i) * time.Microsecond),
			Session: "s-7f3a0c9e2b41", Resource: "cs-bench", Actor: "local|bench", PrevHash: hash, Hash: hash}
		if i%2 == 0 {
			e.Type, e.Data = recording.TypeOperation, op
		} else {
			e.Type, e.Data = recording.TypeOperationOutcome, out
		}
		evs[i] = e
	}
	return evs
}

func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkJournalWrite is one group commit's durable write of a record
// of 6 events (about 3 statements of pgbench -S through the gateway):
// direct (O_DIRECT|O_DSYNC, one system call) and through the page cache
// (a write and fdatasync). cpu-µs/op is the process's CPU for each, the
// runtime's work around the blocking call included.
func BenchmarkJournalWrite(b *testing.B) {
	for _, tc := range []struct {
		name     string
		noDirect bool
	}{
		{"direct", false},
		{"page-cache", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			j := newJournal(b.TempDir(), nil)
			j.noDirect = tc.noDirect
			rec, err := appendRecord(nil, gatewayEvents(6))
			if err != nil {
				b.Fatal(err)
			}
			if err := j.roll(len(rec)); err != nil {
				b.Fatal(err)
			}
			defer j.seg.f.Close()
			if j.seg.direct == tc.noDirect {
				b.Skipf("direct I/O: %v, want %v", j.seg.direct, !tc.noDirect)
			}
			sumRecord(rec, j.seg.key)
			cpu0 := processCPU()
			for b.Loop() {
				if err := j.roll(len(rec)); err != nil {
					b.Fatal(err)
				}
				if err := j.write(j.seg, rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
