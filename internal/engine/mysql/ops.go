package mysql

import (
	"context"
	"errors"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

// operation is one decided operation on its way through the session.
type operation struct {
	g       guard.Operation
	v       guard.Verdict
	command string
	commit  *recording.Commit // a read's event: waited for before its first result byte
	filter  ResultFilter
	capture *capture // result rows kept for the recording; nil: none (capture.go)
	started time.Time
	stmts   []sqlkind.MySQLStatement
	// bulkRows is how many rows a COM_STMT_BULK_EXECUTE carried (bulk.go).
	bulkRows int
	// sets is set when its statements change session variables: the
	// settings are read back after it (afterRun).
	sets bool

	// filled by the relay
	results int // results (OK packets, whole result sets) before any error
	rows    int64
	errCode string
	failed  bool // the recording failed after a read was sent: results are dropped
}

const (
	verdictRecordingFailed = "recording_failed"
	verdictClientGone      = "client_gone"
	// holdNoticeless documents that MySQL has no asynchronous notice: a
	// held operation waits silently (see doc.go).
	statusInTrans         = 0x0001
	statusMoreResults     = 0x0008
	defaultDenyMessage    = "countersign refused this operation"
	recordingFailedReason = "countersign could not record this operation, so it was not run; try again, and tell an admin if it persists"
)

func (c *conn) snapshot() guard.State {
	s := c.state
	s.InTransaction = c.status&statusInTrans != 0
	return s
}

// decide asks the guard, waits out a hold and records the decision. For
// anything but a read the operation is durably recorded before decide
// returns Allow (invariant 2).
//
// pre is what refuses the operation before the guard is asked (a schema
// the resource does not allow, a setting the gateway could not follow):
// no review is created for what could never run.
func (c *conn) decide(command, text string, params []guard.Param, class sqlkind.Classification, pre refusal) (*operation, guard.Verdict) {
	return c.decideOp(c.newOperation(command, text, params, class), pre)
}

func (c *conn) newOperation(command, text string, params []guard.Param, class sqlkind.Classification) *operation {
	return &operation{command: command, started: time.Now(),
		g: guard.Operation{Text: text, Params: params, State: c.snapshot(), Class: class}}
}

// decideOp is decide for an operation the caller made (and added to).
func (c *conn) decideOp(op *operation, pre refusal) (*operation, guard.Verdict) {
	var v guard.Verdict
	if pre.code == "" {
		pre = c.bindVariables(op)
	}
	grantEnds := c.sess.GrantEnds()
	if pre.code != "" {
		v = guard.Verdict{Decision: guard.Deny, Code: pre.code, Message: pre.message}
	} else {
		c.filterUses(op) // filteruse.go: filter: deny rules
		v = c.e.o.Guard.Decide(c.ctx, c.sess, &op.g)
	}
	if v.Decision == guard.Hold {
		v = c.hold(v)
	}
	op.v = v
	if v.Decision != guard.Allow {
		c.e.recordOperation(c, op) // the refusal is recorded; not waited for
		return op, v
	}
	commit := c.e.recordOperation(c, op)
	if op.g.Class.Kind != sqlkind.Read {
		var err error
		if c.waitWatching(func(ctx context.Context) { err = commit.Wait(ctx) }) {
			err = errClientGone
		}
		if err != nil {
			if !errors.Is(err, errClientGone) {
				c.e.log.Error("recording an operation failed; it is refused", "session", c.id, "error", err)
			}
			c.withdrawn(op)
			v = guard.Verdict{Decision: guard.Deny, Code: verdictRecordingFailed, Message: recordingFailedReason}
			op.v = v
			return op, v
		}
	} else {
		op.commit = commit
	}
	c.beginRunning() // before the check: see interrupt.go
	if (v.GrantID != "" || v.UnmaskGrantID != "") && c.sess.GrantEnds() != grantEnds {
		// A grant of the session ended while this operation was decided
		// and recorded, before it could run: Interrupt found nothing to
		// cancel, so it must not start (invariant 7).
		c.endRunning()
		c.withdrawn(op)
		v = guard.Verdict{Decision: guard.Deny, Code: verdictGrantEnded, GrantID: v.GrantID, Digest: v.Digest, Message: grantEndedMessage}
		op.v = v
		op.commit = nil
		c.e.recordOperation(c, op) // the withdrawal follows the allow
		return op, v
	}
	if c.e.o.Filter != nil {
		op.filter = c.e.o.Filter(c.sess, &op.g, v)
		if va, ok := op.filter.(viewAware); ok {
			va.setViews(c.e.isView(c.res))
		}
		if la, ok := op.filter.(lineageAware); ok {
			la.setLineages(&c.lineages)
		}
	}
	if c.res.Record.Results > 0 {
		op.capture = c.newCapture(op, v)
	}
	return op, v
}

// withdrawn tells the guard that an operation it allowed under a grant
// will not run: it counts the grant's writes in the open transaction.
func (c *conn) withdrawn(op *operation) {
	if op.v.GrantID != "" {
		c.e.o.Guard.Done(c.ctx, c.sess, &op.g, op.v, guard.Outcome{Withdrawn: true})
	}
}

// refusal is why an operation is refused before the guard is asked; the
// zero value refuses nothing.
type refusal struct{ code, message string }

// refusalOf checks the schemas an operation names and the settings its
// statements change.
func (c *conn) refusalOf(schemas []string, stmts []sqlkind.MySQLStatement) refusal {
	if why := schemaRefusal(c.res, schemas); why != "" {
		return refusal{verdictSchema, why}
	}
	if why := tokenizingRefusal(stmts); why != "" {
		return refusal{verdictTokenizing, why}
	}
	return refusal{}
}

// hold waits for the review. MySQL has no asynchronous notice message, so
// the client is told nothing while it waits; the wait shows in 'countersign
// reviews list', and a refusal or timeout names the review.
func (c *conn) hold(v guard.Verdict) guard.Verdict {
	if v.Wait == nil {
		return guard.Verdict{Decision: guard.Deny, Code: v.Code, Message: v.Message, ReviewID: v.ReviewID}
	}
	var final guard.Verdict
	if c.waitWatching(func(ctx context.Context) { final = v.Wait(ctx) }) {
		// Withdrawn: the refusal is recorded like any other; nobody is
		// left to tell.
		c.setReason("client disconnected while its operation was held for review")
		return guard.Verdict{Decision: guard.Deny, Code: verdictClientGone, ReviewID: v.ReviewID,
			Message: "the client disconnected while it waited for review " + v.ReviewID}
	}
	if final.Decision == guard.Hold {
		final.Decision = guard.Deny
	}
	if final.Decision != guard.Allow && final.ReviewID == "" {
		final.ReviewID = v.ReviewID
	}
	return final
}

// deny answers a refused operation. Nothing reached the upstream, so an
// open transaction there is exactly as the client believes: MySQL keeps a
// transaction open after a failed statement, and so does the gateway.
func (c *conn) deny(v guard.Verdict) bool {
	msg := v.Message
	if msg == "" {
		msg = defaultDenyMessage
		if v.ReviewID != "" {
			msg += " (review " + v.ReviewID + ")"
		}
	}
	code := uint16(erTableAccessDenied)
	state := "42000"
	switch v.Code {
	case verdictRecordingFailed:
		code, state = erUnknown, "HY000"
	case verdictSchema:
		code = erDBAccessDenied
	case verdictTokenizing:
		code = erWrongValueForVar
	}
	return c.out.send(errPacket(code, state, msg)) == nil
}

// done reports the outcome to the guard and the recording.
func (c *conn) done(op *operation) {
	c.endRunning()
	c.noteVariables(op)
	out := guard.Outcome{Rows: op.rows, ErrorCode: op.errCode}
	inTx := c.status&statusInTrans != 0
	out.Committed = op.errCode == "" && !inTx
	out.RolledBack = op.errCode != "" && !inTx && op.g.State.InTransaction
	out.CommandTag = op.command
	if op.g.Class.Kind != sqlkind.Read && op.g.Class.Kind != sqlkind.Write {
		c.e.views.forget(c.res.Name) // a view may have been created or dropped
	}
	c.e.o.Guard.Done(c.ctx, c.sess, &op.g, op.v, out)
	c.e.recordOutcome(c, op, out)
}

// awaitRead holds back a read's first result byte until its event is
// durable. If the recording failed, the results are dropped and the client
// gets an error instead (the read ran but nothing of it is seen).
func (c *conn) awaitRead(op *operation) {
	if op.commit == nil {
		return
	}
	// An event already durable needs no bounded wait (nor its timer, whose
	// reset wakes the runtime's poller): a Wait on a context that has
	// ended returns the event's own result once it is finished, and the
	// context's error only while it is not, in which case (or if the event
	// failed) the bounded wait below returns the event's result.
	err := op.commit.Wait(endedContext)
	if err != nil {
		ctx := c.readWait.start(c.ctx)
		err = op.commit.Wait(ctx)
		c.readWait.stop()
	}
	if err != nil {
		c.e.log.Error("recording a read failed; its results are withheld", "session", c.id, "error", err)
		op.failed = true
	}
	op.commit = nil
}

// endedContext is a context that has already ended (awaitRead).
var endedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// readWaitLimit bounds how long a read's results wait for its event.
const readWaitLimit = time.Minute

// boundedWait is a context for awaitRead that ends readWaitLimit after
// start, kept from one read to the next: every read waits for its event,
// and a fresh context.WithTimeout each time (a context, a timer, an entry
// in the session context's children) was a tenth of the engine's CPU per
// point select. Only the client loop uses it.
type boundedWait struct {
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer
}

// start arms the limit and returns the context to wait with.
func (w *boundedWait) start(parent context.Context) context.Context {
	if w.ctx == nil || w.ctx.Err() != nil {
		w.ctx, w.cancel = context.WithCancel(parent)
		w.timer = time.AfterFunc(readWaitLimit, w.cancel)
	} else {
		w.timer.Reset(readWaitLimit)
	}
	return w.ctx
}

// stop disarms the limit. A timer that fired, or is firing, cancels
// (or is about to cancel) the context: it is not used again.
func (w *boundedWait) stop() {
	if !w.timer.Stop() {
		w.cancel()
		w.ctx = nil
	}
}

// ran is how many of the operation's statements ran: all when it
// succeeded, else those that answered before the error.
func (op *operation) ran() int {
	if op.errCode == "" {
		return len(op.stmts)
	}
	return op.results
}
