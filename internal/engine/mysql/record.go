package mysql

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

func (e *Engine) recordOpen(ctx context.Context, c *conn) error {
	return e.o.Recorder.Append(ctx, recording.Event{
		Type: recording.TypeSessionOpen, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: map[string]any{"client_addr": c.sess.ClientAddr, "client_program": c.sess.ClientProgram,
			"tls": c.isTLS, "dialect": string(sqlkind.MySQL), "schema": c.db},
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
			Reason: cl.Reason, Params: len(op.g.Params), BulkRows: op.bulkRows, Command: op.command,
			Decision: op.v.Decision.String(), Code: op.v.Code, ReviewID: op.v.ReviewID, GrantID: op.v.GrantID,
			Digest: hex.EncodeToString(op.v.Digest), Schema: op.g.State.Schema, Variables: op.g.State.Variables,
			InTransaction: op.g.State.InTransaction,
			Unmasked:      op.v.Unmask, UnmaskGrantID: op.v.UnmaskGrantID,
		},
	})
}

func (e *Engine) recordOutcome(c *conn, op *operation, out guard.Outcome) {
	data := &recording.OutcomeData{CommandTag: out.CommandTag, Rows: out.Rows, ErrorCode: out.ErrorCode,
		Committed: out.Committed, RolledBack: out.RolledBack, Digest: hex.EncodeToString(op.v.Digest),
		DurationMS: time.Since(op.started).Milliseconds()}
	if op.capture != nil {
		results := op.captured()
		data.Results = &results
	}
	e.o.Recorder.Append(context.Background(), recording.Event{
		Type: recording.TypeOperationOutcome, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: data,
	})
}

// recordEvent records a session-level command (COM_RESET_CONNECTION) and
// waits for it: it changes session state, so it is durable before it runs.
func (e *Engine) recordEvent(c *conn, what string, data map[string]any) error {
	data["command"] = what
	data["schema"] = c.state.Schema
	return e.o.Recorder.Append(c.ctx, recording.Event{
		Type: recording.TypeOperation, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: data,
	}).Wait(c.ctx)
}
