package cli

import (
	"strings"
	"testing"
)

func TestGrantsRequestApproveRevoke(t *testing.T) {
	t.Parallel()
	c := newCast(t, surfacesConfig)
	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"beyond max_duration", []string{"pg-prod", "--access", "write", "--for", "5h", "--reason", "r"}, "at most 4h0m0s (grants.max_duration)"},
		{"in days", []string{"pg-prod", "--access", "write", "--for", "1d", "--reason", "r"}, "grants.max_duration"},
		{"access not allowed", []string{"pg-prod", "--access", "admin", "--for", "1h", "--reason", "r"}, `"admin" cannot be granted on pg-prod; grants.allow is [write unmask]`},
		{"no access", []string{"pg-prod", "--for", "1h", "--reason", "r"}, "at least one access"},
		{"no reason", []string{"pg-prod", "--access", "write", "--for", "1h"}, "needs a reason"},
		{"no duration", []string{"pg-prod", "--access", "write", "--reason", "r"}, "--for 1h"},
		{"bad duration", []string{"pg-prod", "--access", "write", "--for", "soon", "--reason", "r"}, `"soon" is not a duration`},
		{"unknown resource", []string{"pg-nope", "--access", "write", "--for", "1h", "--reason", "r"}, `no resource named "pg-nope"`},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) { c.alice.fails(tt.want, append([]string{"grants", "request"}, tt.args...)...) })
	}
	c.eve.fails("may not connect to pg-prod", "grants", "request", "pg-prod", "--access", "write", "--for", "1h", "--reason", "r")

	out := c.alice.must("grants", "request", "pg-prod", "--access", "write", "--for", "2h", "--reason", "migrate")
	if !strings.Contains(out, "requested: write on pg-prod for 2h0m0s") || !strings.Contains(out, "countersign reviews approve g-") {
		t.Fatalf("grants request: %s", out)
	}
	id := strings.Fields(strings.TrimPrefix(out, "grant "))[0]
	if active := c.alice.must("grants", "list", "--active"); strings.Contains(active, id) {
		t.Fatalf("an unapproved grant is active:\n%s", active)
	}
	c.bob.must("reviews", "approve", id)
	if active := c.alice.must("grants", "list", "--active"); !strings.Contains(active, id) || !strings.Contains(active, "approved") {
		t.Fatalf("the approved grant is not active:\n%s", active)
	}
	c.carol.fails("may not revoke grant "+id, "grants", "revoke", id)
	c.audit.fails("may not revoke", "grants", "revoke", id)
	if out := c.alice.must("grants", "revoke", id); !strings.Contains(out, "revoked "+id) {
		t.Fatalf("revoke: %s", out)
	}
	c.alice.fails("only an active grant can be revoked", "grants", "revoke", id)
	if list := c.audit.must("grants", "list"); !strings.Contains(list, id) || !strings.Contains(list, "revoked") {
		t.Fatalf("grants list after revoke:\n%s", list)
	}

	// An approver and an admin may revoke too.
	for _, who := range []*user{c.dave, c.admin} {
		g := requestGrant(t, c.alice, "pg-prod")
		c.bob.must("reviews", "approve", g)
		who.must("grants", "revoke", g)
	}
	c.bob.fails(`no review "g-0000000000"`, "grants", "revoke", "g-0000000000")
}
