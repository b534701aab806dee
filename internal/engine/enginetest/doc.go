// Package enginetest holds the stand-ins that the protocol engines' tests
// (internal/engine/postgres, internal/engine/mysql) put in place of the
// real token check, guard and recorder, so that an engine is tested on its
// own against a real database server.
//
// The real guard (internal/guard), recorder (internal/recording), token
// check (internal/identity) are swapped in by the e2e tests and the cmd
// wiring. These stand-ins allow what their rule allows and record in
// memory; they are for tests only and never part of a gateway. Every
// accessor returns a copy taken under the lock, so a test may read while
// sessions still run.
package enginetest
