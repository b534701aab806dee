package review

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

// retroLifetime keeps a break-glass review open until someone acknowledges
// it; it must not quietly expire.
const retroLifetime = 100 * 365 * 24 * time.Hour

// Options configures a Service. Store, Policies and Recorder are required.
type Options struct {
	Store Store
	// Policies are the compiled policies by resource name.
	Policies map[string]*policy.Policy
	// Identity is the identity configuration: whether OIDC is configured,
	// approve_max_age, local.may_approve.
	Identity config.Identity
	Recorder recording.Recorder
	// Notifier defaults to an in-process Broadcaster.
	Notifier Notifier
	Logger   *slog.Logger
	// Events, when set, is called after each review is created, decided
	// (approved or rejected), expired, a grant started or ended, and a
	// break-glass operation was recorded (see Event). It must return at
	// once: it runs on the path of the change (webhook.Notifier.Notify
	// only queues).
	Events func(ctx context.Context, e Event)
}

// Service is the review lifecycle. Safe for concurrent use.
type Service struct {
	store    Store
	policies map[string]*policy.Policy
	ident    config.Identity
	// roles is ident.Roles as identity.Role values (see current).
	roles  map[string][]identity.Role
	rec    recording.Recorder
	notify Notifier
	log    *slog.Logger
	events func(ctx context.Context, e Event)
}

// New checks the options and returns the service.
func New(o Options) (*Service, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("review: no store")
	case o.Recorder == nil:
		return nil, errors.New("review: no recorder")
	}
	if o.Notifier == nil {
		o.Notifier = &Broadcaster{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	roles := make(map[string][]identity.Role, len(o.Identity.Roles))
	for g, rs := range o.Identity.Roles {
		for _, r := range rs {
			roles[g] = append(roles[g], identity.Role(r))
		}
	}
	return &Service{store: o.Store, policies: o.Policies, ident: o.Identity, roles: roles,
		rec: o.Recorder, notify: o.Notifier, log: o.Logger, events: o.Events}, nil
}

// current is the identity with the roles its groups have in the role table
// this gateway runs with (identity.roles), not those its token was issued
// with: an operator who takes the approver role from a group takes it from
// every live token of its members at once. The groups stay the token's
// (the provider's word at login). With no table configured the token's
// roles stand: no policy that reviews anything compiles without one, and
// the service's own tests hand it identities with their roles.
func (s *Service) current(id identity.Identity) identity.Identity {
	if len(s.roles) > 0 {
		id.Roles = identity.RolesFor(id.Groups, s.roles)
	}
	return id
}

// Request is what Create needs.
type Request struct {
	Type      Type
	Resource  string
	Dialect   string
	Initiator identity.Identity
	SessionID string
	Kind      sqlkind.Kind
	// Access and Duration: grant reviews.
	Access   []string
	Duration time.Duration
	Text     string
	Digest   []byte
	State    SessionState
	Params   []Param
	Objects  []string
	Reason   string
}

// Create stores a new pending review and records review.created. A grant
// request is checked against the policy's grant limits.
func (s *Service) Create(ctx context.Context, req Request) (Review, error) {
	p, err := s.policy(req.Resource)
	if err != nil {
		return Review{}, err
	}
	if err := checkRequest(p, req); err != nil {
		return Review{}, err
	}
	now, err := s.store.Now(ctx)
	if err != nil {
		return Review{}, storeErr(err)
	}
	r := newReview(p, req, now)
	if r.ID, err = newID(req.Type); err != nil {
		return Review{}, err
	}
	if err := s.store.CreateReview(ctx, r); err != nil {
		return Review{}, storeErr(err)
	}
	if err := s.record(ctx, recording.TypeReviewCreated, r, r.Initiator, createdData(r)); err != nil {
		return Review{}, err
	}
	if r.Type != TypeBreakglass {
		// A break-glass review is announced once, as EventBreakglass, when
		// the guard records the operation (Record).
		s.emit(ctx, Event{Kind: EventCreated, Review: r, Actor: r.Initiator, Comment: r.Reason, At: now})
	}
	return r, nil
}

func checkRequest(p *policy.Policy, req Request) error {
	if req.Initiator.Issuer == "" || req.Initiator.Subject == "" {
		return invalid("a review needs an initiator with an issuer and a subject")
	}
	switch req.Type {
	case TypeOperation, TypeBreakglass:
		if len(req.Digest) == 0 {
			return invalid("an operation review needs the operation's digest")
		}
	case TypeGrant:
		return checkGrant(p, req)
	default:
		return invalid("unknown review type %q", req.Type)
	}
	return nil
}

func checkGrant(p *policy.Policy, req Request) error {
	if !p.MayConnect(req.Initiator) {
		return refused("%s may not connect to %s, so no grant can be requested; ask an admin for access", req.Initiator.Display(), p.Resource)
	}
	if len(req.Access) == 0 {
		return refused("a grant needs at least one access; %s allows %v", p.Resource, p.GrantAllow)
	}
	for _, a := range req.Access {
		if !p.MayGrant(a) {
			return refused("%q cannot be granted on %s; grants.allow is %v", a, p.Resource, p.GrantAllow)
		}
	}
	if req.Duration <= 0 || req.Duration > p.GrantMax {
		return refused("a grant on %s lasts more than 0 and at most %s (grants.max_duration); asked for %s", p.Resource, p.GrantMax, req.Duration)
	}
	return nil
}

func newReview(p *policy.Policy, req Request, now time.Time) Review {
	r := Review{
		Type: req.Type, Resource: req.Resource, Dialect: req.Dialect,
		Initiator: personOf(req.Initiator), SessionID: req.SessionID, Kind: req.Kind,
		Access: req.Access, Duration: req.Duration, Digest: req.Digest,
		// The stored copy is for people (reviews show, the API, webhooks,
		// the review.created event): password literals masked. Nothing
		// re-derives the digest from it; the digest is over the exact text
		// and a re-run matches by digest (invariant 4).
		Text:  sqlkind.MaskPasswords(sqlkind.Dialect(req.Dialect), req.Text),
		State: req.State, Params: req.Params, Objects: req.Objects, Reason: req.Reason,
		Status: StatusPending, Approvers: p.Approvers, Required: p.Approvals,
		CreatedAt: now, ExpiresAt: now.Add(p.ReviewTimeout), ValidFor: p.ValidFor,
	}
	if req.Type == TypeBreakglass {
		// Acknowledged once, by anyone who may approve; it never expires.
		r.Required, r.ExpiresAt = 1, now.Add(retroLifetime)
	}
	return r
}

// personOf keeps what the store needs to tell people apart; groups, roles
// and login times are judged at each vote, not stored. The email is kept in
// its canonical form (identity.CanonicalEmail), so the store's
// one-vote-per-verified-email constraint, which lower-cases it, sees one
// person's address under two issuers as one even when they differ in
// Unicode form or non-ASCII case, and two racing votes cannot both count.
func personOf(id identity.Identity) identity.Identity {
	return identity.Identity{Issuer: id.Issuer, Subject: id.Subject, Email: identity.CanonicalEmail(id.Email),
		EmailVerified: id.EmailVerified, Name: id.Name, Source: id.Source}
}

// newID is "r-" (or "g-" for grants) and 10 random hex digits; the store's
// primary key refuses the rare collision.
func newID(t Type) (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", typed(ErrUnavailable, fmt.Errorf("review id: %w", err))
	}
	prefix := "r-"
	if t == TypeGrant {
		prefix = "g-"
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Get returns the review with its status judged at the store's time.
func (s *Service) Get(ctx context.Context, id string) (Review, error) {
	r, _, err := s.get(ctx, id)
	return r, err
}

func (s *Service) get(ctx context.Context, id string) (Review, time.Time, error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return Review{}, now, storeErr(err)
	}
	r, err := s.store.Review(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Review{}, now, fmt.Errorf("no review %q; list them with 'countersign reviews list': %w", id, ErrNotFound)
	}
	if err != nil {
		return Review{}, now, storeErr(err)
	}
	r.Status = r.Effective(now)
	return r, now, nil
}

// List lists reviews, newest first, with statuses judged at the store's
// time.
func (s *Service) List(ctx context.Context, f Filter) ([]Review, error) {
	now, err := s.store.Now(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	want := f.Status
	if want == StatusExpired || want == StatusPending {
		f.Status = "" // expiry is judged here, not stored
	}
	rs, err := s.store.ListReviews(ctx, f)
	if err != nil {
		return nil, storeErr(err)
	}
	out := rs[:0]
	for _, r := range rs {
		r.Status = r.Effective(now)
		if want == "" || r.Status == want {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Service) policy(resource string) (*policy.Policy, error) {
	p, ok := s.policies[resource]
	if !ok || p == nil {
		return nil, invalid("resource %q is not configured on this gateway; ask an admin which resources exist", resource)
	}
	return p, nil
}

func storeErr(err error) error {
	return typed(ErrUnavailable, fmt.Errorf("the review store failed, so nothing was decided; retry, and tell an operator if it persists: %w", err))
}
