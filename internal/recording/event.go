package recording

import (
	"context"
	"encoding/json"
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

// Commit is the handle of one appended event.
type Commit struct {
	done chan struct{}
	err  error
	seq  int64
}

// NewCommit returns an unfinished Commit; Finish completes it.
func NewCommit() *Commit { return &Commit{done: make(chan struct{})} }

// Finish marks the event durable (err == nil) or failed. Call it once.
func (c *Commit) Finish(seq int64, err error) {
	c.seq, c.err = seq, err
	close(c.done)
}

// Wait blocks until the event is durable or failed, or ctx ends.
func (c *Commit) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Seq is the event's sequence number, valid after Wait returned nil.
func (c *Commit) Seq() int64 { return c.seq }

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
