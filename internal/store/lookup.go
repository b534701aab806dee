package store

import (
	"context"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// IdentityReader reads back what UpsertIdentity recorded. *SQLite and
// *Postgres implement it; it is not part of Store so that fakes of Store
// need not.
type IdentityReader interface {
	// Identity returns the identity as last recorded and when that was
	// (the store's clock); ErrNotFound if it never was.
	Identity(ctx context.Context, issuer, subject string) (identity.Identity, time.Time, error)
}

var (
	_ IdentityReader = (*SQLite)(nil)
	_ IdentityReader = (*Postgres)(nil)
)

// Both stores are what the recording needs (it declares the subset itself,
// since store imports recording).
var (
	_ recording.Store = (*SQLite)(nil)
	_ recording.Store = (*Postgres)(nil)
)
