package recording

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives every committed event and every stored checkpoint: a SIEM
// feed and an outside witness. Both methods are called from the Log's
// committer and must not block; the sinks here queue and deliver on their
// own goroutine.
type Sink interface {
	Event(Stored)
	Checkpoint(Checkpoint)
}

const (
	defaultSinkQueue = 1 << 16 // lines held while the destination is slow
	sinkBatch        = 512
	retryMin         = 100 * time.Millisecond
	retryMax         = 5 * time.Second
)

// queue is the delivery machinery the sinks share: a bounded queue of JSON
// lines, one goroutine that delivers them in batches and retries with
// backoff. When the queue is full, lines are dropped and counted, never
// waited for: the data path does not slow down for a witness.
type queue struct {
	name    string
	deliver func(ctx context.Context, lines [][]byte) error
	lines   chan []byte
	dropped atomic.Uint64
	log     *slog.Logger

	mu     sync.RWMutex // guards closed against a push racing close
	closed bool

	ctx    context.Context // ends when Close gives up
	cancel context.CancelFunc
	done   chan struct{}
}

func newQueue(name string, size int, deliver func(context.Context, [][]byte) error) *queue {
	if size <= 0 {
		size = defaultSinkQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{name: name, deliver: deliver, lines: make(chan []byte, size), log: slog.Default(),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) push(line []byte) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	select {
	case q.lines <- line:
	default:
		if n := q.dropped.Add(1); n == 1 || n%1000 == 0 {
			q.log.Warn("recording: sink queue full, lines dropped", "sink", q.name, "dropped", n)
		}
	}
}

func (q *queue) run() {
	defer close(q.done)
	batch := make([][]byte, 0, sinkBatch)
	for {
		line, ok := <-q.lines
		if !ok {
			return
		}
		batch = append(batch[:0], line)
	more:
		for len(batch) < sinkBatch {
			select {
			case line, ok := <-q.lines:
				if !ok {
					break more
				}
				batch = append(batch, line)
			default:
				break more
			}
		}
		q.send(batch)
	}
}

// send delivers one batch, retrying with backoff until it succeeds or Close
// gives up (then the batch counts as dropped).
func (q *queue) send(batch [][]byte) {
	wait := retryMin
	for {
		err := q.deliver(q.ctx, batch)
		if err == nil {
			return
		}
		q.log.Warn("recording: sink delivery failed, retrying", "sink", q.name, "lines", len(batch), "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-q.ctx.Done():
			n := q.dropped.Add(uint64(len(batch)))
			q.log.Error("recording: sink closed with undelivered lines", "sink", q.name, "dropped", n)
			return
		}
		wait = min(2*wait, retryMax)
	}
}

// close delivers what is queued until ctx ends; then it gives up.
func (q *queue) close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.done
		return ctx.Err()
	}
}
