package pgmask

import (
	"sync"

	"github.com/countersign/countersign/internal/guard"
)

// quoteTracker knows which sessions have an allowed operation running
// that reads a masked column, names a relation holding one, or holds
// something lineage cannot trace (Masker.annotate). Such an operation's
// errors and notices can quote a masked value as a name, in any SQLSTATE
// (ssn::regclass: relation "219-09-9999" does not exist; current_setting
// (ssn), nextval(ssn), ssn::regrole ...): while one runs, MaskMessage
// masks every quoted part of the session's messages. The
// engine reports each operation to the guard wrapper (Guard) before it
// runs and after its batch ends, and passes the same *guard.Session to
// MaskMessage.
type quoteTracker struct {
	mu       sync.Mutex
	running  map[*guard.Operation]*guard.Session
	sessions map[*guard.Session]int
	// full: more operations were started than maxTracked and never ended
	// (an engine that dropped them): every session's quotes are masked
	// from then on, rather than forgetting one that still runs.
	full bool
}

// maxTracked bounds the operations tracked at once.
const maxTracked = 1 << 16

func (q *quoteTracker) started(s *guard.Session, op *guard.Operation) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running == nil {
		q.running, q.sessions = map[*guard.Operation]*guard.Session{}, map[*guard.Session]int{}
	}
	if _, dup := q.running[op]; dup {
		return
	}
	if len(q.running) >= maxTracked {
		q.full = true
		return
	}
	q.running[op] = s
	q.sessions[s]++
}

func (q *quoteTracker) ended(op *guard.Operation) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s, ok := q.running[op]
	if !ok {
		return
	}
	delete(q.running, op)
	if q.sessions[s]--; q.sessions[s] <= 0 {
		delete(q.sessions, s)
	}
}

// masking reports whether the session's messages have their quoted parts
// masked now.
func (q *quoteTracker) masking(s *guard.Session) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.full || q.sessions[s] > 0
}
