package pgmask

import (
	"context"
	"encoding/json"
	"slices"

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
	oids    []uint32 // each field's type: binary numbers are read as text (binnum.go)

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
	if !c.Resolved {
		return c
	}
	for _, s := range c.Sources {
		if r.rules.Masked(r.roles, s) {
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
	r.kinds, r.formats, r.oids = make([]textKind, n), make([]int16, n), make([]uint32, n)
	r.active = true
}

// value masks one non-NULL value; nil means NULL.
func (r *result) value(i int, v []byte) []byte {
	if i >= len(r.kinds) {
		return nil // more values than described: fail closed
	}
	kind, binary := r.kinds[i], r.formats[i] == 1
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
	if binary && kind == kindOther {
		// A binary number is bytes no detector reads: they read its text
		// form, and a value they would change goes as NULL, as in text
		// format.
		if t, ok := binaryNumberText(r.oids[i], v); ok {
			if _, null := r.plan.Value(i, t); null {
				return nil
			}
			return v
		}
	}
	return r.value1(i, v, kind)
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
