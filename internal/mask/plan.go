package mask

import "bytes"

// Column describes one result column as the engine resolved it.
type Column struct {
	Name string
	// Resolved is false when the engine could not tell where the column
	// comes from; such a column is masked whole (fail closed).
	Resolved bool
	// Sources are the table columns the value is built from: one for a
	// plain column, several or none for a computed one (none: a constant
	// or count(*), for which only the detectors run).
	Sources []Source
	// Text is true when the column's type carries text that a masked value
	// can be written into (text, varchar, json...). A masked value of any
	// other type becomes NULL, so drivers never fail to decode it.
	Text bool
	// Fixed is true when the column's type has a textual shape that
	// cannot hold anything a detector finds (boolean, date, timestamp,
	// uuid, a 32-bit integer...; the engine decides): detectors skip its
	// values (a timestamp is no phone number, and scanning every one
	// would cost more than the rest of the row); column rules still apply.
	Fixed bool
}

// Plan says, per result column, how to mask the values of one result. The
// zero Plan masks nothing: build one with Rules.Plan.
type Plan struct {
	rules   *Rules
	roles   []string
	actions []action
}

type action struct {
	strategy Strategy // nil: no column rule; detectors only
	text     bool
	fixed    bool // no detectors: see Column.Fixed
	whole    bool // unresolved lineage: mask whole
}

// Plan prepares the masking of a result with these columns for an identity
// with these roles. A nil *Rules gives a Plan that masks nothing (a resource
// without rules; or an unmask grant, which the caller records).
func (rs *Rules) Plan(roles []string, cols []Column) *Plan {
	p := &Plan{rules: rs, roles: roles, actions: make([]action, len(cols))}
	if rs == nil {
		return p
	}
	for i, c := range cols {
		a := action{text: c.Text, fixed: c.Fixed}
		switch {
		case !c.Resolved:
			a.whole = true
		default:
			if r := rs.columnRule(roles, c.Sources); r != nil {
				a.strategy = r.strategy
			}
		}
		p.actions[i] = a
	}
	return p
}

// Active reports whether the plan can change any value: when it cannot, the
// engine forwards rows untouched.
func (p *Plan) Active() bool {
	if p == nil || p.rules == nil {
		return false
	}
	if len(p.rules.detect) > 0 {
		return true
	}
	for _, a := range p.actions {
		if a.strategy != nil || a.whole {
			return true
		}
	}
	return false
}

// Scans reports whether Value runs the detectors over column i's values:
// no column rule covers the column, it is not masked whole, its type is
// not of a fixed shape, and a detector rule applies to the plan's roles.
// An engine whose values the detectors cannot read as they are (a binary
// number, hex bytea) asks first, and scans their decoded form.
func (p *Plan) Scans(i int) bool {
	if p == nil || p.rules == nil || i < 0 || i >= len(p.actions) {
		return false
	}
	if a := p.actions[i]; a.whole || a.strategy != nil || a.fixed {
		return false
	}
	for j := range p.rules.detect {
		if p.rules.detect[j].appliesTo(p.roles) {
			return true
		}
	}
	return false
}

// Value masks the value of column i. It returns the value to send and
// whether it must be sent as NULL. A NULL input stays NULL.
func (p *Plan) Value(i int, v []byte) (out []byte, null bool) {
	if p == nil || p.rules == nil {
		return v, false
	}
	if i < 0 || i >= len(p.actions) {
		return nil, true // a column the plan does not know: fail closed
	}
	a := p.actions[i]
	switch {
	case a.whole:
		if !a.text {
			return nil, true
		}
		return []byte(Redacted), false
	case a.strategy != nil:
		out, null = a.strategy.Mask(v)
		if !a.text && !null {
			return nil, true
		}
		return out, null
	case a.fixed:
		return v, false
	}
	out = p.rules.Text(p.roles, v)
	if !a.text && !bytes.Equal(out, v) {
		// A number can be a card number too; its masked form would not
		// parse as a number, so it goes as NULL.
		return nil, true
	}
	return out, false
}
