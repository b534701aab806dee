package postgres

import (
	"context"
	"strings"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The session state bound into digests (search_path, role) is not reported
// by PostgreSQL 15's ParameterStatus. After an operation that may change
// it, the gateway reads it itself on the upstream connection, with its own
// statement and portal names and its own Sync, at a point where the client
// has no open pipeline (after its Sync or simple Query), and the next
// operation is decided only once the answer is in.
//
// What may change it, from the parsed statements:
//   - SET/RESET of search_path, role or session_authorization, RESET ALL,
//     DISCARD ALL;
//   - set_config() (its arguments are not read);
//   - anything of unknown kind: a function, DO or CALL may do any of these;
//   - in a transaction in which one of the above happened, every later
//     operation until the transaction ends: COMMIT, ROLLBACK, ABORT,
//     ROLLBACK TO SAVEPOINT or an error may revert a SET (or SET LOCAL).
//     The read itself reports the transaction status, so the gateway knows
//     when that transaction is over (txDirty).

// current_user is a keyword, not a function name a user can shadow.
const refreshSQL = "SELECT pg_catalog.current_setting('search_path'), current_user"

// trackedSettings are the settings whose change the gateway must see.
var trackedSettings = map[string]bool{"search_path": true, "role": true, "session_authorization": true, "all": true}

// changesState reports whether an operation may change search_path or the
// role.
func changesState(class sqlkind.Classification, stmts []sqlkind.Statement) bool {
	if class.Kind == sqlkind.Unknown || len(stmts) == 0 {
		return true
	}
	for i := range stmts {
		s := &stmts[i]
		if (s.Set != nil && trackedSettings[s.Set.Name]) || s.DeallocateAll {
			return true
		}
	}
	for _, f := range class.Functions {
		if f == "set_config" || f == "pg_catalog.set_config" {
			return true
		}
	}
	return false
}

// afterForward updates what the session tracks once an allowed operation
// is on its way upstream: its SQL-level prepared statements, and whether
// the session state must be read again.
func (c *conn) afterForward(op *operation, stmts []sqlkind.Statement, simple bool) {
	c.trackPrepared(op, stmts)
	if changesState(op.g.Class, stmts) {
		c.txDirty = true
	} else if !c.txDirty {
		return
	}
	if !simple {
		c.refreshAtSync = true
		return
	}
	if containsFold(op.g.Text, "copy") {
		// The upstream may be in COPY mode now: nothing may be injected
		// until the client's next command.
		c.refreshNext = true
		return
	}
	c.injectRefresh()
}

// containsFold is strings.Contains ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// refreshBefore injects a deferred refresh before the client's next
// command (not its COPY data).
func (c *conn) refreshBefore(msg pgproto3.FrontendMessage) {
	switch msg.(type) {
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail, *pgproto3.Flush, *pgproto3.Terminate:
		return
	}
	c.refreshNext = false
	c.injectRefresh()
}

func (c *conn) injectRefresh() {
	tries := 0
	if r := c.refreshing; r != nil {
		select {
		case <-r.done:
			if r.again {
				// A cancel ended the last read and awaitRefresh could not
				// send it again (the client's Sync sends this one): it
				// counts, and its statement may be left behind.
				tries = r.tries + 1
			}
		default:
		}
	}
	c.injectRead(tries)
}

// injectRead sends one read of the state; tries counts the reads before it
// that a cancel ended (relay: onRefreshMsg).
func (c *conn) injectRead(tries int) {
	c.e.refreshes.Add(1)
	r := &refresh{done: make(chan struct{}), tries: tries}
	c.refreshing = r
	n := "countersign_refresh_" + c.id
	c.q.push(pending{kind: pendRefresh, refresh: r})
	for _, m := range readMsgs(n, tries > 0) {
		c.send(m)
	}
}

// readMsgs are the messages of one read of the state under the statement
// and portal name n. again: a cancel ended the read before, which may have
// left its statement (and, in a transaction, its portal) behind; closing a
// name that does not exist is no error.
func readMsgs(n string, again bool) []pgproto3.FrontendMessage {
	msgs := make([]pgproto3.FrontendMessage, 0, 8)
	if again {
		msgs = append(msgs, &pgproto3.Close{ObjectType: 'P', Name: n}, &pgproto3.Close{ObjectType: 'S', Name: n})
	}
	return append(msgs, &pgproto3.Parse{Name: n, Query: refreshSQL},
		&pgproto3.Bind{DestinationPortal: n, PreparedStatement: n},
		&pgproto3.Execute{Portal: n},
		&pgproto3.Close{ObjectType: 'P', Name: n},
		&pgproto3.Close{ObjectType: 'S', Name: n},
		&pgproto3.Sync{})
}

// rereadNow sends a read that a cancel ended again at once, from the
// relay, when nothing is queued behind it: the client has sent nothing
// since that expects an answer, so the upstream's input ends with the
// read's own Sync, a clean place. It holds the queue's lock while it
// writes, so whatever the client loop queues next (it queues before it
// buffers) reaches the upstream behind it. It reports false when
// something is queued; awaitRefresh then sends the read again.
func (c *conn) rereadNow(r *refresh) bool {
	var buf []byte
	for _, m := range readMsgs("countersign_refresh_"+c.id, true) {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			return false
		}
	}
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head != len(q.items) {
		return false
	}
	r.tries, r.again = r.tries+1, false
	q.items = append(q.items, pending{kind: pendRefresh, refresh: r})
	q.syncs++ // as push: the read ends with a Sync of its own
	c.e.refreshes.Add(1)
	// A few hundred bytes to an upstream with nothing left to answer: the
	// write does not wait on the upstream. Should it fail, the relay's
	// next read fails too and ends the session.
	_, _ = c.up.Write(buf)
	return true
}

// refresh is one read of the state; the relay fills txStatus and again,
// then closes done when the answer is in.
type refresh struct {
	done     chan struct{}
	txStatus byte
	// again: a cancel ended the read (57014) before it returned the state,
	// which must be read again. A cancel the client meant for the
	// statement before the read lands on it when it reaches the backend
	// just after that statement ended; on a direct connection nothing
	// would have run then and PostgreSQL would have discarded it.
	again bool
	// tries is the number of reads before this one that a cancel ended;
	// the relay fails closed at refreshTries.
	tries int
}

// refreshTries bounds the reads of the state in a row that cancels may
// end before the session is closed (fail closed).
const refreshTries = 3

// awaitRefresh waits for a pending refresh before an operation is decided;
// it returns why the state could not be read (errClientGone,
// errCanceled), or nil. Once a refresh finds no transaction open, nothing
// can revert what it read.
//
// A read that a cancel ended is sent again here, at the next decision:
// nothing the client sent since the read changes the state (every
// operation that may is decided, and so waits here first). It is sent only
// where the client's pipeline is closed (the last thing queued is a Sync,
// a simple Query, a FunctionCall or a read of the state), since its own
// Sync would end an implicit transaction and its unnamed portal; else the
// operation is refused as cancelled and the state is read after the
// client's next Sync.
func (c *conn) awaitRefresh() error {
	for {
		r := c.refreshing
		if r == nil {
			return nil
		}
		_ = c.flushUpstream()
		select {
		case <-r.done: // already in: no watch needed
		default:
			cause := c.waitWatching(func(ctx context.Context) {
				select {
				case <-r.done:
				case <-ctx.Done():
				}
			})
			if cause != nil {
				return cause // still pending: the next decision waits again
			}
		}
		if r.again {
			if !c.q.endsClean() {
				c.refreshAtSync = true
				return errCanceled
			}
			c.injectRead(r.tries + 1)
			continue
		}
		c.refreshing = nil
		if r.txStatus == 'I' {
			c.txDirty = false
		}
		return nil
	}
}

// endsClean reports whether the last response the queue expects ends the
// client's pipeline: a Sync, a simple Query or FunctionCall (or the refusal
// standing for one), or the gateway's read of the state. An empty queue
// counts as ended: responses to extended-protocol messages come only with
// a Sync, or with a Flush, which the client's drivers send rarely; after
// one, a read sent here ends the client's implicit transaction, and the
// client's Execute of an unnamed portal fails (34000), which is no
// weaker than the refusal.
func (q *queue) endsClean() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return true
	}
	switch last := q.items[len(q.items)-1]; last.kind {
	case pendSync, pendQuery, pendFunc, pendRefresh:
		return true
	case pendRefusal:
		return last.simple
	}
	return false
}
