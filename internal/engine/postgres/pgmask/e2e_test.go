package pgmask

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/postgres"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

// gateway is the real engine wired as internal/cli/core.go wires it (real
// guard, review service, recording on a SQLite store, tokens), with the
// masker as its result filter and its guard wrapped to annotate.
type gateway struct {
	addr   string
	svc    *review.Service
	tokens map[string]string // subject -> resource token
	rec    *recording.Log
}

var e2eRoles = map[string][]string{"engineers": {"creator"}, "dba-leads": {"approver"}}

func e2eIdentity(subject, group string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range e2eRoles {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: identity.LocalIssuer, Subject: subject, Email: subject + "@example.com",
		Groups: []string{group}, Roles: identity.RolesFor([]string{group}, tbl), Source: identity.SourceLocal}
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	return startGatewayWith(t, gatewayOptions{})
}

// gatewayOptions changes what startGatewayWith configures; the zero value
// is the resource every other test uses.
type gatewayOptions struct {
	masking []config.MaskRule // nil: ruleSpecs
	kinds   []string          // the kinds that need review; nil: write, schema, privilege, admin
	mode    string            // review mode; "": reject
}

func startGatewayWith(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	if o.masking == nil {
		o.masking = ruleSpecs
	}
	if o.kinds == nil {
		o.kinds = []string{"write", "schema", "privilege", "admin"}
	}
	if o.mode == "" {
		o.mode = "reject"
	}
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "countersign.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := recording.LoadOrCreateKey(filepath.Join(dir, "recording.key"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec, err := recording.Open(ctx, st, recording.Options{Key: key, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	res := config.Resource{Name: "pg-test", Type: "postgres", Address: "127.0.0.1:5432", Database: testDB, Username: "postgres",
		Policy: config.Policy{Access: []string{"engineers", "dba-leads"},
			Review:  config.Review{Kinds: o.kinds, Approvers: []string{"dba-leads"}, Mode: o.mode},
			Masking: o.masking}}
	cfg := &config.Config{Identity: config.Identity{Roles: e2eRoles}, Resources: []config.Resource{res}}
	policies, err := guard.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: rec, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := guard.New(guard.Options{Config: cfg, Reviews: svc, Recorder: rec, DigestKey: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gate.Close)
	rules, err := mask.Compile(res.Policy.Masking)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{
		Rules:   func(name string) *mask.Rules { return map[string]*mask.Rules{"pg-test": rules}[name] },
		Querier: func(string) (lineage.Querier, error) { return testPool, nil },
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	toks := identity.NewTokens(st)
	g := &gateway{svc: svc, tokens: map[string]string{}, rec: rec}
	for _, who := range []identity.Identity{e2eIdentity("alice", "engineers"), e2eIdentity("bob", "dba-leads")} {
		secret, _, err := toks.Issue(ctx, who, []identity.Scope{identity.ScopeResources}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		g.tokens[who.Subject] = secret
	}
	en, err := postgres.New(postgres.Options{
		AllowPlaintextLoopback: true,
		Resource: func(name string) (*config.Resource, bool) {
			if name == res.Name {
				return &res, true
			}
			return nil, false
		},
		Auth: toks, Guard: m.Guard(gate), Recorder: rec, Messages: m,
		Classifier: sqlkind.NewPostgres(sqlkind.PostgresOptions{}),
		Filter: func(s *guard.Session, op *guard.Operation, v guard.Verdict) postgres.ResultFilter {
			return m.Filter(s, op, v)
		},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go en.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = en.Shutdown(ctx)
	})
	g.addr = ln.Addr().String()
	return g
}

func (g *gateway) url(who string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/pg-test?sslmode=disable", who, g.tokens[who], g.addr)
}

func (g *gateway) connect(t *testing.T, who string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, g.url(who))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// rowsText runs a query and renders every value as text.
func rowsText(ctx context.Context, c *pgx.Conn, sql string, mode pgx.QueryExecMode) (string, error) {
	rows, err := c.Query(ctx, sql, mode)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String(), rows.Err()
}

func TestEndToEnd(t *testing.T) {
	g := startGateway(t)
	ctx := context.Background()
	c := g.connect(t, "alice")
	t.Run("dodges through pgx", func(t *testing.T) {
		for _, sql := range dodges {
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
				if strings.Contains(sql, ";") && mode != pgx.QueryExecModeSimpleProtocol {
					continue
				}
				out, err := rowsText(ctx, c, sql, mode)
				if err != nil && strings.Contains(sql, "cust_ssn") && strings.Contains(err.Error(), "approval required") {
					continue // a user function is of unknown kind: reviewed, not run
				}
				if err != nil {
					t.Errorf("%s (mode %v): %v", sql, mode, err)
					continue
				}
				if l := leak(out); l != "" || out == "" {
					t.Errorf("%s (mode %v): %q reached the client:\n%s", sql, mode, l, out)
				}
			}
		}
	})
	t.Run("non-text masked to NULL in binary", func(t *testing.T) {
		var salary, born any
		err := c.QueryRow(ctx, "SELECT salary, born FROM customers WHERE id = 1").Scan(&salary, &born)
		if err != nil || salary != nil || born != nil {
			t.Fatalf("salary %v, born %v, err %v", salary, born, err)
		}
	})
	t.Run("filter deny", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT id FROM customers WHERE ssn LIKE '1%'",
			"SELECT id FROM customers ORDER BY ssn",
			"SELECT id FROM parted_1 WHERE ssn > 'a'",
			"SELECT id FROM customers c JOIN notes n ON n.body = c.ssn",
			"SELECT count(*) FROM customers GROUP BY ssn",
			"INSERT INTO notes SELECT ssn FROM customers",
			"COPY customers TO STDOUT (FORMAT binary)",
		} {
			_, err := rowsText(ctx, c, sql, pgx.QueryExecModeSimpleProtocol)
			if err == nil || !strings.Contains(err.Error(), "unmask") {
				t.Errorf("%s: want a masked_filter refusal, got %v", sql, err)
			}
		}
	})
	t.Run("unique violation", func(t *testing.T) {
		_, err := c.Exec(ctx, "INSERT INTO customers (id, email) VALUES (9, 'alice@corp.io')")
		// A write needs review here; the refusal itself must not leak.
		if err == nil || leak(err.Error()) != "" {
			t.Fatalf("%v", err)
		}
	})
}

func TestEndToEndPsql(t *testing.T) {
	g := startGateway(t)
	for _, sql := range []string{
		`\copy customers to stdout`,
		`\copy customers to stdout with (format csv, header)`,
		`\copy (select email, customers.ssn, note, contact from v_customers join customers using (id)) to stdout csv`,
		`COPY (SELECT upper(email), ssn FROM customers) TO STDOUT`,
		`SELECT to_jsonb(c) FROM customers c`,
		`SELECT * FROM customers`,
	} {
		cmd := exec.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql, g.url("alice"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", sql, err, out)
			continue
		}
		if l := leak(string(out)); l != "" || len(out) == 0 {
			t.Errorf("%s: %q reached psql:\n%s", sql, l, out)
		}
	}
}

func TestEndToEndUnmaskGrant(t *testing.T) {
	g := startGateway(t)
	ctx := context.Background()
	alice, bob := e2eIdentity("alice", "engineers"), e2eIdentity("bob", "dba-leads")
	gr, err := g.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-test", Initiator: alice,
		Access: []string{"unmask"}, Duration: time.Hour, Reason: "support ticket 12"})
	if err != nil {
		t.Fatal(err)
	}
	c := g.connect(t, "alice")
	var ssn string
	if err := c.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "****" {
		t.Fatalf("before approval: %q %v", ssn, err)
	}
	if _, err := g.svc.Approve(ctx, gr.ID, review.Actor{Identity: bob, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, "ok"); err != nil {
		t.Fatal(err)
	}
	var id int
	err = c.QueryRow(ctx, "SELECT id FROM customers WHERE ssn LIKE '219%'").Scan(&id)
	if err != nil || id != 1 {
		t.Fatalf("filter under the grant: %d %v", id, err)
	}
	if err := c.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "219-09-9999" {
		t.Fatalf("under the grant: %q %v", ssn, err)
	}
	// bob has no grant: still masked.
	b := g.connect(t, "bob")
	if err := b.QueryRow(ctx, "SELECT ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "****" {
		t.Fatalf("bob: %q %v", ssn, err)
	}
}
