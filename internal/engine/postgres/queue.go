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
	// copyIn marks the Execute of a COPY ... FROM STDIN (extended
	// protocol): the upstream may answer it with CopyInResponse.
	copyIn bool
	// st: the statement of a Parse, a statement Describe or a statement
	// Close; portal: of a portal Describe. The relay records failures,
	// descriptions and confirmed Closes there.
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
	// inCopy is set while the upstream reads the COPY data of the head, a
	// simple Query's COPY ... FROM STDIN: PostgreSQL ignores Sync then, so
	// none may be queued. Under mu, with items, so that the client loop and
	// the relay agree on which Syncs came first.
	inCopy bool
	// copyOp is the Execute of the client's extended-protocol COPY FROM
	// STDIN, from that Execute until the client's CopyDone or CopyFail, or
	// until the Execute leaves the queue (the COPY failed, or never
	// started). copyStarted: the upstream answered it with CopyInResponse;
	// copyData: the client sent data for it.
	copyOp                *operation
	copyStarted, copyData bool
	// fate is where the client loop, holding back a Sync, waits for the
	// upstream's answer to copyOp: true once the COPY started, false when
	// it will not start. Buffered, sent at most once.
	fate chan bool
	// syncs counts the Syncs queued for the upstream, the client's and the
	// gateway's own (a refresh's): after an error PostgreSQL skips only up
	// to the next one, so what the client sends after it runs even when
	// something before it failed (stmt.batch).
	syncs uint64
}

// syncFate is what becomes of a client's Sync.
type syncFate uint8

const (
	syncQueued  syncFate = iota // sent upstream, answered by ReadyForQuery
	syncDropped                 // never sent: the upstream reads COPY data and would ignore it
	syncHeld                    // not sent yet: its fate depends on whether the COPY starts
	syncRefused                 // ambiguous: the session must end
)

// enterCopy notes that the upstream now reads COPY data for the head, a
// simple Query. It fails when the client has sent anything since that
// expects a response: PostgreSQL ignores a Sync in COPY mode and ends the
// COPY on anything else, so the queue would no longer match the upstream's
// responses.
func (q *queue) enterCopy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items)-q.head > 1 {
		return false
	}
	q.inCopy = true
	return true
}

// startCopyExec notes the client's Execute of a COPY FROM STDIN.
func (q *queue) startCopyExec(op *operation) {
	q.mu.Lock()
	q.copyOp, q.copyStarted, q.copyData, q.fate = op, false, false, nil
	q.mu.Unlock()
}

// copyDataSent notes COPY data from the client; nothing when the client is
// not in an extended-protocol COPY (a simple Query's COPY needs no note).
func (q *queue) copyDataSent() {
	q.mu.Lock()
	if q.copyOp != nil {
		q.copyData = true
	}
	q.mu.Unlock()
}

// inCopyExec reports whether the client is in an extended-protocol COPY:
// it may send only COPY messages, Flush and (before data) Sync.
func (q *queue) inCopyExec() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.copyOp != nil
}

// enterCopyExec notes that the upstream started op's COPY: the client's
// Syncs from now until its CopyDone or CopyFail are dropped, and one the
// client loop holds back is released. It fails when the client is still in
// that COPY and something is queued behind it, which the client loop
// cannot produce (it queues nothing while copyOp is set).
func (q *queue) enterCopyExec(op *operation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.copyOp != op {
		return true // the client already ended its data
	}
	if len(q.items)-q.head > 1 {
		return false
	}
	q.copyStarted = true
	q.settle(true)
	return true
}

// settle tells the client loop, if it holds a Sync back, whether copyOp's
// COPY started. Under mu.
func (q *queue) settle(started bool) {
	if q.fate != nil {
		q.fate <- started
		q.fate = nil
	}
}

// leaveCopy ends COPY mode: the client sent CopyDone or CopyFail.
func (q *queue) leaveCopy() {
	q.mu.Lock()
	q.inCopy = false
	q.copyOp, q.copyStarted, q.copyData, q.fate = nil, false, false, nil
	q.mu.Unlock()
}

// pushSync queues a Sync's ReadyForQuery, unless the upstream must not see
// the Sync. During the client's extended COPY a Sync before any data is
// held back until the upstream answers the Execute (the returned channel
// says how), then dropped if the COPY started (the upstream would have
// ignored it) and sent if it did not (the upstream answers it): so the
// upstream never reads a Sync whose answer depends on where the COPY
// fails. A Sync after data is refused: the client loop cannot hold the
// data back.
func (q *queue) pushSync() (syncFate, <-chan bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.copyOp != nil && q.copyData:
		return syncRefused, nil
	case q.copyOp != nil && q.copyStarted:
		return syncDropped, nil
	case q.copyOp != nil:
		if q.fate == nil {
			q.fate = make(chan bool, 1)
		}
		return syncHeld, q.fate
	case q.inCopy:
		return syncRefused, nil
	}
	q.items = append(q.items, pending{kind: pendSync})
	q.syncs++
	return syncQueued, nil
}

func (q *queue) push(p pending) {
	q.mu.Lock()
	q.items = append(q.items, p)
	if p.kind == pendRefresh {
		q.syncs++ // a refresh ends with a Sync of its own
	}
	q.mu.Unlock()
}

// syncsQueued is the number of Syncs queued so far (syncs).
func (q *queue) syncsQueued() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.syncs
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
	// A COPY ends with the answer to what started it. The client's
	// extended COPY whose Execute leaves the queue failed or never started:
	// the client's Syncs reach the upstream again.
	q.inCopy = false
	if p.kind == pendExecute && p.op != nil && p.op == q.copyOp { // (its Bind may carry it too)
		q.copyOp, q.copyStarted, q.copyData = nil, false, false
		q.settle(false)
	}
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
