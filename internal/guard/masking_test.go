package guard_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

var maskRules = []config.MaskRule{
	{Columns: []string{"*.email"}, Strategy: "partial", KeepLast: 4},
	{Columns: []string{"public.customers.ssn"}, Strategy: "redact", Filter: "deny"},
	{Columns: []string{"public.customers.note"}, Strategy: "redact", Filter: "deny", Roles: []string{"creator"}},
	{Detectors: []string{"email"}, Strategy: "redact"},
}

// newMaskEnv is newEnv with masking rules on pg-prod.
func newMaskEnv(t *testing.T) *env {
	t.Helper()
	cfg := &config.Config{
		Identity: config.Identity{Roles: roles},
		Resources: []config.Resource{{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
			Access:  []string{"engineers", "dba-leads", "sre-oncall", "audit"},
			Review:  config.Review{Kinds: []string{"write", "schema"}, Approvers: []string{"dba-leads"}, Mode: "reject"},
			Masking: maskRules,
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

func read(text string, uses ...mask.Source) *guard.Operation {
	return &guard.Operation{Text: text, State: guard.State{SearchPath: "public"},
		Class: sqlkind.Classification{Kind: sqlkind.Read, Statements: 1}, FilterUses: uses}
}

var (
	ssn   = mask.Source{Schema: "public", Table: "customers", Column: "ssn"}
	email = mask.Source{Schema: "public", Table: "customers", Column: "email"}
	note  = mask.Source{Schema: "public", Table: "customers", Column: "note"}
)

func TestMaskedFilterRefused(t *testing.T) {
	e := newMaskEnv(t)
	ctx := context.Background()
	unres := read("SELECT * FROM customers WHERE f(id)")
	unres.FilterUnresolved = true
	binary := read("COPY customers TO STDOUT (FORMAT binary)")
	binary.Unmaskable = "binary COPY cannot be masked; use text or csv"
	tests := []struct {
		name string
		who  identity.Identity
		op   *guard.Operation
		deny bool
		want string
	}{
		{"ssn in WHERE", alice, read("SELECT id FROM customers WHERE ssn LIKE '1%'", ssn), true, "public.customers.ssn"},
		{"email in WHERE (filter allowed)", alice, read("SELECT id FROM customers WHERE email = 'x'", email), false, ""},
		{"no filter use", alice, read("SELECT ssn FROM customers"), false, ""},
		{"note is deny for creators", alice, read("SELECT 1 FROM customers ORDER BY note", note), true, "policy.masking[2]"},
		{"note is not deny for auditors", audit, read("SELECT 1 FROM customers ORDER BY note", note), false, ""},
		{"unresolved filter with a deny rule", alice, unres, true, "could not tell"},
		{"unmaskable result", audit, binary, true, "binary COPY"},
		{"write from ssn", alice, &guard.Operation{Text: "INSERT INTO notes SELECT ssn FROM customers",
			Class: sqlkind.Classification{Kind: sqlkind.Write}, FilterUses: []mask.Source{ssn}}, true, "source of a write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.g.Decide(ctx, session(tt.who, "s-"+tt.who.Subject), tt.op)
			if !tt.deny {
				if v.Decision != guard.Allow || v.Unmask {
					t.Fatalf("want allow without unmask: %+v", v)
				}
				return
			}
			if v.Decision != guard.Deny || v.Code != "masked_filter" || !strings.Contains(v.Message, tt.want) ||
				!strings.Contains(v.Message, "countersign grants request pg-prod --access unmask") {
				t.Fatalf("want masked_filter naming %q: %+v", tt.want, v)
			}
		})
	}
	if n := e.rec.count("review.created"); n != 0 {
		t.Fatalf("a refused filter use created %d reviews", n)
	}
}

func TestUnmaskGrantLiftsMasking(t *testing.T) {
	e := newMaskEnv(t)
	ctx := context.Background()
	s := session(alice, "s1")
	op := read("SELECT id FROM customers WHERE ssn LIKE '1%'", ssn)
	if v := e.g.Decide(ctx, s, op); v.Decision != guard.Deny || v.Code != "masked_filter" {
		t.Fatalf("before the grant: %+v", v)
	}
	gr, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: alice,
		Access: []string{"unmask"}, Duration: time.Hour, Reason: "incident 7"})
	if err != nil {
		t.Fatal(err)
	}
	if v := e.g.Decide(ctx, s, op); v.Decision != guard.Deny {
		t.Fatalf("a pending grant lifted the mask: %+v", v)
	}
	if _, err := e.svc.Approve(ctx, gr.ID, api(bob), "ok"); err != nil {
		t.Fatal(err)
	}
	v := e.g.Decide(ctx, s, op)
	if v.Decision != guard.Allow || !v.Unmask || v.UnmaskGrantID != gr.ID {
		t.Fatalf("with the grant: %+v", v)
	}
	// The grant is alice's alone.
	if v := e.g.Decide(ctx, session(oncal, "s2"), op); v.Decision != guard.Deny || v.Unmask {
		t.Fatalf("another identity: %+v", v)
	}
	// A write still needs its review; the unmask grant does not open writes.
	w := write("UPDATE customers SET note = 'x'")
	if v := e.g.Decide(ctx, s, w); v.Decision != guard.Deny || v.Code != "approval_required" {
		t.Fatalf("write under an unmask grant: %+v", v)
	}
	if _, err := e.svc.RevokeGrant(ctx, gr.ID, api(alice)); err != nil {
		t.Fatal(err)
	}
	if v := e.g.Decide(ctx, s, op); v.Decision != guard.Deny || v.Unmask {
		t.Fatalf("after revocation: %+v", v)
	}
}

func TestMaskCheckStoreErrorRefuses(t *testing.T) {
	e := newMaskEnv(t)
	e.store.fail.Store(true)
	v := e.g.Decide(context.Background(), session(alice, "s1"), read("SELECT 1"))
	if v.Decision != guard.Deny {
		t.Fatalf("store down: %+v", v)
	}
}

func TestNoMaskingNoGrantLookup(t *testing.T) {
	e := newEnv(t, "reject", 0)
	e.store.fail.Store(true) // a lookup would fail the read
	op := read("SELECT id FROM customers WHERE ssn LIKE '1%'", ssn)
	if v := e.g.Decide(context.Background(), session(alice, "s1"), op); v.Decision != guard.Allow || v.Unmask {
		t.Fatalf("resource without masking: %+v", v)
	}
}
