// Package recording is countersign's tamper-evident trail: every session,
// operation, decision, review and admin action, chained, signed and
// durable before the operation it records takes effect.
//
// # Chains
//
// Each gateway process is one writer with its own chain, so replicas
// sharing a store never contend for one head. Event seq starts at 1 and
// each event carries
//
//	Hash = SHA-256(PrevHash || canonical(event))
//
// where canonical (AppendCanonical) is the tag "countersign.event.v1"
// followed by writer, seq, time, type, session, resource, actor and data;
// strings and bytes are prefixed by their big-endian uint32 length, seq and
// time (Unix nanoseconds, UTC, cut to microseconds) are big-endian int64.
// Event 1 is a chain.start event naming the predecessor checkpoint (the
// newest chain's last checkpoint) whose hash is its PrevHash; the first
// chain starts from 32 zero bytes. A chain closed cleanly ends with a
// chain.close event and a Final checkpoint.
//
// Checkpoints sign (writer, seq, hash, time, final) with Ed25519 (tag
// "countersign.checkpoint.v1", same field encoding) every CheckpointEvery
// events, every CheckpointInterval when events were added, and at Close.
// KeyID is the hex of the first 8 bytes of SHA-256(public key).
//
// # Writing
//
// Log is the Recorder. Append queues and returns a Commit at once; one
// committer goroutine takes everything queued (up to MaxBatch), chains it,
// stores it with one AppendEvents call (one transaction, one fsync) and
// finishes every Commit. It fails closed: when the store refuses a batch,
// every Commit of it fails (the caller refuses the operation), the head
// does not move, and the next batch chains from the last durable hash.
// After Close, Append fails with ErrClosed.
//
// Data is encoded with encoding/json and taken as given (OperationData and
// OutcomeData, built for every statement, write themselves without
// reflection, byte for byte as encoding/json would: encode.go): masking values is
// the mask package's job and happens before Append. Options.Redact is the
// hook for running content detectors (and the masking of password
// literals in statement texts) over the encoded data before it is chained.
//
// A resource's record.results keeps the first rows of each result with the
// operation.outcome event as Result values, masked by the engine for the
// trail (every rule, whatever the roles), each value bounded by
// MaxResultValue (ResultValue).
//
// Sinks (FileSink, WebhookSink) get every committed event and every stored
// checkpoint as JSON lines. They queue and never block the data path: a
// full queue drops lines, counts them and logs a warning.
//
// # Checking
//
// Verify recomputes every chain from the store a page at a time and reports
// the first broken place of each: a changed event (hash mismatch), a
// deleted one (a seq gap), a reordered one, a checkpoint whose signature or
// hash does not match, checkpoints past the last event (a deleted tail).
// Events after the last checkpoint are unsigned, and a chain without a
// Final checkpoint is reported; both fail only with Strict. With a witness
// file (a FileSink's), every checkpoint the witness holds must be in the
// store and reached by its chain, which catches a tail deleted together
// with its checkpoints. Export and VerifyExport do the same offline, with
// only the public key.
//
// # Retention
//
// Log.Retain (serve runs it hourly when recording.retention is set)
// deletes whole segments: for each chain, every event up to the newest
// checkpoint signed before the cutoff (the anchor), and the checkpoints
// before it, except the anchor and those a later chain.start names. It
// first verifies the part it deletes (a break there is never hidden; the
// chain is left alone and named), then appends a TypeRetention event to
// its own chain, durably, then stores a RetentionMark: (writer, through,
// hash, time) signed with the trail's key, one per chain, never moving
// back. Only then are rows deleted, a chunk at a time; an interrupted run
// is finished by the next. Verify accepts a chain whose first stored event
// is after seq 1 only when its mark verifies and covers the gap; the first
// kept event must follow the mark's hash (and the anchor checkpoint's,
// which stays), so deleting more than retention did, moving a mark without
// the key, or deleting the mark is a failure. Events after a chain's last
// checkpoint (an unsigned tail) are never deleted. A witness's checkpoints
// below a mark are not looked for in the store. A chain that a verified
// retention event names must still be listed (its kept checkpoint and
// mark stay), so deleting a cut chain whole is caught while that event is
// kept; once retention has deleted the event too, only a witness or an
// export taken before shows what was there.
//
// The Store a Log uses must give back every field byte for byte and times
// to the microsecond: the hashes cover them.
package recording
