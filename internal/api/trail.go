package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// trailPage is how many events one store read returns while the trail is
// walked: the walk holds one page, not the whole trail, in memory.
const trailPage = 2000

// walkTrail calls fn with every stored event, chain by chain (oldest chain
// first), in seq order. It reads the store as it is; only `audit verify`
// says whether that is what was recorded.
func walkTrail(ctx context.Context, st recording.Store, fn func(recording.Stored)) error {
	writers, err := st.Writers(ctx)
	if err != nil {
		return fmt.Errorf("list the trail's writers: %w", err)
	}
	for _, w := range writers {
		for from := int64(1); ; {
			evs, err := st.Events(ctx, w, from, trailPage)
			if err != nil {
				return fmt.Errorf("read the events of %s: %w", w, err)
			}
			for _, e := range evs {
				fn(e)
			}
			if len(evs) < trailPage {
				break
			}
			from = evs[len(evs)-1].Seq + 1
		}
	}
	return nil
}

// opData is the data of an operation event, as the engines write it
// (internal/engine/postgres/ops.go, internal/engine/mysql/record.go).
type opData struct {
	Text          string   `json:"text"`
	Kind          string   `json:"kind"`
	Objects       []string `json:"objects"`
	Reason        string   `json:"reason"`
	Decision      string   `json:"decision"`
	Code          string   `json:"code"`
	ReviewID      string   `json:"review_id"`
	GrantID       string   `json:"grant_id"`
	Digest        string   `json:"digest"`
	SearchPath    string   `json:"search_path"`
	Role          string   `json:"role"`
	Schema        string   `json:"schema"`
	InTransaction bool     `json:"in_transaction"`
	Variables     string   `json:"variables"`
	Command       string   `json:"command"`
}

// outcomeData is the data of an operation.outcome event.
type outcomeData struct {
	CommandTag string `json:"command_tag"`
	Rows       int64  `json:"rows"`
	ErrorCode  string `json:"error_code"`
	Committed  bool   `json:"committed"`
	RolledBack bool   `json:"rolled_back"`
	Digest     string `json:"digest"`
	DurationMS int64  `json:"duration_ms"`
	// Results: the first rows of each result, masked, when the resource
	// keeps them (record.results).
	Results []ResultRows `json:"results"`
}

// ResultRows is one result of an operation as the recording kept it
// (record.results): its columns and first rows, masked.
type ResultRows = recording.Result

// openData is the data of a session.open event.
type openData struct {
	ClientAddr    string `json:"client_addr"`
	ClientProgram string `json:"client_program"`
	User          string `json:"user"`
	Dialect       string `json:"dialect"`
	TLS           bool   `json:"tls"`
}

// Operation is one operation of a session as the trail holds it: the
// decided operation event joined with its outcome event.
type Operation struct {
	Writer    string       `json:"writer"`
	Seq       int64        `json:"seq"`
	Time      time.Time    `json:"time"`
	SessionID string       `json:"session_id"`
	Resource  string       `json:"resource"`
	Actor     string       `json:"actor"` // identity key
	Text      string       `json:"text"`
	Kind      string       `json:"kind"`
	Objects   []string     `json:"objects"`
	Reason    string       `json:"reason,omitempty"`
	Decision  string       `json:"decision"` // allow | hold | deny
	Code      string       `json:"code,omitempty"`
	ReviewID  string       `json:"review_id,omitempty"`
	GrantID   string       `json:"grant_id,omitempty"`
	Digest    string       `json:"digest,omitempty"`
	State     SessionState `json:"session_state"`
	Outcome   *Outcome     `json:"outcome,omitempty"`
}

// Outcome is how an operation ended upstream.
type Outcome struct {
	Time       time.Time `json:"time"`
	CommandTag string    `json:"command_tag,omitempty"`
	Rows       int64     `json:"rows"`
	ErrorCode  string    `json:"error_code,omitempty"`
	Committed  bool      `json:"committed"`
	RolledBack bool      `json:"rolled_back"`
	DurationMS int64     `json:"duration_ms"`
	// Results are the rows the recording kept (record.results), masked.
	Results []ResultRows `json:"results,omitempty"`
}

// sessionAgg gathers one session's events while the trail is walked.
type sessionAgg struct {
	info Session
	ops  []*Operation
	// waiting holds allowed operations without their outcome yet, by
	// digest, oldest first: an outcome belongs to the oldest of them.
	waiting map[string][]*Operation
}

// sessions collects the sessions of the trail that keep selects (by their
// open event), with their operations.
type sessions struct {
	keep  func(*Session) bool
	byID  map[string]*sessionAgg
	order []*sessionAgg
}

func newSessions(keep func(*Session) bool) *sessions {
	return &sessions{keep: keep, byID: map[string]*sessionAgg{}}
}

func (ss *sessions) add(e recording.Stored) {
	if e.Session == "" {
		return
	}
	if e.Type == recording.TypeSessionOpen {
		ss.open(e)
		return
	}
	a := ss.byID[e.Session]
	if a == nil {
		return
	}
	switch e.Type {
	case recording.TypeSessionClose:
		a.close(e)
	case recording.TypeOperation:
		a.operation(e)
	case recording.TypeOperationOutcome:
		a.outcome(e)
	}
}

func (ss *sessions) open(e recording.Stored) {
	var d openData
	_ = json.Unmarshal(e.Data, &d) // a field that does not decode stays empty
	s := Session{ID: e.Session, Writer: e.Writer, Resource: e.Resource, Actor: e.Actor, OpenedAt: e.Time,
		ClientAddr: d.ClientAddr, ClientProgram: d.ClientProgram, User: d.User, Dialect: d.Dialect, TLS: d.TLS}
	if !ss.keep(&s) {
		return
	}
	a := &sessionAgg{info: s, waiting: map[string][]*Operation{}}
	ss.byID[e.Session] = a
	ss.order = append(ss.order, a)
}

func (a *sessionAgg) close(e recording.Stored) {
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(e.Data, &d)
	t := e.Time
	a.info.ClosedAt, a.info.CloseReason = &t, d.Reason
}

func (a *sessionAgg) operation(e recording.Stored) {
	var d opData
	_ = json.Unmarshal(e.Data, &d)
	if d.Decision == "" {
		return // a session-level command (MySQL's COM_RESET_CONNECTION), not a decided operation
	}
	op := &Operation{Writer: e.Writer, Seq: e.Seq, Time: e.Time, SessionID: e.Session, Resource: e.Resource,
		Actor: e.Actor, Text: d.Text, Kind: d.Kind, Objects: nonNil(d.Objects), Reason: d.Reason,
		Decision: d.Decision, Code: d.Code, ReviewID: d.ReviewID, GrantID: d.GrantID, Digest: d.Digest,
		State: SessionState{SearchPath: d.SearchPath, Role: d.Role, Schema: d.Schema, InTransaction: d.InTransaction,
			Variables: d.Variables}}
	a.ops = append(a.ops, op)
	a.info.Operations++
	if d.Decision != "allow" {
		a.info.Refused++
		return
	}
	a.waiting[d.Digest] = append(a.waiting[d.Digest], op)
}

func (a *sessionAgg) outcome(e recording.Stored) {
	var d outcomeData
	_ = json.Unmarshal(e.Data, &d)
	q := a.waiting[d.Digest]
	if len(q) == 0 {
		return
	}
	q[0].Outcome = &Outcome{Time: e.Time, CommandTag: d.CommandTag, Rows: d.Rows, ErrorCode: d.ErrorCode,
		Committed: d.Committed, RolledBack: d.RolledBack, DurationMS: d.DurationMS, Results: d.Results}
	if d.ErrorCode != "" {
		a.info.Errors++
	}
	a.waiting[d.Digest] = q[1:]
}
