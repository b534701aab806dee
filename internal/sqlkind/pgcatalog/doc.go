// Package pgcatalog answers sqlkind.Catalog questions from an upstream
// PostgreSQL's own catalog (pg_proc, pg_operator, pg_type, pg_cast,
// pg_class, pg_policy, and pg_constraint, pg_index and pg_statistic_ext
// through pg_depend for the expressions planning a read folds), with a
// per-resource cache whose entries expire.
//
// It fails closed: a name is looked up in every schema when it is not
// qualified, so an overload or a relation anywhere counts (search_path
// cannot hide one); a function of any volatile overload is volatile; a row
// type is a safe cast target only when its columns' input is built in; a
// cast PostgreSQL applies unasked (implicit, or to json) that runs user
// code is reported (sqlkind.CastCatalog); so are the types whose input runs
// user code (sqlkind.CodeTypeCatalog: a domain whose CHECK calls a function
// outside pg_catalog or a volatile one, read from the CHECK's stored tree,
// a range whose subtype operator class, canonical or subtype_diff function
// is such code, and the arrays, row types, ranges and domains built on one)
// and the columns of those types per relation, with the partition and
// index keys whose operator class has such a support function; a lookup
// error is returned, never guessed around, and the caller treats the
// operation as unknown.
// Extensions' own functions and types are trusted in casts, since
// installing or changing an extension is an admin operation.
package pgcatalog
