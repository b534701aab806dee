package guard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/policy"
)

// masking is one resource's masking rules as the guard needs them: the
// compiled rules (which columns are filter: deny for which roles) and the
// raw specs (whether any filter: deny rule applies to a role set).
type masking struct {
	rules *mask.Rules
	specs []config.MaskRule
}

func compileMasking(cfg *config.Config) (map[string]*masking, error) {
	out := map[string]*masking{}
	for _, r := range cfg.Resources {
		if len(r.Policy.Masking) == 0 {
			continue
		}
		rules, err := mask.Compile(r.Policy.Masking)
		if err != nil {
			return nil, fmt.Errorf("resources %s: policy.%w", r.Name, err)
		}
		out[r.Name] = &masking{rules: rules, specs: r.Policy.Masking}
	}
	return out, nil
}

// RoleNames turns an identity's roles into the names masking rules use.
func RoleNames(id identity.Identity) []string {
	out := make([]string, len(id.Roles))
	for i, r := range id.Roles {
		out[i] = string(r)
	}
	return out
}

// maskCheck runs before anything else is decided: it finds an active
// unmask grant of the identity (unmask is its id), and refuses an
// operation that uses a filter: deny column other than as output, whose
// filter uses could not be traced while such a rule exists, or whose
// result could not be masked, unless that grant covers it. A store error
// refuses.
func (g *Gate) maskCheck(ctx context.Context, s *Session, op *Operation) (unmask string, v Verdict, refused bool) {
	m := g.masks[s.Resource]
	if m == nil {
		return "", Verdict{}, false
	}
	gr, ok, err := g.reviews.ActiveGrant(ctx, s.Resource, s.Identity, func(a []string) bool {
		return slices.Contains(a, policy.AccessUnmask)
	})
	if err != nil {
		return "", g.failed("review_failed", err, s), true
	}
	if ok {
		// Results streaming unmasked must stop when the grant ends too.
		g.watchGrant(s, gr)
		return gr.ID, Verdict{}, false
	}
	if why := m.refusal(RoleNames(s.Identity), op); why != "" {
		return "", deny("masked_filter", why+"; "+unmaskHint(s.Resource)), true
	}
	return "", Verdict{}, false
}

// refusal says why the operation may not run without an unmask grant, or
// "" when it may.
func (m *masking) refusal(roles []string, op *Operation) string {
	for _, src := range op.FilterUses {
		if deny, idx := m.rules.FilterDenied(roles, src); deny {
			return fmt.Sprintf("column %s may only be read as output, not used in WHERE, JOIN, HAVING, ORDER BY, GROUP BY, DISTINCT, UNION, a CASE condition, a comparison or test, a function or cast that can fail on it or tell something about it (length, ::int, nullif), or as the source of a write: masking rule policy.masking[%d] (%s) says filter: deny",
				sourceName(src), idx, ruleLabel(m.specs[idx]))
		}
	}
	if op.FilterUnresolved && mask.DenyApplies(m.specs, roles) {
		return "countersign could not tell which columns this statement uses in its conditions, and a masking rule with filter: deny applies to you; name every column plainly and avoid functions countersign does not know"
	}
	if op.Unmaskable != "" {
		return op.Unmaskable
	}
	return ""
}

func sourceName(s mask.Source) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{s.Schema, s.Table, s.Column} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

func ruleLabel(r config.MaskRule) string {
	switch {
	case len(r.Columns) > 0:
		return "columns " + strings.Join(r.Columns, ", ")
	case r.ColumnRegex != "":
		return "column_regex " + r.ColumnRegex
	}
	return "detectors " + strings.Join(r.Detectors, ", ")
}

func unmaskHint(resource string) string {
	return fmt.Sprintf("to use it, ask for an unmask grant: countersign grants request %s --access unmask --for 1h --reason \"...\", and have an approver approve it", resource)
}

// withUnmask marks an allowed verdict as unmasked by the grant; a held
// verdict gets the grant checked again when its wait ends, since the grant
// may have ended meanwhile.
func (g *Gate) withUnmask(s *Session, op *Operation, v Verdict, grant string) Verdict {
	switch v.Decision {
	case Allow:
		if grant != "" {
			v.Unmask, v.UnmaskGrantID = true, grant
		}
	case Hold:
		if wait := v.Wait; wait != nil {
			v.Wait = func(ctx context.Context) Verdict {
				final := wait(ctx)
				if final.Decision != Allow {
					return final
				}
				grant, refusal, refused := g.maskCheck(ctx, s, op)
				if refused {
					refusal.ReviewID = final.ReviewID
					return refusal
				}
				return g.withUnmask(s, op, final, grant)
			}
		}
	}
	return v
}
