package mask

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/config"
)

// Rules are a resource's compiled masking rules. Safe for concurrent use.
type Rules struct {
	column []rule // column and column_regex rules, file order
	detect []rule // detector rules, file order
	// dets is every detector of every detector rule, in file order, with
	// its signals copied out so Text can skip it without a call: it runs
	// over every scanned value of every row.
	dets []ruleDetector
}

type ruleDetector struct {
	need, needAny uint32
	d             *Detector
	r             *rule
}

type rule struct {
	index    int        // position in the file, for messages
	globs    [][]string // schema.table.column patterns split on '.'
	re       *regexp.Regexp
	dets     []*Detector
	strategy Strategy
	deny     bool // filter: deny
	roles    []string
}

// Compile checks and compiles masking rules. Every error names the rule.
func Compile(specs []config.MaskRule) (*Rules, error) {
	rs := &Rules{}
	for i, s := range specs {
		r, err := compileRule(i, s)
		if err != nil {
			return nil, fmt.Errorf("masking[%d]: %w", i, err)
		}
		if len(r.dets) > 0 {
			rs.detect = append(rs.detect, r)
		} else {
			rs.column = append(rs.column, r)
		}
	}
	for i := range rs.detect {
		r := &rs.detect[i]
		for _, d := range r.dets {
			rs.dets = append(rs.dets, ruleDetector{need: d.need, needAny: d.needAny, d: d, r: r})
		}
	}
	return rs, nil
}

func compileRule(i int, s config.MaskRule) (rule, error) {
	r := rule{index: i, deny: s.Filter == "deny", roles: s.Roles}
	set := 0
	if len(s.Columns) > 0 {
		set++
		for _, c := range s.Columns {
			g := strings.Split(strings.ToLower(c), ".")
			for _, part := range g {
				if _, err := path.Match(part, ""); err != nil || part == "" {
					return r, fmt.Errorf("bad column pattern %q", c)
				}
			}
			if len(g) > 3 {
				return r, fmt.Errorf("bad column pattern %q: use schema.table.column", c)
			}
			r.globs = append(r.globs, g)
		}
	}
	if s.ColumnRegex != "" {
		set++
		re, err := regexp.Compile(s.ColumnRegex)
		if err != nil {
			return r, fmt.Errorf("column_regex: %v", err)
		}
		r.re = re
	}
	if len(s.Detectors) > 0 {
		set++
		for _, n := range s.Detectors {
			d, err := LookupDetector(n)
			if err != nil {
				return r, err
			}
			r.dets = append(r.dets, d)
		}
	}
	if set != 1 {
		return r, fmt.Errorf("set exactly one of columns, column_regex or detectors")
	}
	st, err := NewStrategy(StrategySpec{Name: s.Strategy, KeepFirst: s.KeepFirst, KeepLast: s.KeepLast, Fixed: s.Fixed, HashKey: s.HashKey})
	if err != nil {
		return r, err
	}
	r.strategy = st
	return r, nil
}

// DenyApplies reports whether a filter: deny rule among specs applies to
// an identity with these roles (a rule without roles applies to everyone).
// The engines ask it before they trace filter uses, and the guard before
// it refuses an untraced one.
func DenyApplies(specs []config.MaskRule, roles []string) bool {
	for _, s := range specs {
		if s.Filter == "deny" && (len(s.Roles) == 0 || slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(s.Roles, r) })) {
			return true
		}
	}
	return false
}

func (r *rule) appliesTo(roles []string) bool {
	if len(r.roles) == 0 {
		return true
	}
	for _, x := range roles {
		if slices.Contains(r.roles, x) {
			return true
		}
	}
	return false
}

// matches reports whether the rule covers the source column. Patterns are
// matched from the right, so "*.email" covers every table's email column
// in every schema.
func (r *rule) matches(s Source) bool {
	if r.re != nil {
		return r.re.MatchString(s.Column)
	}
	full := []string{strings.ToLower(s.Schema), strings.ToLower(s.Table), strings.ToLower(s.Column)}
	for _, g := range r.globs {
		if matchRight(g, full) {
			return true
		}
	}
	return false
}

func matchRight(glob, full []string) bool {
	off := len(full) - len(glob)
	for i, g := range glob {
		if ok, _ := path.Match(g, full[off+i]); !ok {
			return false
		}
	}
	return true
}

// Source is a table column a result column is built from.
type Source struct {
	Schema, Table, Column string
}

// ColumnRule returns the first column rule (file order) that covers any of
// the sources for an identity with these roles, or nil.
func (rs *Rules) columnRule(roles []string, sources []Source) *rule {
	for i := range rs.column {
		r := &rs.column[i]
		if !r.appliesTo(roles) {
			continue
		}
		for _, s := range sources {
			if r.matches(s) {
				return r
			}
		}
	}
	return nil
}

// FilterDenied reports whether a column may not be used other than as an
// output column (filter: deny) for an identity with these roles, and which
// rule says so.
func (rs *Rules) FilterDenied(roles []string, s Source) (bool, int) {
	r := rs.columnRule(roles, []Source{s})
	if r != nil && r.deny {
		return true, r.index
	}
	return false, 0
}

// Masked reports whether a column rule covers the source for these roles.
func (rs *Rules) Masked(roles []string, s Source) bool {
	return rs.columnRule(roles, []Source{s}) != nil
}

// Derived is c, a column computed from its sources rather than read as
// stored, made unresolved (masked whole) when a column rule covers any of
// its sources for these roles: a rule's partial or hash form of a derived
// value shows its shape (reverse(ssn)) or answers a guess (a hash of
// replace(ssn, guess, ”)). Only a stored value read as it is gets the
// rule's own strategy.
func (rs *Rules) Derived(roles []string, c Column) Column {
	for _, s := range c.Sources {
		if rs.Masked(roles, s) {
			return Column{}
		}
	}
	return c
}

// Text runs the detectors over free text (statement texts, error and notice
// messages) and returns it with every match masked. It returns v itself
// when nothing matched.
func (rs *Rules) Text(roles []string, v []byte) []byte {
	if len(rs.detect) == 0 {
		return v
	}
	out := v
	sig := withNormalized(out, signals(out))
	if sig == 0 {
		return v // every detector needs some signal (most values have none)
	}
	for i := range rs.dets {
		x := &rs.dets[i]
		if sig&x.need != x.need || (x.needAny != 0 && sig&x.needAny == 0) || !x.r.appliesTo(roles) {
			continue
		}
		spans := x.d.find(out, sig)
		if len(spans) == 0 {
			continue
		}
		out = replaceSpans(out, spans, x.r.strategy)
		sig = withNormalized(out, signals(out))
	}
	return out
}

func replaceSpans(v []byte, spans [][2]int, st Strategy) []byte {
	out := make([]byte, 0, len(v))
	last := 0
	for _, sp := range spans {
		out = append(out, v[last:sp[0]]...)
		m, null := st.Mask(v[sp[0]:sp[1]])
		if null {
			m = []byte(Redacted) // inside text, NULL cannot stand for a part
		}
		out = append(out, m...)
		last = sp[1]
	}
	return append(out, v[last:]...)
}
