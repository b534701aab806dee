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
//	    Messages: m, // MaskMessage on upstream ErrorResponse, NoticeResponse,
//	                 // NotificationResponse, unless the verdict has Unmask
//	}
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
//	                     are not scanned by detectors (mask.Column.Fixed);
//	                     a column built from pg_statistic's sampled values
//	                     (pg_stats, pg_stats_ext, pg_mcv_list_items) is
//	                     masked whole; a generated column's sources include
//	                     the columns it is computed from
//	               ─► mask.Plan for the identity's roles
//	DataRow        ─► every value through Plan.Value, in place, one row at a
//	                   time (text and binary formats); no active plan: nothing
//	                   is touched and nothing allocated. In a column the
//	                   detectors scan, a value whose bytes are not its text
//	                   is decoded first (scan.go, scantext.go): binary
//	                   int8, numeric, float4/8, money, bytea, inet, arrays,
//	                   ranges, multiranges and composites (their element
//	                   types read from the value, or the catalog for
//	                   user types); text-format bytea (hex or escape),
//	                   floats in exponent form and grouped money. A match
//	                   masks the whole value (NULL unless text or json); a
//	                   binary value that cannot be decoded is NULL. In text
//	                   and json values, a hex bytea, an exponent float or a
//	                   grouped amount inside (an array's or a record's text,
//	                   c::text, to_json) is decoded too, and a match there
//	                   masks the whole value
//	CopyData       ─► COPY ... TO STDOUT rows (text or csv, the statement's
//	                   own DELIMITER/NULL/QUOTE/ESCAPE/HEADER), a partial row
//	                   kept (bounded) until the next message; binary: error;
//	                   hex bytea, exponent floats and grouped money in a
//	                   scanned field are decoded as in DataRow
//
// Annotate (before Guard.Decide) fills Operation.FilterUses,
// FilterUnresolved and Unmaskable so the guard refuses a `filter: deny`
// column in WHERE/JOIN/ORDER BY/GROUP BY/HAVING/CASE or as the source of a
// write, and binary COPY under an active rule.
//
// # Messages
//
// MaskMessage runs the detectors over every text of an error, notice and
// notification (errors.go), masks the key values of a Key (...)=(...)
// detail when a key column is masked (a partition's key is also its
// partitioned table's, a generated column's also the columns it reads)
// and always when the key is a stored row's ("is still referenced"),
// replaces a failing row and a row's partition key, and masks the quoted
// parts of a data exception (SQLSTATE class 22: ssn::int). An error can also quote a value
// as a name in other classes (ssn::regclass: relation "219-09-9999" does
// not exist; current_setting(ssn), nextval(ssn), ssn::regrole): while an
// operation that reads a masked column or names a relation holding one
// (anywhere: a MATERIALIZED CTE nobody reads, a function's arguments in
// FROM, EXPLAIN ANALYZE's query), or something lineage cannot trace, runs
// in a session, every quoted part of its messages is masked (quotes.go), and so are a data exception's Detail and
// what follows its Message's first ": " (make_date: date field value out
// of range: 219-09-9999; xmlparse's Detail quoting the document). The
// Guard wrapper tracks those
// operations, from the verdict that allows them (at once, or when their
// review is approved) to Done; an engine that calls Annotate itself
// instead gets the other maskings only.
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
//     violation confirms that a value exists, though the value is masked;
//     an output expression that fails for some values, such as
//     count(1/(ssn <> '219-09-9999')::int) or ssn::int, answers one bit
//     by failing, its output masked or not).
//   - A write that copies a masked column elsewhere (INSERT ... SELECT
//     email, pg_notify(c, email)) is refused only under filter: deny;
//     otherwise the copy is covered by no column rule, only the detectors.
//   - Aggregates over masked columns return masked values, but count(DISTINCT
//     ssn) or a hash strategy's equal outputs reveal equality.
//   - Code lineage cannot see: triggers, rules, row-security policies,
//     column defaults, user-defined casts/operators on built-in names,
//     functions shadowing built-ins through search_path. User functions
//     are unresolved (masked whole) and of unknown kind (reviewed).
//   - Detectors read a value as a client's driver decodes it (a bytea's
//     bytes, a float's digits). A value the statement re-encodes itself
//     (encode(b, 'hex') or 'base64', reverse(), translate(), replace()
//     of bytea's \x) is read as the text it became, which no detector
//     recognises: only a column rule, through lineage, covers it.
//   - In a column the detectors scan, a binary value of a type the
//     gateway cannot decode (tsvector, an extension's type such as
//     hstore, a user-defined base type) is NULL: a client should ask for
//     such types in text format.
//   - Money is read whatever lc_monetary's fraction digits in a money
//     column; inside a composite, an array or json, only an amount next
//     to a currency sign ($ € £ ¥) is.
//   - Notices and errors raised by reviewed code (RAISE in a DO block or a
//     function) have their quoted parts masked while it runs, but a value
//     echoed without quotes (RAISE NOTICE 'ssn %', v) passes through the
//     detectors only: a value of a column rule that no detector
//     recognises is not masked there.
//   - The catalog is cached for Options.CacheTTL (30s): a schema change
//     (a renamed column, a redefined view) can be seen late unless the
//     engine calls Invalidate after schema operations; such changes are
//     kind schema and are reviewed.
//   - Statistics: the sampled values of pg_statistic are masked whole,
//     but the frequencies, null fractions, distinct counts and
//     correlations of masked columns pass; restrict the statistics views
//     upstream where that matters.
package pgmask
