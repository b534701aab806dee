package review_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

var roleTable = map[string][]string{
	"engineers":       {"creator"},
	"dba-leads":       {"approver"},
	"other-approvers": {"approver"},
	"sre-oncall":      {"creator", "breakglass"},
	"platform-admins": {"admin"},
}

func person(issuer, subject, email string, groups ...string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range roleTable {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: issuer, Subject: subject, Email: email, EmailVerified: email != "",
		Groups: groups, Roles: identity.RolesFor(groups, tbl), Source: identity.SourceOIDC, AuthTime: time.Now()}
}

var (
	alice = person("https://idp-a", "alice", "alice@example.com", "engineers", "dba-leads")
	// aliceB is alice under another issuer with the same verified email.
	aliceB = person("https://idp-b", "a-123", "ALICE@example.com", "dba-leads")
	bob    = person("https://idp-a", "bob", "bob@example.com", "dba-leads")
	bobB   = person("https://idp-b", "b-9", "bob@example.com", "dba-leads")
	carol  = person("https://idp-a", "carol", "carol@example.com", "dba-leads")
	// dave approves elsewhere, not in this resource's approver groups.
	dave = person("https://idp-a", "dave", "dave@example.com", "other-approvers", "engineers")
	// erin is in the approver group without the approver role.
	erin = func() identity.Identity {
		id := person("https://idp-a", "erin", "erin@example.com", "dba-leads")
		id.Roles = nil
		return id
	}()
	admin = person("https://idp-a", "root", "root@example.com", "platform-admins", "engineers")
)

func api(id identity.Identity) review.Actor {
	return review.Actor{Identity: id, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}
}

// recorder is a Recorder that keeps events in memory and can be told to
// fail, to prove that a recording failure refuses.
type recorder struct {
	mu     sync.Mutex
	events []recording.Event
	fail   bool
}

func (r *recorder) Append(_ context.Context, e recording.Event) *recording.Commit {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := recording.NewCommit()
	if r.fail {
		c.Finish(0, errors.New("disk full"))
		return c
	}
	r.events = append(r.events, e)
	c.Finish(int64(len(r.events)), nil)
	return c
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

type env struct {
	svc   *review.Service
	store review.Store
	rec   *recorder
}

type setup struct {
	approvals     int
	reviewTimeout time.Duration
	validFor      time.Duration
	oidc          bool
	mayApprove    bool
	// store, when set, is used instead of a fresh one (replicas sharing a
	// store, a store with a moved clock).
	store review.Store
	// events receives the service's Events hook.
	events func(context.Context, review.Event)
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	st := s.store
	if st == nil {
		st = openStore(t)
	}
	res := config.Resource{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
		Access: []string{"engineers", "dba-leads", "sre-oncall"},
		Review: config.Review{Kinds: []string{"write"}, Approvers: []string{"dba-leads"},
			Approvals: s.approvals, ReviewTimeout: s.reviewTimeout, ValidFor: s.validFor},
	}}
	p, err := policy.Compile(res, roleTable)
	if err != nil {
		t.Fatal(err)
	}
	ic := config.Identity{Local: config.Local{MayApprove: s.mayApprove}}
	if s.oidc {
		ic.OIDC = &config.OIDC{Issuer: "https://idp-a"}
	}
	rec := &recorder{}
	o := review.Options{Store: st, Policies: map[string]*policy.Policy{"pg-prod": p},
		Identity: ic, Recorder: rec, Logger: slog.New(slog.DiscardHandler)}
	if s.events != nil {
		o.Events = s.events
	}
	svc, err := review.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: st, rec: rec}
}

// openStore opens a fresh, real SQLite store in the test's temp dir.
func openStore(t *testing.T) review.Store {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "countersign.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (e *env) create(t *testing.T, by identity.Identity, text string) review.Review {
	t.Helper()
	r, err := e.svc.Create(context.Background(), review.Request{
		Type: review.TypeOperation, Resource: "pg-prod", Dialect: "postgres", Initiator: by,
		Kind: sqlkind.Write, Text: text, Digest: []byte("digest:" + text), SessionID: "s-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
