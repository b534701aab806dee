package guard_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

var roles = map[string][]string{
	"engineers":  {"creator"},
	"dba-leads":  {"approver"},
	"sre-oncall": {"creator", "breakglass"},
	"audit":      {"auditor"},
}

func person(subject string, groups ...string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range roles {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: "https://idp", Subject: subject, Email: subject + "@example.com",
		EmailVerified: true, Groups: groups, Roles: identity.RolesFor(groups, tbl),
		Source: identity.SourceOIDC, AuthTime: time.Now()}
}

var (
	alice = person("alice", "engineers")
	bob   = person("bob", "dba-leads")
	oncal = person("olga", "sre-oncall")
	audit = person("audrey", "audit")
)

func api(id identity.Identity) review.Actor {
	return review.Actor{Identity: id, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}
}

type recorder struct {
	mu     sync.Mutex
	events []recording.Event
	fail   atomic.Bool
}

func (r *recorder) Append(_ context.Context, e recording.Event) *recording.Commit {
	c := recording.NewCommit()
	if r.fail.Load() {
		c.Finish(0, errors.New("disk full"))
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	c.Finish(int64(len(r.events)), nil)
	return c
}

func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// flaky is the real store with a switch that makes every call fail, to
// prove that a store error refuses.
type flaky struct {
	review.Store
	fail atomic.Bool
}

var errStoreDown = errors.New("store unreachable")

func (f *flaky) Now(ctx context.Context) (time.Time, error) {
	if f.fail.Load() {
		return time.Time{}, errStoreDown
	}
	return f.Store.Now(ctx)
}

func (f *flaky) ApprovedFor(ctx context.Context, res, key string, d []byte, now time.Time) ([]string, error) {
	if f.fail.Load() {
		return nil, errStoreDown
	}
	return f.Store.ApprovedFor(ctx, res, key, d, now)
}

type env struct {
	g     *guard.Gate
	svc   *review.Service
	store *flaky
	rec   *recorder
}

func newEnv(t *testing.T, mode string, wait time.Duration) *env {
	t.Helper()
	cfg := &config.Config{
		Identity: config.Identity{Roles: roles},
		Resources: []config.Resource{{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
			Access: []string{"engineers", "dba-leads", "sre-oncall"},
			Review: config.Review{Kinds: []string{"write", "schema"}, Approvers: []string{"dba-leads"},
				Mode: mode, WaitTimeout: wait},
		}}},
	}
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "countersign.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &flaky{Store: db}
	policies, err := guard.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	svc, err := review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: rec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Options{Config: cfg, Reviews: svc, Recorder: rec, DigestKey: []byte("0123456789abcdef0123"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return &env{g: g, svc: svc, store: st, rec: rec}
}

func session(id identity.Identity, sid string) *guard.Session {
	return &guard.Session{ID: sid, Identity: id, Resource: "pg-prod", Dialect: sqlkind.Postgres}
}

func write(text string, params ...guard.Param) *guard.Operation {
	return &guard.Operation{Text: text, Params: params, State: guard.State{SearchPath: "public"},
		Class: sqlkind.Classification{Kind: sqlkind.Write, Statements: 1}}
}

// approvedGrant is a grant of the accesses to who, approved by bob.
func approvedGrant(t *testing.T, e *env, who identity.Identity, d time.Duration, access ...string) review.Review {
	t.Helper()
	ctx := context.Background()
	g, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: who,
		Access: access, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	if g, err = e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	return g
}
