package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/sqlkind"
)

var roles = map[string][]string{
	"engineers":  {"creator"},
	"dba-leads":  {"approver"},
	"sre-oncall": {"creator", "breakglass"},
	"audit":      {"auditor"},
}

func resource(mut func(*config.Policy)) config.Resource {
	r := config.Resource{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
		Access: []string{"engineers", "dba-leads", "sre-oncall"},
		Review: config.Review{Kinds: []string{"write", "schema"}, Approvers: []string{"dba-leads"}},
	}}
	if mut != nil {
		mut(&r.Policy)
	}
	return r
}

func TestCompileDefaults(t *testing.T) {
	p, err := Compile(resource(nil), roles)
	if err != nil {
		t.Fatal(err)
	}
	if p.Approvals != 1 || p.Mode != ModeWait || p.WaitTimeout != 10*time.Minute ||
		p.ReviewTimeout != 24*time.Hour || p.ValidFor != time.Hour || p.GrantMax != 4*time.Hour {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if len(p.Breakglass) != 1 || p.Breakglass[0] != "sre-oncall" {
		t.Fatalf("breakglass groups = %v, want the groups with the role", p.Breakglass)
	}
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*config.Policy)
		want string
	}{
		{"unknown kind", func(p *config.Policy) { p.Review.Kinds = []string{"wrte"} }, `unknown kind "wrte"`},
		{"bad mode", func(p *config.Policy) { p.Review.Mode = "maybe" }, "policy.review.mode"},
		{"negative approvals", func(p *config.Policy) { p.Review.Approvals = -1 }, "approvals"},
		{"no approvers", func(p *config.Policy) { p.Review.Approvers = nil }, "nobody could approve"},
		{"approvers without role", func(p *config.Policy) { p.Review.Approvers = []string{"engineers"} }, "approver role"},
		{"ungrantable", func(p *config.Policy) { p.Grants.Allow = []string{"unknown"} }, "cannot be granted"},
		{"negative duration", func(p *config.Policy) { p.Review.ValidFor = -time.Second }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(resource(tt.mut), roles)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "pg-prod") {
				t.Fatalf("err = %v, want one naming the resource and %q", err, tt.want)
			}
		})
	}
}

func TestNeedsReview(t *testing.T) {
	tests := []struct {
		name  string
		kinds []string
		kind  sqlkind.Kind
		want  bool
	}{
		{"listed", []string{"write"}, sqlkind.Write, true},
		{"not listed", []string{"write"}, sqlkind.Read, false},
		{"unknown implied", []string{"write"}, sqlkind.Unknown, true},
		{"unknown implied by read", []string{"read"}, sqlkind.Unknown, true},
		{"out of range is unknown", []string{"write"}, sqlkind.Kind(99), true},
		{"negative is unknown", []string{"admin"}, sqlkind.Kind(-1), true},
		{"nothing reviewed", nil, sqlkind.Unknown, false},
		{"case and space", []string{" Schema "}, sqlkind.Schema, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(resource(func(p *config.Policy) { p.Review.Kinds = tt.kinds }), roles)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.NeedsReview(tt.kind); got != tt.want {
				t.Fatalf("NeedsReview(%v) = %v, want %v", tt.kind, got, tt.want)
			}
		})
	}
}

func TestMembership(t *testing.T) {
	p, err := Compile(resource(nil), roles)
	if err != nil {
		t.Fatal(err)
	}
	id := func(groups ...string) identity.Identity {
		return identity.Identity{Issuer: "i", Subject: "s", Groups: groups,
			Roles: identity.RolesFor(groups, toRoles(roles))}
	}
	tests := []struct {
		name                         string
		who                          identity.Identity
		connect, approve, breakglass bool
	}{
		{"engineer", id("engineers"), true, false, false},
		{"approver", id("dba-leads"), true, true, false},
		{"oncall", id("sre-oncall"), true, false, true},
		{"outsider", id("audit"), false, false, false},
		{"nobody", identity.Identity{}, false, false, false},
		{"role without group", identity.Identity{Groups: []string{"engineers"}, Roles: []identity.Role{"approver", "breakglass"}}, true, false, false},
		{"group without role", identity.Identity{Groups: []string{"dba-leads"}}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.MayConnect(tt.who); got != tt.connect {
				t.Errorf("MayConnect = %v", got)
			}
			if got := p.IsApprover(tt.who); got != tt.approve {
				t.Errorf("IsApprover = %v", got)
			}
			if got := p.MayBreakglass(tt.who); got != tt.breakglass {
				t.Errorf("MayBreakglass = %v", got)
			}
		})
	}
}

func TestAccessNoneIsNobody(t *testing.T) {
	p, err := Compile(resource(func(p *config.Policy) { p.Access = nil }), roles)
	if err != nil {
		t.Fatal(err)
	}
	if p.MayConnect(identity.Identity{Groups: []string{"dba-leads"}, Roles: []identity.Role{"admin"}}) {
		t.Fatal("empty access admitted someone")
	}
}

func TestGrantCovers(t *testing.T) {
	tests := []struct {
		access []string
		kind   sqlkind.Kind
		want   bool
	}{
		{[]string{"write"}, sqlkind.Write, true},
		{[]string{"write"}, sqlkind.Schema, false},
		{[]string{"write", "unknown"}, sqlkind.Unknown, false},
		{[]string{"unmask"}, sqlkind.Write, false},
		{[]string{"kind(99)"}, sqlkind.Kind(99), false},
	}
	for _, tt := range tests {
		if got := GrantCovers(tt.access, tt.kind); got != tt.want {
			t.Errorf("GrantCovers(%v, %v) = %v", tt.access, tt.kind, got)
		}
	}
}

func toRoles(t map[string][]string) map[string][]identity.Role {
	out := map[string][]identity.Role{}
	for g, rs := range t {
		for _, r := range rs {
			out[g] = append(out[g], identity.Role(r))
		}
	}
	return out
}
