package review

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// record appends a review event and waits until it is durable; an event
// that cannot be recorded fails the action that caused it.
func (s *Service) record(ctx context.Context, typ string, r Review, actor identity.Identity, data map[string]any) error {
	data["review"] = r.ID
	data["type"] = string(r.Type)
	c := s.rec.Append(ctx, recording.Event{
		Type: typ, SessionID: r.SessionID, Resource: r.Resource, Actor: actor.Key(), Data: data,
	})
	if err := c.Wait(ctx); err != nil {
		s.log.Error("review event not recorded", "event", typ, "review", r.ID, "err", err)
		return typed(ErrUnavailable, fmt.Errorf("the recording failed, so review %s was not changed further; retry, and tell an operator if it persists: %w", r.ID, err))
	}
	return nil
}

// Record appends an event about the review (review.used, breakglass, ...)
// on behalf of the guard and waits until it is durable.
func (s *Service) Record(ctx context.Context, typ string, r Review, actor identity.Identity, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	if err := s.record(ctx, typ, r, actor, data); err != nil {
		return err
	}
	if typ == recording.TypeBreakglass {
		reason, _ := data["reason"].(string)
		if reason == "" {
			reason = r.Reason
		}
		s.emit(ctx, Event{Kind: EventBreakglass, Review: r, Actor: actor, Comment: reason, At: r.CreatedAt})
	}
	return nil
}

func createdData(r Review) map[string]any {
	d := map[string]any{
		"initiator": r.Initiator.Display(), "kind": r.Kind.String(),
		"required": r.Required, "approvers": r.Approvers,
		"expires_at": r.ExpiresAt, "reason": r.Reason,
	}
	if r.Type == TypeGrant {
		d["access"], d["duration"] = r.Access, r.Duration.String()
	} else {
		d["digest"], d["text"], d["objects"] = hex.EncodeToString(r.Digest), r.Text, r.Objects
	}
	return d
}

func voteData(v Vote, r Review) map[string]any {
	return map[string]any{
		"voter": v.Voter.Display(), "via": v.Via, "comment": v.Comment,
		"approvals": r.Approvals(), "required": r.Required, "status": string(r.Status),
	}
}
