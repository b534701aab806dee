package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// Session is one client connection as the trail holds it.
type Session struct {
	ID            string     `json:"id"`
	Writer        string     `json:"writer"`
	Resource      string     `json:"resource"`
	Actor         string     `json:"actor"` // identity key, issuer|subject
	User          string     `json:"user,omitempty"`
	ClientAddr    string     `json:"client_addr,omitempty"`
	ClientProgram string     `json:"client_program,omitempty"`
	Dialect       string     `json:"dialect,omitempty"`
	TLS           bool       `json:"tls"`
	OpenedAt      time.Time  `json:"opened_at"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
	CloseReason   string     `json:"close_reason,omitempty"`
	Operations    int        `json:"operations"`
	Refused       int        `json:"refused"` // held or denied
	Errors        int        `json:"errors"`  // ran and failed upstream
}

// SessionList is the answer of GET /v1/sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
}

// SessionDetail is the answer of GET /v1/sessions/{id}: the session and
// its operations in order.
type SessionDetail struct {
	Session
	Timeline []Operation `json:"timeline"`
}

// listSessions lists sessions newest first: an auditor's or admin's view
// holds everyone's, anyone else's their own. ?resource, ?user (identity
// key or subject), ?since, ?limit.
func (s *server) listSessions(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	q := r.URL.Query()
	limit, err := listLimit(q)
	if err != nil {
		return err
	}
	since, err := s.queryTime(r, "since")
	if err != nil {
		return err
	}
	res, user := q.Get("resource"), q.Get("user")
	ss := newSessions(func(x *Session) bool {
		return s.maySeeSession(caller.Identity, x) && (res == "" || x.Resource == res) &&
			(user == "" || actorIs(x.Actor, user)) && !x.OpenedAt.Before(since)
	})
	if err := walkTrail(r.Context(), s.Store, ss.add); err != nil {
		return err
	}
	out := SessionList{Sessions: make([]Session, 0, len(ss.order))}
	for _, a := range ss.order {
		out.Sessions = append(out.Sessions, a.info)
	}
	slices.SortStableFunc(out.Sessions, func(a, b Session) int { return b.OpenedAt.Compare(a.OpenedAt) })
	out.Sessions = out.Sessions[:min(limit, len(out.Sessions))]
	writeJSON(w, http.StatusOK, out)
	return nil
}

// showSession shows one session as a timeline.
func (s *server) showSession(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	id := r.PathValue("id")
	ss := newSessions(func(x *Session) bool { return x.ID == id && s.maySeeSession(caller.Identity, x) })
	if err := walkTrail(r.Context(), s.Store, ss.add); err != nil {
		return err
	}
	a := ss.byID[id]
	if a == nil {
		return errorf(http.StatusNotFound, CodeNotFound,
			"no session %q that you may read; 'countersign sessions list' shows the ids", id)
	}
	out := SessionDetail{Session: a.info, Timeline: make([]Operation, 0, len(a.ops))}
	for _, op := range a.ops {
		out.Timeline = append(out.Timeline, *op)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maySeeSession: auditors and admins see every session, anyone else
// their own.
func (s *server) maySeeSession(id identity.Identity, x *Session) bool {
	return readsAll(id) || x.Actor == id.Key()
}

// actorIs matches an identity key against a user filter: the whole key,
// or its subject.
func actorIs(key, user string) bool {
	if key == user {
		return true
	}
	_, subject, ok := strings.Cut(key, "|")
	return ok && subject == user
}
