// Package store persists countersign's state: identities, tokens, admin
// events, the recording's chained events and checkpoints (and, later,
// reviews and grants). One interface, two implementations: SQLite (pure Go,
// modernc.org/sqlite, WAL; the embedded default) and PostgreSQL (pgx; for
// several replicas). Migrations are embedded and run by Open, forward only.
//
// Errors fail closed: a caller that cannot read or write the store refuses
// the operation it was deciding.
package store
