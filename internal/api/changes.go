package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

// Change is one operation that ran and could change something (every
// kind but read), with who asked, who approved and under what.
type Change struct {
	Operation
	// Under says what let it run: "review", "grant", "breakglass" or
	// "policy" (the policy does not review its kind).
	Under string `json:"under"`
	// Approvers approved the review or grant it ran under, with when.
	Approvers  []Approval `json:"approvers"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	// Retro is the status of a break-glass operation's retrospective
	// review.
	Retro string `json:"retro,omitempty"`
}

// Approval is one approving vote.
type Approval struct {
	Who string    `json:"who"`
	At  time.Time `json:"at"`
}

// ChangeList is the answer of GET /v1/audit/changes and
// GET /v1/audit/unreviewed.
type ChangeList struct {
	Changes []Change `json:"changes"`
	// Limits says what the list cannot show (see docs/api.md).
	Limits string `json:"limits"`
}

const changeLimits = "built from the recording as stored (run 'countersign audit verify' to prove it whole); " +
	"operations the gateway allowed, of every kind but read, joined with their outcome and with the review or grant they ran under; " +
	"an operation still running, or whose outcome event was lost in a crash, has no outcome; object names are as the statement wrote them"

// auditChanges lists every operation that ran and could change something.
// ?resource, ?object (as written, or unqualified), ?since, ?until, ?limit.
func (s *server) auditChanges(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	return s.changes(w, r, caller, "listing changes", func(Change) bool { return true })
}

// auditUnreviewed lists what ran without a per-operation review: under a
// grant, by break-glass, or of a kind the policy does not review.
func (s *server) auditUnreviewed(w http.ResponseWriter, r *http.Request, caller identity.Token) error {
	return s.changes(w, r, caller, "listing unreviewed operations", func(c Change) bool { return c.Under != "review" })
}

func (s *server) changes(w http.ResponseWriter, r *http.Request, caller identity.Token, what string, keep func(Change) bool) error {
	if err := needAuditor(caller.Identity, what); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := listLimit(q)
	if err != nil {
		return err
	}
	since, err := s.queryTime(r, "since")
	if err != nil {
		return err
	}
	until, err := s.queryTime(r, "until")
	if err != nil {
		return err
	}
	res, object := q.Get("resource"), q.Get("object")
	ss := newSessions(func(x *Session) bool { return res == "" || x.Resource == res })
	if err := walkTrail(r.Context(), s.Store, ss.add); err != nil {
		return err
	}
	var ops []*Operation
	for _, a := range ss.order {
		for _, op := range a.ops {
			if ranAndChanges(op) && !op.Time.Before(since) && (until.IsZero() || op.Time.Before(until)) && touches(op.Objects, object) {
				ops = append(ops, op)
			}
		}
	}
	slices.SortStableFunc(ops, func(a, b *Operation) int { return b.Time.Compare(a.Time) })
	out := ChangeList{Changes: []Change{}, Limits: changeLimits}
	j := s.newJoiner(r)
	for _, op := range ops {
		c, err := j.change(op)
		if err != nil {
			return err
		}
		if !keep(c) {
			continue
		}
		if out.Changes = append(out.Changes, c); len(out.Changes) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func ranAndChanges(op *Operation) bool {
	return op.Decision == "allow" && op.Kind != "read"
}

// touches matches an object filter against the objects a statement names:
// exactly (case-insensitive), or by its unqualified name when either side
// has no schema.
func touches(objects []string, want string) bool {
	if want == "" {
		return true
	}
	for _, o := range objects {
		if strings.EqualFold(o, want) || strings.EqualFold(lastPart(o), lastPart(want)) && (!strings.Contains(o, ".") || !strings.Contains(want, ".")) {
			return true
		}
	}
	return false
}

func lastPart(name string) string {
	if i := strings.LastIndex(name, "."); i >= 0 {
		return name[i+1:]
	}
	return name
}

// joiner looks up the reviews and grants operations ran under, once each.
type joiner struct {
	s    *server
	r    *http.Request
	seen map[string]review.Review
}

func (s *server) newJoiner(r *http.Request) *joiner {
	return &joiner{s: s, r: r, seen: map[string]review.Review{}}
}

func (j *joiner) change(op *Operation) (Change, error) {
	c := Change{Operation: *op, Under: "policy", Approvers: []Approval{}}
	id := op.ReviewID
	switch {
	case op.Code == "breakglass":
		c.Under = "breakglass"
	case op.GrantID != "":
		c.Under, id = "grant", op.GrantID
	case op.ReviewID != "":
		c.Under = "review"
	}
	if id == "" || j.s.Reviews == nil {
		return c, nil
	}
	rv, err := j.review(id)
	if err != nil {
		return c, err
	}
	for _, v := range rv.Votes {
		if v.Approve {
			c.Approvers = append(c.Approvers, Approval{Who: v.Voter.Display(), At: v.At})
		}
	}
	if c.Under == "breakglass" {
		c.Retro = string(rv.Status)
	} else {
		c.ApprovedAt = timePtr(rv.DecidedAt)
	}
	return c, nil
}

func (j *joiner) review(id string) (review.Review, error) {
	if rv, ok := j.seen[id]; ok {
		return rv, nil
	}
	rv, err := j.s.Reviews.Get(j.r.Context(), id)
	if errors.Is(err, review.ErrNotFound) {
		rv, err = review.Review{ID: id}, nil // the trail names a review the store no longer has
	}
	if err != nil {
		return rv, fmt.Errorf("look up review %s: %w", id, err)
	}
	j.seen[id] = rv
	return rv, nil
}
