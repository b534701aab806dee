package pgmask

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Annotate fills op.FilterUses, op.FilterUnresolved and op.Unmaskable from
// the lineage of op.Text, so that Guard.Decide can refuse what masking
// cannot protect. The engine calls it after classifying an operation and
// before Decide. It fails closed: a text that does not parse, a statement
// lineage cannot analyze and an unreachable catalog all set
// FilterUnresolved. A resource without masking rules is left alone.
func (m *Masker) Annotate(ctx context.Context, s *guard.Session, op *guard.Operation) {
	m.annotate(ctx, s, op)
}

// annotate is Annotate; it also reports whether the operation reads a
// masked column (as output, in a condition, as the data of a write),
// names a relation holding one, or holds something lineage cannot trace,
// so that the errors it causes have their quoted values masked
// (quotes.go).
func (m *Masker) annotate(ctx context.Context, s *guard.Session, op *guard.Operation) (readsMasked bool) {
	rules := m.o.Rules(s.Resource)
	if rules == nil {
		return false
	}
	cat, err := m.catalog(s.Resource)
	if err != nil {
		m.log.Warn("catalog unavailable; filter uses are unresolved", "resource", s.Resource, "error", err)
		op.FilterUnresolved = true
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	st := analyze(ctx, cat, op)
	if st.err != nil {
		// PostgreSQL's own parser refuses it too: its only error quotes
		// the client's text.
		op.FilterUnresolved = true
		return false
	}
	roles := guard.RoleNames(s.Identity)
	var uses []mask.Source
	for _, sl := range st.list {
		if sl.err != nil || sl.res == nil {
			op.FilterUnresolved = true
			readsMasked = true
			continue
		}
		uses = append(uses, sl.res.Filters...)
		op.FilterUnresolved = op.FilterUnresolved || sl.res.FilterUnresolved
		cols := expandColumns(ctx, cat, sl.res.ColumnsFor(len(sl.res.Columns)))
		readsMasked = readsMasked || sl.res.Refers != "" || anyMasked(rules, roles, cols)
		if sl.explain {
			readsMasked = readsMasked || sl.explained == nil || sl.explained.Refers != "" ||
				anyMasked(rules, roles, expandColumns(ctx, cat, sl.explained.ColumnsFor(len(sl.explained.Columns))))
		}
		if c := sl.res.Copy; c != nil && c.Format == "binary" {
			if rules.Plan(roles, cols).Active() {
				op.Unmaskable = errBinaryCopy.Error() + " (a masking rule applies to its rows)"
			}
		}
	}
	uses, err = cat.expand(ctx, uses)
	if err != nil {
		op.FilterUnresolved = true
	}
	slices.SortFunc(uses, cmpSource)
	op.FilterUses = slices.Compact(uses)
	readsMasked = readsMasked || op.FilterUnresolved || anyMasked(rules, roles, []mask.Column{{Resolved: true, Sources: op.FilterUses}})
	return readsMasked || st.touchesMasked(ctx, cat, rules, roles)
}

// anyMasked: a column is unresolved, or a column rule covers a source.
func anyMasked(rules *mask.Rules, roles []string, cols []mask.Column) bool {
	for _, c := range cols {
		if !c.Resolved {
			return true
		}
		for _, src := range c.Sources {
			if rules.Masked(roles, src) {
				return true
			}
		}
	}
	return false
}

func cmpSource(a, b mask.Source) int {
	switch {
	case a.Schema != b.Schema:
		return cmpStr(a.Schema, b.Schema)
	case a.Table != b.Table:
		return cmpStr(a.Table, b.Table)
	}
	return cmpStr(a.Column, b.Column)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Guard wraps a guard so that every operation is annotated (Annotate)
// before it is decided: an engine that cannot call Annotate itself gets
// the same refusals by being given the wrapped guard.
func (m *Masker) Guard(g guard.Guard) guard.Guard {
	return annotating{Guard: g, m: m}
}

type annotating struct {
	guard.Guard
	m *Masker
}

func (a annotating) Decide(ctx context.Context, s *guard.Session, op *guard.Operation) guard.Verdict {
	masked := a.m.annotate(ctx, s, op)
	v := a.Guard.Decide(ctx, s, op)
	if !masked {
		return v
	}
	// An operation that reads masked data runs once it is allowed: at
	// once, or when the review it waits for is approved.
	track := func(v guard.Verdict) guard.Verdict {
		if v.Decision == guard.Allow && !v.Unmask {
			a.m.quotes.started(s, op)
		}
		return v
	}
	if wait := v.Wait; v.Decision == guard.Hold && wait != nil {
		v.Wait = func(ctx context.Context) guard.Verdict { return track(wait(ctx)) }
	}
	return track(v)
}

// Done invalidates the masker's catalog after an operation that may
// change what it answers (a view replaced, a column added), then reports
// to the wrapped guard.
func (a annotating) Done(ctx context.Context, s *guard.Session, op *guard.Operation, v guard.Verdict, out guard.Outcome) {
	a.m.quotes.ended(op)
	if k := op.Class.Kind; k != sqlkind.Read && k != sqlkind.Write {
		a.m.Invalidate(s.Resource)
	}
	a.Guard.Done(ctx, s, op, v, out)
}

// MaskMessage masks the texts of an upstream error, notice or
// notification in place (postgres.Options.Messages). The caller skips it
// for operations an unmask grant covers.
func (m *Masker) MaskMessage(s *guard.Session, msg pgproto3.BackendMessage) {
	rules := m.o.Rules(s.Resource)
	if rules == nil {
		return
	}
	roles := guard.RoleNames(s.Identity)
	mc := msgContext{quoted: m.quotes.masking(s), expand: func(src mask.Source) ([]mask.Source, bool) {
		cat, err := m.catalog(s.Resource)
		if err != nil {
			return nil, false
		}
		ctx, cancel := lookupCtx()
		defer cancel()
		srcs, err := cat.expand(ctx, []mask.Source{src})
		return srcs, err == nil
	}}
	switch x := msg.(type) {
	case *pgproto3.ErrorResponse:
		maskError(rules, roles, x, mc)
	case *pgproto3.NoticeResponse:
		maskError(rules, roles, (*pgproto3.ErrorResponse)(x), mc)
	case *pgproto3.NotificationResponse:
		MaskNotification(rules, roles, x)
	}
}
