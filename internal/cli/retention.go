package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
)

// retentionEvery is how often serve deletes what recording.retention no
// longer keeps. Segments end at checkpoints (every 10s or 1000 events by
// default), so an hourly run keeps the trail within an hour of the limit.
const retentionEvery = time.Hour

// retainLoop applies recording.retention until ctx ends: at start, then
// every retentionEvery. Age is judged by the store's clock, so replicas
// agree; two replicas running it at once delete the same segments.
func retainLoop(ctx context.Context, rec *recording.Log, st store.Store, keep time.Duration, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		retainOnce(ctx, rec, st, keep, log)
		t.Reset(retentionEvery)
	}
}

func retainOnce(ctx context.Context, rec *recording.Log, st store.Store, keep time.Duration, log *slog.Logger) {
	now, err := st.Now(ctx)
	if err != nil {
		log.Error("recording.retention: reading the store's clock failed; nothing deleted, retried in an hour", "err", err)
		return
	}
	res, err := rec.Retain(ctx, st, now.Add(-keep))
	if err != nil && ctx.Err() == nil {
		log.Error("recording.retention: run failed; retried in an hour", "err", err)
	}
	for _, r := range res.Refused {
		log.Error("recording.retention: a chain was kept whole because its old part does not verify; run 'countersign audit verify'", "chain", r)
	}
}
