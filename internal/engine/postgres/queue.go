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
	// protocol); ghost marks a Sync the client sent behind it before any
	// COPY data, which the upstream ignores if the COPY starts.
	copyIn, ghost bool
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
	// copyExec is set from the client's Execute of a COPY FROM STDIN
	// (extended protocol) until its CopyDone or CopyFail, or until the
	// upstream refuses to start it; copyData once COPY data was sent.
	// PostgreSQL ignores a Sync read in COPY mode, so a Sync before the
	// data is a ghost (answered only if the COPY does not start) and one
	// after data is refused: whether the upstream would answer it depends
	// on where in the data it fails.
	copyExec, copyData bool
	// copySyncs counts the client's Syncs sent upstream while the upstream
	// was in the started extended COPY, before data (syncIgnored).
	copySyncs int
}

// syncFate is what becomes of a client's Sync.
type syncFate uint8

const (
	syncQueued  syncFate = iota // answered by ReadyForQuery
	syncIgnored                 // the upstream is reading COPY data and ignores it
	syncRefused                 // ambiguous: the session must end
)

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

// startCopyExec notes the client's Execute of a COPY FROM STDIN.
func (q *queue) startCopyExec() {
	q.mu.Lock()
	q.copyExec, q.copyData = true, false
	q.mu.Unlock()
}

// copyDataSent notes COPY data from the client; false when the client is
// not in an extended-protocol COPY (a simple Query's COPY needs no note).
func (q *queue) copyDataSent() {
	q.mu.Lock()
	if q.copyExec {
		q.copyData = true
	}
	q.mu.Unlock()
}

// inCopyExec reports whether the client is in an extended-protocol COPY:
// it may send only COPY messages, Flush and (before data) Sync.
func (q *queue) inCopyExec() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.copyExec
}

// enterCopyExec notes that the upstream started the head's extended COPY:
// the ghost Syncs queued behind it will not be answered, unless the COPY
// fails before reading them; it returns how many it dropped. Anything
// else queued was sent after the client's CopyDone or CopyFail (the
// client loop allows nothing else during the COPY), so it stays; it fails
// when a ghost follows it, which the client loop cannot produce.
func (q *queue) enterCopyExec() (dropped int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	rest := q.items[q.head+1:]
	n := 0
	for n < len(rest) && rest[n].ghost {
		n++
	}
	later := false // the client's copyExec is another Execute's
	for _, p := range rest[n:] {
		if p.ghost {
			return n, false
		}
		later = later || (p.kind == pendExecute && p.copyIn)
	}
	kept := copy(rest, rest[n:])
	clear(rest[kept:])
	q.items = q.items[:q.head+1+kept]
	// False when the client already ended its data; false too when it has
	// sent a later COPY's Execute, whose Syncs the upstream answers if that
	// one does not start, so they must be queued as ghosts.
	q.inCopy = q.copyExec && !later
	q.copySyncs = 0
	return n, true
}

// syncsReadable reports whether the upstream may have answered Syncs the
// queue dropped or never held for the head's started extended COPY: it
// reads them in COPY mode, but a COPY that fails before its first read
// (COPY into a view, FREEZE, a statement trigger) leaves it skipping to the
// first of them, and then it answers every one.
func (q *queue) syncsReadable(dropped int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return dropped > 0 || q.copySyncs > 0
}

// copyNotStarted notes that the upstream refused the head's extended COPY
// before reading data: its ghost Syncs are real Syncs after all. Those of
// a later COPY's Execute stay ghosts, and the client's COPY state is that
// Execute's.
func (q *queue) copyNotStarted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head + 1; i < len(q.items); i++ {
		if p := q.items[i]; p.kind == pendExecute && p.copyIn {
			return
		}
		q.items[i].ghost = false
	}
	q.copyExec, q.copyData = false, false
}

// leaveCopy ends COPY mode: the client sent CopyDone or CopyFail, or the
// upstream ended the COPY.
func (q *queue) leaveCopy() {
	q.mu.Lock()
	q.inCopy, q.copyExec, q.copyData = false, false, false
	q.mu.Unlock()
}

// pushSync queues a Sync's ReadyForQuery, unless the upstream will ignore
// the Sync or the session cannot know whether it will.
func (q *queue) pushSync() syncFate {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.copyExec && q.copyData:
		return syncRefused
	case q.copyExec && q.inCopy:
		q.copySyncs++
		return syncIgnored
	case q.copyExec:
		q.items = append(q.items, pending{kind: pendSync, ghost: true})
		return syncQueued
	case q.inCopy:
		return syncRefused
	}
	q.items = append(q.items, pending{kind: pendSync})
	return syncQueued
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
