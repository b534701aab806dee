// Package pgmask masks PostgreSQL results inside the gateway's data path
// (DESIGN.md invariant 5): it is the adapter between pgproto3 messages and
// a mask.Plan. The engine owns the protocol; this package only rewrites
// values in the messages it is shown, and never imports the engine (which
// calls it).
//
// # Wiring
//
//	m, _ := pgmask.New(pgmask.Options{Rules: ..., Querier: ...})
//	postgres.Options{
//	    Guard:  m.Guard(gate), // or call m.Annotate before Decide
//	    Filter: func(s, op, v) postgres.ResultFilter { return m.Filter(s, op, v) },
//	}
//	relay: MaskError / MaskNotice / MaskNotification on upstream
//	ErrorResponse, NoticeResponse, NotificationResponse of a session whose
//	resource has rules, unless the operation's verdict has Unmask.
//
// # Per result
//
//	RowDescription ─► for each field
//	                   TableOID ≠ 0: pg_class/pg_attribute by OID (cached per
//	                     resource, looked up before the row passes); a
//	                     partition or inheritance child also counts as its
//	                     ancestors; a view's column is traced through the
//	                     view's definition (lineage, recursively) and, like
//	                     every computed column, is masked whole when any
//	                     source is masked
//	                   TableOID = 0: lineage of the operation's text (the
//	                     statement this RowDescription belongs to)
//	                   type OID ─► text (masked as text), json/jsonb (a
//	                     masked value becomes a JSON string), other (NULL);
//	                     bool/int2/int4/date/time/timestamp/interval/uuid
//	                     are not scanned by detectors (mask.Column.Fixed)
//	               ─► mask.Plan for the identity's roles
//	DataRow        ─► every value through Plan.Value, in place, one row at a
//	                   time (text and binary formats); no active plan: nothing
//	                   is touched and nothing allocated
//	CopyData       ─► COPY ... TO STDOUT rows (text or csv, the statement's
//	                   own DELIMITER/NULL/QUOTE/ESCAPE/HEADER), a partial row
//	                   kept (bounded) until the next message; binary: error
//
// Annotate (before Guard.Decide) fills Operation.FilterUses,
// FilterUnresolved and Unmaskable so the guard refuses a `filter: deny`
// column in WHERE/JOIN/ORDER BY/GROUP BY/HAVING/CASE or as the source of a
// write, and binary COPY under an active rule.
//
// # Fails closed
//
// A column whose source cannot be resolved (unknown relation, catalog
// error, lineage error, a user function, a multi-statement query whose
// RowDescriptions cannot be matched to statements) is masked whole; a
// masked value that would not be valid for its type is NULL; rows with no
// description, or more values than described, are NULL; a COPY whose
// statement cannot be analyzed, a binary COPY and an over-long partial row
// are errors (the engine then ends the session). An unparseable error
// Detail quoting a key is dropped.
//
// # What masking cannot stop
//
// Masking hides values in what is returned; it is not access control.
//   - Inference through conditions: `filter: deny` refuses a masked column
//     in WHERE, JOIN, ORDER BY, GROUP BY, HAVING, CASE conditions and as the
//     data of a write, but rules without it let `WHERE email LIKE 'a%'`
//     answer one bit per query, and even with it the row count, timing
//     and errors of allowed statements carry information (e.g. a unique
//     violation confirms that a value exists, though the value is masked).
//   - A write that copies a masked column elsewhere (INSERT ... SELECT
//     email, pg_notify(c, email)) is refused only under filter: deny;
//     otherwise the copy is covered by no column rule, only the detectors.
//   - Aggregates over masked columns return masked values, but count(DISTINCT
//     ssn) or a hash strategy's equal outputs reveal equality.
//   - Code lineage cannot see: triggers, rules, row-security policies,
//     column defaults, user-defined casts/operators on built-in names,
//     functions shadowing built-ins through search_path. User functions
//     are unresolved (masked whole) and of unknown kind (reviewed).
//   - Notices raised by reviewed code (RAISE NOTICE in a DO block or a
//     function) pass through the detectors only: a value of a column rule
//     that no detector recognises is not masked there.
//   - Detectors read binary-format int8 and numeric values as their text
//     form (binnum.go); they do not run over other binary-format values of
//     non-text types (float8, money, bytea, arrays and composites of
//     numbers).
//   - The catalog is cached for Options.CacheTTL (30s): a schema change
//     (a renamed column, a redefined view) can be seen late unless the
//     engine calls Invalidate after schema operations; such changes are
//     kind schema and are reviewed.
//   - Statistics views (pg_stats) expose sampled values; restrict them
//     upstream.
package pgmask
