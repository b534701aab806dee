package recording_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// benchAppend runs b.N events through 64 concurrent appenders, each
// waiting for its event to be durable before the next: the gateway's
// record-before-effect pattern.
func benchAppend(b *testing.B, st recording.Store) {
	ctx := context.Background()
	l := openLog(b, st, recording.Options{})
	defer l.Close(ctx)
	ev := recording.Event{Type: recording.TypeOperation, SessionID: "s-0123456789", Resource: "pg-prod",
		Actor: "https://idp.example.com|alice",
		Data: map[string]any{"text": "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
			"kind": "write", "decision": "allow"}}
	const appenders = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range appenders {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := l.Append(ctx, ev).Wait(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendMemory(b *testing.B) { benchAppend(b, newMemStore()) }
