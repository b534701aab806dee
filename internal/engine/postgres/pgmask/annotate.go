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
	rules := m.o.Rules(s.Resource)
	if rules == nil {
		return
	}
	cat, err := m.catalog(s.Resource)
	if err != nil {
		m.log.Warn("catalog unavailable; filter uses are unresolved", "resource", s.Resource, "error", err)
		op.FilterUnresolved = true
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	st := analyze(ctx, cat, op)
	if st.err != nil {
		op.FilterUnresolved = true
		return
	}
	var uses []mask.Source
	for _, sl := range st.list {
		if sl.err != nil || sl.res == nil {
			op.FilterUnresolved = true
			continue
		}
		uses = append(uses, sl.res.Filters...)
		op.FilterUnresolved = op.FilterUnresolved || sl.res.FilterUnresolved
		if c := sl.res.Copy; c != nil && c.Format == "binary" {
			cols := sl.res.ColumnsFor(len(sl.res.Columns))
			if rules.Plan(guard.RoleNames(s.Identity), cols).Active() {
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
	a.m.Annotate(ctx, s, op)
	return a.Guard.Decide(ctx, s, op)
}

// Done invalidates the masker's catalog after an operation that may
// change what it answers (a view replaced, a column added), then reports
// to the wrapped guard.
func (a annotating) Done(ctx context.Context, s *guard.Session, op *guard.Operation, v guard.Verdict, out guard.Outcome) {
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
	switch x := msg.(type) {
	case *pgproto3.ErrorResponse:
		MaskError(rules, roles, x)
	case *pgproto3.NoticeResponse:
		MaskNotice(rules, roles, x)
	case *pgproto3.NotificationResponse:
		MaskNotification(rules, roles, x)
	}
}
