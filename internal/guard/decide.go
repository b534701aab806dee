package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Decide implements Guard.
func (g *Gate) Decide(ctx context.Context, s *Session, op *Operation) Verdict {
	p, ok := g.policies[s.Resource]
	if !ok || !p.MayConnect(s.Identity) {
		return g.Connect(ctx, s)
	}
	op.seq = g.seq.Add(1)
	digest := Digest(g.key, string(s.Dialect), s.Resource, op.State, op.Text, op.Params)
	if v, refused := g.txRefusal(ctx, s, op); refused {
		v.Digest = digest
		return v
	}
	// Masking first: a statement refused for its filter uses must not
	// create a review an approver would then approve in vain.
	grant, v, refused := g.maskCheck(ctx, s, op)
	if !refused {
		v = g.withUnmask(s, op, g.decide(ctx, p, s, op, digest), grant)
	}
	v.Digest = digest
	return v
}

func (g *Gate) decide(ctx context.Context, p *policy.Policy, s *Session, op *Operation, digest []byte) Verdict {
	kind := op.Class.Kind
	if !p.NeedsReview(kind) {
		return Verdict{Decision: Allow}
	}
	if v, done := g.useApproval(ctx, s, digest); done {
		return v
	}
	if v, done := g.useGrant(ctx, s, op); done {
		return v
	}
	req := g.request(s, op, digest)
	if reason, ok := breakglassReason(s, op); ok && p.MayBreakglass(s.Identity) {
		return g.breakglass(ctx, s, req, reason)
	}
	if op.Class.CopyIn {
		// Break-glass aside: an approver would see the command, never the
		// rows that follow it, so no operation review can cover them.
		what := "COPY ... FROM STDIN"
		if s.Dialect == sqlkind.MySQL {
			what = "LOAD DATA LOCAL INFILE"
		}
		return deny("copy_needs_grant", fmt.Sprintf("%s needs a write grant, not a review of the statement: "+
			"its rows are sent after it is decided, so an approver could not see them; request one with "+
			"'countersign grants request %s --access write --for 1h --reason ...', or load the rows with INSERT statements", what, s.Resource))
	}
	r, err := g.reviews.Create(ctx, req)
	if err != nil {
		return g.failed("review_failed", err, s)
	}
	if p.Mode == policy.ModeReject {
		return Verdict{Decision: Deny, Code: "approval_required", ReviewID: r.ID,
			Message: fmt.Sprintf("approval required: review %s created; an approver can run 'countersign reviews approve %s'", r.ID, r.ID)}
	}
	return Verdict{Decision: Hold, Code: "approval_pending", ReviewID: r.ID, Notice: notice(r),
		Wait: func(ctx context.Context) Verdict { return g.wait(ctx, p, s, r) }}
}

// useApproval consumes an approved review of this exact digest and
// initiator, if there is one. A store error refuses.
func (g *Gate) useApproval(ctx context.Context, s *Session, digest []byte) (Verdict, bool) {
	id, ok, err := g.reviews.Consume(ctx, s.Resource, digest, s.Identity, s.ID)
	if err != nil {
		return g.failed("review_failed", err, s), true
	}
	if !ok {
		return Verdict{}, false
	}
	g.claim(s.ID, id)
	return Verdict{Decision: Allow, Code: "reviewed", ReviewID: id}, true
}

// useGrant allows the operation under an active grant covering its kind.
func (g *Gate) useGrant(ctx context.Context, s *Session, op *Operation) (Verdict, bool) {
	k := op.Class.Kind
	gr, ok, err := g.reviews.ActiveGrant(ctx, s.Resource, s.Identity, func(a []string) bool { return policy.GrantCovers(a, k) })
	if err != nil {
		return g.failed("review_failed", err, s), true
	}
	if !ok {
		return Verdict{}, false
	}
	if k != sqlkind.Read {
		g.grantWrite(s, op, gr.ID)
	}
	g.watchGrant(s, gr)
	return Verdict{Decision: Allow, Code: "granted", GrantID: gr.ID}, true
}

func (g *Gate) request(s *Session, op *Operation, digest []byte) review.Request {
	req := review.Request{
		Type: review.TypeOperation, Resource: s.Resource, Dialect: string(s.Dialect),
		Initiator: s.Identity, SessionID: s.ID, Kind: op.Class.Kind, Text: op.Text, Digest: digest,
		State: review.SessionState{SearchPath: op.State.SearchPath, Role: op.State.Role,
			Schema: op.State.Schema, InTransaction: op.State.InTransaction, Variables: op.State.Variables},
		Objects: op.Class.Objects,
	}
	req.Reason, _ = leadingComment(op.Text, "reason")
	for _, p := range op.Params {
		req.Params = append(req.Params, review.Param{Format: p.Format, Type: p.Type, Null: p.Null, Value: p.Value})
	}
	return req
}

// breakglass lets the operation run at once, records it loudly and opens
// the retrospective review an approver must acknowledge.
func (g *Gate) breakglass(ctx context.Context, s *Session, req review.Request, reason string) Verdict {
	req.Type, req.Reason = review.TypeBreakglass, reason
	r, err := g.reviews.Create(ctx, req)
	if err != nil {
		return g.failed("review_failed", err, s)
	}
	g.log.Warn("break-glass operation", "session", s.ID, "resource", s.Resource, "identity", s.Identity.Key(), "review", r.ID)
	data := map[string]any{"reason": reason, "kind": req.Kind.String(), "text": req.Text, "initiator": s.Identity.Display()}
	if err := g.reviews.Record(ctx, recording.TypeBreakglass, r, s.Identity, data); err != nil {
		return g.failed("recording_failed", err, s)
	}
	return Verdict{Decision: Allow, Code: "breakglass", ReviewID: r.ID,
		Notice: fmt.Sprintf("break-glass: this operation runs unreviewed and is recorded; retrospective review %s awaits an approver", r.ID)}
}

func notice(r review.Review) string {
	return fmt.Sprintf("waiting for approval of review %s: %d of %d approvals from %s; approve with: countersign reviews approve %s",
		r.ID, r.Approvals(), r.Required, strings.Join(r.Approvers, ", "), r.ID)
}

// wait holds until the review is decided, wait_timeout passes, ctx ends or
// the gateway shuts down, and returns the final verdict.
func (g *Gate) wait(ctx context.Context, p *policy.Policy, s *Session, r review.Review) Verdict {
	ctx, cancel := context.WithTimeout(ctx, p.WaitTimeout)
	defer cancel()
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() {
		select {
		case <-g.closing:
			cancelWait()
		case <-waitCtx.Done():
		}
	}()
	got, err := g.reviews.Wait(waitCtx, r.ID)
	return g.afterWait(ctx, p, s, got, err)
}

func (g *Gate) afterWait(ctx context.Context, p *policy.Policy, s *Session, r review.Review, err error) Verdict {
	later := fmt.Sprintf("review %s stays pending; once approved, run the identical statement again within %s", r.ID, p.ValidFor)
	switch {
	case err == nil:
	case g.isClosing():
		return deny("gateway_shutdown", "the gateway is shutting down; "+later)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return deny("approval_timeout", fmt.Sprintf("no decision within %s (wait_timeout); %s", p.WaitTimeout, later))
	case ctx.Err() != nil:
		return deny("approval_wait_ended", "the wait for approval ended; "+later)
	default:
		return g.failed("review_failed", err, s)
	}
	switch r.Status {
	case review.StatusApproved:
		return g.consumeWaited(ctx, s, r)
	case review.StatusRejected:
		return Verdict{Decision: Deny, Code: "approval_rejected", ReviewID: r.ID,
			Message: fmt.Sprintf("review %s was rejected%s; the statement did not run", r.ID, rejectedBy(r))}
	case review.StatusExpired:
		return Verdict{Decision: Deny, Code: "approval_expired", ReviewID: r.ID,
			Message: fmt.Sprintf("review %s expired undecided; the statement did not run; run it again to ask anew", r.ID)}
	}
	return Verdict{Decision: Deny, Code: "approval_unusable", ReviewID: r.ID,
		Message: fmt.Sprintf("review %s is %s and cannot be used; the statement did not run", r.ID, r.Status)}
}

func (g *Gate) consumeWaited(ctx context.Context, s *Session, r review.Review) Verdict {
	ok, err := g.reviews.ConsumeID(ctx, r.ID, s.Identity, s.ID)
	if err != nil {
		return g.failed("review_failed", err, s)
	}
	if !ok {
		return Verdict{Decision: Deny, Code: "approval_unusable", ReviewID: r.ID,
			Message: fmt.Sprintf("review %s was approved but is no longer usable (already used or past valid_for); the statement did not run", r.ID)}
	}
	g.claim(s.ID, r.ID)
	return Verdict{Decision: Allow, Code: "reviewed", ReviewID: r.ID}
}

func rejectedBy(r review.Review) string {
	for _, v := range r.Votes {
		if !v.Approve {
			if v.Comment != "" {
				return fmt.Sprintf(" by %s (%q)", v.Voter.Display(), v.Comment)
			}
			return " by " + v.Voter.Display()
		}
	}
	return ""
}

func (g *Gate) isClosing() bool {
	select {
	case <-g.closing:
		return true
	default:
		return false
	}
}

// breakglassReason is the statement's leading `/* breakglass: reason */`,
// else the reason of a break-glass resource token (`countersign connect
// --breakglass REASON`); ok is false when neither asks to break glass.
func breakglassReason(s *Session, op *Operation) (string, bool) {
	if reason, ok := leadingComment(op.Text, "breakglass"); ok {
		return reason, true
	}
	return s.Identity.Breakglass, s.Identity.Breakglass != ""
}
