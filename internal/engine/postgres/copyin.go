package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// COPY FROM STDIN through the extended protocol (libpq's PQexecParams):
// the client sends Parse, Bind, Describe, Execute and Sync before it learns
// that the COPY started. PostgreSQL ignores a Sync it reads in COPY mode,
// answers one read after the COPY failed to start, and after a COPY fails
// (bad data, CopyFail, or at once: COPY into a view) skips to the next
// Sync. Whether the upstream would answer a Sync sent behind the Execute
// thus depends on where the COPY fails, which nothing on the wire tells.
//
// So the upstream never gets that Sync while the answer is open: the
// client loop holds it back and waits (reading the client into a buffer,
// as during a hold) until the relay has the upstream's answer to the
// Execute. CopyInResponse: the Sync is dropped, as the upstream would have
// ignored it, and so is any later Sync before the data; the upstream sees
// only the client's Sync after CopyDone or CopyFail, which it answers
// however the COPY ended. An error instead (no such table, permission
// denied, skipped after an earlier error): the Sync is sent then, and every
// later one as usual, each answered by ReadyForQuery as PostgreSQL would.
//
// Waiting in the client loop rather than queueing behind the held Sync
// keeps the client loop the upstream's only writer, and nothing the client
// sent after the Sync (the next statement of a pipeline) can overtake it or
// be decided before the COPY's fate is known. It costs a client that sends
// its data without waiting for CopyInResponse one round trip; libpq waits
// anyway.

// syncFate settles a client's Sync, holding it back while the client's
// extended COPY may or may not start. False: the session ends (the client
// went away, or the session is ending).
func (c *conn) syncFate() (syncFate, bool) {
	for {
		fate, held := c.q.pushSync()
		if fate != syncHeld {
			return fate, true
		}
		started, ok := c.awaitCopyStart(held)
		if !ok {
			return 0, false
		}
		if started {
			return syncDropped, true
		}
		// It will not start: ask again, and the Sync is queued.
	}
}

// awaitCopyStart flushes the COPY's Execute upstream and waits for the
// relay's word on it. A CancelRequest does not end the wait: it reaches
// the upstream too, whose answer settles the COPY.
func (c *conn) awaitCopyStart(fate <-chan bool) (started, ok bool) {
	if c.flushUpstream() != nil {
		return false, false
	}
	for {
		got := false
		cause := c.waitWatching(func(ctx context.Context) {
			select {
			case started = <-fate:
				got = true
			case <-ctx.Done():
			}
		})
		switch {
		case got:
			return started, true
		case !errors.Is(cause, errCanceled):
			return false, false
		}
	}
}

// copyExecMessage checks a message sent during an extended-protocol COPY
// FROM STDIN: the upstream reads only COPY messages then (it ignores Flush
// and Sync), and ends the COPY with an error on anything else, after which
// the queue would not match its answers.
func (c *conn) copyExecMessage(msg pgproto3.FrontendMessage) bool {
	if !c.q.inCopyExec() {
		c.copyExec = false // the upstream did not start it, or ended it
		return true
	}
	switch msg.(type) {
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail, *pgproto3.Sync, *pgproto3.Flush, *pgproto3.Terminate:
		return true
	}
	c.fail(codeProtocolViolation, fmt.Sprintf("%T received during COPY FROM STDIN; send the data, then CopyDone or CopyFail, then Sync", msg))
	return false
}
