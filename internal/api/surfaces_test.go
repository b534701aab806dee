package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
)

func surfacesConfig() *config.Config {
	cfg := testConfig()
	cfg.Identity.Roles = map[string][]string{"engineers": {"creator"}, "dba-leads": {"approver"}, "audit": {"auditor"}, "platform-admins": {"admin"}}
	cfg.Resources = []config.Resource{{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
		Access: []string{"engineers", "dba-leads"},
		Review: config.Review{Kinds: []string{"write"}, Approvers: []string{"dba-leads"}, Approvals: 1,
			ReviewTimeout: time.Hour, ValidFor: time.Hour, WaitTimeout: time.Minute},
		Grants: config.Grants{MaxDuration: 4 * time.Hour, Allow: []string{"write"}},
	}}}
	return cfg
}

// newSurfaces is a real API with the review service and the recording
// over a real SQLite store.
func newSurfaces(t *testing.T, edit ...func(*config.Config)) (*fixture, *recording.Log) {
	t.Helper()
	cfg := surfacesConfig()
	for _, e := range edit {
		e(cfg)
	}
	return serveSurfaces(t, t.TempDir()+"/s.db", cfg, nil)
}

// serveSurfaces serves cfg's API, with login (nil: none) and the review
// service and recording over the SQLite store at dbPath (several calls on
// one path are several replicas).
func serveSurfaces(t *testing.T, dbPath string, cfg *config.Config, login Login) (*fixture, *recording.Log) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	rec, err := recording.Open(ctx, st, recording.Options{Key: key, CheckpointEvery: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close(ctx) })
	policies, err := guard.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: rec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, tokens: identity.NewTokens(st)}
	f.srv = httptest.NewTLSServer(New(Options{Config: cfg, Store: st, Tokens: f.tokens, Login: login, Metrics: metrics.New(),
		Logger: slog.New(slog.DiscardHandler), Reviews: svc, Recorder: rec}))
	t.Cleanup(f.srv.Close)
	return f, rec
}

func (f *fixture) mintIn(t *testing.T, user string, groups ...string) string {
	t.Helper()
	id := identity.Identity{Issuer: identity.LocalIssuer, Subject: user, Groups: groups, Source: identity.SourceLocal,
		Roles: identity.RolesFor(groups, RoleTable(surfacesConfig().Identity.Roles)), AuthTime: time.Now()}
	secret, _, err := f.tokens.Issue(context.Background(), id, []identity.Scope{identity.ScopeAPI}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestSurfaceRequests(t *testing.T) {
	t.Parallel()
	f, _ := newSurfaces(t)
	alice, bob := f.mintIn(t, "alice", "engineers"), f.mintIn(t, "bob", "dba-leads")
	auditor := f.mintIn(t, "audit", "audit")
	a := f.do(t, "POST", "/v1/grants", alice, GrantRequest{Resource: "pg-prod", Access: []string{"write"}, For: "1h", Reason: "r"})
	var req GrantRequested
	if err := json.Unmarshal(a.body, &req); err != nil || a.status != 201 {
		t.Fatalf("grant request: %d %s", a.status, a.body)
	}
	id := req.Review.ID
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, msg                 string
	}{
		{"bad status", "GET", "/v1/reviews?status=bogus", alice, nil, 400, CodeBadRequest, "status="},
		{"bad type", "GET", "/v1/reviews?type=bogus", alice, nil, 400, CodeBadRequest, "type="},
		{"bad limit", "GET", "/v1/reviews?limit=0", alice, nil, 400, CodeBadRequest, "limit="},
		{"grant unknown field", "POST", "/v1/grants", alice, `{"resource":"pg-prod","ttl":"1h"}`, 400, CodeBadRequest, "unknown field"},
		{"grant too long", "POST", "/v1/grants", alice, GrantRequest{Resource: "pg-prod", Access: []string{"write"}, For: "5h", Reason: "r"}, 403, CodeForbidden, "grants.max_duration"},
		{"vote unknown field", "POST", "/v1/reviews/" + id + "/approve", bob, `{"comment":"x","force":true}`, 400, CodeBadRequest, "unknown field"},
		{"self approval", "POST", "/v1/reviews/" + id + "/approve", alice, nil, 403, CodeForbidden, "cannot decide it"},
		{"approval by a creator", "POST", "/v1/reviews/" + id + "/approve", f.mintIn(t, "carol", "engineers"), nil, 403, CodeForbidden, "may not decide reviews"},
		{"rejection by an auditor", "POST", "/v1/reviews/" + id + "/reject", auditor, nil, 403, CodeForbidden, "may not decide reviews"},
		{"approval of an unknown review", "POST", "/v1/reviews/r-0000000000/approve", bob, nil, 404, CodeNotFound, "no review"},
		{"verify as creator", "GET", "/v1/audit/verify", alice, nil, 403, CodeForbidden, "auditor or admin"},
		{"export bad since", "GET", "/v1/audit/export?since=yesterday", auditor, nil, 400, CodeBadRequest, "since"},
		{"sessions bad since", "GET", "/v1/sessions?since=-1h", auditor, nil, 400, CodeBadRequest, "since"},
		{"changes as approver", "GET", "/v1/audit/changes", bob, nil, 403, CodeForbidden, "auditor or admin"},
		{"no such session", "GET", "/v1/sessions/s-nope", auditor, nil, 404, CodeNotFound, "no session"},
		{"approve without body", "POST", "/v1/reviews/" + id + "/approve", bob, nil, 200, "", `"status": "approved"`},
		{"approve again", "POST", "/v1/reviews/" + id + "/approve", bob, nil, 409, CodeConflict, "only a pending review"},
		{"revoke by creator who is not initiator", "POST", "/v1/grants/" + id + "/revoke", f.mintIn(t, "carol", "engineers"), nil, 403, CodeForbidden, "may not revoke"},
		{"pubkey", "GET", "/v1/audit/pubkey", alice, nil, 200, "", `"public_key": "ed25519:`},
		{"verify", "GET", "/v1/audit/verify?strict=0", auditor, nil, 200, "", `"ok": true`},
		{"unreviewed", "GET", "/v1/audit/unreviewed", auditor, nil, 200, "", `"changes": []`},
	}
	for _, tt := range tests {
		a := f.do(t, tt.method, tt.path, tt.token, tt.body)
		if a.status != tt.status {
			t.Fatalf("%s: status %d, want %d; body %s", tt.name, a.status, tt.status, a.body)
		}
		if tt.code == "" {
			if !strings.Contains(string(a.body), tt.msg) {
				t.Fatalf("%s: body lacks %q: %s", tt.name, tt.msg, a.body)
			}
			continue
		}
		if e := a.errBody(t); e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
			t.Fatalf("%s: error %s %q, want %s containing %q", tt.name, e.Code, e.Message, tt.code, tt.msg)
		}
	}
}

func TestSurfacesWithoutServices(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, _ := f.mint(t, "alice", []string{"platform-admins"}, identity.ScopeAPI)
	for _, path := range []string{"/v1/reviews", "/v1/grants", "/v1/audit/verify", "/v1/audit/pubkey"} {
		a := f.do(t, "GET", path, alice, nil)
		if e := a.errBody(t); a.status != 404 || e.Code != CodeNotConfigured {
			t.Fatalf("%s without the service: %d %s", path, a.status, a.body)
		}
	}
}

func TestExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	f, rec := newSurfaces(t)
	alice, auditor := f.mintIn(t, "alice", "engineers"), f.mintIn(t, "audit", "audit")
	f.do(t, "POST", "/v1/grants", alice, GrantRequest{Resource: "pg-prod", Access: []string{"write"}, For: "1h", Reason: "r"})
	a := f.do(t, "GET", "/v1/audit/export", auditor, nil)
	if a.status != 200 {
		t.Fatalf("export: %d %s", a.status, a.body)
	}
	rep, err := recording.VerifyExport(bytes.NewReader(a.body), rec.PublicKey())
	if err != nil || !rep.OK() || len(rep.Chains) != 1 || rep.Chains[0].LastSeq < 2 {
		t.Fatalf("export does not verify (%v):\n%s", err, rep)
	}
}

// TestSessionTimeline feeds the aggregation events as the engines write
// them: an outcome belongs to the oldest allowed operation of its digest
// that has none yet; refused operations get none.
func TestSessionTimeline(t *testing.T) {
	t.Parallel()
	ev := func(seq int64, typ, session, data string) recording.Stored {
		return recording.Stored{Writer: "w-1", Seq: seq, Time: time.Unix(seq, 0), Type: typ, Session: session,
			Resource: "pg-prod", Actor: "countersign:local|alice", Data: json.RawMessage(data)}
	}
	events := []recording.Stored{
		ev(1, recording.TypeSessionOpen, "s-1", `{"client_addr":"127.0.0.1:1","client_program":"psql"}`),
		ev(2, recording.TypeOperation, "s-1", `{"text":"INSERT 1","kind":"write","decision":"deny","code":"approval_required","review_id":"r-1","digest":"aa"}`),
		ev(3, recording.TypeOperation, "s-1", `{"text":"SELECT 1","kind":"read","decision":"allow","digest":"bb"}`),
		ev(4, recording.TypeOperation, "s-1", `{"text":"SELECT 1","kind":"read","decision":"allow","digest":"bb"}`),
		ev(5, recording.TypeOperationOutcome, "s-1", `{"rows":1,"digest":"bb","duration_ms":3}`),
		ev(6, recording.TypeOperation, "s-2", `{"text":"not this session","decision":"allow"}`),
		ev(7, recording.TypeOperationOutcome, "s-1", `{"rows":2,"digest":"bb","error_code":"57014"}`),
		ev(8, recording.TypeOperation, "s-1", `{"command":"reset_connection"}`),
		ev(9, recording.TypeOperation, "s-1", `not json`),
		ev(10, recording.TypeSessionClose, "s-1", `{"reason":"client closed"}`),
	}
	ss := newSessions(func(*Session) bool { return true })
	for _, e := range events {
		ss.add(e)
	}
	a := ss.byID["s-1"]
	if a == nil || len(ss.order) != 1 {
		t.Fatalf("sessions %v", ss.order)
	}
	if a.info.Operations != 3 || a.info.Refused != 1 || a.info.Errors != 1 || a.info.CloseReason != "client closed" || a.info.ClientProgram != "psql" {
		t.Fatalf("session %+v", a.info)
	}
	if a.ops[0].Outcome != nil || a.ops[1].Outcome.Rows != 1 || a.ops[2].Outcome.Rows != 2 || a.ops[2].Outcome.ErrorCode != "57014" {
		t.Fatalf("outcomes paired wrongly: %+v %+v %+v", a.ops[0].Outcome, a.ops[1].Outcome, a.ops[2].Outcome)
	}
}

func TestParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	when := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"24h", now.Add(-24 * time.Hour), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2025-01-01T00:00:00Z", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"-1h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"1.5d", time.Time{}, false},
		{"99999999999d", time.Time{}, false},
	}
	for _, tt := range when {
		got, err := ParseWhen(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseWhen(%q) = %v, %v", tt.in, got, err)
		}
	}
	objects := []struct {
		objects []string
		want    string
		match   bool
	}{
		{[]string{"public.users"}, "public.users", true},
		{[]string{"public.users"}, "PUBLIC.USERS", true},
		{[]string{"public.users"}, "users", true},
		{[]string{"users"}, "public.users", true},
		{[]string{"audit.users"}, "public.users", false},
		{[]string{"public.users2"}, "users", false},
		{nil, "users", false},
		{nil, "", true},
	}
	for _, tt := range objects {
		if got := touches(tt.objects, tt.want); got != tt.match {
			t.Errorf("touches(%v, %q) = %v", tt.objects, tt.want, got)
		}
	}
	for key, user := range map[string]string{"countersign:local|alice": "alice", "https://idp|u-1": "https://idp|u-1"} {
		if !actorIs(key, user) || actorIs(key, "bob") {
			t.Errorf("actorIs(%q, %q)", key, user)
		}
	}
}

// TestApproveNeedsFreshLogin: where OIDC is configured, an identity the
// operator minted cannot approve; the service's refusal reaches the person
// as a 403 with its message, not as a store failure.
func TestApproveNeedsFreshLogin(t *testing.T) {
	t.Parallel()
	f, _ := newSurfaces(t, func(c *config.Config) { c.Identity.OIDC = &config.OIDC{Issuer: "https://idp.example"} })
	alice, bob := f.mintIn(t, "alice", "engineers"), f.mintIn(t, "bob", "dba-leads")
	a := f.do(t, "POST", "/v1/grants", alice, GrantRequest{Resource: "pg-prod", Access: []string{"write"}, For: "1h", Reason: "r"})
	var req GrantRequested
	if err := json.Unmarshal(a.body, &req); err != nil {
		t.Fatal(err)
	}
	a = f.do(t, "POST", "/v1/reviews/"+req.Review.ID+"/approve", bob, nil)
	if e := a.errBody(t); a.status != 403 || e.Code != CodeForbidden || !strings.Contains(e.Message, "cannot approve where OIDC is configured") {
		t.Fatalf("minted approver under OIDC: %d %s", a.status, a.body)
	}
}
