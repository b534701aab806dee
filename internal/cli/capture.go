package cli

import (
	"fmt"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/mysql"
	"github.com/countersign/countersign/internal/engine/postgres"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
)

// captureFilter is postgres.Options.Capture: it masks the result rows a
// resource's `record: {results: N}` keeps in the recording. The trail is
// one for every reader, so every masking rule of the resource applies
// whatever the roles it names, and an unmask grant lifts nothing there.
// Nil when no resource keeps results: the engine then keeps none.
func (e *engines) captureFilter(deps engineDeps) (func(*guard.Session, *guard.Operation, guard.Verdict) postgres.ResultFilter, error) {
	rules, err := recordingMasks(deps.cfg)
	if err != nil || rules == nil {
		return nil, err
	}
	m, err := e.postgresMasker(deps, func(resource string) *mask.Rules { return rules[resource] })
	if err != nil {
		return nil, err
	}
	return func(s *guard.Session, op *guard.Operation, v guard.Verdict) postgres.ResultFilter {
		v.Unmask = false
		if f := m.Filter(s, op, v); f != nil {
			return f
		}
		return nil // a nil *filter must not become a non-nil interface
	}, nil
}

// mysqlCapture is mysql.Options.Capture, as captureFilter is PostgreSQL's.
func mysqlCapture(rules map[string]*mask.Rules) func(*guard.Session, *guard.Operation, guard.Verdict) mysql.ResultFilter {
	if rules == nil {
		return nil
	}
	f := mysql.MaskFilter(rules)
	return func(s *guard.Session, op *guard.Operation, v guard.Verdict) mysql.ResultFilter {
		v.Unmask = false
		return f(s, op, v)
	}
}

// recordingMasks compiles, for each resource that keeps result rows and
// has masking rules, those rules for everyone (roles dropped). Nil when
// no resource keeps result rows.
func recordingMasks(cfg *config.Config) (map[string]*mask.Rules, error) {
	var out map[string]*mask.Rules
	for _, r := range cfg.Resources {
		if r.Record.Results <= 0 {
			continue
		}
		if out == nil {
			out = map[string]*mask.Rules{}
		}
		if len(r.Policy.Masking) == 0 {
			continue
		}
		all := make([]config.MaskRule, len(r.Policy.Masking))
		for i, m := range r.Policy.Masking {
			m.Roles = nil
			all[i] = m
		}
		rules, err := mask.Compile(all)
		if err != nil {
			return nil, fmt.Errorf("resources %s: masking for record.results: %w", r.Name, err)
		}
		out[r.Name] = rules
	}
	return out, nil
}
