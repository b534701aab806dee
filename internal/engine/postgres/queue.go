package postgres

import (
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// pendKind is what a message forwarded upstream will be answered with; the
// relay matches the upstream's responses against the queue in order.
type pendKind uint8

const (
	pendParse    pendKind = iota // ParseComplete
	pendBind                     // BindComplete
	pendDescribe                 // [ParameterDescription] RowDescription | NoData
	pendClose                    // CloseComplete
	pendExecute                  // rows, then CommandComplete | EmptyQueryResponse | PortalSuspended
	pendSync                     // ReadyForQuery
	pendQuery                    // a simple Query's results, then ReadyForQuery
	pendFunc                     // FunctionCallResponse, then ReadyForQuery
	pendRefusal                  // the upstream's error for a refused operation, replaced by the gateway's
	pendRefresh                  // the gateway's own read of search_path and role; nothing reaches the client
)

// pending is one expected response.
type pending struct {
	kind pendKind
	op   *operation // pendQuery, pendExecute, pendFunc
	// refusal replaces the upstream's error (pendRefusal); simple says the
	// refusal stands for a Query, answered by ReadyForQuery.
	refusal *pgproto3.ErrorResponse
	simple  bool
	refresh *refresh // pendRefresh
	// st: the statement of a Parse or a statement Describe; portal: of a
	// portal Describe. The relay records failures and descriptions there.
	st     *stmt
	portal *portal
}

// queue is FIFO between the client loop (push) and the relay (peek, pop).
// Its backing array is reused once drained, so a steady session does not
// allocate per message.
type queue struct {
	mu    sync.Mutex
	items []pending
	head  int // items[head:] are queued
	// inCopy is set while the upstream reads COPY data (a simple Query's
	// COPY ... FROM STDIN): PostgreSQL ignores Sync then, so none may be
	// queued. Under mu, with items, so that the client loop and the relay
	// agree on which Syncs came first.
	inCopy bool
}

// enterCopy notes that the upstream now reads COPY data for the head. It
// fails when the client has sent anything since that expects a response:
// PostgreSQL ignores a Sync in COPY mode and ends the session on anything
// else, so the queue would no longer match the upstream's responses.
func (q *queue) enterCopy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items)-q.head > 1 {
		return false
	}
	q.inCopy = true
	return true
}

// leaveCopy ends COPY mode: the client sent CopyDone or CopyFail, or the
// upstream ended the COPY.
func (q *queue) leaveCopy() {
	q.mu.Lock()
	q.inCopy = false
	q.mu.Unlock()
}

// pushSync queues a Sync's ReadyForQuery; false in COPY mode, where the
// upstream would ignore the Sync.
func (q *queue) pushSync() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inCopy {
		return false
	}
	q.items = append(q.items, pending{kind: pendSync})
	return true
}

func (q *queue) push(p pending) {
	q.mu.Lock()
	q.items = append(q.items, p)
	q.mu.Unlock()
}

func (q *queue) peek() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	return q.items[q.head], true
}

func (q *queue) pop() (pending, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return pending{}, false
	}
	p := q.items[q.head]
	q.items[q.head] = pending{}
	q.head++
	if q.head == len(q.items) {
		q.head = 0
		q.items = q.items[:0]
		if cap(q.items) > 1024 {
			q.items = nil // a long pipeline's array is not kept
		}
	}
	return p, true
}

// busy reports whether responses are outstanding: the idle timeout does
// not run then.
func (q *queue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head < len(q.items)
}
