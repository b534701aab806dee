package api

import (
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/review"
)

// NoEstimate starts what a review shows in place of a row estimate the
// gateway did not make; the reason follows it ("no estimate: ...").
const NoEstimate = "no estimate"

// ReviewJSON is a review as the API shows it: everything an approver needs
// to decide, and everything an auditor needs to follow it.
type ReviewJSON struct {
	ID           string       `json:"id"`
	Type         string       `json:"type"` // operation | grant | breakglass
	Resource     string       `json:"resource"`
	Dialect      string       `json:"dialect,omitempty"`
	Status       string       `json:"status"` // judged at the store's time
	Initiator    string       `json:"initiator"`
	InitiatorKey string       `json:"initiator_key"`
	SessionID    string       `json:"session_id,omitempty"`
	Kind         string       `json:"kind,omitempty"`
	Text         string       `json:"text,omitempty"`
	Digest       string       `json:"digest,omitempty"` // hex
	State        SessionState `json:"session_state"`
	Params       []ParamJSON  `json:"params,omitempty"`
	Objects      []string     `json:"objects"`
	Reason       string       `json:"reason,omitempty"`
	// Estimate is the rows the operation would change as a sentence, or
	// NoEstimate and why; EstimatedRows is the number, when there is one.
	// Only GET /v1/reviews/{id} of a pending review estimates.
	Estimate      string `json:"estimate,omitempty"`
	EstimatedRows *int64 `json:"estimated_rows,omitempty"`
	// Access and Duration describe a grant.
	Access    []string   `json:"access,omitempty"`
	Duration  string     `json:"duration,omitempty"`
	Approvers []string   `json:"approvers"`
	Required  int        `json:"required"`
	Approvals int        `json:"approvals"`
	Votes     []VoteJSON `json:"votes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// ValidUntil ends an approved operation review's use, or a grant.
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	ConsumedAt *time.Time `json:"consumed_at,omitempty"`
	ConsumedBy string     `json:"consumed_by,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
}

// SessionState is the session state bound into an operation review's
// digest: what changes name resolution or privilege.
type SessionState struct {
	SearchPath    string `json:"search_path"`
	Role          string `json:"role"`
	Schema        string `json:"schema,omitempty"`
	InTransaction bool   `json:"in_transaction"`
	// Variables names the MySQL user variables the statement reads; their
	// values are bound into the digest, not shown.
	Variables string `json:"variables,omitempty"`
}

// ParamJSON is one bound parameter: a text-format value as text, anything
// else as hex.
type ParamJSON struct {
	Format int16  `json:"format"` // 0 text, 1 binary
	Type   uint32 `json:"type"`   // the dialect's type id (PostgreSQL OID)
	Null   bool   `json:"null,omitempty"`
	Text   string `json:"text,omitempty"`
	Hex    string `json:"hex,omitempty"`
}

// VoteJSON is one approval or rejection.
type VoteJSON struct {
	Voter    string    `json:"voter"`
	VoterKey string    `json:"voter_key"`
	Decision string    `json:"decision"` // approve | reject
	Via      string    `json:"via"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// ReviewList is the answer of GET /v1/reviews and GET /v1/grants.
type ReviewList struct {
	Reviews []ReviewJSON `json:"reviews"`
}

// VoteRequest is the body of POST /v1/reviews/{id}/approve and /reject.
type VoteRequest struct {
	Comment string `json:"comment,omitempty"`
}

func reviewJSON(r review.Review) ReviewJSON {
	j := ReviewJSON{
		ID: r.ID, Type: string(r.Type), Resource: r.Resource, Dialect: r.Dialect, Status: string(r.Status),
		Initiator: r.Initiator.Display(), InitiatorKey: r.Initiator.Key(), SessionID: r.SessionID,
		Text: r.Text, Reason: r.Reason, Objects: nonNil(r.Objects), Access: r.Access,
		Approvers: nonNil(r.Approvers), Required: r.Required, Approvals: r.Approvals(), Votes: []VoteJSON{},
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, DecidedAt: timePtr(r.DecidedAt),
		ValidUntil: timePtr(r.ValidUntil), ConsumedAt: timePtr(r.ConsumedAt), ConsumedBy: r.ConsumedBy,
		RevokedAt: timePtr(r.RevokedAt), RevokedBy: r.RevokedBy,
		State: SessionState{SearchPath: r.State.SearchPath, Role: r.State.Role, Schema: r.State.Schema,
			InTransaction: r.State.InTransaction, Variables: r.State.Variables},
	}
	if r.Type == review.TypeGrant {
		j.Duration = r.Duration.String()
	} else {
		j.Kind, j.Digest, j.Estimate = r.Kind.String(), hex.EncodeToString(r.Digest), NoEstimate
	}
	for _, p := range r.Params {
		j.Params = append(j.Params, paramJSON(p))
	}
	for _, v := range r.Votes {
		d := "approve"
		if !v.Approve {
			d = "reject"
		}
		j.Votes = append(j.Votes, VoteJSON{Voter: v.Voter.Display(), VoterKey: v.Voter.Key(), Decision: d,
			Via: v.Via, Comment: v.Comment, At: v.At})
	}
	return j
}

func paramJSON(p review.Param) ParamJSON {
	j := ParamJSON{Format: p.Format, Type: p.Type, Null: p.Null}
	switch {
	case p.Null:
	case p.Format == 0 && utf8.Valid(p.Value):
		j.Text = string(p.Value)
	default:
		j.Hex = hex.EncodeToString(p.Value)
	}
	return j
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
