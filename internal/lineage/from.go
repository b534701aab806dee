package lineage

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// fromList analyzes a FROM clause. Each item sees the items before it
// only when LATERAL; join conditions are filter uses.
func (a *analyzer) fromList(items []*pg.Node, sc *scope) []*rel {
	var rels []*rel
	for _, it := range items {
		rels = append(rels, a.fromItem(it, sc, rels)...)
	}
	return rels
}

// lateralScope is the scope a LATERAL item is analyzed in: the items
// before it at this level, then the outer levels.
func lateralScope(sc *scope, before []*rel) *scope {
	return &scope{rels: before, parent: sc.parent, ctes: sc.ctes}
}

func (a *analyzer) fromItem(n *pg.Node, sc *scope, before []*rel) []*rel {
	if !a.enter() {
		a.leave()
		a.filterUnres = true
		return []*rel{{cols: wildUnresolved()}}
	}
	defer a.leave()
	switch x := n.GetNode().(type) {
	case *pg.Node_RangeVar:
		return []*rel{a.rangeVar(x.RangeVar, sc)}
	case *pg.Node_RangeSubselect:
		inner := lateralScope(sc, nil) // not LATERAL: sees only outer levels
		if x.RangeSubselect.Lateral {
			inner = lateralScope(sc, before)
		}
		cols := rename(a.queryNode(x.RangeSubselect.Subquery, inner), x.RangeSubselect.Alias)
		return []*rel{{name: aliasName(x.RangeSubselect.Alias), cols: cols}}
	case *pg.Node_RangeFunction:
		return []*rel{a.rangeFunction(x.RangeFunction, lateralScope(sc, before))}
	case *pg.Node_JoinExpr:
		return a.join(x.JoinExpr, sc, before)
	case *pg.Node_RangeTableSample:
		rels := a.fromItem(x.RangeTableSample.Relation, sc, before)
		for _, arg := range x.RangeTableSample.Args {
			a.filter(a.expr(arg, sc))
		}
		return rels
	case *pg.Node_RangeTableFunc:
		return []*rel{a.tableFunc(x.RangeTableFunc, lateralScope(sc, before))}
	case *pg.Node_JsonTable:
		l := a.generic(x.JsonTable.ProtoReflect(), lateralScope(sc, before))
		a.filter(l) // its rows depend on what the paths match
		return []*rel{{name: aliasName(x.JsonTable.Alias), cols: []column{{name: "?column?", l: l, wild: true}}}}
	}
	a.filterUnres = true
	return []*rel{{cols: wildUnresolved()}}
}

func aliasName(al *pg.Alias) string {
	if al == nil {
		return ""
	}
	return al.Aliasname
}

// rangeVar resolves a named relation: a CTE in scope, a table, or a view
// expanded through its definition.
func (a *analyzer) rangeVar(rv *pg.RangeVar, sc *scope) *rel {
	alias := aliasName(rv.Alias)
	if rv.Schemaname == "" && rv.Catalogname == "" {
		if c := sc.cte(rv.Relname); c != nil {
			r := &rel{name: rv.Relname, cols: rename(c.cols, rv.Alias)}
			if alias != "" {
				r.name = alias
			}
			return r
		}
	}
	r := &rel{name: rv.Relname, schema: rv.Schemaname}
	if alias != "" {
		r.name, r.schema = alias, ""
	}
	name := quoteIdent(rv.Relname)
	if rv.Schemaname != "" {
		name = quoteIdent(rv.Schemaname) + "." + name
	}
	schema, table, kind, ok, err := a.cat.Resolve(a.ctx, name)
	if err != nil {
		a.fail(err)
	}
	if err != nil || !ok {
		r.cols = wildUnresolved()
		return r
	}
	if alias == "" {
		r.schema = schema
	}
	r.cols = rename(a.relationColumns(schema, table, kind), rv.Alias)
	return r
}

// relationColumns gives a relation's columns with their lineage: a table's
// are themselves; a view's are its own name plus what its definition
// reads.
func (a *analyzer) relationColumns(schema, table string, kind byte) []column {
	names, err := a.cat.Columns(a.ctx, schema, table)
	if err != nil {
		a.fail(err)
		return wildUnresolved()
	}
	cols := make([]column, len(names))
	for i, n := range names {
		cols[i] = column{name: n, l: source(schema, table, n)}
	}
	switch kind {
	case KindTable, KindPartitioned, KindForeign, KindSequence:
		return cols
	case KindView, KindMatView:
		def := a.viewColumns(schema, table)
		if len(def) != len(cols) || hasWild(def) {
			for i := range cols {
				cols[i].l = cols[i].l.union(unresolved)
			}
			return cols
		}
		for i := range cols {
			cols[i].l = cols[i].l.union(def[i].l)
		}
		return cols
	}
	for i := range cols {
		cols[i].l = cols[i].l.union(unresolved)
	}
	return cols
}

// viewColumns analyzes a view's stored definition, once per statement.
func (a *analyzer) viewColumns(schema, view string) []column {
	key := [2]string{schema, view}
	if cols, ok := a.viewMemo[key]; ok {
		return cols
	}
	cols := a.expandView(schema, view)
	if a.viewMemo == nil {
		a.viewMemo = make(map[[2]string][]column)
	}
	a.viewMemo[key] = cols
	return cols
}

func (a *analyzer) expandView(schema, view string) []column {
	if a.viewDepth >= maxViewDepth || a.views >= maxViews {
		return wildUnresolved()
	}
	a.views++
	def, ok, err := a.cat.ViewDefinition(a.ctx, schema, view)
	if err != nil {
		a.fail(err)
	}
	if err != nil || !ok {
		return wildUnresolved()
	}
	tree, err := pg.Parse(def)
	if err != nil || len(tree.Stmts) != 1 {
		return wildUnresolved()
	}
	a.viewDepth++
	a.inView++
	defer func() { a.viewDepth--; a.inView-- }()
	return a.queryNode(tree.Stmts[0].Stmt, &scope{})
}

// join analyzes a JOIN: both sides, then ON, USING or NATURAL as filter
// uses. An aliased join is one relation; an unaliased one leaves its
// sides visible.
func (a *analyzer) join(j *pg.JoinExpr, sc *scope, before []*rel) []*rel {
	left := a.fromItem(j.Larg, sc, before)
	right := a.fromItem(j.Rarg, sc, append(append([]*rel(nil), before...), left...))
	both := append(append([]*rel(nil), left...), right...)
	on := &scope{rels: both, parent: sc.parent, ctes: sc.ctes}
	if j.Quals != nil {
		a.filter(a.expr(j.Quals, on))
	}
	using := usingNames(j, left, right)
	merged := make([]column, 0, len(using))
	for _, name := range using {
		l := a.bareName(&scope{rels: both}, name)
		a.filter(l)
		merged = append(merged, column{name: name, l: l})
	}
	out := both
	if j.JoinUsingAlias != nil {
		out = append(out, &rel{name: j.JoinUsingAlias.Aliasname, cols: merged})
	}
	if j.Alias == nil {
		return out
	}
	cols := append([]column(nil), merged...)
	for _, r := range both {
		for _, c := range r.cols {
			if c.wild || !contains(using, c.name) {
				cols = append(cols, c)
			}
		}
	}
	return []*rel{{name: j.Alias.Aliasname, cols: rename(cols, j.Alias)}}
}

func usingNames(j *pg.JoinExpr, left, right []*rel) []string {
	var names []string
	for _, u := range j.UsingClause {
		names = append(names, u.GetString_().GetSval())
	}
	if !j.IsNatural {
		return names
	}
	ln := map[string]bool{}
	for _, r := range left {
		for _, c := range r.cols {
			ln[c.name] = true
		}
	}
	for _, r := range right {
		for _, c := range r.cols {
			if ln[c.name] && !c.wild && !contains(names, c.name) {
				names = append(names, c.name)
			}
		}
	}
	// A NATURAL join with a side of unknown columns may join on anything.
	for _, r := range append(append([]*rel(nil), left...), right...) {
		if r.hasWild() {
			names = append(names, "")
		}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteIdent quotes a name the way PostgreSQL's quote_ident does, near
// enough for to_regclass and parse_ident to read it back.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && (r >= '0' && r <= '9' || r == '$'))) {
			plain = false
			break
		}
	}
	if plain && !reservedWord(s) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func reservedWord(s string) bool {
	switch s {
	case "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
		"both", "case", "cast", "check", "collate", "column", "constraint", "create",
		"current_catalog", "current_date", "current_role", "current_time",
		"current_timestamp", "current_user", "default", "deferrable", "desc", "distinct",
		"do", "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant",
		"group", "having", "in", "initially", "intersect", "into", "lateral", "leading",
		"limit", "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or",
		"order", "placing", "primary", "references", "returning", "select", "session_user",
		"some", "symmetric", "system_user", "table", "then", "to", "trailing", "true",
		"union", "unique", "user", "using", "variadic", "when", "where", "window", "with":
		return true
	}
	return false
}
