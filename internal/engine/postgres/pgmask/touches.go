package pgmask

import (
	"context"

	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// seenCatalog is the lineage catalog of one analysis; it keeps every
// relation the analysis resolved, wherever the statement names it (a CTE
// nobody selects from, a function's arguments in FROM, a view's
// definition), and whether a name could not be looked up.
type seenCatalog struct {
	*lineage.PGCatalog
	seen   map[[2]string]bool
	failed bool
}

// Resolve implements lineage.Catalog.
func (c *seenCatalog) Resolve(ctx context.Context, name string) (string, string, byte, bool, error) {
	schema, table, kind, ok, err := c.PGCatalog.Resolve(ctx, name)
	switch {
	case err != nil:
		c.failed = true
	case ok:
		if c.seen == nil {
			c.seen = map[[2]string]bool{}
		}
		c.seen[[2]string{schema, table}] = true
	}
	return schema, table, kind, ok, err
}

// touchesMasked reports whether the statements name a relation holding a
// column masked for these roles (or a view's column a rule names), or a
// name that could not be looked up. Lineage follows what reaches the
// output and the conditions; PostgreSQL also computes what goes nowhere
// (a MATERIALIZED CTE nobody reads, a set-returning function's arguments
// in FROM), and the errors of that quote values too (quotes.go).
func (st *statements) touchesMasked(ctx context.Context, cat *resCatalog, rules *mask.Rules, roles []string) bool {
	if st.lc == nil {
		return false
	}
	if st.lc.failed {
		return true
	}
	for rel := range st.lc.seen {
		names, err := st.lc.Columns(ctx, rel[0], rel[1])
		if err != nil {
			return true
		}
		all := mask.Column{Resolved: true}
		for _, n := range names {
			all.Sources = append(all.Sources, mask.Source{Schema: rel[0], Table: rel[1], Column: n})
		}
		if anyMasked(rules, roles, expandColumns(ctx, cat, []mask.Column{all})) {
			return true
		}
	}
	return false
}
