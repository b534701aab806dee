// Package mysql is countersign's MySQL/MariaDB wire-protocol gateway.
// Clients connect to it as to a MySQL server, naming the resource as
// their user and giving a countersign resource token as their password;
// every command they send is classified (internal/sqlkind, TiDB's MySQL
// grammar), decided by the guard, recorded, and only then forwarded to the
// resource's upstream, which the gateway logs in to with the resource's own
// credentials.
//
// It fails closed: a client option it does not understand (compression,
// IGNORE_SPACE, a non-UTF-8 character set), a malformed or oversized packet
// (limits.max_message_bytes), a command it does not know, an upstream
// whose sql_mode changes quoting, a guard it cannot reach and a recording it
// cannot write all refuse (the command, or the session when the stream
// cannot be trusted any more). Nothing on user input panics; a recover per
// connection is the last line of defence and ends only that connection.
//
// # Connection phase
//
//	client                          gateway                          upstream
//	  │◄─ Handshake v10 ─────────────│ offers mysql_native_password (never
//	  │                              │ cleartext first), CLIENT_SSL if a cert
//	  │ SSLRequest ─────────────────►│ TLS with the gateway certificate
//	  │ HandshakeResponse41 ────────►│ user = resource; utf8/utf8mb4 only;
//	  │                              │ plaintext off loopback: ERR 3159,
//	  │                              │ before any password is asked for
//	  │◄─ AuthSwitch(clear_password) │
//	  │ token ──────────────────────►│ Auth.AuthenticateResource (ERR 1045)
//	  │                              │ Guard.Connect (ERR 1227)
//	  │                              │ record session.open, durable
//	  │                              │ own login (login.go): native, ed25519,►│
//	  │                              │ caching_sha2 (TLS, or the key pinned in
//	  │                              │ tls.server_public_key_file; never
//	  │                              │ fetched in the clear: refused);
//	  │                              │ without TLS no clear_password or
//	  │                              │ sha256_password, and with a pinned
//	  │                              │ key caching_sha2 only (ERR 1045)
//	  │                              │ SELECT @@SESSION.sql_mode: must be safe
//	  │◄─ OK ────────────────────────│
//
// The gateway offers no compression, session tracking, DEPRECATE_EOF,
// query attributes or MariaDB extended capabilities other than bulk
// operations, so both sides speak classic result sets the relay parses;
// the client's FOUND_ROWS, MULTI_STATEMENTS, MULTI_RESULTS and LOCAL_FILES
// are passed upstream. The login asks MariaDB for bulk operations; the
// greeting offers them to clients once every resource's server seen so
// far agreed (bulkOffer, bulk.go: the greeting precedes the resource).
//
// # Commands
//
// One handler per command (loop.go). COM_QUERY is classified whole: a
// multi-statement text takes its most dangerous statement's kind.
// COM_STMT_PREPARE runs nothing and is only forwarded; COM_STMT_EXECUTE is
// decided from the prepared text and the bound parameters, long data
// (COM_STMT_SEND_LONG_DATA) included, which become guard.Operation params.
// COM_INIT_DB and COM_FIELD_LIST are decided as the USE and SHOW COLUMNS
// they amount to. COM_RESET_CONNECTION is recorded (durably) before it runs.
// COM_PING, COM_SET_OPTION, COM_STMT_CLOSE and COM_STMT_RESET pass.
// MariaDB's COM_STMT_BULK_EXECUTE, where the client and the upstream both
// agreed on bulk operations, is decided as one operation: the prepared
// text with every row's values (indicators included) as its params
// (bulk.go); a bulk packet the gateway cannot read ends the session.
// COM_CHANGE_USER, COM_BINLOG_DUMP(_GTID), COM_STMT_FETCH (cursors), a bulk
// execute that was not agreed on and every other command are refused with
// ERR 1047; the session goes on.
//
// Invariant 1 (viewkind.go): before the guard is asked, the views a
// COM_QUERY text or an execute names are looked up in the resource's view
// catalog (views.go) and their definitions classified, through nested
// views; the operation takes the most dangerous kind (a view calling a
// stored function, or whose definition is hidden, is Unknown). This is
// done per operation, against the catalog of the moment.
//
// Invariant 8 (tokenizing.go): a SET of an sql_mode or character set that
// would make the server read text differently from the gateway is refused
// outright (ERR 1231), the guard not asked; after an Unknown statement ran
// (approved), after any SET and after COM_RESET_CONNECTION the upstream's
// settings and current schema are read back, and a session the gateway
// cannot follow any more ends.
//
//	decide ─► Guard.Decide
//	  hold  ─► wait silently (MySQL has no asynchronous notice; the wait shows
//	           in 'countersign reviews list'); then allow or deny
//	  deny  ─► ERR 1142 (42000) with the guard's message; nothing reaches the
//	           upstream. MySQL keeps a transaction open after a failed
//	           statement, so the upstream transaction is exactly what the
//	           client believes: still open, without the refused statement.
//	  allow ─► record "operation"; not a read: durable BEFORE forwarding;
//	           a read: forwarded at once, its first result byte waits for
//	           durability (if the recording fails, the results are dropped
//	           and the client gets an error)
//	results ─► OK / ERR / result sets (SERVER_MORE_RESULTS_EXISTS loops),
//	           column definitions and rows through the ResultFilter, row by
//	           row, flushed in 64 KiB batches, never a whole result buffered;
//	           with record.results, the first rows copied and masked for the
//	           trail by Options.Capture (capture.go), kept with the outcome
//	LOCAL INFILE request ─► passed to the client only for an allowed
//	           LOAD DATA LOCAL statement (which needs a write grant: the
//	           guard sees Class.CopyIn), and only for the file it names;
//	           otherwise the upstream gets an empty file (loads nothing)
//	then ─► Guard.Done and "operation.outcome"
//
// The session state bound into each digest is the current schema (from
// the handshake, COM_INIT_DB and successful USE statements) and whether a
// transaction is open (the upstream's SERVER_STATUS_IN_TRANS). An execute
// of a prepared statement (COM_STMT_EXECUTE, COM_STMT_BULK_EXECUTE,
// SQL-level EXECUTE) is bound, reviewed, schema-checked, masked and
// recorded in the schema current when it was prepared instead: MariaDB
// resolves its unqualified names there (stmt.go, query.go textSchema).
//
// # Clients
//
// The token is sent with mysql_clear_password, which is why it is asked for
// only over TLS. The command lines (CA = the gateway's CA certificate;
// docs/mysql.md has more):
//
//	mariadb -h HOST -P 13306 -u RESOURCE --password=$TOKEN --ssl --ssl-ca=CA --ssl-verify-server-cert --comments [SCHEMA]
//	mysql -h HOST -P 13306 -u RESOURCE --password=$TOKEN --ssl-mode=VERIFY_IDENTITY --ssl-ca=CA --enable-cleartext-plugin --comments [SCHEMA]
//
// MySQL's own client refuses the cleartext plugin unless given
// --enable-cleartext-plugin (or LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1);
// MariaDB's sends it when asked. go-sql-driver/mysql needs
// allowCleartextPasswords=true and tls=... in its DSN. Both command-line
// clients strip comments unless started with --comments: a /* reason: */
// or /* breakglass: */ comment needs it.
//
// # Allowed schemas, SQL-level PREPARE, waits
//
// schemas.go: a resource's schemas (config resources[].schemas; empty:
// only its database when set, else any; information_schema always) are
// enforced on the schema named at connect, COM_INIT_DB, USE and every
// schema-qualified name of a parsed statement: ERR 1044 naming the allowed
// schemas, recorded, the guard not asked.
//
// PREPARE s FROM 'literal' is tracked per connection (only once it ran;
// forgotten after an error, on DEALLOCATE and COM_RESET_CONNECTION, and
// after any unknown statement ran: a procedure may prepare under the same
// name);
// EXECUTE s is decided as the prepared statement, whose text is bound into
// the digest as a parameter. PREPARE from @var, an unknown name, and
// EXECUTE ... USING @vars of anything but a read are unknown.
//
// uservars.go: before an operation that is not a read is decided, the
// values of the user variables it names, and once the session may have set
// any (a text with an @, an Unknown operation) of every variable it holds,
// are read from the session and bound into its digest (guard.State.
// Variables names them; the values are never shown or recorded): an
// approval of UPDATE t SET v = @x, or of a CALL whose procedure reads @x,
// does not run again after SET @x changed.
//
// While an operation waits (a hold, a write's durability) the client
// socket is read in the background (wait.go): a client that disconnects
// ends the wait at once (the operation is recorded as refused with code
// client_gone); bytes it pipelines are kept for the next command.
//
// # Grants ending (invariant 7)
//
// interrupt.go: when a grant that allowed operations of the session runs
// out or is revoked, the guard calls the session's Interrupt. A statement
// still running upstream is killed with KILL QUERY <thread id>, sent on a
// short-lived second login with the resource's credentials (resent, a
// bounded number of times, while the same operation runs: the server
// forgets a kill that arrives before the statement does). Its ERR 1317
// (70100) reaches the client with the grant's reason as its text. An
// operation allowed under a grant that ended between the decision and its
// start is withdrawn (code grant_ended, ERR 1142); the next operation is
// decided anew and finds no grant.
//
// # Masking
//
// MaskFilter (mymask.go) is the Options.Filter that masks text- and
// binary-protocol rows and ERR messages; see its doc for the lineage
// rules. A statement that reads a view is traced through its text and the
// views' stored definitions (viewlineage.go, views.go); derived-table and
// CTE columns and computed columns the statement's parse cannot trace to
// base-table columns are masked whole, and so is every column of an
// Unknown statement (HANDLER ... READ, EXECUTE, a CALL's results). A
// computed column traced to a masked column is masked whole too, whatever
// the rule's strategy (mask.Rules.Derived): only a stored value read as it is
// gets the partial or hash form, which of a derived value would show its
// shape (REVERSE(ssn)) or answer a guess.
//
// filter: deny (filteruse.go): before Guard.Decide, for a resource with a
// filter: deny rule that applies to the session's roles (others pay one
// loop over their rules), each statement of the operation is walked
// (COM_QUERY text, a SQL-level PREPARE's literal and the text an EXECUTE
// runs, COM_STMT_EXECUTE's prepared text) and the table columns it uses
// other than as plain output fill guard.Operation.FilterUses: conditions,
// joins (ON, USING, NATURAL), grouping, ordering, HAVING, windows,
// DISTINCT, UNION without ALL, INTERSECT, EXCEPT, any expression over a
// column (no pass-through allow list: CONCAT counts), subqueries in
// conditions, the data of writes and of SET, EXPLAIN'd statements, the
// definitions of the views read and of views created. Unqualified columns
// count for every relation in scope that may hold them. What it cannot
// trace sets FilterUnresolved (Unknown operations, parse failures,
// executable comments, PREPARE FROM @v, an EXECUTE of an unseen name,
// views it cannot read, a catalog it cannot load, bounds): the guard
// refuses with ERR 1142 naming the way to an unmask grant.
//
// Values leave a masked column by other ways than a result column; each is
// closed where the gateway can see it:
//
//   - User variables (SET @x := (SELECT ssn ...), SELECT ... INTO @x,
//     GET DIAGNOSTICS): a result computed from one is masked whole, and so
//     are the columns that list them (information_schema.USER_VARIABLES;
//     echoColumns in mymask.go also lists statement texts: PROCESSLIST.INFO,
//     SHOW PROCESSLIST's Info, performance_schema's SQL_TEXT, the optimizer
//     trace, lock data, column statistics).
//   - Session settings: SET of a setting from a column, a subquery or a user
//     variable is Unknown (internal/sqlkind): @@max_join_size would carry a
//     number past masking.
//   - Messages: an ERR message, and the Message of SHOW WARNINGS and SHOW
//     ERRORS, has its quoted parts redacted unless the error is one that
//     quotes names (nameErrors) and the statement's own text holds each
//     part; SIGNAL's MESSAGE_TEXT and EXPLAIN EXTENDED's rewritten query
//     (which prints const tables' values) are redacted whole. Then the
//     detectors run.
//   - EXPLAIN in a format other than the table (FORMAT=JSON prints
//     conditions with const tables' values) is masked whole.
//   - Names: a statement the gateway does not trace (Unknown: EXECUTE
//     IMMEDIATE, PREPARE FROM @v, a CALL, HANDLER; an SQL-level EXECUTE)
//     may name its columns and tables after data (SELECT 1 AS `<@v>`):
//     in its column definitions, and in the recording's copy of its
//     results, a name that is neither the current schema nor in its text
//     is redacted (filter.go columnNamer; query.go and capture.go call it).
//   - SHOW GRANTS and SHOW CREATE USER have every quoted string redacted:
//     they print the upstream account's password hash (invariant 6).
//   - Detectors read a DOUBLE in exponent form and a BIT as the numbers
//     they are, in both protocols (a masked number is sent as NULL), and
//     the numbers in exponent form inside text (CONCAT or JSON_OBJECT of
//     a DOUBLE: a match masks the text whole).
//
// # Not done yet (masking limits)
//
// Masking hides values in what is returned; it is not access control.
// Without filter: deny, WHERE ssn LIKE '1%' answers one bit a query, and
// a write that copies a masked column into another (INSERT ... SELECT
// ssn, UPDATE t SET note = ssn, CREATE TABLE ... AS SELECT) is reviewed
// as the write it is, but the copy is then covered by no column rule,
// only the detectors. With filter: deny (filteruse.go) those are refused,
// but row counts, errors and timing of allowed statements still carry
// information; a write of a guessed value into a filter: deny column with
// a unique key answers whether it exists (the write's target is not a
// use, as in the PostgreSQL engine); a trigger a write fires, and a user
// variable set while an unmask grant was active, are not traced. Unlike
// the PostgreSQL engine, a view's own conditions count as uses of the
// statement that reads it, and no function passes a value through
// (CONCAT(ssn, 'x') is refused: there is no allow list). ALTER VIEW,
// executable comments and MariaDB syntax outside TiDB's grammar are
// unresolved, so refused under a filter: deny rule. A
// message that quotes a value holding quotes can show what lies between
// them when the statement's text holds the words on either side. The
// echoColumns list names the server tables known to echo values; a server
// table it does not list (a plugin's) is masked by its column names only.
// Triggers and stored code run by an Unknown statement are not traced.
// Detectors are a best effort: a value transformed on the way out (HEX,
// FORMAT's grouping, another character set) can escape them; column
// rules hold whatever the expression. The answer to COM_STMT_PREPARE
// (an ERR, the column definitions) passes unfiltered: it runs nothing,
// and its names are the prepared text's.
//
// An operation's hold is withdrawn when its client disconnects, but a
// running statement is not KILLed upstream when the client goes.
package mysql
