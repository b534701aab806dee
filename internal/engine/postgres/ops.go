package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

// operation is one decided operation on its way through the session.
type operation struct {
	g       guard.Operation
	v       guard.Verdict
	commit  *recording.Commit // a read's event: waited for before its first result byte
	waited  bool
	filter  ResultFilter
	capture *capture // result rows kept for the recording; nil: none (capture.go)
	portal  *portal  // an Execute's portal: where its rows are described
	started time.Time
	// grantEnds is the session's count of ended grants when the operation
	// was decided: forward compares it once the operation is queued.
	grantEnds uint64
	// catChange: allowed, of a kind that may change the catalog (the
	// session's catLast until a later one, or until txEnded).
	catChange bool
	// txEnded is set by the relay once the upstream was idle after the
	// operation: its transaction committed or rolled back.
	txEnded atomic.Bool
	// executed is set by the client loop when an Execute takes the
	// operation its portal's Bind decided, before the client's next Sync:
	// at that Sync's ReadyForQuery the relay finishes one no Execute took.
	executed atomic.Bool
	// ranOK is set by the relay when the operation ended without error:
	// a DEALLOCATE in it ran (trackPrepared).
	ranOK atomic.Bool
	// digestHex is hex(digestOf), made once for both of the operation's
	// events; digestOf is the verdict digest it was made from.
	digestHex string
	digestOf  *byte

	// filled by the relay
	tag     string
	rows    int64
	errCode string
	skipped bool // the upstream skipped it after an earlier error
	// finished: in the relay's batch already (an operation decided at Bind
	// is queued twice, with its Bind and its Execute). Relay only.
	finished bool
	// described: the filter has seen the RowDescription of the rows now
	// arriving.
	described bool
}

// decide asks the guard, resolves a hold and records the decision. It
// returns the operation and the final verdict (Allow or a refusal). For
// anything but a read the operation is durably recorded before decide
// returns Allow (invariant 2).
func (c *conn) decide(text string, params []guard.Param, class sqlkind.Classification) (*operation, guard.Verdict) {
	fresh := c.awaitRefresh()
	op := &operation{started: time.Now(), g: guard.Operation{Text: text, Params: params, State: c.state.snapshot(), Class: class}}
	var v guard.Verdict
	grantEnds := c.sess.GrantEnds()
	op.grantEnds = grantEnds
	if fresh != nil {
		// The session state is not known: nothing is decided on it.
		v = c.notDurable(fresh)
	} else {
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
	if class.Kind != sqlkind.Read {
		if err := c.durable(commit); err != nil {
			c.withdrawn(op)
			v = c.notDurable(err)
			op.v = v
			if !errors.Is(err, errRecording) {
				c.e.recordOperation(c, op) // the withdrawal follows the allow
			}
			return op, v
		}
	} else {
		op.commit = commit
	}
	if (v.GrantID != "" || v.UnmaskGrantID != "") && c.sess.GrantEnds() != grantEnds {
		// A grant of the session ended while this operation was decided
		// and recorded, before it could run: Interrupt found nothing to
		// cancel, so it must not start (invariant 7).
		c.withdrawn(op)
		v = guard.Verdict{Decision: guard.Deny, Code: verdictGrantEnded, GrantID: v.GrantID, Digest: v.Digest,
			Message: "the grant that allowed this operation ended before it ran; it was withdrawn: ask for a review or a new grant ('countersign grants request')"}
		op.v = v
		c.e.recordOperation(c, op) // the withdrawal follows the allow
		return op, v
	}
	if c.e.o.Filter != nil {
		op.filter = c.e.o.Filter(c.sess, &op.g, v)
	}
	if c.res.Record.Results > 0 {
		op.capture = c.newCapture(op, v)
	}
	if mayChangeCatalog(class.Kind) {
		// Counted before it is forwarded, so no decision after this one
		// trusts the catalog until its transaction ends (catalog.go).
		op.catChange = true
		c.catLast = op
	}
	if v.Notice != "" {
		// An allowed operation's notice (break-glass: "recorded, a
		// retrospective review awaits") reaches the client before its
		// results.
		_ = c.out.send(noticeMsg(v.Notice))
	}
	return op, v
}

// withdrawn tells the guard that an operation it allowed under a grant
// will not run: it counts the grant's writes in the open transaction.
func (c *conn) withdrawn(op *operation) {
	if op.v.GrantID != "" {
		c.e.o.Guard.Done(context.Background(), c.sess, &op.g, op.v, guard.Outcome{Withdrawn: true})
	}
}

// notDurable is the verdict for a write whose event did not become durable.
func (c *conn) notDurable(err error) guard.Verdict {
	switch {
	case errors.Is(err, errCanceled):
		return guard.Verdict{Decision: guard.Deny, Code: verdictCanceled,
			Message: "canceling statement due to user request; the operation was withdrawn before it ran"}
	case errors.Is(err, errClientGone):
		return guard.Verdict{Decision: guard.Deny, Code: verdictClientGone,
			Message: "the client disconnected before the operation ran; it was withdrawn"}
	}
	c.e.log.Error("recording an operation failed; it is refused", "session", c.id, "error", err)
	return guard.Verdict{Decision: guard.Deny, Code: verdictRecordingFailed,
		Message: "countersign could not record this operation, so it was not run; try again, and tell an admin if it persists"}
}

// hold tells the client what the operation waits for, flushes what was
// decided before it, and waits. A CancelRequest or a disconnect withdraws
// the wait.
func (c *conn) hold(v guard.Verdict) guard.Verdict {
	_ = c.flushUpstream()
	if v.Notice != "" {
		_ = c.out.send(noticeMsg(v.Notice))
	}
	if v.Wait == nil {
		return guard.Verdict{Decision: guard.Deny, Code: v.Code, Message: v.Message, ReviewID: v.ReviewID}
	}
	var final guard.Verdict
	cause := c.waitWatching(func(ctx context.Context) { final = v.Wait(ctx) })
	switch {
	case errors.Is(cause, errCanceled):
		return guard.Verdict{Decision: guard.Deny, Code: verdictCanceled, ReviewID: v.ReviewID,
			Message: "canceling statement due to user request; the operation was withdrawn while it waited for approval"}
	case errors.Is(cause, errClientGone):
		return guard.Verdict{Decision: guard.Deny, Code: verdictClientGone, ReviewID: v.ReviewID,
			Message: "the client disconnected while the operation waited for approval; it was withdrawn"}
	}
	if final.Decision == guard.Hold {
		final.Decision = guard.Deny
	}
	return final
}

// durable waits until a write's event is durable, watching the client.
func (c *conn) durable(commit *recording.Commit) error {
	var err error
	cause := c.waitWatching(func(ctx context.Context) { err = commit.Wait(ctx) })
	switch {
	case err == nil:
		return nil
	case cause != nil:
		return cause
	}
	return fmt.Errorf("%w: %w", errRecording, err)
}

var errRecording = errors.New("recording failed")

// onCancel handles a CancelRequest naming this session. When something
// of the client's is upstream, the upstream is asked to cancel it, and
// only once that cancel has acted (the upstream closed its connection) is
// a held operation's wait withdrawn: the client may send its next command
// as soon as the held one answers 57014, and a cancel still on its way
// upstream would hit that command. When nothing of the client's is
// upstream (an idle session, a hold with nothing before it, or only the
// gateway's own read of the session state), no cancel is sent: PostgreSQL
// would discard it, and a late one could hit the client's next command or
// that read.
func (c *conn) onCancel() {
	if c.up != nil && c.q.clientPending() {
		if err := cancelUpstream(c.upKey); err != nil {
			c.e.log.Info("postgres upstream cancel failed", "session", c.id, "error", err)
		}
	}
	c.holdMu.Lock()
	if c.holdCancel != nil {
		c.holdCancel(errCanceled)
	}
	c.holdMu.Unlock()
}

// clientPending reports whether a response to something of the client's
// is outstanding upstream: anything queued but the gateway's own reads of
// the session state.
func (q *queue) clientPending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.items[q.head:] {
		if p.kind != pendRefresh {
			return true
		}
	}
	return false
}

// interrupt is guard.Session.Interrupt: the guard calls it when a grant
// that allowed this session's operations ends. If the upstream is working
// on something of this session, the client is told why and the upstream
// is asked to cancel it (invariant 7); an idle session is left alone, its
// next operation is decided anew.
func (c *conn) interrupt(reason string) {
	head, busy := c.q.peek()
	if !busy || c.up == nil {
		return
	}
	_ = c.out.send(noticeMsg("countersign: " + reason))
	// PostgreSQL acts on a cancel only while it executes something: one
	// that overtakes the operation on its way upstream is lost. So it is
	// sent again while the same operation stays first in the queue.
	go func() {
		for range interruptTries {
			if err := cancelUpstream(c.upKey); err != nil {
				c.e.log.Info("postgres upstream cancel after a grant ended failed", "session", c.id, "error", err)
				return
			}
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(interruptRetry):
			}
			if cur, busy := c.q.peek(); !busy || cur.op != head.op || cur.kind != head.kind {
				return
			}
		}
	}()
}

// interruptTries and interruptRetry bound the cancels sent when a grant
// ends under a running operation.
const (
	interruptTries = 10
	interruptRetry = 200 * time.Millisecond
)

// verdictGrantEnded withdraws an operation whose grant ended before it ran.
const verdictGrantEnded = "grant_ended"

// cancel routes a CancelRequest to the session it names; unknown keys are
// ignored, as PostgreSQL does.
func (e *Engine) cancel(pid uint32, secret []byte) {
	if c := e.cancels.lookup(pid, secret); c != nil {
		c.onCancel()
	}
}

func (e *Engine) recordOpen(ctx context.Context, c *conn) error {
	return e.o.Recorder.Append(ctx, recording.Event{
		Type: recording.TypeSessionOpen, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: map[string]any{"client_addr": c.sess.ClientAddr, "client_program": c.sess.ClientProgram,
			"user": c.userName, "tls": c.isTLS, "dialect": string(sqlkind.Postgres)},
	}).Wait(ctx)
}

func (e *Engine) recordClose(c *conn, reason string) {
	e.o.Recorder.Append(context.Background(), recording.Event{
		Type: recording.TypeSessionClose, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: map[string]any{"reason": reason},
	})
}

// recordOperation appends the decided operation.
func (e *Engine) recordOperation(c *conn, op *operation) *recording.Commit {
	cl := op.g.Class
	return e.o.Recorder.Append(c.ctx, recording.Event{
		Type: recording.TypeOperation, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: &recording.OperationData{
			Text: op.g.Text, Kind: cl.Kind.String(), Objects: cl.Objects, Statements: cl.Statements,
			Reason: cl.Reason, Params: len(op.g.Params),
			Decision: op.v.Decision.String(), Code: op.v.Code, ReviewID: op.v.ReviewID, GrantID: op.v.GrantID,
			Digest: op.digestText(), SearchPath: op.g.State.SearchPath, Role: op.g.State.Role,
			InTransaction: op.g.State.InTransaction,
			Unmasked:      op.v.Unmask, UnmaskGrantID: op.v.UnmaskGrantID,
		},
	})
}

// digestText is the verdict's digest in hex, as the events write it; the
// hex of an operation's digest is made once (a verdict replaced since, by
// a withdrawal, has its own digest or none).
func (op *operation) digestText() string {
	d := op.v.Digest
	if len(d) == 0 {
		return ""
	}
	if op.digestOf != &d[0] {
		var buf [64]byte // a SHA-256 digest's hex: one allocation, the string
		if len(d) <= len(buf)/2 {
			op.digestHex = string(buf[:hex.Encode(buf[:], d)])
		} else {
			op.digestHex = hex.EncodeToString(d)
		}
		op.digestOf = &d[0]
	}
	return op.digestHex
}

func outcomeData(op *operation, out guard.Outcome) *recording.OutcomeData {
	data := &recording.OutcomeData{CommandTag: out.CommandTag, Rows: out.Rows, ErrorCode: out.ErrorCode,
		Committed: out.Committed, RolledBack: out.RolledBack, Digest: op.digestText(),
		DurationMS: time.Since(op.started).Milliseconds()}
	if op.capture != nil {
		results := op.captured()
		data.Results = &results
	}
	return data
}

func (e *Engine) recordOutcome(c *conn, op *operation, out guard.Outcome) {
	e.o.Recorder.Append(context.Background(), recording.Event{
		Type: recording.TypeOperationOutcome, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: outcomeData(op, out),
	})
}
