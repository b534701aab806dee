// Package pgcatalog answers sqlkind.Catalog questions from an upstream
// PostgreSQL's own catalog (pg_proc, pg_operator, pg_type, pg_cast,
// pg_class, pg_policy), with a per-resource cache whose entries expire.
//
// It fails closed: a name is looked up in every schema when it is not
// qualified, so an overload or a relation anywhere counts (search_path
// cannot hide one); a function of any volatile overload is volatile; a
// lookup error is returned, never guessed around, and the caller treats the
// operation as unknown.
package pgcatalog
