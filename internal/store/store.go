package store

import (
	"context"
	"errors"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
)

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// Store is everything countersign persists. Two implementations pass the
// same suite (storetest): SQLite (embedded default) and PostgreSQL (several
// replicas). Every method is safe for concurrent use.
type Store interface {
	// Now is the store's clock. Expiry, validity and grants are judged by it,
	// so replicas sharing a store agree.
	Now(ctx context.Context) (time.Time, error)
	Ping(ctx context.Context) error
	Close() error

	// UpsertIdentity records the identity as last seen (groups and roles of
	// its latest login).
	UpsertIdentity(ctx context.Context, id identity.Identity) error

	// CreateToken stores a token (its hash, never the secret).
	CreateToken(ctx context.Context, t identity.Token) error
	// TokenByHash returns the token with the hash, revoked or expired ones
	// included (the caller judges them with Now); ErrNotFound otherwise.
	TokenByHash(ctx context.Context, hash []byte) (identity.Token, error)
	// ListTokens lists tokens, newest first; issuer/subject filter when set.
	ListTokens(ctx context.Context, f TokenFilter) ([]identity.Token, error)
	// RevokeToken marks the token revoked now (store time). ErrNotFound if
	// no token has the id.
	RevokeToken(ctx context.Context, id string) error

	// AddAdminEvent records an administrative action (token issue, revoke,
	// config reload).
	AddAdminEvent(ctx context.Context, e AdminEvent) error
	AdminEvents(ctx context.Context, limit int) ([]AdminEvent, error)

	// AppendEvents stores chained events in one transaction, durably, in
	// order. It is the recording's group commit.
	AppendEvents(ctx context.Context, events []recording.Stored) error
	// Events lists a writer's events with Seq >= fromSeq, in order, at most
	// limit (0 = all).
	Events(ctx context.Context, writer string, fromSeq int64, limit int) ([]recording.Stored, error)
	// Writers lists every chain's writer id, oldest first.
	Writers(ctx context.Context) ([]string, error)
	// AddCheckpoint stores a signed checkpoint; Checkpoints lists a writer's.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	Checkpoints(ctx context.Context, writer string) ([]Checkpoint, error)

	// Retention (recording.Pruner, retention.go, migration 00004): delete
	// a chain's old events and checkpoints, and keep the signed mark that
	// says how far.
	DeleteEvents(ctx context.Context, writer string, throughSeq int64, limit int) (int64, error)
	DeleteCheckpoints(ctx context.Context, writer string, beforeSeq int64, keep []int64) (int64, error)
	PutRetentionMark(ctx context.Context, m RetentionMark) error
	RetentionMarks(ctx context.Context) ([]RetentionMark, error)

	// review.Store: reviews, their votes and grants (reviews_*.go,
	// migration 00002_reviews). The review package defines what it needs.
	review.Store
}

// TokenFilter narrows ListTokens.
type TokenFilter struct {
	Issuer  string
	Subject string
}

// AdminEvent is one administrative action.
type AdminEvent struct {
	ID     int64
	Time   time.Time
	Actor  string // who did it ("operator" for the CLI with the config file)
	Action string // "token.issue", "token.revoke", ...
	Detail string // JSON, no secrets
}

// Checkpoint is a signed (seq, hash) of one writer's chain. The type lives
// in recording (which must not import store); this alias keeps store's
// signatures readable.
type Checkpoint = recording.Checkpoint
