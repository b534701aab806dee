package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// reviewChannel is the LISTEN/NOTIFY channel on which replicas tell each
// other that a review changed; the payload is the review id.
const reviewChannel = "countersign_reviews"

// ReviewNotifier is a review.Notifier across every replica sharing the
// database: Notify sends pg_notify, and one listening connection per
// process wakes the local waiters. After a lost connection it wakes every
// local waiter, since notifications may have been missed; waiters re-read
// the review, so a spurious wake costs one read.
type ReviewNotifier struct {
	p      *Postgres
	local  review.Broadcaster
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
}

var _ review.Notifier = (*ReviewNotifier)(nil)

// ReviewNotifier starts listening; Close stops it.
func (p *Postgres) ReviewNotifier(log *slog.Logger) *ReviewNotifier {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &ReviewNotifier{p: p, cancel: cancel, done: make(chan struct{}), log: log}
	ready := make(chan struct{})
	go n.run(ctx, ready)
	<-ready
	return n
}

// Notify implements review.Notifier.
func (n *ReviewNotifier) Notify(ctx context.Context, id string) error {
	n.local.Notify(ctx, id)
	if _, err := n.p.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, reviewChannel, id); err != nil {
		return fmt.Errorf("store: notifying other replicas of review %s: %w", id, err)
	}
	return nil
}

// Subscribe implements review.Notifier.
func (n *ReviewNotifier) Subscribe(id string) (<-chan struct{}, func()) {
	return n.local.Subscribe(id)
}

// Close stops listening.
func (n *ReviewNotifier) Close() error {
	n.cancel()
	<-n.done
	return nil
}

// run listens until ctx ends, reconnecting after a failure. ready is closed
// once the first LISTEN is in place (or failed), so a notification sent
// right after ReviewNotifier returns is not lost.
func (n *ReviewNotifier) run(ctx context.Context, ready chan struct{}) {
	defer close(n.done)
	first := true
	for ctx.Err() == nil {
		err := n.listen(ctx, func() {
			if first {
				close(ready)
				first = false
			}
		})
		if first {
			close(ready)
			first = false
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("review notifications interrupted; reconnecting", "err", err)
		n.local.NotifyAll()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (n *ReviewNotifier) listen(ctx context.Context, listening func()) error {
	conn, err := n.p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+reviewChannel); err != nil {
		return err
	}
	n.local.NotifyAll() // anything missed while not listening
	listening()
	for {
		msg, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		n.local.Notify(ctx, msg.Payload)
	}
}
