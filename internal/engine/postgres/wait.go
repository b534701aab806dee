package postgres

import (
	"context"
	"errors"
)

// waitWatching runs wait, which blocks the client loop (a hold for
// review, the durability of a write's event, a read of the session state),
// while the client connection is read in the background:
//
//   - a client that goes away (pgx closes its socket when its context ends,
//     rather than sending a CancelRequest) cancels wait's context at once,
//     so the wait is withdrawn and Shutdown does not wait for it;
//   - a client that keeps writing while it does not read cannot deadlock
//     the session: its bytes are taken into a buffer, so it can finish its
//     write and read the results the relay is trying to send it.
//
// The buffer is bounded by limits.max_message_bytes, the size of the
// largest single message the gateway accepts anyway. Beyond it the watch
// stops reading and TCP pushes back on the client: a client that sends
// that much without reading any response is at fault, and PostgreSQL
// itself, which does not read while it writes, would stall the same way.
//
// A CancelRequest naming the session also cancels the context. It returns
// the cause: errClientGone, errCanceled, or nil when wait ended by itself.
func (c *conn) waitWatching(wait func(ctx context.Context)) error {
	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	c.holdMu.Lock()
	c.holdCancel = cancel
	c.holdMu.Unlock()
	stop := c.rd.watch(func() { cancel(errClientGone) })
	wait(ctx)
	stop()
	c.holdMu.Lock()
	c.holdCancel = nil
	c.holdMu.Unlock()
	if ctx.Err() == nil {
		return nil
	}
	if c.ctx.Err() != nil {
		return errClientGone // the session is ending
	}
	return context.Cause(ctx)
}

var (
	errCanceled   = errors.New("cancel request")
	errClientGone = errors.New("client disconnected")
)
