package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

// These tests wire the engine as 'countersign serve' does
// (internal/cli/core.go): the real guard, review service, recording and
// tokens on a temporary SQLite store, against the machine's MariaDB.

var realRoles = map[string][]string{
	"engineers": {"creator"},
	"dba-leads": {"creator", "approver"},
}

// failingStore is the real store whose event appends can be made to fail,
// to prove that a write whose event cannot be stored never runs.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

func (f *failingStore) AppendEvents(ctx context.Context, ev []recording.Stored) error {
	if f.fail.Load() {
		return errors.New("test: the disk is full")
	}
	return f.Store.AppendEvents(ctx, ev)
}

type realEnv struct {
	addr   string
	st     *failingStore
	svc    *review.Service
	rec    *recording.Log
	tokens *identity.Tokens
	cfg    *config.Config
	hook   *decideHook // the real guard, with a test's hook after Decide (grant_end_test.go)
}

// realResource is a MySQL resource on the test database whose writes need
// one approval from dba-leads, in the given mode.
func realResource(name, mode string, masking []config.MaskRule) config.Resource {
	return config.Resource{Name: name, Type: "mysql", Address: "127.0.0.1:3306", Database: testDB,
		Username: nativeUser, Password: userPass,
		Policy: config.Policy{
			Access: []string{"engineers", "dba-leads"},
			Review: config.Review{Kinds: []string{"write", "schema", "privilege", "admin", "unknown"},
				Approvers: []string{"dba-leads"}, Approvals: 1, Mode: mode,
				WaitTimeout: time.Minute, ReviewTimeout: time.Hour, ValidFor: time.Hour},
			Masking: masking,
		}}
}

func newRealEnv(t *testing.T, resources ...config.Resource) *realEnv {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Config{Identity: config.Identity{Roles: realRoles}, Resources: resources}
	st, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	re := &realEnv{st: &failingStore{Store: st}, tokens: identity.NewTokens(st), cfg: cfg}
	key, err := recording.LoadOrCreateKey(t.TempDir() + "/rec.key")
	if err != nil {
		t.Fatal(err)
	}
	if re.rec, err = recording.Open(ctx, re.st, recording.Options{Key: key, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	policies, err := guard.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if re.svc, err = review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: re.rec, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	gate, err := guard.New(guard.Options{Config: cfg, Reviews: re.svc, Recorder: re.rec,
		DigestKey: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]*mask.Rules{}
	forTrail := map[string]*mask.Rules{} // every rule for everyone: what result capture keeps
	for _, r := range resources {
		if rules[r.Name], err = mask.Compile(r.Policy.Masking); err != nil {
			t.Fatal(err)
		}
		all := slices.Clone(r.Policy.Masking)
		for i := range all {
			all[i].Roles = nil
		}
		if forTrail[r.Name], err = mask.Compile(all); err != nil {
			t.Fatal(err)
		}
	}
	capture := MaskFilter(forTrail)
	re.hook = &decideHook{Guard: gate}
	e, err := New(Options{TLS: serverTLS, Resource: cfg.Resource, Auth: re.tokens, Guard: re.hook, Recorder: re.rec,
		Classifier: sqlkind.NewMySQL(sqlkind.MySQLOptions{}), Filter: MaskFilter(rules), Logger: quiet,
		Capture: func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
			v.Unmask = false
			return capture(s, op, v)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = e.Shutdown(sctx)
		gate.Close()
		_ = re.rec.Close(sctx)
	})
	re.addr = ln.Addr().String()
	return re
}

// person is a local identity in the groups, with its roles.
func person(name string, groups ...string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range realRoles {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: identity.LocalIssuer, Subject: name, Email: name + "@example.com",
		Groups: groups, Roles: identity.RolesFor(groups, tbl), Source: identity.SourceLocal, AuthTime: time.Now()}
}

// login issues a resource token for the person and opens a pool on it.
func (re *realEnv) login(t *testing.T, id identity.Identity, resource string) *sql.DB {
	t.Helper()
	secret := re.issue(t, id)
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/?tls=cs&allowCleartextPasswords=true", resource, secret, re.addr))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// issue makes a resource token for the person.
func (re *realEnv) issue(t *testing.T, id identity.Identity) string {
	t.Helper()
	secret, _, err := re.tokens.Issue(context.Background(), id, []identity.Scope{identity.ScopeResources}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func apiActor(id identity.Identity) review.Actor {
	return review.Actor{Identity: id, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}
}

// pending returns the pending reviews of the resource.
func (re *realEnv) pending(t *testing.T, resource string) []review.Review {
	t.Helper()
	rs, err := re.svc.List(context.Background(), review.Filter{Resource: resource, Status: review.StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// scratchTable makes a table of its own for one test in the test database.
func scratchTable(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "_" + randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(80) UNIQUE)", testDB, name),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 'ada', 'ada@example.com'), (2, 'bob', NULL)", testDB, name),
	); err != nil {
		t.Fatal(err)
	}
	return name
}

func nameOf(t *testing.T, table string, id int) string {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.QueryRow("SELECT name FROM "+table+" WHERE id = ?", id).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// A held write runs once another approver approves it; its initiator
// cannot approve it, nor can someone without the approver role.
func TestRealHoldApprovedByAnother(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-wait", "wait", nil))
	table := scratchTable(t, "hold")
	bob, carol, alice := person("bob", "dba-leads"), person("carol", "dba-leads"), person("alice", "engineers")
	db := re.login(t, bob, "my-wait")
	update := "UPDATE " + table + " SET name = 'approved' WHERE id = 1"
	done := make(chan error, 1)
	go func() { _, err := db.Exec(update); done <- err }()
	var r review.Review
	waitFor(t, func() bool {
		rs := re.pending(t, "my-wait")
		if len(rs) == 1 {
			r = rs[0]
		}
		return len(rs) == 1
	})
	if r.Text != update {
		t.Fatalf("review text %q", r.Text)
	}
	if got := nameOf(t, table, 1); got != "ada" {
		t.Fatalf("the held write ran before its approval: %q", got)
	}
	ctx := context.Background()
	if _, err := re.svc.Approve(ctx, r.ID, apiActor(bob), ""); err == nil || !strings.Contains(err.Error(), "cannot decide") {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := re.svc.Approve(ctx, r.ID, apiActor(alice), ""); err == nil || !strings.Contains(err.Error(), "approver role") {
		t.Fatalf("approval by a non-approver: %v", err)
	}
	if _, err := re.svc.Approve(ctx, r.ID, apiActor(carol), "ok"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the approved write failed: %v", err)
	}
	if got := nameOf(t, table, 1); got != "approved" {
		t.Fatalf("name = %q after the approved write", got)
	}
}

// In reject mode a write is refused with a review id; once approved,
// exactly that statement runs, once; a changed statement and the same
// prepared statement with other parameters each need their own review.
func TestRealReviewBindsStatementAndParams(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-reject", "reject", nil))
	table := scratchTable(t, "bind")
	alice, carol := person("alice", "engineers"), person("carol", "dba-leads")
	db := re.login(t, alice, "my-reject")
	ctx := context.Background()
	approve := func(err error) {
		t.Helper()
		id := reviewIDIn(t, err)
		if _, err := re.svc.Approve(ctx, id, apiActor(carol), ""); err != nil {
			t.Fatal(err)
		}
	}
	update := "UPDATE " + table + " SET name = 'one' WHERE id = 1"
	_, err := db.Exec(update)
	approve(err)
	if _, err := db.Exec(update); err != nil {
		t.Fatalf("the approved statement was refused: %v", err)
	}
	if _, err := db.Exec(update); err == nil {
		t.Fatal("an approval was used twice")
	}
	if _, err := db.Exec(update + " "); err == nil || reviewIDIn(t, err) == "" {
		t.Fatalf("a changed statement ran without its own review: %v", err)
	}
	// Prepared (binary protocol): the parameters are bound into the review.
	prep := "UPDATE " + table + " SET name = ? WHERE id = ?"
	_, err = db.Exec(prep, "two", 2)
	approve(err)
	if _, err := db.Exec(prep, "evil", 2); err == nil {
		t.Fatal("a prepared statement with other parameters used the approval")
	}
	if _, err := db.Exec(prep, "two", 2); err != nil {
		t.Fatalf("the approved prepared statement was refused: %v", err)
	}
	if got := nameOf(t, table, 2); got != "two" {
		t.Fatalf("name = %q", got)
	}
}

func reviewIDIn(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("the write was not refused for review")
	}
	msg := err.Error()
	i := strings.Index(msg, "review ")
	if i < 0 {
		t.Fatalf("no review id in %q", msg)
	}
	f := strings.Fields(msg[i+len("review "):])
	return strings.TrimRight(f[0], ";,.")
}

// Record before effect: when the recording cannot store the write's
// event, the write is refused and the table is unchanged; when it can, the
// event is in the store once the client has its answer.
func TestRealRecordBeforeEffect(t *testing.T) {
	t.Parallel()
	res := realResource("my-open", "wait", nil)
	res.Policy.Review.Kinds = []string{"privilege", "admin"} // writes need no review here
	re := newRealEnv(t, res)
	table := scratchTable(t, "rec")
	db := re.login(t, person("alice", "engineers"), "my-open")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	update := "UPDATE " + table + " SET name = 'unrecorded' WHERE id = 1"
	re.st.fail.Store(true)
	_, err := db.Exec(update)
	re.st.fail.Store(false)
	if err == nil || !strings.Contains(err.Error(), "could not record") {
		t.Fatalf("err = %v", err)
	}
	if got := nameOf(t, table, 1); got != "ada" {
		t.Fatalf("the write ran although its event was not recorded: %q", got)
	}
	recorded := "UPDATE " + table + " SET name = 'recorded' WHERE id = 1"
	if _, err := db.Exec(recorded); err != nil {
		t.Fatal(err)
	}
	if !re.stored(t, recorded) {
		t.Fatal("the write ran but its event is not in the store")
	}
}

// stored reports whether an operation event holding text (and each of
// also) is in the store.
func (re *realEnv) stored(t *testing.T, text string, also ...string) bool {
	t.Helper()
	ctx := context.Background()
	writers, err := re.st.Writers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range writers {
		evs, err := re.st.Events(ctx, w, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == recording.TypeOperation && strings.Contains(string(e.Data), text) &&
				!slices.ContainsFunc(also, func(s string) bool { return !strings.Contains(string(e.Data), s) }) {
				return true
			}
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
