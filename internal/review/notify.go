package review

import (
	"context"
	"sync"
)

// Notifier wakes the waiters of a review when it changes. The in-process
// Broadcaster serves one gateway; several replicas need one that crosses
// processes (PostgreSQL LISTEN/NOTIFY).
type Notifier interface {
	// Notify wakes every current subscriber of the review.
	Notify(ctx context.Context, id string) error
	// Subscribe returns a channel that receives after each Notify of the
	// review, and a func that ends the subscription.
	Subscribe(id string) (<-chan struct{}, func())
}

// Broadcaster is the in-process Notifier. The zero value is ready.
type Broadcaster struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// Notify wakes the review's subscribers without blocking: each channel
// holds one pending wake-up, which is all a waiter needs to re-read.
func (b *Broadcaster) Notify(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// Subscribe implements Notifier.
func (b *Broadcaster) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[string]map[chan struct{}]struct{}{}
	}
	if b.subs[id] == nil {
		b.subs[id] = map[chan struct{}]struct{}{}
	}
	b.subs[id][ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[id], ch)
		if len(b.subs[id]) == 0 {
			delete(b.subs, id)
		}
		b.mu.Unlock()
	}
}

// NotifyAll wakes every subscriber of every review; a Notifier that may
// have missed messages (a lost connection) calls it so waiters re-read.
func (b *Broadcaster) NotifyAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, chans := range b.subs {
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
