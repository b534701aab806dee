// Package pgestimate estimates how many rows the statement of an operation
// review would change on a PostgreSQL resource, for `reviews show`: the
// upstream's EXPLAIN without ANALYZE. It implements review.Estimator.
//
// The estimate must never execute anything, and PostgreSQL's planner runs
// code: it folds IMMUTABLE functions and evaluates STABLE ones for
// selectivity, expands column defaults, row-security policies and rules,
// and resolves user-defined operators and casts. So only what can be shown
// to give it nothing to run is explained:
//
//   - one plain INSERT, UPDATE or DELETE on one plain table (no rules, no
//     row security, no children), with no WITH, FROM, USING, subquery or
//     other relation;
//   - every function called is on a short allow-list of built-in read-only
//     functions, and no function of that name exists outside pg_catalog;
//   - every column the statement names is a column of its table (t.f would
//     otherwise be the function f(t)); every column's type, every type cast
//     to, every default's function is pg_catalog's;
//   - the database defines no operators or casts of its own.
//
// Everything else gets "no estimate" and the reason. What passes runs as
// EXPLAIN (FORMAT JSON) on a connection of its own, inside a READ ONLY
// transaction with a short statement_timeout that is never committed, under
// the review's search_path and role: a second wall if a check missed
// something.
//
// It fails closed: any doubt, error or timeout is "no estimate".
package pgestimate
