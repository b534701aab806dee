package pgmask

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
)

// result filters the results of one operation. It is used by the relay
// goroutine only.
type result struct {
	m     *Masker
	res   string
	op    *guard.Operation
	rules *mask.Rules
	roles []string

	stmts *statements // the operation's statements, analyzed on first need
	descs int         // RowDescriptions seen

	plan    *mask.Plan
	active  bool
	kinds   []textKind
	formats []int16
	oids    []uint32    // each field's type: values the detectors cannot read are decoded (scan.go)
	scans   []bool      // the plan runs the detectors over the field (mask.Plan.Scans)
	cat     *resCatalog // the catalog of the last RowDescription; nil: unavailable

	copy *copyState
}

// RowDescription resolves where each field comes from and prepares the
// plan the rows that follow are masked with.
func (r *result) RowDescription(d *pgproto3.RowDescription) error {
	idx := r.descs
	r.descs++
	ctx, cancel := lookupCtx()
	defer cancel()
	n := len(d.Fields)
	cols := make([]mask.Column, n)
	r.kinds = make([]textKind, n)
	r.formats = make([]int16, n)
	r.oids = make([]uint32, n)
	cat, err := r.m.catalog(r.res)
	if err != nil {
		r.m.log.Warn("catalog unavailable; every column of the result is masked", "resource", r.res, "error", err)
	}
	r.cat = cat
	var computed []mask.Column
	for i, f := range d.Fields {
		r.formats[i], r.oids[i] = f.Format, f.DataTypeOID
		cols[i] = mask.Column{Name: string(f.Name)}
		if cat == nil {
			continue
		}
		if r.kinds[i], err = cat.typeKind(ctx, f.DataTypeOID); err != nil {
			r.m.log.Warn("type lookup failed; masked values of the column become NULL", "resource", r.res, "error", err)
		}
		if f.TableOID != 0 {
			var plain bool
			if cols[i], plain, err = cat.column(ctx, f.TableOID, int16(f.TableAttributeNumber), string(f.Name)); err != nil {
				r.m.log.Warn("relation lookup failed; the column is masked whole", "resource", r.res, "error", err)
			}
			if !plain {
				cols[i] = r.derived(cols[i])
			}
			cols[i] = sampled(cols[i])
			continue
		}
		if computed == nil {
			computed = r.computed(ctx, cat, idx, d)
		}
		cols[i] = r.derived(computed[i])
	}
	for i := range cols {
		cols[i].Text = r.kinds[i] != kindOther
		cols[i].Fixed = fixedShape[d.Fields[i].DataTypeOID]
	}
	r.plan = r.rules.Plan(r.roles, cols)
	r.active = r.plan.Active()
	r.scans = make([]bool, n)
	for i := range r.scans {
		r.scans[i] = r.plan.Scans(i)
	}
	return nil
}

// computed returns lineage's columns for the idx-th RowDescription of the
// operation (for the fields with no table); all unresolved when unsure.
func (r *result) computed(ctx context.Context, cat *resCatalog, idx int, d *pgproto3.RowDescription) []mask.Column {
	if r.stmts == nil {
		r.stmts = analyze(ctx, cat, r.op)
	}
	res := r.stmts.forRowDescription(idx, d)
	return expandColumns(ctx, cat, res.ColumnsFor(len(d.Fields)))
}

// expandColumns adds partition ancestors to each column's sources; a
// column whose ancestors cannot be read is unresolved.
func expandColumns(ctx context.Context, cat *resCatalog, cols []mask.Column) []mask.Column {
	out := slices.Clone(cols)
	for i := range out {
		srcs, err := cat.expand(ctx, out[i].Sources)
		if err != nil {
			out[i].Resolved = false
		}
		out[i].Sources = srcs
	}
	return out
}

// derived masks a computed column whole when a column rule covers any of
// its sources. A shape-keeping strategy (partial, email) on an expression
// would show what the client chose to put at the kept end ('xxxx' ||
// substr(email, 1, 3) under keep_last: 3), so only a plain column keeps
// its rule's strategy.
func (r *result) derived(c mask.Column) mask.Column {
	c = sampled(c)
	if !c.Resolved {
		return c
	}
	return r.rules.Derived(r.roles, c)
}

// statsValues are the catalog columns that hold sampled values of every
// table's columns, masked ones included (pg_stats, pg_stats_ext and
// pg_mcv_list_items read them): no column rule names them, so a column
// built from them is masked whole.
var statsValues = map[[2]string]func(col string) bool{
	{"pg_catalog", "pg_statistic"}:          func(col string) bool { return strings.HasPrefix(col, "stavalues") },
	{"pg_catalog", "pg_statistic_ext_data"}: func(col string) bool { return col == "stxdmcv" || col == "stxdexpr" },
}

// sampled marks a column built from statsValues unresolved.
func sampled(c mask.Column) mask.Column {
	for _, s := range c.Sources {
		if holds := statsValues[[2]string{s.Schema, s.Table}]; holds != nil && holds(s.Column) {
			c.Resolved = false
			return c
		}
	}
	return c
}

// DataRow masks the row's values in place. With no active plan it does
// nothing and allocates nothing.
func (r *result) DataRow(m *pgproto3.DataRow) error {
	if r.plan == nil {
		r.undescribed(len(m.Values))
	}
	if !r.active {
		return nil
	}
	for i, v := range m.Values {
		if v == nil {
			continue
		}
		m.Values[i] = r.value(i, v)
	}
	return nil
}

// undescribed prepares for rows whose description the filter never saw
// (an Execute of a portal nobody described): nothing is known of them, so
// every value is masked whole and, its format unknown, sent as NULL.
func (r *result) undescribed(n int) {
	r.plan = r.rules.Plan(r.roles, make([]mask.Column, n))
	r.kinds, r.formats, r.oids, r.scans = make([]textKind, n), make([]int16, n), make([]uint32, n), nil
	r.active = true
}

// value masks one non-NULL value; nil means NULL.
func (r *result) value(i int, v []byte) []byte {
	if i >= len(r.kinds) {
		return nil // more values than described: fail closed
	}
	kind, binary := r.kinds[i], r.formats[i] == 1
	if i < len(r.scans) && r.scans[i] {
		if out, done := r.scanned(i, kind, binary, v); done {
			return out
		}
	}
	if kind == kindJSONB && binary {
		if len(v) == 0 || v[0] != 1 {
			return nil // a jsonb version this filter does not know
		}
		out := r.value1(i, v[1:], kindJSON)
		if out == nil {
			return nil
		}
		return append([]byte{1}, out...)
	}
	return r.value1(i, v, kind)
}

// scanned runs the detectors over what a value of a scanned column hides
// from them as it is written (scan.go, scantext.go). A value of a type
// that is not text is decided here: a match, or binary bytes that cannot
// be decoded, send NULL; otherwise it passes as it is. A text or json
// value is decided here only when a part that had to be decoded (hex
// bytea in an array's text, a float's exponent form) matches: it is
// masked whole. done false: mask it as usual.
func (r *result) scanned(i int, kind textKind, binary bool, v []byte) (out []byte, done bool) {
	if kind == kindOther {
		view := textView(r.oids[i], v)
		if binary {
			var ok bool
			if view, ok = binaryText(r.oids[i], v, r.shape); !ok {
				return nil, true
			}
		}
		if r.detects(i, view) {
			return nil, true
		}
		return v, true
	}
	body := v
	if kind == kindJSONB && binary {
		if len(v) == 0 || v[0] != 1 {
			return nil, true
		}
		body = v[1:]
	}
	ex := textExtras(body)
	if ex == nil || !r.detects(i, ex) {
		return nil, false
	}
	return maskedWhole(kind, binary), true
}

// detects reports whether the detectors find anything in view, as column
// i's plan runs them.
func (r *result) detects(i int, view []byte) bool {
	return planDetects(r.plan, i, view)
}

func planDetects(p *mask.Plan, i int, view []byte) bool {
	out, null := p.Value(i, view)
	return null || !bytes.Equal(out, view)
}

// maskedWhole is a text or json value masked whole.
func maskedWhole(kind textKind, binary bool) []byte {
	switch {
	case kind == kindJSONB && binary:
		return append([]byte{1}, jsonRedacted...)
	case kind == kindJSON || kind == kindJSONB:
		return slices.Clone(jsonRedacted)
	}
	return []byte(mask.Redacted)
}

var jsonRedacted, _ = json.Marshal(mask.Redacted)

// shape answers a non-built-in type's binary shape from the catalog.
func (r *result) shape(oid uint32) (typeShape, bool) {
	if r.cat == nil {
		return typeShape{}, false
	}
	ctx, cancel := lookupCtx()
	defer cancel()
	return r.cat.shape(ctx, oid)
}

func (r *result) value1(i int, v []byte, kind textKind) []byte {
	out, null := r.plan.Value(i, v)
	if null {
		return nil
	}
	if (kind == kindJSON || kind == kindJSONB) && !json.Valid(out) {
		// A masked json value stays json: the mask becomes a JSON string.
		b, err := json.Marshal(string(out))
		if err != nil {
			return nil
		}
		return b
	}
	if out == nil {
		return []byte{} // an empty, non-NULL value
	}
	return out
}
