package recording

import (
	"context"
	"time"
)

// watchdog bounds the committer's store calls by storeTimeout without a
// context.WithTimeout per group commit (a context, a timer and its
// cancellation each time, on every operation's path): one cancelable
// context serves call after call, and one timer, re-armed per call,
// cancels it when a call outlasts the bound. A context that was canceled
// is replaced before the next call. Owned by the committer goroutine.
type watchdog struct {
	limit  time.Duration // storeTimeout when zero; tests shorten it
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer
}

// arm returns the context for one store call, canceled the limit from now
// unless disarm comes first.
func (w *watchdog) arm() context.Context {
	limit := w.limit
	if limit == 0 {
		limit = storeTimeout
	}
	if w.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w.ctx, w.cancel = ctx, cancel
		w.timer = time.AfterFunc(limit, cancel)
		return ctx
	}
	w.timer.Reset(limit)
	return w.ctx
}

// disarm ends the call's bound. When the timer fired (or is firing), the
// context is canceled or about to be: the next arm makes a new one.
func (w *watchdog) disarm() {
	if !w.timer.Stop() {
		w.cancel()
		w.ctx, w.cancel, w.timer = nil, nil, nil
	}
}
