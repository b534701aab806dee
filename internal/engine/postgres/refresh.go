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
	c.e.refreshes.Add(1)
	r := &refresh{done: make(chan struct{})}
	c.refreshing = r
	n := "countersign_refresh_" + c.id
	c.q.push(pending{kind: pendRefresh, refresh: r})
	c.send(&pgproto3.Parse{Name: n, Query: refreshSQL})
	c.send(&pgproto3.Bind{DestinationPortal: n, PreparedStatement: n})
	c.send(&pgproto3.Execute{Portal: n})
	c.send(&pgproto3.Close{ObjectType: 'P', Name: n})
	c.send(&pgproto3.Close{ObjectType: 'S', Name: n})
	c.send(&pgproto3.Sync{})
}

// refresh is one read of the state; the relay fills txStatus and closes
// done when the answer is in.
type refresh struct {
	done     chan struct{}
	txStatus byte
}

// awaitRefresh waits for a pending refresh before an operation is decided;
// it returns why the state could not be read (errClientGone,
// errCanceled), or nil. Once a refresh finds no transaction open, nothing
// can revert what it read.
func (c *conn) awaitRefresh() error {
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
	c.refreshing = nil
	if r.txStatus == 'I' {
		c.txDirty = false
	}
	return nil
}
