package guard

import (
	"fmt"

	"github.com/countersign/countersign/internal/review"
)

// grantWatch is one active grant that allowed operations of live sessions:
// when it ends, whatever those sessions still run is interrupted
// (invariant 7). The next operation needs no watch: every Decide asks the
// review service for an active grant again.
type grantWatch struct {
	stop     func()
	sessions map[string]*Session
}

// watchGrant remembers that the grant allowed an operation of the session,
// and starts watching the grant if nobody does yet.
func (g *Gate) watchGrant(s *Session, gr review.Review) {
	id := gr.ID
	g.gmu.Lock()
	defer g.gmu.Unlock()
	if g.grants == nil {
		return // closed
	}
	w := g.grants[id]
	if w == nil {
		w = &grantWatch{sessions: map[string]*Session{}}
		g.grants[id] = w
		// ended takes gmu, so it cannot run before w.stop is set.
		w.stop = g.reviews.WatchGrant(gr, func(r review.Review) { g.grantEnded(id, r) })
	}
	w.sessions[s.ID] = s
}

// grantEnded interrupts every session the grant allowed operations of: a
// statement still running past the grant's end is cancelled upstream.
func (g *Gate) grantEnded(id string, r review.Review) {
	g.gmu.Lock()
	w := g.grants[id]
	delete(g.grants, id)
	g.gmu.Unlock()
	if w == nil {
		return
	}
	w.stop()
	why := endedWhy(r)
	ids := make([]string, 0, len(w.sessions))
	for sid := range w.sessions {
		ids = append(ids, sid)
	}
	// Before the interrupt: the refusal of what follows in the
	// transactions must already stand when a client hears of the end.
	g.txGrantEnded(id, why, ids)
	msg := fmt.Sprintf("grant %s %s: a statement still running under it is cancelled, and the next operation needs a review or a new grant ('countersign grants request')", id, why)
	for _, s := range w.sessions {
		g.log.Info("grant ended; interrupting its session", "grant", id, "session", s.ID, "why", why)
		s.grantEnds.Add(1)
		if s.Interrupt != nil {
			s.Interrupt(msg)
		}
	}
}

// forgetGrants drops a closed session from the grants it used; a grant
// nobody uses any more is no longer watched.
func (g *Gate) forgetGrants(session string) {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	for id, w := range g.grants {
		delete(w.sessions, session)
		if len(w.sessions) == 0 {
			w.stop()
			delete(g.grants, id)
		}
	}
}

// stopWatches ends every grant watch (the gateway is closing).
func (g *Gate) stopWatches() {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	for _, w := range g.grants {
		w.stop()
	}
	g.grants = nil
}
