package mysql

import (
	"bytes"
	"regexp"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// MaskFilter returns an Options.Filter that masks the results of every
// allowed operation with its resource's rules (by resource name), for the
// roles of the session's identity. An operation covered by an unmask grant
// (Verdict.Unmask) and a resource without rules pass unfiltered.
//
// Lineage of each result column (DESIGN.md invariant 5):
//
//	the statement names a view (anywhere) ─► every column traced through
//	    the statement's text and the views' stored definitions
//	    (viewlineage.go); what cannot be traced ─► masked whole
//	else org_table and org_name set, a base table ─► that column
//	org_table a derived table or CTE            ─► unresolved: masked whole
//	no org_table (computed)                      ─► the statement's parse
//	    (mylineage.go): an expression over columns of the FROM tables ─►
//	    those columns; SHOW/EXPLAIN ─► detectors only; else masked whole
//	EXECUTE (SQL-level) ─► masked whole: its text is not in the statement
//
// MariaDB's column definitions cannot be trusted for a view's columns: they
// name the view, or the alias it was given in the query, or (for a
// TEMPTABLE view) the base table with the view's column name, and the
// schema may be empty or the base table's. Hence the text is traced.
//
// A masked value of a non-text column is sent as NULL (the binary row's
// NULL bitmap is rebuilt). ERR packet messages go through the detectors;
// those that quote values (a duplicate key) have the quoted values
// redacted.
func MaskFilter(rules map[string]*mask.Rules) func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
	return func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
		r := rules[s.Resource]
		if r == nil || v.Decision != guard.Allow || v.Unmask {
			return nil
		}
		return &masker{rules: r, roles: guard.RoleNames(s.Identity), op: op}
	}
}

// masker is the ResultFilter of one operation.
type masker struct {
	rules *mask.Rules
	roles []string
	op    *guard.Operation
	views *viewLookup   // nil: no catalog, every relation may be a view
	lin   *lineage      // parsed on the first result set
	lins  *lineageCache // the connection's; nil: parse every time

	cols   []Column
	plan   *mask.Plan
	active bool
	buf    []byte
}

func (m *masker) setViews(v *viewLookup) { m.views = v }

func (m *masker) setLineages(c *lineageCache) { m.lins = c }

func (m *masker) lineage() *lineage {
	if m.lin == nil {
		if m.op.Class.Kind == sqlkind.Unknown {
			// Unknown functions (stored functions may read any table) or
			// text the gateway cannot read: nothing computed is traced.
			m.lin = &lineage{derived: map[string]bool{}}
		} else if m.lins != nil {
			m.lin = m.lins.analyze(m.op.Text, m.op.State.Schema)
		} else {
			m.lin = analyzeLineage(m.op.Text, m.op.State.Schema)
		}
	}
	return m.lin
}

// Columns builds the plan of one result set.
func (m *masker) Columns(cols []Column) error {
	m.cols = cols
	mc := m.lineageOf(cols)
	for i, c := range cols {
		mc[i].Name = c.Name
		mc[i].Text = textType(c.Type)
	}
	m.plan = m.rules.Plan(m.roles, mc)
	m.active = m.plan.Active()
	return nil
}

// lineageOf gives each column's lineage (see MaskFilter).
func (m *masker) lineageOf(cols []Column) []mask.Column {
	l := m.lineage()
	mc := make([]mask.Column, len(cols))
	if !l.parsed || l.elsewhere {
		return mc // unresolved: masked whole
	}
	if !l.metadata && readsView(l.stmt, m.views, m.op.State.Schema, l.derived) {
		if cat := m.views.catalog(); cat != nil {
			if traced := analyzeViews(cat, l.stmt, m.op.State.Schema, len(cols)); traced != nil {
				return traced
			}
		}
		return mc
	}
	isView := func(schema, table string) bool {
		cat := m.views.catalog() // loaded once, only if a column needs it
		return cat == nil || cat.isView(schema, table)
	}
	for i, c := range cols {
		mc[i] = m.column(i, c, isView)
	}
	return mc
}

func (m *masker) column(i int, c Column, isView func(schema, table string) bool) mask.Column {
	if c.OrgTable == "" {
		return m.lineage().computed(i, isView)
	}
	if m.lineage().derived[lower(c.OrgTable)] || isView(c.Schema, c.OrgTable) {
		return mask.Column{}
	}
	return mask.Column{Resolved: true, Sources: []mask.Source{{Schema: c.Schema, Table: c.OrgTable, Column: c.OrgName}}}
}

func (m *masker) Active() bool { return m.active }

// TextRow masks a text-protocol row in place.
func (m *masker) TextRow(vals [][]byte) error {
	for i, v := range vals {
		if v == nil {
			continue
		}
		out, null := m.plan.Value(i, v)
		if null {
			out = nil
		}
		vals[i] = out
	}
	return nil
}

// BinaryRow masks a binary-protocol row: changed text values are
// re-encoded, masked values of other types become NULL in the rebuilt
// bitmap.
func (m *masker) BinaryRow(p []byte) ([]byte, error) {
	vals, err := parseBinaryRow(p, m.cols)
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range vals {
		bv := &vals[i]
		if bv.null {
			continue
		}
		c := m.cols[i]
		in := bv.value
		if !textType(c.Type) {
			in = binaryText(c, bv.value)
		}
		out, null := m.plan.Value(i, in)
		switch {
		case null:
			bv.null, changed = true, true
		case textType(c.Type) && !bytes.Equal(out, bv.value):
			bv.value, bv.raw, changed = out, nil, true
		}
	}
	if !changed {
		return p, nil
	}
	m.buf = appendBinaryRow(m.buf[:0], vals)
	return m.buf, nil
}

// valueQuotingErrors are MySQL/MariaDB errors whose message quotes a value
// that may come from a masked column.
var valueQuotingErrors = map[uint16]bool{
	1062: true, // ER_DUP_ENTRY: Duplicate entry '%s' for key '%s'
	1586: true, // ER_DUP_ENTRY_WITH_KEY_NAME
	1292: true, // ER_TRUNCATED_WRONG_VALUE: Truncated incorrect %s value: '%s'
	1366: true, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
	1367: true, // ER_ILLEGAL_VALUE_FOR_TYPE
	1265: true, // WARN_DATA_TRUNCATED
	1406: true, // ER_DATA_TOO_LONG
	3140: true, // ER_INVALID_JSON_TEXT
}

var quoted = regexp.MustCompile(`'(?:[^'\\]|\\.|'')*'`)

// ErrorMessage masks an ERR packet's message: quoted values of the errors
// that quote values are redacted (the columns behind them cannot be told
// from the message), then the detectors run over the whole text.
func (m *masker) ErrorMessage(code uint16, msg []byte) []byte {
	if valueQuotingErrors[code] {
		msg = redactFirstQuoted(msg)
	}
	return m.rules.Text(m.roles, msg)
}

// redactFirstQuoted replaces the value quoted first; for the other quoted
// parts (key and column names) nothing is hidden. ER_INVALID_JSON_TEXT and
// the truncation errors quote only one value.
func redactFirstQuoted(msg []byte) []byte {
	loc := quoted.FindIndex(msg)
	if loc == nil {
		return msg
	}
	out := append([]byte(nil), msg[:loc[0]]...)
	out = append(out, '\'')
	out = append(out, mask.Redacted...)
	out = append(out, '\'')
	return append(out, msg[loc[1]:]...)
}

// textType reports whether a column type carries text a masked value can
// be written into.
func textType(t byte) bool {
	switch t {
	case 0x0f, 0xfd, 0xfe, 0xf9, 0xfa, 0xfb, 0xfc, 0xf5, 0xf7, 0xf8: // VARCHAR, VAR_STRING, STRING, BLOBs, JSON, ENUM, SET
		return true
	}
	return false
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
