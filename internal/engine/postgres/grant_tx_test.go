package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var grantTxRoles = map[string][]string{"engineers": {"creator"}, "dba-leads": {"creator", "approver"}}

func grantTxPerson(name string, groups ...string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range grantTxRoles {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: identity.LocalIssuer, Subject: name, Email: name + "@example.com",
		Groups: groups, Roles: identity.RolesFor(groups, tbl), Source: identity.SourceLocal, AuthTime: time.Now()}
}

// grantTxAuth authenticates every good token as alice, an engineer.
type grantTxAuth struct{}

func (grantTxAuth) AuthenticateResource(_ context.Context, secret, resource string) (identity.Token, error) {
	if secret != enginetest.Token {
		return identity.Token{}, errors.New("bad token for " + resource)
	}
	return identity.Token{ID: "t-1", Identity: grantTxPerson("alice", "engineers"), Scopes: []identity.Scope{identity.ScopeResources}}, nil
}

// grantTxEnv is the engine in front of the test database with the real
// guard and review service (sqlite store): writes need a review (mode
// reject) or a grant.
type grantTxEnv struct {
	*env
	svc   *review.Service
	table string
}

func newGrantTxEnv(t *testing.T) *grantTxEnv {
	t.Helper()
	return newGrantTxEnvOn(t, config.Resource{Address: "127.0.0.1:5432", Database: testDB,
		Username: "postgres", Password: "not-used-with-trust"}, adminExec2)
}

// newGrantTxEnvOn is newGrantTxEnv in front of another upstream (up's
// address, database and credentials), whose tables admin creates.
func newGrantTxEnvOn(t *testing.T, up config.Resource, admin func(sql string) error) *grantTxEnv {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	res := config.Resource{Name: "pg-grant-tx", Type: "postgres", Address: up.Address, Database: up.Database,
		Username: up.Username, Password: up.Password,
		Policy: config.Policy{Access: []string{"engineers", "dba-leads"},
			Review: config.Review{Kinds: []string{"write", "schema", "privilege", "admin", "unknown"},
				Approvers: []string{"dba-leads"}, Approvals: 1, Mode: "reject",
				WaitTimeout: time.Minute, ReviewTimeout: time.Hour, ValidFor: time.Hour}}}
	cfg := &config.Config{Identity: config.Identity{Roles: grantTxRoles}, Resources: []config.Resource{res}}
	st, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	policies, err := guard.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &enginetest.Recorder{}
	svc, err := review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: rec, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := guard.New(guard.Options{Config: cfg, Reviews: svc, Recorder: rec,
		DigestKey: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gate.Close)
	ev := newEnv(t, func(o *Options) { o.Guard, o.Auth, o.Recorder = gate, grantTxAuth{}, rec })
	ev.res[res.Name] = &res
	table := "gtx_" + randHex(4)
	if err := admin(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, name text); INSERT INTO %s VALUES (1, 'ada')", table, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin("DROP TABLE " + table) })
	return &grantTxEnv{env: ev, svc: svc, table: table}
}

func adminExec2(sql string) error {
	return execOn("postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable", sql)
}

// grant makes alice an approved write grant.
func (g *grantTxEnv) grant(t *testing.T, d time.Duration) review.Review {
	t.Helper()
	ctx := context.Background()
	r, err := g.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-grant-tx", Initiator: grantTxPerson("alice", "engineers"),
		Access: []string{"write"}, Duration: d, Reason: "grant in transaction test"})
	if err != nil {
		t.Fatal(err)
	}
	carol := grantTxPerson("carol", "dba-leads")
	if r, err = g.svc.Approve(ctx, r.ID, review.Actor{Identity: carol, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, ""); err != nil {
		t.Fatal(err)
	}
	return r
}

func (g *grantTxEnv) revoke(t *testing.T, id string) {
	t.Helper()
	alice := grantTxPerson("alice", "engineers")
	if _, err := g.svc.RevokeGrant(context.Background(), id, review.Actor{Identity: alice, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}); err != nil {
		t.Fatal(err)
	}
}

// waitEnded waits until the store no longer counts the grant active.
func (g *grantTxEnv) waitEnded(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := g.svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != review.StatusApproved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant %s still active after 30s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count counts rows of the table directly on PostgreSQL.
func (g *grantTxEnv) count(t *testing.T, where string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+g.table+" WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (g *grantTxEnv) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, g.url("pg-grant-tx", "require"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Invariant 7 against a transaction on PostgreSQL: BEGIN, writes under a
// write grant (extended protocol), the grant ends (revoked, or runs out),
// then COMMIT. COMMIT is transaction control, a read; it and every other
// statement but a full ROLLBACK are refused with the grant named, the
// upstream transaction is aborted so nothing commits, and after ROLLBACK
// the session goes on with the grant gone.
func TestGrantEndRefusesCommitOfItsWrites(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		duration time.Duration
		revoke   bool
		why      string
	}{
		{"revoked", time.Hour, true, "was revoked"},
		{"runs out", 5 * time.Second, false, "ran out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGrantTxEnv(t)
			gr := g.grant(t, tc.duration)
			c := g.connect(t)
			ctx := context.Background()
			mustExec := func(q string, args ...any) {
				t.Helper()
				if _, err := c.Exec(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			mustExec("BEGIN")
			mustExec("INSERT INTO "+g.table+" (id, name) VALUES ($1, $2)", 10, "late")
			mustExec("UPDATE " + g.table + " SET name = 'late' WHERE id = 1")
			if tc.revoke {
				g.revoke(t, gr.ID)
			} else {
				g.waitEnded(t, gr.ID)
			}
			for _, q := range []string{"COMMIT", "END", "commit and chain", "SELECT 1", "SAVEPOINT s",
				"ROLLBACK TO SAVEPOINT s", "PREPARE TRANSACTION 'gtx'", "INSERT INTO " + g.table + " VALUES (11, 'x'); COMMIT",
				"ROLLBACK; INSERT INTO " + g.table + " VALUES (12, 'x')"} {
				_, err := c.Exec(ctx, q)
				var pe *pgconn.PgError
				if !errors.As(err, &pe) {
					t.Fatalf("%q in a transaction holding writes of grant %s after its end: %v", q, gr.ID, err)
				}
				for _, want := range []string{"grant " + gr.ID + " " + tc.why, "ROLLBACK"} {
					if !strings.Contains(pe.Message, want) {
						t.Errorf("%q was refused with %q; want it to say %q", q, pe.Message, want)
					}
				}
			}
			// The same through the extended protocol.
			if _, err := c.Exec(ctx, "COMMIT", pgx.QueryExecModeExec); err == nil || !strings.Contains(err.Error(), gr.ID) {
				t.Fatalf("COMMIT (extended protocol) after the grant's end: %v", err)
			}
			mustExec("ROLLBACK")
			if n := g.count(t, "id IN (10, 11, 12) OR name = 'late'"); n != 0 {
				t.Fatalf("%d row(s) written under the ended grant are in the table", n)
			}
			// The session goes on: transactions work, writes need a
			// review again (mode reject: refused with its id).
			mustExec("BEGIN")
			mustExec("SELECT 1")
			mustExec("COMMIT")
			_, err := c.Exec(ctx, "UPDATE "+g.table+" SET name = 'after' WHERE id = 1")
			if err == nil || !strings.Contains(err.Error(), "approval required: review ") {
				t.Fatalf("a write after the grant's end: %v", err)
			}
		})
	}
}

// A session whose open transaction wrote nothing under the grant is not
// held by its end; what it committed under the grant before stays.
func TestGrantEndLeavesOtherTransactions(t *testing.T) {
	t.Parallel()
	g := newGrantTxEnv(t)
	gr := g.grant(t, time.Hour)
	c := g.connect(t)
	ctx := context.Background()
	steps := []struct {
		sql   string
		after func()
	}{
		{"INSERT INTO " + g.table + " VALUES (20, 'autocommit')", nil},
		{"BEGIN", nil},
		{"INSERT INTO " + g.table + " VALUES (21, 'committed')", nil},
		{"COMMIT", nil},
		{"BEGIN", nil},
		{"SELECT name FROM " + g.table + " WHERE id = 1", func() { g.revoke(t, gr.ID) }},
		{"SELECT 1", nil},
		{"COMMIT", nil},
	}
	for _, st := range steps {
		if _, err := c.Exec(ctx, st.sql); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		if st.after != nil {
			st.after()
		}
	}
	if n := g.count(t, "id IN (20, 21)"); n != 2 {
		t.Fatalf("%d of the 2 rows committed under the grant before its end are there", n)
	}
}
