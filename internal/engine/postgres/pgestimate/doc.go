// Package pgestimate estimates how many rows the statement of an operation
// review would change on a PostgreSQL resource, for `reviews show`: the
// upstream's EXPLAIN without ANALYZE. It implements review.Estimator.
//
// The estimate must never execute anything, and PostgreSQL runs code well
// before execution: the planner folds IMMUTABLE functions (in the statement,
// in defaults, in index expressions and predicates, in expression
// statistics, in CHECK constraints under constraint_exclusion = on) and
// evaluates STABLE ones for selectivity; it expands row-security policies,
// rules and children; binding a parameter runs its type's input (a
// domain's CHECK); (x).f and x.f are calls of f. So only what can be shown
// to give it nothing to run is explained (a whitelist: the rest is refused):
//
//   - one plain INSERT (VALUES), UPDATE or DELETE on one plain heap table (no
//     rules, row security, children, parents or partitions, generated
//     columns, expression or partial indexes, indexes of other access
//     methods or operator classes, expression statistics), with no WITH,
//     FROM, USING, ON CONFLICT, subquery or other relation;
//   - its expressions are built only of the parse nodes in plainNodes,
//     columns of the table (qualified, if at all, by its name or alias),
//     operators and types found in pg_catalog alone, subscripts but no
//     field selection, and calls of a short allow-list of built-in
//     read-only functions, no function of that name existing elsewhere;
//   - every column's type, every default's and constraint's function,
//     operator and type, and every parameter's type (a base type) is
//     pg_catalog's; the database defines no operators or casts of its own.
//
// Everything else gets "no estimate" and the reason; the upstream's own
// error text is never shown (it may carry data) and only its SQLSTATE is
// logged. What passes runs on a connection of its own whose settings a
// database or role default cannot change (client_encoding UTF8,
// standard_conforming_strings on, as pg_query reads the text;
// constraint_exclusion partition; jit off): the
// table is locked SHARE UPDATE EXCLUSIVE (writers go on, no DDL on it can
// come between the checks and the plan), the transaction turns READ ONLY,
// the catalog is checked, and the statement as pg_query writes it back,
// its table named in full, runs as EXPLAIN (FORMAT JSON) under search_path
// pg_catalog alone, with a short statement_timeout, and is never committed.
// A review's estimate is worked out once and kept.
//
// It fails closed: any doubt, error or timeout is "no estimate".
package pgestimate
