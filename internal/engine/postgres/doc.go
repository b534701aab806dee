// Package postgres is countersign's PostgreSQL wire-protocol gateway.
// Clients connect to it exactly as to PostgreSQL (protocol 3.0); every
// operation they send is classified, decided by the guard, recorded, and
// only then forwarded to the resource's upstream, which the gateway logs in
// to with the resource's own credentials.
//
// It fails closed: an unknown startup parameter, a message it cannot
// decode or that exceeds limits.max_message_bytes, a statement it cannot
// attribute, a guard it cannot reach and a recording it cannot write all
// refuse (the operation, or the session when the stream cannot be trusted
// any more). Nothing on user input panics; a recover per connection is the
// last line of defence and ends only that connection.
//
// # Startup
//
//	client                         gateway                          upstream
//	  │ SSLRequest ───────────────►│ 'S' + TLS (gateway cert)
//	  │                            │ ('N' with no cert; GSSENCRequest: 'N')
//	  │ StartupMessage ───────────►│ database = resource name; params
//	  │                            │ allow-listed (no options, replication,
//	  │                            │ search_path, non-UTF8 encoding)
//	  │                            │ plaintext off loopback: FATAL 28000
//	  │◄─ AuthenticationCleartext ─│ (asked only once TLS is up)
//	  │ PasswordMessage (token) ──►│ Auth.AuthenticateResource (28P01)
//	  │                            │ Guard.Connect (42501)
//	  │                            │ record session.open, durable
//	  │                            │ pgconn: TCP/TLS, SCRAM/MD5 ─────────►│
//	  │                            │◄──────── AuthOk, ParameterStatus, Key │
//	  │◄─ AuthenticationOk ────────│ (Hijack: the raw upstream connection)
//	  │◄─ ParameterStatus… ────────│ as the upstream sent them
//	  │◄─ BackendKeyData ──────────│ the gateway's own random key; replica
//	  │◄─ ReadyForQuery ───────────│ id in the top byte of the process id
//
// A CancelRequest (plaintext or after SSLRequest) naming a gateway key
// withdraws a held operation's wait (57014) and, when something of the
// client's runs upstream, is passed to the upstream backend with the
// upstream's key first: the hold ends, and the client's cancel connection
// closes, only once PostgreSQL has acted on it, so a late cancel cannot hit
// the client's next command. One naming another replica's id is forwarded
// there through Options.CancelRelay (LISTEN/NOTIFY on the shared
// PostgreSQL store, acknowledged once it acted), since a load balancer may
// send the cancel connection to any replica. A cancel that lands on the
// gateway's own read of the session state makes it read again.
//
// # Operations
//
// Two goroutines per session. The client loop reads client messages, one
// handler per type; the relay reads upstream messages. They share a FIFO
// of expected responses, so the relay knows which operation each upstream
// message belongs to.
//
//	client loop                                 relay
//	Query/Execute/FunctionCall:
//	  classify ─► Guard.Decide
//	    hold  ─► NoticeResponse; Wait (cancel, disconnect withdraw it)
//	    allow ─► record "operation";
//	             not a read: durable BEFORE forwarding ───► upstream
//	             a read: forwarded now; the relay waits for
//	             durability before the first result byte ──► client
//	    deny  ─► record; make the upstream fail too:
//	             simple: Query that is a syntax error
//	             extended: Parse that cannot succeed, then
//	             ignore client messages until Sync
//	                                             upstream ErrorResponse for a
//	                                             refusal is replaced by the
//	                                             gateway's (42501, 57014, 58000)
//	Parse/Describe/Close: pass at once          RowDescription/DataRow/CopyData
//	  (statements and portals tracked,            ─► ResultFilter (masking) ─►
//	   parameters copied; Bind of a non-read:     streamed, never buffered
//	   decided first, as above)
//	Sync/Flush/Query: write to the upstream     ReadyForQuery: status from the
//	CopyData: streamed (body limit applies)       upstream; Guard.Done and
//	                                              "operation.outcome" for each
//	                                              operation since the last one
//	                                              (with its first rows, masked
//	                                              by Options.Capture, when the
//	                                              resource sets record.results)
//
// The extended protocol is decided from the prepared text and the
// portal's bound parameters: a read at Execute, anything else at Bind,
// before the Bind goes upstream, since binding converts the parameters
// with their types' input (a domain's CHECK) and plans the statement,
// folding immutable and stable functions (a user function among them), and
// a Sync right after the Bind would commit what that ran. The portal's
// first Execute runs the operation its Bind decided; one no Execute took
// by the next Sync ends there (recorded as skipped). Messages behind a
// held Bind or Execute queue behind it. Parse passes at once, except:
//   - a Parse that declares a parameter type outside the built-in range
//     (oid >= 16384: a domain, enum or other user type) is refused (0A000,
//     recorded as unknown): Bind would run the type's input;
//   - a Parse of anything but a read whose text holds a string constant is
//     refused while the database has types whose input runs user code
//     (sqlkind.CodeTypeCatalog), or while a schema change ran in the
//     session's open transaction (the catalog cannot tell): parse analysis
//     converts the constant with its target type's input. Such a text runs
//     as a simple query, or with the constant passed as a parameter. A
//     Describe of a prepared statement is held to the same rule with the
//     catalog as it is then: PostgreSQL analyses the statement again there
//     when something it depends on changed since.
//
// The statement names track the upstream's: a closed name is unknown until
// the upstream confirms the Close (it skips one after an error earlier in
// the batch, and still holds the statement), and a Bind of a statement
// whose Parse was sent before a Sync waits for the upstream's answer to
// that Parse (after that Sync the upstream binds whatever it holds under
// the name, even if the Parse failed). An operation decided at Bind is
// ended at the ReadyForQuery of the client's next Sync, not of a Query
// between: in a transaction a named portal outlives that Query. An Execute
// after such a Query changed search_path or the role is decided again.
//
// # Classification
//
// Each operation is classified by the real grammar (Classifier), with
// SQL-level EXECUTE names resolved from the session's prepared statements
// (PREPARE, Parse; DEALLOCATE, DISCARD ALL and Close drop them once the
// upstream confirmed it, since it skips them after an error earlier in
// their batch, and the name is unknown till then; a name defined twice
// while it may exist is unknown until dropped), then settled
// in the upstream catalog (Resolve): a read stays a read only when every
// function, operator, cast and view it uses resolves to a safe built-in.
// The catalog is one cached pgcatalog per resource over a small pool with
// the resource's credentials; its cache is dropped after an operation of
// schema, privilege, admin or unknown kind ran through the gateway. A
// catalog that cannot answer makes the operation unknown. The pool cannot
// see what the session's open transaction changed, so from the moment such
// an operation is allowed until the upstream is idle after it (COMMIT or
// ROLLBACK), the session resolves no name: a statement whose kind needs a
// lookup is unknown. When that transaction ends the cache is dropped again
// before the next decision.
//
// # Waiting
//
// While the client loop waits (a hold, a write's durability, a read of the
// session state) it keeps reading the client into a buffer bounded by
// limits.max_message_bytes: a client that vanishes withdraws the wait at
// once (recorded as client_gone), and a client that writes without reading
// cannot deadlock the session.
//
// # Session state
//
// Session state bound into digests (search_path, role) is read from the
// upstream at connect and again, with the gateway's own statement and
// Sync, after an operation that may change it (SET/RESET of search_path,
// role or session_authorization, RESET ALL, DISCARD ALL, set_config,
// anything of unknown kind) and after every operation of a transaction in
// which one did, until that transaction ends (COMMIT or ROLLBACK may revert
// it); the next operation is decided only once the answer is in. A failed
// read ends the session. ParameterStatus turning
// standard_conforming_strings off or client_encoding away from UTF8 ends
// the session.
//
// # Results
//
// A ResultFilter sees the RowDescription of the rows it filters: in the
// extended protocol, where rows usually answer an Execute without one, the
// last description the upstream sent for the portal (or its statement,
// with the Bind's result formats) is shown to the filter first.
//
// Known limits: code of unknown kind could prepare statements the gateway
// does not see. An Execute of a portal after the Sync that followed its
// Bind (a named portal in a transaction) is decided again at that Execute.
//
// # COPY FROM STDIN
//
// PostgreSQL ignores a Sync it reads in COPY mode, answers it when the
// COPY never started, and after a failure in the data skips to the next
// Sync, so the queue follows the COPY closely. Through the simple
// protocol a Sync, or anything expecting a response, sent during the COPY
// ends the session. Through the extended protocol (libpq's PQexecParams,
// tokio-postgres's copy_in) a Sync the client sends behind the Execute
// before any data is held back, and the client loop reads no further,
// until the upstream answers the Execute: dropped if the COPY starts (the
// upstream would ignore it), sent if it does not (the upstream answers
// it). The upstream thus sees only the Sync after CopyDone or CopyFail, so
// a COPY that fails in its data is an error the session survives, as on
// PostgreSQL. A Sync after data, or any message but COPY data, Flush and
// Sync before CopyDone or CopyFail, ends the session (copyin.go).
//
// After an error in the extended protocol PostgreSQL skips every message
// up to Sync, a simple Query or FunctionCall included, so the queue skips
// their answers too.
//
// # Ending
//
// Terminate, a client disconnect, the upstream closing, the idle timeout
// (only while nothing is in flight), a malformed or oversized message
// (08P01) and Shutdown all close both sides and record session.close with
// the reason.
package postgres
