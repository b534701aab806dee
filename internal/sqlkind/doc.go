// Package sqlkind classifies SQL statement text into the operation kinds of
// DESIGN.md (read, write, schema, privilege, admin, unknown) with the real
// parser of each dialect, and lists the objects each statement touches.
//
// It fails closed: text that cannot be parsed, or whose effect depends on
// something not resolved, is Unknown, the most dangerous kind. The zero Kind
// is Unknown.
//
// # PostgreSQL
//
// PostgresClassifier parses with pg_query (PostgreSQL's own grammar, cgo).
// Decisions that are not obvious:
//
//   - A multi-statement text takes its most dangerous statement's kind.
//   - Data-modifying CTEs and SELECT ... FOR UPDATE/SHARE are writes.
//   - EXPLAIN ANALYZE takes the kind of what it runs; plain EXPLAIN only
//     plans, so it is a read, but the functions it names are still checked
//     (the planner folds immutable functions).
//   - DO, CALL and LOAD run arbitrary code: Unknown. EXECUTE name is Unknown
//     unless the caller resolves the name (ClassifyWithPrepared).
//   - SELECT ... INTO and CREATE TABLE AS are schema. COPY FROM is a write,
//     COPY TO a read (COPY (query) TO takes the query's kind); COPY with a
//     server file or PROGRAM is Unknown.
//   - A function not on the built-in allow-list makes a statement Unknown
//     until Resolve finds it in the upstream catalog to be a built-in
//     immutable or stable function. A user-defined function is never
//     trusted (its declared volatility is the author's claim), nor an
//     overload in any other schema, nor a user-defined operator, nor a cast
//     to a type with user code. Views and row-security policies the
//     statement reads are expanded and checked the same way.
//   - Only allow-listed SETs are reads; role changes, RESET ALL and DISCARD
//     ALL are privilege; standard_conforming_strings off and a non-UTF8
//     client_encoding are Unknown.
//
// # Caching
//
// Classifications are cached by exact text and by a literal-insensitive key
// (literalKey): the text with each literal replaced by a placeholder of its
// token type, built by a scanner that follows PostgreSQL's scan.l and gives
// no key wherever it is unsure. A statement whose kind depends on a
// literal's value (SET, EXPLAIN's ANALYZE option, COPY's file name) is never
// cached under that key. TestLiteralKeySound and FuzzLiteralKey check that
// two texts of one key classify identically. A text answered through its
// key is not cached again under its exact text: texts that differ only in
// literals rarely repeat. An engine that needs a text's statements and its
// classification gets both from one lookup (Analyze).
//
// Texts so deeply nested that pg_query's C code could overflow its stack
// are refused (Unknown) before they reach it.
//
// Known limits: pg_query is PostgreSQL 17's grammar, the server may be
// older (its differences make statements fail, not run differently, as far
// as known); implicit operators of ORDER BY and GROUP BY on user-defined
// types are not seen. The equality a text never names (CASE x WHEN, JOIN
// USING, NATURAL JOIN, IN (SELECT ...)) is checked as `=`; while the
// database has a user-defined implicit cast or cast to json, every read
// that reaches a value is Unknown (CastCatalog); immutable user functions
// the planner folds from CHECK constraints, index expressions and
// statistics are checked (pgfold.go); EXPLAIN EXECUTE takes the prepared
// statement's kind; in a read, a relation the catalog cannot find is
// Unknown; so is a statement reaching a relation with a column whose type
// runs user code when a value is converted to it (a domain whose CHECK
// calls a user or volatile function, or an array, row or range type of
// one: RelationInfo.CodeColumns), since COALESCE, UNION, array_append or a
// string constant compared with it convert other values to that type; and
// a relation partitioned or indexed (itself or below) by a key whose
// operator class has a user support function, which planning calls to
// prune partitions and an index scan calls to compare.
//
// # Passwords
//
// MaskPasswords gives the copy of a statement shown to people (reviews,
// webhooks, the recording) with its password literals replaced by
// PasswordMask: PostgreSQL's PASSWORD '...' (roles) and password '...'
// options (user mappings, servers), MySQL's IDENTIFIED ... BY/AS/USING,
// SET PASSWORD, PASSWORD('...'), *_PASSWORD = '...'. Literals are found by
// token, then the masked text is parsed again: if the parser still finds a
// password that is not the mask, or cannot parse it, the text is cut after
// the first PASSWORD / IDENTIFIED word (fail closed; MariaDB-only syntax
// such as IDENTIFIED VIA is cut). The text that runs, and its digest, are
// never masked. Not found: a password inside another string (a DO block's
// or a function's body that runs CREATE ROLE ... PASSWORD).
package sqlkind
