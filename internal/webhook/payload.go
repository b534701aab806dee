package webhook

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// maxText bounds how much of a statement a notification carries; the full
// text is in `countersign reviews show`.
const maxText = 1000

// Payload is the JSON document of the "json" format.
type Payload struct {
	Delivery string        `json:"delivery"`
	Event    string        `json:"event"`
	At       time.Time     `json:"at"`
	Actor    string        `json:"actor,omitempty"` // empty: the gateway itself
	Comment  string        `json:"comment,omitempty"`
	Review   ReviewPayload `json:"review"`
	// Summary is the sentence the Slack format sends.
	Summary string `json:"summary"`
	// Command is what an approver runs next, when there is something to
	// decide ("countersign reviews approve r-7f3a").
	Command string `json:"command,omitempty"`
}

// ReviewPayload is the part of a review a notification carries.
type ReviewPayload struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Resource   string    `json:"resource"`
	Status     string    `json:"status"`
	Initiator  string    `json:"initiator"`
	Kind       string    `json:"kind,omitempty"`
	Text       string    `json:"text,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	Objects    []string  `json:"objects,omitempty"`
	Access     []string  `json:"access,omitempty"`
	Duration   string    `json:"duration,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Approvals  int       `json:"approvals"`
	Required   int       `json:"required"`
	Approvers  []string  `json:"approvers,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
}

// payloadOf builds the notification. prepare is applied to each free text
// (the statement, the reason, the comment) whole, before any of it is
// clipped: a value cut at the clip would no longer match its detector.
// The statement's password literals are masked first, whatever prepare
// does (no detector knows a password).
func payloadOf(delivery string, e review.Event, prepare func(string) string) Payload {
	e.Review.Text = prepare(sqlkind.MaskPasswords(sqlkind.Dialect(e.Review.Dialect), e.Review.Text))
	e.Review.Reason, e.Comment = prepare(e.Review.Reason), prepare(e.Comment)
	r := e.Review
	p := Payload{Delivery: delivery, Event: string(e.Kind), At: e.At.UTC(), Comment: e.Comment,
		Review: ReviewPayload{ID: r.ID, Type: string(r.Type), Resource: r.Resource, Status: string(r.Status),
			Initiator: r.Initiator.Display(), Reason: r.Reason, Approvals: r.Approvals(), Required: r.Required,
			Approvers: r.Approvers, ExpiresAt: r.ExpiresAt.UTC(), ValidUntil: r.ValidUntil.UTC()}}
	if e.Actor.Issuer != "" || e.Actor.Subject != "" {
		p.Actor = e.Actor.Display()
	}
	if r.Type == review.TypeGrant {
		p.Review.Access, p.Review.Duration = r.Access, r.Duration.String()
	} else {
		p.Review.Kind, p.Review.Text, p.Review.Objects = r.Kind.String(), clip(r.Text, maxText), r.Objects
		p.Review.Digest = hex.EncodeToString(r.Digest)
	}
	if e.Kind == review.EventCreated || e.Kind == review.EventBreakglass {
		p.Command = "countersign reviews approve " + r.ID
	}
	p.Summary = summary(e, p)
	return p
}

// summary is one sentence saying what happened and what to do.
func summary(e review.Event, p Payload) string {
	r, what := e.Review, subject(e.Review)
	switch e.Kind {
	case review.EventCreated:
		return fmt.Sprintf("%s asks to %s on %s%s. It needs %d approval(s) from %s; approve with `%s` or reject with `countersign reviews reject %s`.",
			p.Review.Initiator, what, r.Resource, reason(r.Reason), r.Required, strings.Join(r.Approvers, ", "), p.Command, r.ID)
	case review.EventApproved:
		return fmt.Sprintf("Review %s on %s (%s by %s) was approved by %s%s.", r.ID, r.Resource, what, p.Review.Initiator, p.Actor, comment(e.Comment))
	case review.EventRejected:
		return fmt.Sprintf("Review %s on %s (%s by %s) was rejected by %s%s.", r.ID, r.Resource, what, p.Review.Initiator, p.Actor, comment(e.Comment))
	case review.EventExpired:
		if !r.DecidedAt.IsZero() {
			return fmt.Sprintf("Review %s on %s (%s by %s) was approved but not used in time; it expired.", r.ID, r.Resource, what, p.Review.Initiator)
		}
		return fmt.Sprintf("Review %s on %s (%s by %s) expired undecided (%d of %d approvals).", r.ID, r.Resource, what, p.Review.Initiator, r.Approvals(), r.Required)
	case review.EventGrantStarted:
		return fmt.Sprintf("Grant %s started: %s has %s on %s until %s.", r.ID, p.Review.Initiator, strings.Join(r.Access, ", "), r.Resource, r.ValidUntil.UTC().Format(time.RFC3339))
	case review.EventGrantEnded:
		if p.Actor != "" {
			return fmt.Sprintf("Grant %s (%s on %s for %s) was revoked by %s.", r.ID, strings.Join(r.Access, ", "), r.Resource, p.Review.Initiator, p.Actor)
		}
		return fmt.Sprintf("Grant %s (%s on %s for %s) ended.", r.ID, strings.Join(r.Access, ", "), r.Resource, p.Review.Initiator)
	case review.EventBreakglass:
		return fmt.Sprintf("BREAK-GLASS on %s: %s ran %s without review%s. Acknowledge the retrospective review with `%s`.",
			r.Resource, p.Review.Initiator, what, reason(e.Comment), p.Command)
	}
	return fmt.Sprintf("Review %s on %s: %s.", r.ID, r.Resource, e.Kind)
}

// subject says what the review covers in a few words.
func subject(r review.Review) string {
	if r.Type == review.TypeGrant {
		return fmt.Sprintf("hold %s for %s", strings.Join(r.Access, ", "), r.Duration)
	}
	return fmt.Sprintf("run a %s: `%s`", r.Kind, oneLine(clip(r.Text, 200)))
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return " (reason: " + oneLine(clip(s, 300)) + ")"
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	return ": " + oneLine(clip(s, 300))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "`", "'")
	return strings.Join(strings.Fields(s), " ")
}

// slackEscape escapes what Slack's mrkdwn reads as markup (&, <, >), so a
// statement cannot ping @channel or forge a link.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// encode builds the request body in the webhook's format.
func encode(format string, p Payload) ([]byte, error) {
	if format == "slack" {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{slackEscape.Replace(p.Summary)})
	}
	return json.Marshal(p)
}
