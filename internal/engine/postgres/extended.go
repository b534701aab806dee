package postgres

import (
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
// share this map too. A statement's text is decided at each Execute, not
// at Parse (see the package doc's known limits for what the upstream runs
// at Parse and Bind).
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
	st := &stmt{text: strings.Clone(m.Query), types: append([]uint32(nil), m.ParameterOIDs...)}
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

// refuseParse refuses a Parse without asking the guard (nothing the guard
// says could make running its user code before a decision safe), records
// the refusal, and skips to Sync on both sides.
func (c *conn) refuseParse(text, why string) bool {
	op := &operation{started: time.Now(), g: guard.Operation{Text: text, State: c.state.snapshot(), Class: unknownClass(why)}}
	op.v = guard.Verdict{Decision: guard.Deny, Code: verdictUnsupported, Message: "countersign refused this Parse: " + why}
	c.e.recordOperation(c, op)
	return c.refuseExtended(op.v)
}

// define records a statement under name; a named statement defined again
// while it may exist is a conflict, until it is closed or deallocated (the
// unnamed statement is simply replaced).
func (c *conn) define(name string, st *stmt) {
	if old := c.stmts[name]; name != "" && old != nil && (old.conflict || !old.failed.Load()) {
		st.conflict = true
	}
	c.stmts[name] = st
}

func (c *conn) onBind(m *pgproto3.Bind) bool {
	st := c.stmts[m.PreparedStatement]
	p := &portal{st: st, params: bindParams(m, st), formats: append([]int16(nil), m.ResultFormatCodes...)}
	c.portals[strings.Clone(m.DestinationPortal)] = p
	return c.forward(m, pending{kind: pendBind})
}

func (c *conn) onDescribe(m *pgproto3.Describe) bool {
	p := pending{kind: pendDescribe}
	if m.ObjectType == 'S' {
		p.st = c.stmts[m.Name]
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

func (c *conn) onClose(m *pgproto3.Close) bool {
	if m.ObjectType == 'S' {
		delete(c.stmts, m.Name)
	} else {
		delete(c.portals, m.Name)
	}
	return c.forward(m, pending{kind: pendClose})
}

// onExecute decides the portal's statement with its bound parameters.
func (c *conn) onExecute(m *pgproto3.Execute) bool {
	p := c.portals[m.Portal]
	text, params, class, stmts := c.portalOperation(p)
	op, v := c.decide(text, params, class)
	if v.Decision != guard.Allow {
		return c.refuseExtended(v)
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

func (c *conn) portalOperation(p *portal) (string, []guard.Param, sqlkind.Classification, []sqlkind.Statement) {
	switch {
	case p == nil || p.st == nil || p.st.sql != nil:
		// A cursor opened with DECLARE, or a statement made with SQL
		// PREPARE: the gateway does not see the text it runs (invariant 1).
		return "", nil, unknownClass("the portal was not bound to a statement the gateway saw parsed"), nil
	case p.st.conflict || p.st.failed.Load():
		return p.st.text, p.params, unknownClass("the statement name was prepared again while it existed; which statement the upstream holds is not known (close it and prepare it again)"), nil
	}
	class, stmts := c.classifyOp(p.st.text)
	return p.st.text, p.params, class, stmts
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
