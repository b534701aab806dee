package recording

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Chain bookkeeping events, written by the Log itself.
const (
	// TypeChainStart is seq 1 of every chain: the predecessor checkpoint the
	// chain starts from, the signing key id, and the unclosed chains found
	// at start.
	TypeChainStart = "chain.start"
	// TypeChainClose is the last event of a cleanly closed chain; the Final
	// checkpoint covers it.
	TypeChainClose = "chain.close"
)

// ErrClosed fails every Append after Close.
var ErrClosed = errors.New("recording: the trail is closed, so the operation is refused (the gateway is shutting down)")

const (
	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = 10 * time.Second
	defaultMaxBatch           = 1024
	// storeTimeout bounds one store call of the committer, so a hung store
	// fails the waiting operations instead of holding them forever.
	storeTimeout = 30 * time.Second
	pageSize     = 4096
)

// Options configure a Log.
type Options struct {
	// Writer names this process's chain. Default: "w-" and 12 random hex
	// digits. It must be new: a writer id that already has a chain is
	// refused.
	Writer string
	// Key signs the checkpoints (LoadOrCreateKey). Required.
	Key ed25519.PrivateKey
	// CheckpointEvery signs a checkpoint after this many events (1000).
	CheckpointEvery int
	// CheckpointInterval signs a checkpoint this long after the last one
	// when events were added since (10s).
	CheckpointInterval time.Duration
	// MaxBatch is the most events one group commit takes (1024).
	MaxBatch int
	// Sinks receive every committed event and every checkpoint. The Log
	// owns them: Close closes those with a Close(context.Context) error
	// method. A Sink must not block.
	Sinks []Sink
	// Clock gives event and checkpoint times (time.Now).
	Clock func() time.Time
	// Redact, when set, rewrites each event's encoded Data before it is
	// chained (the mask package's content detectors, statements' password
	// literals). It must return JSON; returning its argument itself says
	// "nothing changed" and skips re-encoding.
	Redact func([]byte) []byte
	// Logger receives warnings (slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return o, errors.New("recording: no signing key; give Options.Key (see LoadOrCreateKey)")
	}
	if o.Writer == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return o, fmt.Errorf("recording: writer id: %w", err)
		}
		o.Writer = "w-" + hex.EncodeToString(b[:])
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = defaultCheckpointEvery
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = defaultCheckpointInterval
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// Log is the Recorder: one chain (writer) per process, group commit, signed
// checkpoints. Safe for concurrent use.
type Log struct {
	st   Store
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	queue  []pending
	closed bool

	wake chan struct{} // capacity 1: "the queue is not empty"
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the committer has finished

	// Owned by the committer goroutine (and by Open before it starts).
	head     Stored     // last durable event (Seq 0 before the first)
	lastCP   Checkpoint // last stored checkpoint of this chain
	batch    []pending
	events   []Stored
	scratch  []byte
	watch    watchdog // bounds AppendEvents
	closeErr error

	unclosed []Unclosed // set by Open, read-only after

	sinksOnce sync.Once
	sinksErr  error
}

type pending struct {
	ctx context.Context
	e   Stored // Type, Session, Resource, Actor, Data
	c   *Commit
}

var _ Recorder = (*Log)(nil)

// Open starts this process's chain: it reports (and leaves unsigned) the
// chains earlier processes left without a closing checkpoint, writes the
// chain.start event durably, and starts the committer. An error means
// nothing can be recorded; the caller must not serve.
func Open(ctx context.Context, st Store, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{st: st, opts: opts, log: opts.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	start, err := l.scan(ctx)
	if err != nil {
		return nil, err
	}
	l.head = Stored{PrevHash: nil, Hash: zeroHash}
	if start.PredecessorHash != nil {
		l.head.Hash = start.PredecessorHash
	}
	if err := l.writeNow(ctx, TypeChainStart, start); err != nil {
		return nil, fmt.Errorf("recording: cannot start the trail, so nothing can be served: %w", err)
	}
	go l.run()
	return l, nil
}

// Writer is this process's chain id.
func (l *Log) Writer() string { return l.opts.Writer }

// PublicKey is the key that verifies this Log's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey { return l.opts.Key.Public().(ed25519.PublicKey) }

// Unclosed lists the chains found at Open that ended without a closing
// checkpoint (left unsigned, as found).
func (l *Log) Unclosed() []Unclosed { return l.unclosed }

// Append queues e for the next group commit and returns at once; see
// Recorder. The returned Commit fails when e cannot be encoded, when the
// Log is closed, when ctx ends before e is chained, or when the store
// refuses the batch.
func (l *Log) Append(ctx context.Context, e Event) *Commit {
	c := NewCommit()
	data, err := l.encodeData(e.Data)
	if err != nil {
		c.Finish(0, err)
		return c
	}
	p := pending{ctx: ctx, c: c, e: Stored{Type: e.Type, Session: e.SessionID,
		Resource: e.Resource, Actor: e.Actor, Data: data}}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Finish(0, ErrClosed)
		return c
	}
	l.queue = append(l.queue, p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // the committer is already told
	}
	return c
}

// encodeData is Data as compact JSON, after Redact. Passing Redact's output
// through json.Marshal makes it the exact form encoding/json writes, so
// exports and sinks reproduce the hashed bytes.
func (l *Log) encodeData(v any) (json.RawMessage, error) {
	var b []byte
	var err error
	if a, ok := v.(jsonAppender); ok && !isNilAppender(a) {
		b, err = a.appendJSON(nil) // json.Marshal's bytes, without reflection (encode.go)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: event data cannot be encoded: %w", err)
	}
	if l.opts.Redact == nil {
		return b, nil
	}
	out := l.opts.Redact(b)
	if len(out) == len(b) && (len(b) == 0 || &out[0] == &b[0]) {
		return b, nil // returned as is (the common case): already encoding/json's form
	}
	b, err = json.Marshal(json.RawMessage(out))
	if err != nil {
		return nil, fmt.Errorf("recording: redacted event data is not JSON: %w", err)
	}
	return b, nil
}

// Close stops taking events, commits everything queued, appends chain.close
// with a Final signed checkpoint, and closes the sinks. It returns an error
// when the closing checkpoint could not be written or ctx ended first.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if !already {
		close(l.stop)
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("recording: close: %w before the trail was closed; its tail stays unsigned", ctx.Err())
	}
	l.sinksOnce.Do(func() {
		for _, s := range l.opts.Sinks {
			if c, ok := s.(interface{ Close(context.Context) error }); ok {
				l.sinksErr = errors.Join(l.sinksErr, c.Close(ctx))
			}
		}
	})
	return errors.Join(l.closeErr, l.sinksErr)
}
