package recording

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Event types. Values inside events are masked before they get here.
const (
	TypeSessionOpen      = "session.open"
	TypeSessionClose     = "session.close"
	TypeOperation        = "operation"         // decided: text, kind, digest, objects, decision
	TypeOperationOutcome = "operation.outcome" // command tag, rows, duration, error code
	TypeReviewCreated    = "review.created"
	TypeReviewApproved   = "review.approved"
	TypeReviewRejected   = "review.rejected"
	TypeReviewExpired    = "review.expired"
	TypeReviewUsed       = "review.used"
	TypeGrantStarted     = "grant.started"
	TypeGrantEnded       = "grant.ended"
	TypeBreakglass       = "breakglass"
	TypeTokenIssued      = "token.issued"
	TypeTokenRevoked     = "token.revoked"
	TypeAdmin            = "admin"
)

// Event is one entry of the trail before it is chained.
type Event struct {
	Type      string
	SessionID string
	Resource  string
	Actor     string // identity key (issuer|subject), "" for the gateway itself
	// Data is the type-specific body; it is encoded canonically (encoding/json
	// of a struct or a map, whose keys Go sorts).
	Data any
}

// Stored is an event as chained and stored.
type Stored struct {
	Writer   string // the chain: one per gateway process
	Seq      int64  // 1, 2, ... within the writer's chain
	Time     time.Time
	Type     string
	Session  string
	Resource string
	Actor    string
	Data     json.RawMessage
	PrevHash []byte
	Hash     []byte // SHA-256(PrevHash || canonical encoding)
}

// Recorder appends events to the trail. Safe for concurrent use.
type Recorder interface {
	// Append queues the event for the next group commit and returns at once.
	// Commit.Wait returns when the event is durable, or the error that kept
	// it from being so; an operation whose event failed must be refused.
	Append(ctx context.Context, e Event) *Commit
}

// Commit is the handle of one appended event. Its channel is made only
// for a Wait that comes before Finish: most events (outcomes, closes) are
// never waited for, and an allocation per event was a cost on every
// statement.
type Commit struct {
	mu       sync.Mutex
	finished bool
	done     chan struct{} // made by the first early Wait; closed by Finish
	err      error
	seq      int64
}

// NewCommit returns an unfinished Commit; Finish completes it.
func NewCommit() *Commit { return &Commit{} }

// Finish marks the event durable (err == nil) or failed. Call it once.
func (c *Commit) Finish(seq int64, err error) {
	c.mu.Lock()
	c.seq, c.err, c.finished = seq, err, true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// Wait blocks until the event is durable or failed, or ctx ends.
func (c *Commit) Wait(ctx context.Context) error {
	c.mu.Lock()
	if c.finished {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if c.done == nil {
		c.done = make(chan struct{})
	}
	done := c.done
	c.mu.Unlock()
	select {
	case <-done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Seq is the event's sequence number, valid after Wait returned nil.
func (c *Commit) Seq() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// Checkpoint is a signed (seq, hash) of one writer's chain.
type Checkpoint struct {
	Writer    string
	Seq       int64
	Hash      []byte
	Time      time.Time
	Signature []byte // Ed25519 over the canonical checkpoint encoding
	KeyID     string // the signing key's fingerprint
	Final     bool   // written at a clean shutdown: the chain ends here
}
