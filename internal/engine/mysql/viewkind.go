package mysql

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/sqlkind"
)

// The kinds of the views an operation reads (DESIGN.md invariant 1). The
// classifier sees "SELECT * FROM v" as a read of a relation named v; when
// v is a view, its definition runs too, stored functions and all (a
// function that deletes rows deletes them for every row read). So each
// operation the classifier rates below Unknown has the definitions of the
// views it names classified, as the resource's view catalog has them now
// (views.go), through nested views, and takes the most dangerous kind.
// This is done for every operation, never kept with a text's
// classification: the catalog changes under the same text.
//
// It fails closed: a view whose definition the upstream user may not read
// (no SHOW VIEW), that does not parse, that nests deeper than
// maxViewDepth or reads itself, or a catalog that cannot be loaded, makes
// the operation Unknown. A name the catalog does not list has it loaded
// again (at most once per viewReloadGap): it may be a view created since,
// elsewhere (another gateway replica); still unlisted, it is a temporary
// table, a CTE or nothing, and no view.
//
// The statement's objects are names as written ("t", "db.t"). An
// unqualified one may resolve in the operation's schema or in any schema
// a USE of the same text switches to; a name with a dot may be a
// qualified name or one quoted name with a dot in it: every reading is
// checked.

// viewReloadGap is how recent a catalog must be not to be loaded again
// for a name it does not list.
const viewReloadGap = time.Second

// maxViewsPerOperation bounds the view definitions one operation has
// classified (beyond it: Unknown), whatever the views' nesting.
const maxViewsPerOperation = 64

// viewVerdict is what reading one view runs: its definition's kind, and
// why when that is not read.
type viewVerdict struct {
	kind   sqlkind.Kind
	reason string
	// bounded is set when the verdict depends on where the view was
	// reached (too deep, a cycle, too many views): it is not kept.
	bounded bool
}

// viewClass raises op's kind to that of the views it reads.
func (c *conn) viewClass(op *operation, stmts []sqlkind.MySQLStatement) {
	class := op.g.Class
	if class.Kind == sqlkind.Unknown || len(class.Objects) == 0 {
		return
	}
	cat, views, err := c.namedViews(op, stmts)
	if err != nil {
		c.e.log.Warn("loading the views of a resource failed; operations that name a relation are unknown", "resource", c.res.Name, "error", err)
		op.g.Class.Kind = sqlkind.Unknown
		op.g.Class.Reason = "countersign could not load the resource's list of views, so it cannot tell whether the statement reads a view that runs code; try again"
		return
	}
	if len(views) == 0 {
		return
	}
	w := viewWalk{c: c, cat: cat}
	for _, k := range views {
		if v := w.verdict(k, nil); sqlkind.Max(class.Kind, v.kind) != class.Kind {
			class.Kind, class.Reason = v.kind, v.reason
		}
	}
	op.g.Class = class
}

// namedViews looks op's objects up in the catalog: the views they may
// name, in the catalog it returns. One that has no reading the catalog
// lists has it loaded again, unless it is less than viewReloadGap old.
func (c *conn) namedViews(op *operation, stmts []sqlkind.MySQLStatement) (*viewCatalog, []viewKey, error) {
	objects, schema := op.g.Class.Objects, op.g.State.Schema
	cat, err := c.viewCatalog(op.started)
	if err != nil {
		return nil, nil, err
	}
	views, listed := cat.viewsNamed(objects, schema, stmts)
	if listed || op.started.Sub(cat.at) <= viewReloadGap {
		return cat, views, nil
	}
	epoch := c.e.views.epoch.Load()
	if cat, err = c.e.views.loadAfter(c.res, op.started.Add(-viewReloadGap)); err != nil {
		return nil, nil, err
	}
	c.viewCat, c.viewEpoch = cat, epoch
	views, _ = cat.viewsNamed(objects, schema, stmts)
	return cat, views, nil
}

// viewCatalog is the resource's catalog for an operation begun at now:
// the connection's own while no schema operation forgot it and the TTL
// lasts (no lock taken), else the shared cache's.
func (c *conn) viewCatalog(now time.Time) (*viewCatalog, error) {
	epoch := c.e.views.epoch.Load()
	if cat := c.viewCat; cat != nil && epoch == c.viewEpoch && now.Sub(cat.at) < viewTTL {
		return cat, nil
	}
	cat, err := c.e.views.loadAfter(c.res, now.Add(-viewTTL))
	if err != nil {
		return nil, err
	}
	c.viewCat, c.viewEpoch = cat, epoch
	return cat, nil
}

// eachReading calls fn with every schema and name that object (as the
// classifier writes it) may stand for.
func eachReading(object, schema string, stmts []sqlkind.MySQLStatement, fn func(schema, name string)) {
	fn(schema, object)
	for _, s := range stmts {
		if s.Use != "" && s.Use != schema {
			fn(s.Use, object)
		}
	}
	for i := 0; i < len(object); i++ {
		if object[i] == '.' {
			fn(object[:i], object[i+1:])
		}
	}
}

// viewsNamed gives the views the objects may name, and whether every
// object has a reading the catalog lists.
func (c *viewCatalog) viewsNamed(objects []string, schema string, stmts []sqlkind.MySQLStatement) (views []viewKey, listed bool) {
	listed = true
	for _, o := range objects {
		known := false
		eachReading(o, schema, stmts, func(s, n string) {
			k, vs := c.lookup(s, n)
			known = known || k
			views = append(views, vs...)
		})
		listed = listed && known
	}
	return views, listed
}

// viewWalk classifies the views one operation reads.
type viewWalk struct {
	c   *conn
	cat *viewCatalog
	n   int // definitions classified so far
}

// verdict is what reading view k runs; path is the views that led to it.
// Verdicts are kept with the catalog, so a view is classified once per
// catalog load.
func (w *viewWalk) verdict(k viewKey, path []viewKey) viewVerdict {
	w.cat.mu.Lock()
	v, ok := w.cat.kinds[k]
	w.cat.mu.Unlock()
	if ok {
		return v
	}
	name := k.schema + "." + k.name
	switch {
	case slices.Contains(path, k):
		return viewVerdict{sqlkind.Unknown, fmt.Sprintf("reads view %s, whose definition reads that view again", name), true}
	case len(path) >= maxViewDepth:
		return viewVerdict{sqlkind.Unknown, fmt.Sprintf("reads view %s, nested more than %d views deep: countersign does not follow it further", name, maxViewDepth), true}
	case w.n >= maxViewsPerOperation:
		return viewVerdict{sqlkind.Unknown, fmt.Sprintf("reads more than %d views: countersign does not classify more (view %s is one)", maxViewsPerOperation, name), true}
	}
	w.n++
	v = w.definition(k, name, path)
	if !v.bounded {
		w.cat.mu.Lock()
		if w.cat.kinds == nil {
			w.cat.kinds = map[viewKey]viewVerdict{}
		}
		w.cat.kinds[k] = v
		w.cat.mu.Unlock()
	}
	return v
}

// definition classifies view k's definition, names resolving in the
// view's own schema, and the views it reads in turn.
func (w *viewWalk) definition(k viewKey, name string, path []viewKey) viewVerdict {
	vi := w.cat.view(k.schema, k.name)
	if vi == nil || vi.def == "" {
		return viewVerdict{kind: sqlkind.Unknown, reason: fmt.Sprintf("reads view %s, whose definition the resource's upstream user may not read "+
			"(it lacks the SHOW VIEW privilege on it), so countersign cannot tell what reading it runs; an admin can grant SHOW VIEW on it to that user", name)}
	}
	def := w.c.e.o.Classifier.Classify(vi.def)
	v := viewVerdict{kind: def.Kind}
	if def.Kind != sqlkind.Read {
		v.reason = viewReason(name, def.Kind, def.Reason)
	}
	if def.Kind == sqlkind.Unknown {
		return v
	}
	inner := append(path[:len(path):len(path)], k)
	for _, o := range def.Objects {
		eachReading(o, k.schema, nil, func(s, n string) {
			_, views := w.cat.lookup(s, n)
			for _, nk := range views {
				nv := w.verdict(nk, inner)
				v.bounded = v.bounded || nv.bounded
				if sqlkind.Max(v.kind, nv.kind) != v.kind {
					v.kind, v.reason = nv.kind, "reads view "+name+", whose definition "+nv.reason
				}
			}
		})
	}
	return v
}

// viewReason says why reading view name is of kind k, from why its
// definition is.
func viewReason(name string, k sqlkind.Kind, why string) string {
	if strings.HasPrefix(why, "calls ") || strings.HasPrefix(why, "reads view ") {
		return "reads view " + name + ", whose definition " + why
	}
	if why == "" {
		return fmt.Sprintf("reads view %s, whose definition is of kind %s", name, k)
	}
	return fmt.Sprintf("reads view %s, whose definition is of kind %s: %s", name, k, why)
}
