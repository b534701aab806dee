// Package lineage traces the columns of a PostgreSQL statement's result back
// to the table columns they are built from, so that masking rules keyed on
// table columns cannot be dodged by an alias, an expression, SELECT *,
// row_to_json, a view, a subquery, a CTE, UNION or COPY (DESIGN.md,
// invariant 5).
//
// The PostgreSQL engine calls Analyze with the text of one statement (a
// simple-query statement, or the text of a Parse message). For every output
// column of the statement's final result (SELECT, VALUES, RETURNING, COPY ...
// TO STDOUT) the Result lists the mask.Source columns the value is derived
// from, and every source column the statement uses in any other way
// (WHERE, JOIN, GROUP BY, ORDER BY, DISTINCT, UNION, a CASE condition, a
// window, LIMIT, or as the data of a write): the filter uses that a
// `filter: deny` rule refuses.
//
// An output expression is a filter use too unless it only derives a value
// (oracle.go): a comparison, pattern match, Boolean or NULL test, IN/ANY,
// NULLIF, GREATEST/LEAST, a subscript, and every function, operator or
// cast not on the allow list there can raise an error, turn NULL or yield
// rows depending on the value, so it answers a question about it even when
// its result is masked or thrown away (a MATERIALIZED CTE's unread column,
// a function in FROM). The allow list keeps plain reads: references,
// ||, COALESCE, casts to character types, CASE results, row, array, JSON
// and XML constructors, upper(), substr() with constant positions,
// format() and the like.
//
// The engine resolves plain columns from RowDescription (table OID and
// attribute number) itself; lineage is for the computed columns (table OID
// 0), for COPY (no RowDescription) and for filter uses.
//
// Fail closed. Where lineage cannot be decided the column is
// Resolved=false, which masks it whole: an unknown relation, a function
// that is not a known built-in deriving its value only from its arguments
// (a user function may read any table), dynamic SQL (query_to_xml,
// EXECUTE in a DO block), a whole-row reference to something not
// expandable, nesting deeper than the analyzer's bounds. A filter use that
// cannot be decided sets Result.FilterUnresolved. A parse or catalog error
// is returned as an error, and the caller must then treat every column as
// unresolved and every filter use as unresolved.
//
// What lineage cannot see: code that runs without being named in the
// statement (triggers, rules, row-security policies, column defaults,
// casts and operators a user defined on built-in names, functions that
// shadow a built-in through the search path), the contents of other
// sessions' temporary tables, and statistics views such as pg_stats that
// expose sampled values. Filter uses inside a view's stored definition are
// not reported (the view's author chose them, not the querying client); the
// statements that create views are analyzed and report them.
package lineage
