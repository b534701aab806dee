package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
)

// Options configures the guard. Config, Reviews, Recorder and DigestKey
// are required.
type Options struct {
	Config *config.Config
	// Store is kept for callers that pass it; the guard reaches the store
	// only through Reviews.
	Store     review.Store
	Reviews   *review.Service
	Recorder  recording.Recorder
	DigestKey []byte
	Logger    *slog.Logger
}

// Gate is the Guard implementation.
type Gate struct {
	policies map[string]*policy.Policy
	masks    map[string]*masking // resources with masking rules
	reviews  *review.Service
	rec      recording.Recorder
	key      []byte
	log      *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// claimed holds, per session, the reviews consumed by operations whose
	// transaction has not ended yet.
	claimed map[string][]string

	gmu sync.Mutex
	// grants are the active grants that allowed operations of live
	// sessions, by grant id; nil once closed.
	grants map[string]*grantWatch

	// seq numbers every decision (Operation.seq).
	seq  atomic.Uint64
	txmu sync.Mutex
	// txs are, per session, the grants that allowed writes of its open
	// transaction (txgrant.go).
	txs map[string]*txGrants
}

var _ Guard = (*Gate)(nil)

// New compiles every resource's policy and returns the guard.
func New(o Options) (*Gate, error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("guard: no config")
	case o.Reviews == nil:
		return nil, errors.New("guard: no review service")
	case o.Recorder == nil:
		return nil, errors.New("guard: no recorder")
	case len(o.DigestKey) < 16:
		return nil, errors.New("guard: the digest key (secrets.digest_key_env) must be at least 16 bytes")
	}
	policies, err := Policies(o.Config)
	if err != nil {
		return nil, err
	}
	masks, err := compileMasking(o.Config)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Gate{policies: policies, masks: masks, reviews: o.Reviews, rec: o.Recorder,
		key: append([]byte(nil), o.DigestKey...), log: o.Logger,
		closing: make(chan struct{}), claimed: map[string][]string{}, grants: map[string]*grantWatch{},
		txs: map[string]*txGrants{}}, nil
}

// Policies compiles the policy of every configured resource; the review
// service and the guard share the result.
func Policies(cfg *config.Config) (map[string]*policy.Policy, error) {
	out := map[string]*policy.Policy{}
	for _, r := range cfg.Resources {
		p, err := policy.Compile(r, cfg.Identity.Roles)
		if err != nil {
			return nil, err
		}
		out[r.Name] = p
	}
	return out, nil
}

// Close ends every wait for approval: held sessions are refused with a
// message saying the gateway is shutting down. Their reviews stay pending.
func (g *Gate) Close() {
	g.closeOnce.Do(func() {
		close(g.closing)
		g.stopWatches()
	})
}

// Connect implements Guard.
func (g *Gate) Connect(_ context.Context, s *Session) Verdict {
	p, ok := g.policies[s.Resource]
	if !ok {
		return deny("unknown_resource", fmt.Sprintf("there is no resource %q; ask an admin which resources exist", s.Resource))
	}
	if !p.MayConnect(s.Identity) {
		return deny("access_denied", fmt.Sprintf("%s may not connect to %s: only members of %v may; ask an admin to add you to one of them",
			s.Identity.Display(), s.Resource, p.Access))
	}
	return Verdict{Decision: Allow}
}

func deny(code, msg string) Verdict {
	return Verdict{Decision: Deny, Code: code, Message: msg}
}

// failed is the verdict for an internal failure: refuse, say why, log it.
func (g *Gate) failed(code string, err error, s *Session) Verdict {
	g.log.Error("operation refused", "code", code, "session", s.ID, "resource", s.Resource, "err", err)
	return deny(code, fmt.Sprintf("refused because %v", err))
}
