package lineage

import (
	"cmp"
	"slices"

	"github.com/countersign/countersign/internal/mask"
)

// lin is the lineage of one value: the source columns it is built from,
// and whether something it depends on could not be traced.
type lin struct {
	srcs  []mask.Source // sorted, unique
	unres bool
	// computed: the value is not a stored column as it is (through
	// references, subqueries and CTEs) but something built from one,
	// which a client can shape to ask a question (oracle.go).
	computed bool
	// keys: the value may hold JSON object keys built from a column, which
	// a lookup by a guessed key tests (->> 'guess', ['guess']).
	keys bool
}

var unresolved = lin{unres: true}

func source(schema, table, column string) lin {
	return lin{srcs: []mask.Source{{Schema: schema, Table: table, Column: column}}}
}

func cmpSource(a, b mask.Source) int {
	if c := cmp.Compare(a.Schema, b.Schema); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	return cmp.Compare(a.Column, b.Column)
}

// union returns the lineage of a value built from both l and o. It never
// modifies the slices of its operands in place, since lineages are shared
// between the columns of a scope.
func (l lin) union(o lin) lin {
	out := lin{unres: l.unres || o.unres, computed: l.computed || o.computed, keys: l.keys || o.keys}
	switch {
	case len(o.srcs) == 0:
		out.srcs = l.srcs
	case len(l.srcs) == 0:
		out.srcs = o.srcs
	default:
		s := make([]mask.Source, 0, len(l.srcs)+len(o.srcs))
		s = append(append(s, l.srcs...), o.srcs...)
		slices.SortFunc(s, cmpSource)
		out.srcs = slices.Compact(s)
	}
	return out
}

func (l lin) equal(o lin) bool {
	return l.unres == o.unres && l.computed == o.computed && l.keys == o.keys && slices.Equal(l.srcs, o.srcs)
}

func unionAll(cols []column) lin {
	var l lin
	for _, c := range cols {
		l = l.union(c.l)
	}
	return l
}
