package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Mode is what a session sees when its operation needs review.
type Mode string

const (
	// ModeWait holds the operation until the review is decided.
	ModeWait Mode = "wait"
	// ModeReject refuses at once with the review id; the initiator runs the
	// identical operation again once it is approved.
	ModeReject Mode = "reject"
)

// Defaults applied when the configuration leaves a value zero.
const (
	DefaultApprovals     = 1
	DefaultWaitTimeout   = 10 * time.Minute
	DefaultReviewTimeout = 24 * time.Hour
	DefaultValidFor      = time.Hour
	DefaultGrantMax      = 4 * time.Hour
)

// AccessUnmask is the grant access that lifts masking (the masking issue
// reads it); every other grant access is a kind name.
const AccessUnmask = "unmask"

// DefaultGrantAllow is what may be granted when grants.allow is empty.
var DefaultGrantAllow = []string{"write", "schema", AccessUnmask}

// grantable lists every access a grant may ever open. Read needs no grant
// and unknown is never opened wholesale.
var grantable = []string{"write", "schema", "privilege", "admin", AccessUnmask}

// Policy is one resource's compiled policy. Fields are read-only.
type Policy struct {
	Resource string
	// Access lists the groups that may connect; empty admits nobody.
	Access []string
	// Approvers lists the groups whose members (holding the approver role)
	// may approve.
	Approvers     []string
	Approvals     int
	Mode          Mode
	WaitTimeout   time.Duration
	ReviewTimeout time.Duration
	ValidFor      time.Duration
	GrantMax      time.Duration
	// GrantAllow lists the accesses a grant may open (kind names, unmask).
	GrantAllow []string
	// Breakglass lists the groups whose members (holding the breakglass
	// role) may break glass.
	Breakglass []string

	reviewed map[sqlkind.Kind]bool
}

// Compile validates the resource's policy and fills defaults. roles is the
// identity.roles table (group -> role names); it supplies the default
// break-glass groups and lets Compile refuse approver groups that grant
// nobody the approver role.
func Compile(res config.Resource, roles map[string][]string) (*Policy, error) {
	cp := res.Policy
	p := &Policy{
		Resource:      res.Name,
		Access:        slices.Clone(cp.Access),
		Approvers:     slices.Clone(cp.Review.Approvers),
		Approvals:     orInt(cp.Review.Approvals, DefaultApprovals),
		Mode:          Mode(orString(cp.Review.Mode, string(ModeWait))),
		WaitTimeout:   orDur(cp.Review.WaitTimeout, DefaultWaitTimeout),
		ReviewTimeout: orDur(cp.Review.ReviewTimeout, DefaultReviewTimeout),
		ValidFor:      orDur(cp.Review.ValidFor, DefaultValidFor),
		GrantMax:      orDur(cp.Grants.MaxDuration, DefaultGrantMax),
		GrantAllow:    slices.Clone(cp.Grants.Allow),
		Breakglass:    slices.Clone(cp.Breakglass),
		reviewed:      map[sqlkind.Kind]bool{},
	}
	if len(p.GrantAllow) == 0 {
		p.GrantAllow = slices.Clone(DefaultGrantAllow)
	}
	if len(p.Breakglass) == 0 {
		p.Breakglass = groupsWithRole(roles, identity.RoleBreakglass)
	}
	if err := p.compileKinds(cp.Review.Kinds); err != nil {
		return nil, p.errorf("policy.review.kinds: %v", err)
	}
	if err := p.validate(roles); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Policy) compileKinds(kinds []string) error {
	for _, name := range kinds {
		k, ok := sqlkind.ParseKind(strings.ToLower(strings.TrimSpace(name)))
		if !ok {
			return fmt.Errorf("unknown kind %q; use read, write, schema, privilege, admin or unknown", name)
		}
		p.reviewed[k] = true
	}
	if len(p.reviewed) > 0 {
		// Unknown is the most dangerous kind: reviewing anything reviews it.
		p.reviewed[sqlkind.Unknown] = true
	}
	return nil
}

func (p *Policy) validate(roles map[string][]string) error {
	switch {
	case p.Mode != ModeWait && p.Mode != ModeReject:
		return p.errorf("policy.review.mode: %q is not a mode; use wait or reject", p.Mode)
	case p.Approvals < 1:
		return p.errorf("policy.review.approvals: %d; it must be at least 1", p.Approvals)
	case p.WaitTimeout < 0 || p.ReviewTimeout < 0 || p.ValidFor < 0 || p.GrantMax < 0:
		return p.errorf("policy: durations must not be negative")
	}
	for _, a := range p.GrantAllow {
		if !slices.Contains(grantable, a) {
			return p.errorf("policy.grants.allow: %q cannot be granted; use write, schema, privilege, admin or unmask", a)
		}
	}
	if len(p.reviewed) == 0 {
		return nil
	}
	if len(p.Approvers) == 0 {
		return p.errorf("policy.review.approvers: empty, so nobody could approve the reviewed kinds; name at least one group")
	}
	if len(groupsWithRole(roles, identity.RoleApprover, p.Approvers...)) == 0 {
		return p.errorf("policy.review.approvers %v: none of these groups has the approver role in identity.roles, so nobody could approve; add e.g. `%s: [approver]`", p.Approvers, p.Approvers[0])
	}
	return nil
}

func (p *Policy) errorf(format string, args ...any) error {
	return fmt.Errorf("resource %q: "+format, append([]any{p.Resource}, args...)...)
}

// groupsWithRole lists, sorted, the groups of the roles table that grant the
// role; with only set, just those among only.
func groupsWithRole(roles map[string][]string, role identity.Role, only ...string) []string {
	var out []string
	for g, rs := range roles {
		if len(only) > 0 && !slices.Contains(only, g) {
			continue
		}
		if slices.Contains(rs, string(role)) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
