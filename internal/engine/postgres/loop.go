package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// refusedSQL is sent upstream in place of a refused simple Query: a syntax
// error, so it fails at parse time, deterministically and without effect,
// aborting an open transaction as the client believes.
const refusedSQL = "countersign refused the operation"

// refusedStmt is the statement name of the failing Parse sent upstream in
// place of a refused Execute: either the name exists (42P05) or the text
// fails to parse (42601); nothing is created or run either way.
const refusedStmt = "countersign_refused"

// upstreamFlushBytes bounds what is buffered for the upstream before it is
// written even without a Sync (COPY data, long pipelines).
const upstreamFlushBytes = 64 << 10

// clientLoop reads the client's messages, one named method each, until the
// session ends.
func (c *conn) clientLoop() {
	for {
		msg, err := c.be.Receive()
		if err != nil {
			c.onReadError(err)
			return
		}
		if !c.dispatch(msg) {
			return
		}
		if len(c.upw) >= upstreamFlushBytes {
			if c.flushUpstream() != nil {
				return
			}
		}
	}
}

func (c *conn) onReadError(err error) {
	var tooBig *pgproto3.ExceededMaxBodyLenErr
	switch {
	case c.ctx.Err() != nil:
	case errors.Is(err, errIdle):
		c.fail(codeIdleTimeout, fmt.Sprintf("terminating connection after %s without activity (limits.idle_timeout); reconnect to continue", c.e.o.Limits.IdleTimeout))
	case errors.As(err, &tooBig):
		c.fail(codeProtocolViolation, fmt.Sprintf("message of %d bytes exceeds the gateway's limit of %d bytes (limits.max_message_bytes); send smaller messages or ask an admin to raise the limit", tooBig.ActualBodyLen, tooBig.MaxExpectedBodyLen))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		c.setReason("client disconnected")
	default:
		c.fail(codeProtocolViolation, "invalid message from the client: "+err.Error())
	}
}

// dispatch handles one client message; false ends the session.
func (c *conn) dispatch(msg pgproto3.FrontendMessage) bool {
	if c.ignoreUntilSync {
		switch msg.(type) {
		case *pgproto3.Sync, *pgproto3.Terminate:
			c.ignoreUntilSync = false
		default:
			return true // the upstream skips these too, after the refusal
		}
	}
	if c.copyExec && !c.copyExecMessage(msg) {
		return false
	}
	if c.refreshNext {
		c.refreshBefore(msg)
	}
	switch m := msg.(type) {
	case *pgproto3.Query:
		return c.onQuery(m)
	case *pgproto3.Parse:
		return c.onParse(m)
	case *pgproto3.Bind:
		return c.onBind(m)
	case *pgproto3.Describe:
		return c.onDescribe(m)
	case *pgproto3.Close:
		return c.onClose(m)
	case *pgproto3.Execute:
		return c.onExecute(m)
	case *pgproto3.Sync:
		return c.onSync(m)
	case *pgproto3.Flush:
		return c.send(m) && c.flushUpstream() == nil
	case *pgproto3.FunctionCall:
		return c.onFunctionCall(m)
	case *pgproto3.CopyData:
		if c.copyExec {
			c.q.copyDataSent()
		}
		return c.send(m)
	case *pgproto3.CopyDone, *pgproto3.CopyFail:
		c.copyExec = false
		c.q.leaveCopy()
		return c.send(m) && c.flushUpstream() == nil
	case *pgproto3.Terminate:
		c.setReason("client terminated the session")
		return false
	default:
		c.fail(codeProtocolViolation, fmt.Sprintf("unexpected message %T from the client", msg))
		return false
	}
}

// send buffers one message for the upstream.
func (c *conn) send(m pgproto3.FrontendMessage) bool {
	var err error
	c.upw, err = m.Encode(c.upw)
	if err != nil {
		c.fail(codeProtocolViolation, "invalid message from the client: "+err.Error())
		return false
	}
	return true
}

// forward buffers a message whose response the relay must expect.
func (c *conn) forward(m pgproto3.FrontendMessage, p pending) bool {
	c.q.push(p)
	if op := p.op; op != nil && (op.v.GrantID != "" || op.v.UnmaskGrantID != "") && c.sess.GrantEnds() != op.grantEnds {
		// A grant ended between decide's last look and the queue: its
		// Interrupt found nothing running. Now that the operation is
		// queued, interrupt cancels it upstream (invariant 7).
		defer c.interrupt("a grant that allowed this operation ended as it was sent; it is being cancelled")
	}
	return c.send(m)
}

func (c *conn) onQuery(m *pgproto3.Query) bool {
	// Query.Decode copies the text out of the read buffer into a string of
	// its own (TestQueryTextOwnsItsBytes), so the operation keeps it as is.
	text := m.String
	class, stmts := c.classifyOp(text)
	op, v := c.decide(text, nil, class)
	if v.Decision != guard.Allow {
		c.q.push(pending{kind: pendRefusal, simple: true, refusal: refusalError(v)})
		return c.send(&pgproto3.Query{String: refusedSQL}) && c.flushUpstream() == nil
	}
	if !c.forward(m, pending{kind: pendQuery, op: op}) {
		return false
	}
	c.afterForward(op, stmts, true)
	return c.flushUpstream() == nil
}

func (c *conn) onSync(m *pgproto3.Sync) bool {
	if len(c.boundOps) > 0 {
		c.dropBoundOps()
	}
	fate, ok := c.syncFate()
	switch {
	case !ok:
		return false
	case fate == syncRefused:
		c.fail(codeProtocolViolation, "Sync received during COPY FROM STDIN; send the data, then CopyDone or CopyFail")
		return false
	case fate == syncDropped:
		// Nothing to flush, and no refresh: the upstream is in COPY mode.
		return true
	}
	if !c.send(m) {
		return false
	}
	if c.refreshAtSync {
		c.refreshAtSync = false
		c.injectRefresh()
	}
	return c.flushUpstream() == nil
}

func (c *conn) onFunctionCall(m *pgproto3.FunctionCall) bool {
	// A FunctionCall runs a function by OID with no text to classify:
	// unknown, the most dangerous kind (invariant 1).
	text := fmt.Sprintf("-- FunctionCall of function oid %d with %d arguments", m.Function, len(m.Arguments))
	class := sqlkind.Classification{Kind: sqlkind.Unknown, Statements: 1, Reason: "a FunctionCall message calls a function by oid"}
	op, v := c.decide(text, funcParams(m), class)
	if v.Decision != guard.Allow {
		c.q.push(pending{kind: pendRefusal, simple: true, refusal: refusalError(v)})
		return c.send(&pgproto3.Query{String: refusedSQL}) && c.flushUpstream() == nil
	}
	if !c.forward(m, pending{kind: pendFunc, op: op}) {
		return false
	}
	c.afterForward(op, nil, true)
	return c.flushUpstream() == nil
}

func funcParams(m *pgproto3.FunctionCall) []guard.Param {
	ps := make([]guard.Param, len(m.Arguments))
	for i, a := range m.Arguments {
		ps[i] = guard.Param{Format: formatOf(m.ArgFormatCodes, i), Null: a == nil, Value: clone(a)}
	}
	return ps
}

// formatOf applies the protocol's rule: no codes = all text, one code =
// all that code, else one per value.
func formatOf[T int16 | uint16](codes []T, i int) int16 {
	switch {
	case len(codes) == 0:
		return 0
	case len(codes) == 1:
		return int16(codes[0])
	case i < len(codes):
		return int16(codes[i])
	}
	return 0
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func noticeMsg(text string) *pgproto3.NoticeResponse {
	return &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000", Message: text}
}
