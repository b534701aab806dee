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
		Type: recording.TypeSessionOpen, SessionID: c.id, Resource: c.res.Name, Actor: c.sess.Identity.Key(),
		Data: map[string]any{"client_addr": c.sess.ClientAddr, "client_program": c.sess.ClientProgram,
			"tls": c.isTLS, "dialect": string(sqlkind.MySQL), "schema": c.db},
	}).Wait(ctx)
}

func (e *Engine) recordClose(c *conn, reason string) {
	e.o.Recorder.Append(context.Background(), recording.Event{
		Type: recording.TypeSessionClose, SessionID: c.id, Resource: c.res.Name, Actor: c.sess.Identity.Key(),
		Data: map[string]any{"reason": reason},
	})
}

// recordOperation appends the decided operation. Parameter values are not
// written (they may hold unmasked data); the digest binds them.
func (e *Engine) recordOperation(c *conn, op *operation) *recording.Commit {
	cl := op.g.Class
	return e.o.Recorder.Append(c.ctx, recording.Event{
		Type: recording.TypeOperation, SessionID: c.id, Resource: c.res.Name, Actor: c.sess.Identity.Key(),
		Data: map[string]any{
			"text": op.g.Text, "kind": cl.Kind.String(), "objects": cl.Objects, "statements": cl.Statements,
			"reason": cl.Reason, "params": len(op.g.Params), "command": op.command,
			"decision": op.v.Decision.String(), "code": op.v.Code, "review_id": op.v.ReviewID, "grant_id": op.v.GrantID,
			"digest": hex.EncodeToString(op.v.Digest), "schema": op.g.State.Schema,
			"in_transaction": op.g.State.InTransaction,
		},
	})
}

func (e *Engine) recordOutcome(c *conn, op *operation, out guard.Outcome) {
	data := map[string]any{"command_tag": out.CommandTag, "rows": out.Rows, "error_code": out.ErrorCode,
		"committed": out.Committed, "rolled_back": out.RolledBack, "digest": hex.EncodeToString(op.v.Digest),
		"duration_ms": time.Since(op.started).Milliseconds()}
	if op.capture != nil {
		data["results"] = op.captured()
	}
	e.o.Recorder.Append(context.Background(), recording.Event{
		Type: recording.TypeOperationOutcome, SessionID: c.id, Resource: c.res.Name, Actor: c.sess.Identity.Key(),
		Data: data,
	})
}

// recordEvent records a session-level command (COM_RESET_CONNECTION) and
// waits for it: it changes session state, so it is durable before it runs.
func (e *Engine) recordEvent(c *conn, what string, data map[string]any) error {
	data["command"] = what
	data["schema"] = c.state.Schema
	return e.o.Recorder.Append(c.ctx, recording.Event{
		Type: recording.TypeOperation, SessionID: c.id, Resource: c.res.Name, Actor: c.sess.Identity.Key(),
		Data: data,
	}).Wait(c.ctx)
}
