// Package store persists countersign's state: identities, tokens, admin
// events, the recording's chained events and checkpoints, and reviews and
// grants. One interface (Store), two implementations that pass the same
// suite (storetest):
//
//   - SQLite (sqlite://PATH; pure Go, modernc.org/sqlite): the embedded
//     default. One process owns the file (and its journal, below). WAL mode, foreign keys,
//     busy_timeout, synchronous=FULL. Writes go through one connection
//     (SQLite has one writer at a time anyway, and one connection means our
//     writers queue in Go instead of failing with SQLITE_BUSY); reads use a
//     small pool beside it. Times are INTEGER unix nanoseconds (UTC), so
//     numeric order is time order; Now is the process clock.
//   - PostgreSQL (postgres:// or postgresql://; pgx/v5 pgxpool): several
//     replicas share it and its clock (Now is clock_timestamp(), read at
//     the call, not the transaction's start). Times are timestamptz.
//
// Open picks the implementation by the URL's scheme and runs the embedded
// migrations (goose, forward only, version in goose_db_version; replicas
// take turns under an advisory lock). Describe strips passwords from a URL
// for logs.
//
// # Durability
//
// AppendEvents is the recording's group commit, durable when it returns.
// PostgreSQL: one transaction per batch, synchronous_commit. SQLite: one
// record appended to this process's journal segment in one direct,
// synchronous write (O_DIRECT|O_DSYNC, journal_direct.go; a write and an
// fdatasync where the file system refuses direct I/O) (journal.go,
// journal_format.go; <path>.journal/, one segment per process under an
// exclusive flock, zeros written ahead so that the flush overwrites
// allocated blocks); a background indexer (journal_index.go)
// then inserts what was journaled into SQLite, many batches per transaction
// with synchronous=NORMAL (every other write keeps FULL), and deletes a
// segment only after fsyncing SQLite's files (and their directory) with all
// of it; after one such fsync fails no segment is deleted until the next
// Open replays them, since a failed fsync can leave a hole in the WAL that
// later commits sit behind. Ping reports that, a failing indexer and a
// full backlog. Every method
// that reads or changes events, checkpoints or retention marks first waits
// for the indexer to store what was journaled before the call, so a process
// reads its own appends at once and never stores a checkpoint ahead of its
// events; another process sharing the file sees them when indexed
// (milliseconds later). Open replays the segments of processes that died
// (journal_replay.go): a torn last record is dropped (its caller never
// heard success); a bad record followed by valid ones, or an event that
// differs from SQLite's copy, refuses to open and names the file; events a
// retention mark says were deleted stay deleted. A write or fdatasync that
// fails is cut back off the file; if that fails too, every later append
// fails until restart, so a refused batch can never be replayed under seqs
// a later batch took.
//
// A (writer, seq) that exists, or appears twice in the batch, fails the
// whole batch with ErrDuplicate; nothing of it is stored. SQLite checks
// that before journaling: a batch that continues each writer's chain
// needs no query (the journal knows each writer's next seq), any other
// waits for the indexer and asks SQLite. Event data, hashes and signatures
// are stored as bytes and given back byte for byte (PostgreSQL: bytea,
// not jsonb), and times to the microsecond: the chain's hashes cover them.
// BenchmarkAppendEvents measures the cost. On SQLite the indexer inserts
// a batch as a few multi-row inserts (64, 32, ... 1 rows each) on the
// writer's driver connection (sqlite_events.go): one insert per event
// spent about half of a 64-event commit's CPU in the driver's
// per-statement work.
//
// Retention (retention.go, migration 00004) deletes a chain's old events
// lowest seq first, a bounded chunk per transaction (on SQLite the delete
// holds the write lock the group commit needs), and keeps one signed
// retention mark per chain (recording.RetentionMark), which only moves
// forward.
//
// # Fails closed
//
// Every method returns an error when the database does not answer or
// refuses a write; callers refuse the operation they were deciding. A
// token row holds the SHA-256 of the secret, never the secret (the tests
// read every stored value to prove it). Lookups of absent records wrap
// ErrNotFound (use errors.Is).
//
// # Adding a migration
//
// Add the next number to both directories, same number and meaning:
//
//	migrations/sqlite/00003_what.sql
//	migrations/postgres/00003_what.sql
//
// each starting with "-- +goose Up". Never edit a released migration:
// databases in the field have run it. Schemas move forward only: no Down
// is ever run, and a database migrated by a newer countersign is refused
// rather than misread. Times: INTEGER unix nanoseconds in SQLite and
// timestamptz in PostgreSQL for new columns of this package's tables
// (the reviews tables, 00002, keep BIGINT unix microseconds in both).
// Then add the methods to both implementations and cases to storetest.
package store
