package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// stmt is a prepared statement of the session. Protocol-level (Parse) and
// SQL-level (PREPARE) statements share one namespace upstream, so they
// share this map too. A statement's text is decided with its parameters:
// at Bind when it is not a read, else at each Execute (see onBind).
type stmt struct {
	text  string // the Parse text; "" for a SQL-level statement
	types []uint32
	// sql is the classification PREPARE gave a SQL-level statement.
	sql *sqlkind.Classification
	// conflict: the name was defined again while it existed; the upstream
	// refuses the second definition, unless the first had failed, so which
	// one it holds is not known and the name is unknown until dropped.
	conflict bool
	// failed is set by the relay when the upstream refused or skipped the
	// Parse: the name may then be defined again.
	failed atomic.Bool
	// answered is closed by the relay once the upstream answered the Parse
	// (failed is then final); batch is the queue's Sync count when it was
	// sent (queue.syncs). Nil for a SQL-level statement.
	answered chan struct{}
	batch    uint64
	// deallocBy is the operation whose DEALLOCATE (or DISCARD ALL) made
	// this placeholder (sql is &closedStmt): the name is free once that
	// operation ended without error (gone).
	deallocBy *operation
	// desc is the RowDescription the upstream last sent for a Describe of
	// the statement (nil: none, or NoData), kept for the result filter.
	desc atomic.Pointer[pgproto3.RowDescription]
}

// portal is a statement bound to parameters with Bind.
type portal struct {
	st      *stmt // nil: bound to a statement the gateway did not see parsed
	params  []guard.Param
	formats []int16 // the Bind's result format codes
	desc    atomic.Pointer[pgproto3.RowDescription]
	// text, class and stmts are the portal's operation as classified at
	// Bind, when the upstream fixes the portal's plan.
	text  string
	class sqlkind.Classification
	stmts []sqlkind.Statement
	// op is the operation decided at Bind, until the portal's first
	// Execute runs it or the client's next Sync (onSync) gives up on it.
	op *operation
}

// rowDesc is the RowDescription of the rows an Execute of p returns: the
// portal's own Describe, else the statement's with the Bind's result
// formats. Nil when neither was described.
func (p *portal) rowDesc() *pgproto3.RowDescription {
	if d := p.desc.Load(); d != nil {
		return d
	}
	if p.st == nil {
		return nil
	}
	d := p.st.desc.Load()
	if d == nil {
		return nil
	}
	out := &pgproto3.RowDescription{Fields: append([]pgproto3.FieldDescription(nil), d.Fields...)}
	for i := range out.Fields {
		out.Fields[i].Format = formatOf(p.formats, i)
	}
	return out
}

func (c *conn) onParse(m *pgproto3.Parse) bool {
	if why := userParamTypes(m.ParameterOIDs); why != "" {
		return c.refuseParse(strings.Clone(m.Query), why)
	}
	if why := c.parseRunsCode(m.Query); why != "" {
		return c.refuseParse(strings.Clone(m.Query), why)
	}
	st := &stmt{text: strings.Clone(m.Query), types: append([]uint32(nil), m.ParameterOIDs...),
		answered: make(chan struct{}), batch: c.q.syncsQueued()}
	c.define(strings.Clone(m.Name), st)
	return c.forward(m, pending{kind: pendParse, st: st})
}

// firstNormalOID is PostgreSQL's FirstNormalObjectId: every type below it
// was made by initdb (built-in); a user's types (domains, enums, composite
// and base types) get OIDs from here on.
const firstNormalOID = 16384

// userParamTypes says why a Parse's declared parameter types are refused,
// or "". The upstream converts a bound value with its type's input function
// at Bind, which the gateway forwards at once: a domain's CHECK or a base
// type's input is user code, and it would run (and a Sync commit what it
// did) before any Execute is decided (invariant 1).
func userParamTypes(oids []uint32) string {
	for i, oid := range oids {
		if oid >= firstNormalOID {
			return fmt.Sprintf("parameter $%d is declared with type oid %d, which is not a PostgreSQL built-in type: "+
				"its input function (a domain's CHECK, a user type's input) would run with the bound value at Bind, "+
				"before countersign decides the statement; send it as a simple query with the value written in the text "+
				"(it is then classified and reviewed whole), or declare the parameter as a built-in type", i+1, oid)
		}
	}
	return ""
}

// parseRunsCode says why forwarding a Parse of text could run user code
// before any decision, or "". PostgreSQL converts each string constant to
// the type its context wants while it parses the statement, with that
// type's input function: for a code type (sqlkind.CodeTypeCatalog: a
// domain whose CHECK calls a user function, an array or row type of one)
// that is user code, and a Sync right after the Parse commits what it did.
// A read is settled already (resolution makes a statement that casts to a
// user type or reaches a column of a code type unknown), and a text with
// no string constant converts nothing at Parse; anything else needs a
// database without code types.
func (c *conn) parseRunsCode(text string) string {
	if !mayHoldString(text) {
		return ""
	}
	if cl, _ := c.classifyOp(text); cl.Kind == sqlkind.Read {
		return ""
	}
	return c.codeTypesWhy()
}

// describeRunsCode says why forwarding a Describe of st could run user
// code before any decision, or "". PostgreSQL analyses a prepared
// statement again when something it depends on changed since it was
// prepared (a column's type, a domain), and a Describe of a statement
// does so (RevalidateCachedQuery): its string constants are converted
// again, to their target types as they are now, and a Sync right after
// commits what that ran. So Parse's rule (parseRunsCode) holds again, with
// the catalog as it is now (after the upstream answered the Parse:
// awaitParse); a statement made with SQL PREPARE has no text here, so its
// kind is resolved again; one whose name is in doubt has no known text.
func (c *conn) describeRunsCode(st *stmt) string {
	switch {
	case st == nil:
		return "" // the upstream holds no statement the gateway saw made: it answers 26000
	case st.conflict || st.gone():
		return c.codeTypesWhy() // which statement the upstream holds is not known
	case st.sql != nil:
		if c.resolve(*st.sql).Kind == sqlkind.Read {
			return ""
		}
		return c.codeTypesWhy()
	}
	return c.parseRunsCode(st.text)
}

// codeTypesWhy says why a statement that is not a read and may hold a
// string constant cannot be analysed upstream before its decision, or ""
// when the database has no type whose input runs user code.
func (c *conn) codeTypesWhy() string {
	types, err := c.codeTypes()
	switch {
	case errors.Is(err, errCatalogBlind):
		return "it is not a read and holds a string constant, which PostgreSQL converts to its target type's input " +
			"when it parses the statement, before countersign decides it; a schema change ran in this transaction, " +
			"so countersign cannot check that no such input runs user code: send it as a simple query (decided before " +
			"anything runs), pass the constant as a parameter, or run it after COMMIT"
	case err != nil:
		c.e.log.Warn("postgres catalog lookup failed; the Parse is refused", "session", c.id, "error", err)
		return "it is not a read and holds a string constant, and the upstream catalog could not be read to check " +
			"that converting it runs no user code; try again, or send it as a simple query"
	case len(types) > 0:
		return fmt.Sprintf("it is not a read and holds a string constant, which PostgreSQL converts to its target type's "+
			"input when it parses the statement, before countersign decides it, and this database has types whose input "+
			"runs user code (%s: a domain CHECK calling a function outside pg_catalog); send it as a simple query "+
			"(decided before anything runs) or pass the constant as a parameter (decided at Bind)", strings.Join(types, ", "))
	}
	return ""
}

// mayHoldString reports whether text may hold a string constant: every
// form PostgreSQL has (”, E”, B”, X”, U&”, $tag$...$tag$) holds a
// quote or a dollar sign not followed by a digit ($1 is a parameter). A
// comment or an identifier may make it say yes for nothing; never no for
// a constant.
func mayHoldString(text string) bool {
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\'':
			return true
		case '$':
			if i+1 == len(text) || text[i+1] < '0' || text[i+1] > '9' {
				return true
			}
		}
	}
	return false
}

// codeTypes lists the resource's types whose input runs user code.
func (c *conn) codeTypes() ([]string, error) {
	if c.catLast != nil && !c.catalogSettled() {
		return nil, errCatalogBlind
	}
	cat, err := c.catalog()
	if err != nil {
		return nil, err
	}
	ct, ok := cat.(sqlkind.CodeTypeCatalog)
	if !ok {
		return nil, nil // a test catalog without types is trusted to have none
	}
	return ct.CodeTypes(c.ctx)
}

// refuseParse refuses a Parse without asking the guard (nothing the guard
// says could make running its user code before a decision safe), records
// the refusal, and skips to Sync on both sides.
func (c *conn) refuseParse(text, why string) bool {
	return c.refuseUndecided("Parse", text, why)
}

// refuseUndecided refuses a message (Parse, Describe) that would run user
// code upstream before any decision, as refuseParse says.
func (c *conn) refuseUndecided(msg, text, why string) bool {
	op := &operation{started: time.Now(), g: guard.Operation{Text: text, State: c.state.snapshot(), Class: unknownClass(why)}}
	op.v = guard.Verdict{Decision: guard.Deny, Code: verdictUnsupported, Message: "countersign refused this " + msg + ": " + why}
	c.e.recordOperation(c, op)
	return c.refuseExtended(op.v)
}

// define records a statement under name; a named statement defined again
// while it may exist is a conflict, until it is closed or deallocated (the
// unnamed statement is simply replaced).
func (c *conn) define(name string, st *stmt) {
	if old := c.stmts[name]; name != "" && old != nil && (old.conflict || !old.gone()) && !c.closedHere(old) {
		st.conflict = true
	}
	c.stmts[name] = st
}

// closedHere reports whether old is a Close of the client's that no Sync
// followed yet: the upstream runs what follows it in the batch only if it
// ran the Close (closing a name it does not hold is no error).
func (c *conn) closedHere(old *stmt) bool {
	return old.sql == &closedStmt && old.batch == c.q.syncsQueued()
}

// onBind classifies the portal's operation. A read is decided at Execute
// and its Bind passes at once. Anything else is decided here, with the
// text and parameters its Execute would be decided with: binding converts
// the parameters with their types' input functions (a domain's CHECK for
// a type the text implies, INSERT INTO t VALUES ($1)) and plans the
// statement, which folds immutable and stable functions (a user function
// among them), so the upstream would run user code before an Execute's
// decision, and a Sync right after the Bind would commit it.
func (c *conn) onBind(m *pgproto3.Bind) bool {
	st := c.stmts[m.PreparedStatement]
	if err := c.awaitParse(st); err != nil {
		return c.refuseExtended(c.notDurable(err))
	}
	p := &portal{st: st, params: bindParams(m, st), formats: append([]int16(nil), m.ResultFormatCodes...)}
	name := strings.Clone(m.DestinationPortal)
	c.portals[name] = p
	p.text, p.class, p.stmts = c.portalOperation(p)
	if p.class.Kind == sqlkind.Read {
		return c.forward(m, pending{kind: pendBind})
	}
	op, v := c.decide(p.text, p.params, p.class)
	if v.Decision != guard.Allow {
		delete(c.portals, name)
		return c.refuseExtended(v)
	}
	p.op = op
	if len(c.boundOps) >= boundOpsPrune {
		c.pruneBoundOps()
	}
	c.boundOps = append(c.boundOps, p)
	return c.forward(m, pending{kind: pendBind, op: op})
}

// awaitParse waits until the upstream answered st's Parse when a Sync was
// sent since it: the upstream then runs a Bind of the name even if that
// Parse failed, and binds whatever it holds under the name (a statement the
// client's Close or DEALLOCATE did not drop because the upstream skipped
// it after an error), so whether st is what it binds is known only from
// that answer (failed). Behind no Sync, a failed Parse makes the upstream
// skip the Bind too. It returns why the wait ended early (errClientGone,
// errCanceled), or nil.
func (c *conn) awaitParse(st *stmt) error {
	if st == nil || st.answered == nil || st.batch == c.q.syncsQueued() {
		return nil
	}
	select {
	case <-st.answered:
		return nil
	default:
	}
	if err := c.flushUpstream(); err != nil {
		return errClientGone
	}
	return c.waitWatching(func(ctx context.Context) {
		select {
		case <-st.answered:
		case <-ctx.Done():
		}
	})
}

// boundOpsPrune is the length of boundOps from which a Bind first drops
// the portals whose operation an Execute took: a client that binds and
// executes without ever sending Sync (a simple Query between) would grow
// the list for as long as the session lasts.
const boundOpsPrune = 64

func (c *conn) pruneBoundOps() {
	kept := c.boundOps[:0]
	for _, p := range c.boundOps {
		if p.op != nil {
			kept = append(kept, p)
		}
	}
	clear(c.boundOps[len(kept):])
	c.boundOps = kept
}

// dropBoundOps gives up, at the client's Sync, on operations decided at
// Bind that no Execute took: the relay finishes them at that Sync's
// ReadyForQuery, and an Execute of the portal after the Sync (a named
// portal in a transaction) is decided anew.
func (c *conn) dropBoundOps() {
	for i, p := range c.boundOps {
		p.op = nil
		c.boundOps[i] = nil
	}
	c.boundOps = c.boundOps[:0]
}

func (c *conn) onDescribe(m *pgproto3.Describe) bool {
	p := pending{kind: pendDescribe}
	if m.ObjectType == 'S' {
		p.st = c.stmts[m.Name]
		if err := c.awaitParse(p.st); err != nil {
			return c.refuseExtended(c.notDurable(err))
		}
		if why := c.describeRunsCode(p.st); why != "" {
			return c.refuseUndecided("Describe", "-- Describe of prepared statement "+strings.Clone(m.Name)+": "+p.st.text,
				"PostgreSQL analyses a prepared statement again at a Describe when the catalog changed since it was prepared; "+why)
		}
	} else {
		p.portal = c.portals[m.Name]
	}
	return c.forward(m, p)
}

// bindParams copies a Bind's parameters out of the read buffer, with the
// types the statement was parsed with (0 where the server infers them).
func bindParams(m *pgproto3.Bind, st *stmt) []guard.Param {
	params := make([]guard.Param, len(m.Parameters))
	for i, v := range m.Parameters {
		p := guard.Param{Format: formatOf(m.ParameterFormatCodes, i), Null: v == nil, Value: clone(v)}
		if st != nil && i < len(st.types) {
			p.Type = st.types[i]
		}
		params[i] = p
	}
	return params
}

// onClose forgets a portal at once; a statement becomes closedStmt until
// the upstream confirms the Close (relay: failed set). PostgreSQL skips a
// Close after an error earlier in its batch and then still holds the
// statement: forgetting the name at once would let a later PREPARE or Parse
// of it, which the upstream refuses, stand for what an EXECUTE or Bind of
// the name runs.
func (c *conn) onClose(m *pgproto3.Close) bool {
	p := pending{kind: pendClose}
	if m.ObjectType == 'S' {
		if len(c.stmts) >= closedSweepAt {
			c.sweepClosed()
		}
		p.st = &stmt{sql: &closedStmt, batch: c.q.syncsQueued()}
		c.stmts[strings.Clone(m.Name)] = p.st
	} else {
		delete(c.portals, m.Name)
	}
	return c.forward(m, p)
}

// closedSweepAt is the number of statement names from which a Close first
// forgets the closed names the upstream confirmed: a client that names
// each statement anew (pgjdbc's S_1, S_2, ...) and closes it would
// otherwise grow the map for as long as the session lasts.
const closedSweepAt = 256

func (c *conn) sweepClosed() {
	for name, st := range c.stmts {
		if st.sql == &closedStmt && st.gone() {
			delete(c.stmts, name)
		}
	}
}

// gone reports whether the upstream no longer holds the statement: its
// Parse failed or was skipped, or its Close or DEALLOCATE was confirmed.
func (st *stmt) gone() bool {
	return st.failed.Load() || (st.deallocBy != nil && st.deallocBy.ranOK.Load())
}

// closedStmt is the kind of a statement name the client closed, until the
// upstream confirms it: unknown, since the upstream may still hold the
// statement; once confirmed the name is free (failed) for define.
var closedStmt = unknownClass("the client closed this statement, and the upstream has not confirmed it " +
	"(it skips a Close after an error earlier in its batch): prepare it again after the Close succeeded")

// onExecute runs the operation its portal's Bind decided, or decides the
// portal's statement with its bound parameters.
func (c *conn) onExecute(m *pgproto3.Execute) bool {
	p := c.portals[m.Portal]
	var op *operation
	var class sqlkind.Classification
	var stmts []sqlkind.Statement
	if p != nil && p.op != nil && !c.boundStateHolds(p.op) {
		p.op = nil // ended at the next Sync, unexecuted; decided anew below
	}
	switch {
	case p != nil && p.op != nil:
		op, class, stmts = p.op, p.class, p.stmts
		p.op = nil
		op.executed.Store(true)
	case p != nil:
		class, stmts = p.class, p.stmts
		var v guard.Verdict
		if op, v = c.decide(p.text, p.params, class); v.Decision != guard.Allow {
			return c.refuseExtended(v)
		}
	default:
		var text string
		text, class, stmts = c.portalOperation(nil)
		var v guard.Verdict
		if op, v = c.decide(text, nil, class); v.Decision != guard.Allow {
			return c.refuseExtended(v)
		}
	}
	op.portal = p
	if !c.forward(m, pending{kind: pendExecute, op: op, copyIn: class.CopyIn}) {
		return false
	}
	if class.CopyIn {
		// A Sync behind it is held back until the upstream answers it
		// (queue.pushSync, conn.syncFate).
		c.q.startCopyExec(op)
		c.copyExec = true
	}
	c.afterForward(op, stmts, false)
	return true
}

// boundStateHolds reports whether the session state an operation decided
// at Bind was decided with (search_path and role, in its digest) still
// holds at its portal's Execute. A simple Query between them may change
// it, and a portal resolves some names at run time (a PL/pgSQL function's
// unqualified call) and checks privileges as the role of the moment.
func (c *conn) boundStateHolds(op *operation) bool {
	if c.awaitRefresh() != nil {
		return false // decide says why
	}
	now := c.state.snapshot()
	return now.SearchPath == op.g.State.SearchPath && now.Role == op.g.State.Role
}

// portalOperation classifies what a portal runs; p nil is a portal the
// gateway did not see bound.
func (c *conn) portalOperation(p *portal) (string, sqlkind.Classification, []sqlkind.Statement) {
	switch {
	case p == nil || p.st == nil || p.st.sql != nil:
		// A cursor opened with DECLARE, or a statement made with SQL
		// PREPARE: the gateway does not see the text it runs (invariant 1).
		return "", unknownClass("the portal was not bound to a statement the gateway saw parsed"), nil
	case p.st.conflict || p.st.gone():
		return p.st.text, unknownClass("the statement name was prepared again while it existed; which statement the upstream holds is not known (close it and prepare it again)"), nil
	}
	class, stmts := c.classifyOp(p.st.text)
	return p.st.text, class, stmts
}

func unknownClass(reason string) sqlkind.Classification {
	return sqlkind.Classification{Kind: sqlkind.Unknown, Statements: 1, Reason: reason}
}

// refuseExtended makes the upstream fail as the client will believe it
// did: a Parse that cannot succeed aborts the implicit (or explicit)
// transaction there, and both sides skip to Sync.
func (c *conn) refuseExtended(v guard.Verdict) bool {
	c.q.push(pending{kind: pendRefusal, refusal: refusalError(v)})
	c.ignoreUntilSync = true
	return c.send(&pgproto3.Parse{Name: refusedStmt, Query: refusedSQL})
}
