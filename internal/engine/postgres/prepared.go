package postgres

import (
	"github.com/countersign/countersign/internal/sqlkind"
)

// SQL-level prepared statements (PREPARE name AS ...) are tracked so that
// EXECUTE name is classified as the statement it runs. They share the
// upstream's namespace with protocol-level statements (Parse), so both
// live in conn.stmts: EXECUTE can run a Parse'd statement, DEALLOCATE can
// drop one, and a name defined twice is refused upstream.
//
// Known limit: code of unknown kind (a function, DO) could prepare
// statements the gateway does not see; EXECUTE of a name the gateway does
// not know is unknown, but a later PREPARE of such a name (refused upstream
// as a duplicate) is taken at its word.

// classifyOp classifies one operation's text, with SQL-level EXECUTE names
// resolved from the session's prepared statements, settles it in the
// upstream catalog, and returns its statements.
func (c *conn) classifyOp(text string) (sqlkind.Classification, []sqlkind.Statement) {
	an := c.e.o.Classifier.Analyze(text)
	stmts := an.Statements()
	c.curStmts = stmts
	cl := an.ClassifyWithPrepared(c.lookup)
	c.curStmts = nil
	return c.resolve(cl), stmts
}

// lookupPrepared answers ClassifyWithPrepared for the text being
// classified. A name the same text also prepares or drops is not answered:
// which definition an EXECUTE of it meets depends on the order, and an
// unknown name is the safe answer.
func (c *conn) lookupPrepared(name string) (sqlkind.Classification, bool) {
	for i := range c.curStmts {
		s := &c.curStmts[i]
		if s.Prepare == name || s.Deallocate == name || s.DeallocateAll {
			return sqlkind.Classification{}, false
		}
	}
	st := c.stmts[name]
	switch {
	case st == nil || st.conflict || st.gone():
		return sqlkind.Classification{}, false
	case st.sql != nil:
		return *st.sql, true
	}
	// A protocol-level statement run by SQL EXECUTE.
	return c.e.o.Classifier.Analyze(st.text).ClassifyWithPrepared(nil), true
}

// notABatch is the batch of a DEALLOCATE's placeholder: it is never the
// batch under way, so closedHere does not take it for a Close a Sync has
// yet to follow.
const notABatch = ^uint64(0)

// trackPrepared applies an allowed operation's PREPARE, DEALLOCATE and
// DISCARD ALL, in order. A dropped name becomes closedStmt until op ended
// without error: the upstream skips a DEALLOCATE behind an error in its
// Query and still holds the statement, and a later PREPARE of the name,
// which it refuses, must not stand for what EXECUTE of it runs.
func (c *conn) trackPrepared(op *operation, stmts []sqlkind.Statement) {
	for i := range stmts {
		s := &stmts[i]
		switch {
		case s.Prepare != "":
			cl := s.Classification
			c.define(s.Prepare, &stmt{sql: &cl})
		case s.Deallocate != "":
			c.stmts[s.Deallocate] = &stmt{sql: &closedStmt, deallocBy: op, batch: notABatch}
		case s.DeallocateAll:
			// DEALLOCATE ALL and DISCARD ALL drop every named statement;
			// the unnamed one stays.
			for name := range c.stmts {
				if name != "" {
					c.stmts[name] = &stmt{sql: &closedStmt, deallocBy: op, batch: notABatch}
				}
			}
		}
	}
}
