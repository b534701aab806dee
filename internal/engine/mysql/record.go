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

// opEvent is the body of an "operation" event. A struct rather than a
// map: it is built for every statement, and encodes to the same JSON keys
// (as the PostgreSQL engine's). Parameter values are not written (they may
// hold unmasked data); the digest binds them.
type opEvent struct {
	Text          string   `json:"text"`
	Kind          string   `json:"kind"`
	Objects       []string `json:"objects"`
	Statements    int      `json:"statements"`
	Reason        string   `json:"reason"`
	Params        int      `json:"params"`
	Command       string   `json:"command"`
	Decision      string   `json:"decision"`
	Code          string   `json:"code"`
	ReviewID      string   `json:"review_id"`
	GrantID       string   `json:"grant_id"`
	Digest        string   `json:"digest"`
	Schema        string   `json:"schema"`
	InTransaction bool     `json:"in_transaction"`
}

// outcomeEvent is the body of an "operation.outcome" event.
type outcomeEvent struct {
	CommandTag string `json:"command_tag"`
	Rows       int64  `json:"rows"`
	ErrorCode  string `json:"error_code"`
	Committed  bool   `json:"committed"`
	RolledBack bool   `json:"rolled_back"`
	Digest     string `json:"digest"`
	DurationMS int64  `json:"duration_ms"`
	// Results are the first rows of each result, masked, when the
	// resource keeps results (record.results); a pointer so that a kept
	// but empty capture is still written as [] and none at all is left out.
	Results *[]recording.Result `json:"results,omitempty"`
}

// recordOperation appends the decided operation.
func (e *Engine) recordOperation(c *conn, op *operation) *recording.Commit {
	cl := op.g.Class
	return e.o.Recorder.Append(c.ctx, recording.Event{
		Type: recording.TypeOperation, SessionID: c.id, Resource: c.res.Name, Actor: c.actor,
		Data: &opEvent{
			Text: op.g.Text, Kind: cl.Kind.String(), Objects: cl.Objects, Statements: cl.Statements,
			Reason: cl.Reason, Params: len(op.g.Params), Command: op.command,
			Decision: op.v.Decision.String(), Code: op.v.Code, ReviewID: op.v.ReviewID, GrantID: op.v.GrantID,
			Digest: hex.EncodeToString(op.v.Digest), Schema: op.g.State.Schema,
			InTransaction: op.g.State.InTransaction,
		},
	})
}

func (e *Engine) recordOutcome(c *conn, op *operation, out guard.Outcome) {
	data := &outcomeEvent{CommandTag: out.CommandTag, Rows: out.Rows, ErrorCode: out.ErrorCode,
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
