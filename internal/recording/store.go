package recording

import "context"

// Store is what the recording needs from persistence. internal/store's
// Store satisfies it; recording cannot import store (store imports
// recording), so the subset is declared here.
//
// A Store must give back every field of an event byte for byte (Data as
// stored, not re-encoded as jsonb), and times to the microsecond: the
// hashes cover them.
type Store interface {
	// AppendEvents stores chained events in one transaction, durably, in
	// order; all or none.
	AppendEvents(ctx context.Context, events []Stored) error
	// Events lists a writer's events with Seq >= fromSeq, in Seq order, at
	// most limit (0 = all).
	Events(ctx context.Context, writer string, fromSeq int64, limit int) ([]Stored, error)
	// Writers lists every chain's writer id, oldest first.
	Writers(ctx context.Context) ([]string, error)
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints lists a writer's checkpoints.
	Checkpoints(ctx context.Context, writer string) ([]Checkpoint, error)
}
