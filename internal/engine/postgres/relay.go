package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/countersign/countersign/internal/guard"
	"github.com/jackc/pgx/v5/pgproto3"
)

// clientFlushBytes bounds what the relay buffers for the client before
// writing; it writes earlier whenever the upstream has nothing more
// buffered, so rows stream and are never collected into a whole result.
const clientFlushBytes = 32 << 10

// relay copies the upstream's messages to the client, matching them
// against the queue of expected responses: it waits for a read's event to
// be durable before its first result byte, passes rows through the
// filter, swaps in the gateway's error for a refused operation, keeps the
// session state and ends each operation with Guard.Done.
type relayState struct {
	out   []byte
	batch []*operation // operations ended since the last ReadyForQuery
	// bound are the operations decided at Bind whose Bind the upstream
	// completed since the last ReadyForQuery that answered a Sync: one no
	// Execute took by then is finished there (endBound).
	bound  []*operation
	txWas  byte   // status at the last ReadyForQuery
	failed string // SQLSTATE of an error since the last ReadyForQuery
}

func (c *conn) relay() {
	r := &relayState{txWas: c.state.txStatus()}
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			if c.ctx.Err() == nil {
				c.setReason("the upstream closed the connection")
				c.e.log.Info("postgres upstream connection ended", "session", c.id, "error", err)
			}
			c.flushClient(r)
			c.closeBoth()
			return
		}
		if err := c.onBackend(r, msg); err != nil {
			c.flushClient(r)
			c.fail(err.code, err.msg)
			return
		}
		if c.fe.ReadBufferLen() == 0 || len(r.out) >= clientFlushBytes {
			if !c.flushClient(r) {
				c.closeBoth()
				return
			}
		}
	}
}

func (c *conn) flushClient(r *relayState) bool {
	if len(r.out) == 0 {
		return true
	}
	err := c.out.write(r.out)
	if cap(r.out) > 1<<20 {
		r.out = nil
	} else {
		r.out = r.out[:0]
	}
	return err == nil
}

func (r *relayState) pass(m pgproto3.BackendMessage) *startupErr {
	var err error
	if r.out, err = m.Encode(r.out); err != nil {
		return &startupErr{codeInternalError, "countersign could not re-encode an upstream message: " + err.Error()}
	}
	return nil
}

var errDesync = &startupErr{codeProtocolViolation, "countersign lost step with the upstream's responses; the session is closed, reconnect to continue"}

// onBackend handles one upstream message.
func (c *conn) onBackend(r *relayState, msg pgproto3.BackendMessage) *startupErr {
	head, ok := c.q.peek()
	if ok && head.kind == pendRefresh {
		return c.onRefreshMsg(r, head, msg)
	}
	switch m := msg.(type) {
	case *pgproto3.ParseComplete, *pgproto3.BindComplete, *pgproto3.CloseComplete:
		if !ok || (head.kind != pendParse && head.kind != pendBind && head.kind != pendClose) {
			return errDesync
		}
		c.q.pop()
		switch {
		case head.kind == pendParse:
			close(head.st.answered)
		case head.kind == pendClose && head.st != nil:
			head.st.failed.Store(true) // closed: the name is free again (onClose)
		}
		if head.op != nil {
			r.bound = append(r.bound, head.op)
		}
	case *pgproto3.ParameterDescription:
	case *pgproto3.RowDescription:
		if ok && head.kind == pendDescribe {
			c.q.pop()
			head.described(copyRowDesc(m))
		} else if err := c.beforeResult(head, ok); err != nil {
			return err
		} else {
			if head.op.capture != nil {
				if err := head.op.capture.describe(m); err != nil {
					return filterErr(err)
				}
			}
			if head.op.filter != nil {
				head.op.described = true
				if err := head.op.filter.RowDescription(m); err != nil {
					return filterErr(err)
				}
			}
		}
	case *pgproto3.NoData:
		if !ok || head.kind != pendDescribe {
			return errDesync
		}
		c.q.pop()
		head.described(nil)
	case *pgproto3.DataRow:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		head.op.rows++
		if head.op.capture != nil { // before the client's filter: the copy is masked for the trail
			if err := head.op.capture.add(m, head.op.portal); err != nil {
				return filterErr(err)
			}
		}
		if err := head.op.filterRow(m); err != nil {
			return filterErr(err)
		}
	case *pgproto3.CopyData:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		if head.op.filter != nil {
			if err := head.op.filter.CopyData(m); err != nil {
				return filterErr(err)
			}
		}
	case *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		if cc, isCC := m.(*pgproto3.CommandComplete); isCC {
			head.op.tag = string(cc.CommandTag)
			head.op.rows = rowsOf(head.op.tag, head.op.rows)
		}
		if head.kind == pendExecute {
			c.q.pop()
			r.finish(head.op)
		}
	case *pgproto3.CopyInResponse:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		var started bool
		switch {
		case head.kind == pendQuery:
			started = c.q.enterCopy()
		case head.kind == pendExecute && head.copyIn:
			started = c.q.enterCopyExec(head.op)
		default:
			return errDesync // not a COPY FROM STDIN the gateway decided
		}
		if !started {
			return &startupErr{codeProtocolViolation, "messages other than COPY data were sent behind COPY FROM STDIN before it started; the session is closed"}
		}
	case *pgproto3.CopyOutResponse, *pgproto3.CopyDone, *pgproto3.FunctionCallResponse:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
	case *pgproto3.CopyBothResponse:
		return &startupErr{codeFeatureNotSupported, "replication streams are not allowed through countersign"}
	case *pgproto3.ErrorResponse:
		return c.onUpstreamError(r, head, ok, m)
	case *pgproto3.ReadyForQuery:
		return c.onReady(r, m)
	case *pgproto3.ParameterStatus:
		if err := c.onParameterStatus(m); err != nil {
			return err
		}
	case *pgproto3.NoticeResponse, *pgproto3.NotificationResponse:
		c.maskMessage(head, ok, msg)
	default:
		return &startupErr{codeProtocolViolation, fmt.Sprintf("countersign got an unexpected %T from the upstream; the session is closed", msg)}
	}
	return r.pass(msg)
}

// beforeResult checks that a result message belongs to an operation and,
// for a read, waits until its event is durable: no result byte reaches the
// client before the recording holds the operation (invariant 2).
func (c *conn) beforeResult(head pending, ok bool) *startupErr {
	if !ok || head.op == nil {
		return errDesync
	}
	op := head.op
	if op.commit != nil && !op.waited {
		if err := op.commit.Wait(c.ctx); err != nil {
			c.e.log.Error("recording a read failed; its result is withheld", "session", c.id, "error", err)
			return &startupErr{codeSystemError, "countersign could not record this operation, so its result is withheld and the session is closed; reconnect and try again, and tell an admin if it persists"}
		}
		op.waited = true
	}
	return nil
}

func filterErr(err error) *startupErr {
	return &startupErr{codeInternalError, "countersign could not filter a result, so it is withheld and the session is closed: " + err.Error()}
}

// onUpstreamError forwards the upstream's error, or the gateway's own in
// place of the upstream's answer to a refusal. In the extended protocol
// the upstream now skips to Sync, so the operations queued before it will
// not run.
func (c *conn) onUpstreamError(r *relayState, head pending, ok bool, m *pgproto3.ErrorResponse) *startupErr {
	r.failed = m.Code
	if !ok || head.kind != pendRefusal {
		c.maskMessage(head, ok, m)
	}
	if !ok || head.kind == pendSync {
		// FATAL on administrator shutdown, or a deferred constraint failing
		// at the implicit commit of a Sync: ReadyForQuery follows.
		return r.pass(m)
	}
	msg := pgproto3.BackendMessage(m)
	switch head.kind {
	case pendQuery, pendFunc:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		head.op.errCode = m.Code
		return r.pass(m)
	case pendParse:
		head.st.failed.Store(true)
		close(head.st.answered)
	case pendRefusal:
		msg = head.refusal
		if head.simple {
			return r.pass(msg) // ReadyForQuery follows and pops it
		}
	case pendExecute:
		if err := c.beforeResult(head, ok); err != nil {
			return err
		}
		head.op.errCode = m.Code
		r.finish(head.op)
	case pendBind:
		if head.op != nil {
			// Decided at Bind, failed there (a domain's CHECK on a
			// parameter): its Execute, queued behind, is skipped.
			head.op.errCode = m.Code
			r.finish(head.op)
		}
	}
	// Popping a COPY's Execute releases the Sync the client loop holds
	// back for it, if any (queue.pop): the upstream skips to that Sync.
	c.q.pop()
	c.skipToSync(r, m.Code)
	return r.pass(msg)
}

// skipToSync drops what the upstream will skip after an error: everything
// up to the next Sync, a simple Query or a FunctionCall included
// (PostgreSQL skips every message but Sync then). A refresh ends with a
// Sync of its own, which the upstream answers.
func (c *conn) skipToSync(r *relayState, code string) {
	for {
		p, ok := c.q.peek()
		if !ok || p.kind == pendSync || p.kind == pendRefresh {
			return
		}
		c.q.pop()
		if p.kind == pendParse {
			p.st.failed.Store(true)
			close(p.st.answered)
		}
		if p.op != nil && !p.op.finished {
			p.op.skipped, p.op.errCode = true, code
			r.finish(p.op)
		}
	}
}

// finish adds op to the operations ended since the last ReadyForQuery,
// once: an operation decided at Bind is queued with its Bind and with its
// Execute.
func (r *relayState) finish(op *operation) {
	if op.finished {
		return
	}
	op.finished = true
	r.batch = append(r.batch, op)
}

// onReady ends a Sync, a Query or a FunctionCall: the transaction status
// always comes from the upstream, and the operations since the last
// ReadyForQuery are done.
func (c *conn) onReady(r *relayState, m *pgproto3.ReadyForQuery) *startupErr {
	for {
		p, ok := c.q.pop()
		if !ok {
			return errDesync
		}
		if p.kind == pendParse {
			// (never so in step: its answer came before)
			p.st.failed.Store(true)
			close(p.st.answered)
		}
		if p.op != nil {
			if p.kind == pendExecute || p.kind == pendBind {
				p.op.skipped = true
			}
			r.finish(p.op)
		}
		if p.kind == pendSync {
			r.endBound()
			break
		}
		if p.kind == pendQuery || p.kind == pendFunc || (p.kind == pendRefusal && p.simple) {
			// Not the client's Sync: a portal bound before it may outlive
			// it upstream (a named portal in a transaction), and the client
			// loop still gives its Execute the operation its Bind decided.
			r.pruneBound()
			break
		}
	}
	c.state.tx.Store(uint32(m.TxStatus))
	c.finishBatch(r, m.TxStatus)
	return r.pass(m)
}

// endBound finishes, at the ReadyForQuery answering the client's Sync, the
// operations decided at Bind that no Execute took: the client loop sets
// executed before it queues that Sync, and gives up on the others there
// (dropBoundOps).
func (r *relayState) endBound() {
	for i, op := range r.bound {
		if !op.executed.Load() {
			op.skipped = true
			r.finish(op)
		}
		r.bound[i] = nil
	}
	r.bound = r.bound[:0]
}

// pruneBound forgets the operations decided at Bind that an Execute took
// (that Execute finishes them), so that a client which never sends Sync
// does not grow the list.
func (r *relayState) pruneBound() {
	kept := r.bound[:0]
	for _, op := range r.bound {
		if !op.executed.Load() {
			kept = append(kept, op)
		}
	}
	clear(r.bound[len(kept):])
	r.bound = kept
}

// finishBatch tells the guard how each operation ended and records it.
func (c *conn) finishBatch(r *relayState, after byte) {
	failed := r.failed
	r.failed = ""
	for _, op := range r.batch {
		out := guard.Outcome{CommandTag: op.tag, Rows: op.rows, ErrorCode: op.errCode}
		if op.skipped && out.ErrorCode == "" {
			out.ErrorCode = failed
		}
		if failed == "" {
			out.Committed = endsTxFinal(op.tag) || (after == 'I' && r.txWas == 'I')
		}
		// PostgreSQL tags ROLLBACK TO SAVEPOINT "ROLLBACK" too, and that
		// leaves the transaction open: only an idle session after it
		// says the whole transaction rolled back (approvals used in it
		// are restored only then). In a batch that opens another
		// transaction after its ROLLBACK this errs towards keeping them
		// consumed.
		out.RolledBack = (failed != "" && after != 'T') || (strings.HasPrefix(op.tag, "ROLLBACK") && after == 'I')
		c.catalogAfter(op)
		if out.ErrorCode == "" && !op.skipped {
			op.ranOK.Store(true)
		}
		c.e.o.Guard.Done(context.Background(), c.sess, &op.g, op.v, out)
		c.e.recordOutcome(c, op, out)
	}
	clear(r.batch)
	r.batch = r.batch[:0]
	r.txWas = after
	c.catalogTxEnd(after)
}

// endsTxFinal reports whether a statement that ran without error made its
// transaction's work final: COMMIT, also COMMIT AND CHAIN, after which the
// session is in a new transaction (so the status after it cannot tell),
// and PREPARE TRANSACTION, whose work this session can no longer roll
// back. A COMMIT of a failed transaction is tagged ROLLBACK.
func endsTxFinal(tag string) bool {
	return strings.HasPrefix(tag, "COMMIT") || strings.HasPrefix(tag, "PREPARE TRANSACTION")
}

// rowsOf reads the row count from a command tag ("INSERT 0 5", "SELECT 3").
func rowsOf(tag string, counted int64) int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return counted
	}
	var n int64
	for _, ch := range tag[i+1:] {
		if ch < '0' || ch > '9' {
			return counted
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}

// onParameterStatus keeps the reported settings; a quoting mode the
// gateway's scanner does not share ends the session (invariant 8).
func (c *conn) onParameterStatus(m *pgproto3.ParameterStatus) *startupErr {
	c.state.mu.Lock()
	c.state.params[m.Name] = m.Value
	if m.Name == "search_path" {
		c.state.searchPath = m.Value
	}
	c.state.mu.Unlock()
	if m.Name == "standard_conforming_strings" && m.Value != "on" {
		return &startupErr{codeFeatureNotSupported, "standard_conforming_strings=off is not allowed through countersign: it changes how statements are read; the session is closed, reconnect and leave it on"}
	}
	if m.Name == "client_encoding" && !isUTF8(m.Value) {
		return &startupErr{codeFeatureNotSupported, "client_encoding other than UTF8 is not allowed through countersign; the session is closed, reconnect and leave it UTF8"}
	}
	return nil
}

// onRefreshMsg swallows the answer to the gateway's own state read. A
// cancel that lands on the read (57014) makes it read again (rereadNow,
// else awaitRefresh), up to refreshTries reads in a row; any other error
// closes the session.
func (c *conn) onRefreshMsg(r *relayState, head pending, msg pgproto3.BackendMessage) *startupErr {
	switch m := msg.(type) {
	case *pgproto3.DataRow:
		if len(m.Values) == 2 {
			c.state.mu.Lock()
			c.state.searchPath, c.state.role = string(m.Values[0]), string(m.Values[1])
			c.state.mu.Unlock()
		}
	case *pgproto3.ErrorResponse:
		switch {
		case m.Code == "25P02":
			// In a failed transaction nothing runs, so nothing changed the
			// state; the transaction's end is read again (txDirty).
			return nil
		case m.Code == codeQueryCanceled && head.refresh.tries+1 < refreshTries:
			// A cancel meant for the client's statement landed on the
			// read: it is sent again before the next decision
			// (awaitRefresh), as many times as refreshTries allows.
			c.e.log.Info("a cancel ended the read of the postgres session state; it is read again", "session", c.id)
			head.refresh.again = true
			return nil
		}
		// Without the state, nothing more can be decided: fail closed.
		c.e.log.Error("postgres session state read failed", "session", c.id, "code", m.Code, "error", m.Message)
		return &startupErr{codeSystemError, "countersign could not read the session's search_path and role, which every decision depends on; the session is closed, reconnect to continue"}
	case *pgproto3.ReadyForQuery:
		c.q.pop()
		c.state.tx.Store(uint32(m.TxStatus))
		r.txWas = m.TxStatus
		if head.refresh.again && c.rereadNow(head.refresh) {
			return nil // the client loop waits on for the same done
		}
		head.refresh.txStatus = m.TxStatus
		close(head.refresh.done)
	case *pgproto3.ParameterStatus:
		if err := c.onParameterStatus(m); err != nil {
			return err
		}
		return r.pass(m)
	case *pgproto3.NoticeResponse, *pgproto3.NotificationResponse:
		c.maskMessage(pending{}, false, m)
		return r.pass(m)
	}
	return nil
}

// maskMessage masks an upstream error, notice or notification unless an
// unmask grant covers the operation it belongs to. One that belongs to no
// operation is masked.
func (c *conn) maskMessage(head pending, ok bool, m pgproto3.BackendMessage) {
	if c.e.o.Messages == nil || (ok && head.op != nil && head.op.v.Unmask) {
		return
	}
	c.e.o.Messages.MaskMessage(c.sess, m)
}
