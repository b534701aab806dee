package mysql

import (
	"cmp"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Bounds on the view expansion of one statement, as internal/lineage has
// them for PostgreSQL. Beyond them a view's columns are unresolved.
const (
	maxViewDepth = 8  // views of views
	maxViews     = 64 // view definitions analyzed per statement
)

// lin is the lineage of one value: the source columns it is built from,
// and whether something it depends on could not be traced (then it is
// masked whole). The same semantics as internal/lineage's.
type lin struct {
	srcs  []mask.Source // sorted, unique
	unres bool
}

var unresolvedLin = lin{unres: true}

func sourceLin(schema, table, column string) lin {
	return lin{srcs: []mask.Source{{Schema: schema, Table: table, Column: column}}}
}

// union is the lineage of a value built from both; it never changes the
// operands' slices (lineages are shared between views and statements).
func (l lin) union(o lin) lin {
	out := lin{unres: l.unres || o.unres}
	switch {
	case len(o.srcs) == 0:
		out.srcs = l.srcs
	case len(l.srcs) == 0:
		out.srcs = o.srcs
	default:
		s := append(append(make([]mask.Source, 0, len(l.srcs)+len(o.srcs)), l.srcs...), o.srcs...)
		slices.SortFunc(s, func(a, b mask.Source) int {
			return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column))
		})
		out.srcs = slices.Compact(s)
	}
	return out
}

// column is the result of lin as mask.Column.
func (l lin) column() mask.Column {
	if l.unres {
		return mask.Column{}
	}
	return mask.Column{Resolved: true, Sources: l.srcs}
}

// colLin is one output column of a query: its name (as a later query
// would refer to it) and its lineage.
type colLin struct {
	name string
	l    lin
}

// rel is one relation in a FROM clause as the select list sees it.
type rel struct {
	name   string // alias, or the table's name
	schema string // for schema-qualified references; "" for an alias or derived table
	// base is set for a base table: any column name resolves to itself.
	base *viewKey
	cols []colLin // a view's or derived table's columns; nil with base
}

// viewAnalyzer traces the output columns of a query that reads views, with
// every view expanded through its stored definition (recursively). It
// fails closed: what it does not understand is unresolved. Only output
// lineage is traced; MySQL masking has no filter rules.
type viewAnalyzer struct {
	cat    *viewCatalog
	schema string // default schema for unqualified table names
	depth  int
	views  int
}

// analyzeViews returns the lineage of the n output columns of a parsed
// statement, or nil when it cannot be traced (every column is then
// masked whole).
func analyzeViews(cat *viewCatalog, stmt ast.StmtNode, schema string, n int) []mask.Column {
	a := &viewAnalyzer{cat: cat, schema: schema}
	rs, ok := stmt.(ast.ResultSetNode)
	if !ok {
		return nil
	}
	cols, ok := a.query(rs)
	if !ok || len(cols) != n {
		return nil
	}
	out := make([]mask.Column, n)
	for i, c := range cols {
		out[i] = c.l.column()
	}
	return out
}

// query traces a SELECT or a set operation (UNION, INTERSECT, EXCEPT: the
// i-th column is built from every branch's i-th column).
func (a *viewAnalyzer) query(n ast.Node) ([]colLin, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		return a.selectStmt(x)
	case *ast.SetOprStmt:
		if x.With != nil || x.SelectList == nil {
			return nil, false
		}
		return a.query(x.SelectList)
	case *ast.SetOprSelectList:
		if x.With != nil || len(x.Selects) == 0 {
			return nil, false
		}
		var out []colLin
		for i, s := range x.Selects {
			cols, ok := a.query(s)
			if !ok || (i > 0 && len(cols) != len(out)) {
				return nil, false
			}
			if i == 0 {
				out = cols
				continue
			}
			merged := make([]colLin, len(out))
			for j := range out {
				merged[j] = colLin{name: out[j].name, l: out[j].l.union(cols[j].l)}
			}
			out = merged
		}
		return out, true
	}
	return nil, false
}

func (a *viewAnalyzer) selectStmt(s *ast.SelectStmt) ([]colLin, bool) {
	if s.With != nil || s.Kind != ast.SelectStmtKindSelect || s.Fields == nil || s.SelectIntoOpt != nil {
		return nil, false
	}
	var rels []*rel
	natural := false
	if s.From != nil && s.From.TableRefs != nil {
		var ok bool
		if rels, natural, ok = a.from(s.From.TableRefs, nil); !ok {
			return nil, false
		}
	}
	var out []colLin
	for _, f := range s.Fields.Fields {
		if f.WildCard != nil {
			cols, ok := a.expandWildcard(f.WildCard, rels, natural)
			if !ok {
				return nil, false
			}
			out = append(out, cols...)
			continue
		}
		out = append(out, colLin{name: fieldName(f), l: a.expr(f.Expr, rels)})
	}
	return out, true
}

// from lists the relations of a FROM clause in order. natural reports a
// NATURAL join or USING, whose SELECT * merges columns (not traced).
func (a *viewAnalyzer) from(n ast.ResultSetNode, rels []*rel) ([]*rel, bool, bool) {
	switch x := n.(type) {
	case *ast.Join:
		natural := x.NaturalJoin || len(x.Using) > 0
		var ok, nat bool
		if x.Left != nil {
			if rels, nat, ok = a.from(x.Left, rels); !ok {
				return nil, false, false
			}
			natural = natural || nat
		}
		if x.Right != nil {
			if rels, nat, ok = a.from(x.Right, rels); !ok {
				return nil, false, false
			}
			natural = natural || nat
		}
		return rels, natural, true
	case *ast.TableSource:
		r, ok := a.tableSource(x)
		if !ok {
			return nil, false, false
		}
		return append(rels, r), false, true
	}
	return nil, false, false
}

func (a *viewAnalyzer) tableSource(ts *ast.TableSource) (*rel, bool) {
	switch src := ts.Source.(type) {
	case *ast.TableName:
		r := a.tableName(src)
		if ts.AsName.O != "" {
			r.name, r.schema = ts.AsName.O, ""
		}
		return r, true
	case *ast.SelectStmt, *ast.SetOprStmt:
		cols, ok := a.query(src)
		if !ok || ts.AsName.O == "" {
			return nil, false
		}
		return &rel{name: ts.AsName.O, cols: cols}, true
	case *ast.Join:
		// Parenthesized joins: flattened by from, not here.
		return nil, false
	}
	return nil, false
}

// tableName resolves a named relation: a view expanded through its
// definition, or a base table.
func (a *viewAnalyzer) tableName(tn *ast.TableName) *rel {
	schema := tn.Schema.O
	if schema == "" {
		schema = a.schema
	}
	r := &rel{name: tn.Name.O, schema: schema}
	switch {
	case a.cat.isView(schema, tn.Name.O):
		r.cols = a.viewColumns(schema, tn.Name.O)
	case tn.Schema.O == "" && a.cat.viewAnywhere(tn.Name.O):
		// Maybe that view, if the statement was prepared in its schema:
		// columns unknown.
	default:
		r.base = &viewKey{schema, tn.Name.O}
	}
	return r
}

// viewColumns gives a view's columns: each is the view's own column (a
// rule may name it) plus what its definition builds it from. A view whose
// definition is hidden, does not parse, calls a function that is not a
// known built-in, or does not line up with its column list has every
// column unresolved. Analyses are kept with the catalog.
func (a *viewAnalyzer) viewColumns(schema, name string) []colLin {
	vi := a.cat.view(schema, name)
	if vi == nil {
		return nil // another letter case, or not listed: unknown columns
	}
	k := viewKey{schema, name}
	a.cat.mu.Lock()
	cols, ok := a.cat.memo[k]
	a.cat.mu.Unlock()
	if ok {
		return cols
	}
	def := a.definition(schema, vi)
	cols = make([]colLin, len(vi.cols))
	for i, c := range vi.cols {
		cols[i] = colLin{name: c, l: sourceLin(schema, name, c)}
		if def == nil {
			cols[i].l.unres = true
		} else {
			cols[i].l = cols[i].l.union(def[i].l)
		}
	}
	a.cat.mu.Lock()
	if a.cat.memo == nil {
		a.cat.memo = map[viewKey][]colLin{}
	}
	a.cat.memo[k] = cols
	a.cat.mu.Unlock()
	return cols
}

// definition analyzes a view's stored SELECT, or returns nil.
func (a *viewAnalyzer) definition(schema string, vi *viewInfo) []colLin {
	if vi.def == "" || a.depth >= maxViewDepth || a.views >= maxViews || len(vi.cols) == 0 {
		return nil
	}
	a.views++
	if strings.Contains(vi.def, "/*") || a.cat.cls == nil || a.cat.cls.Classify(vi.def).Kind != sqlkind.Read {
		return nil // a stored or unknown function may read any table
	}
	stmt := parseOne(vi.def)
	if stmt == nil {
		return nil
	}
	inner := &viewAnalyzer{cat: a.cat, schema: schema, depth: a.depth + 1, views: a.views}
	cols, ok := inner.query(stmt)
	a.views = inner.views
	if !ok || len(cols) != len(vi.cols) {
		return nil
	}
	return cols
}

// expr is the lineage of a select-list expression: every column it
// mentions. A subquery, a user variable or a column that does not resolve
// makes it unresolved.
func (a *viewAnalyzer) expr(e ast.ExprNode, rels []*rel) lin {
	refs := &columnRefs{}
	e.Accept(refs)
	if refs.opaque {
		return unresolvedLin
	}
	var l lin
	for _, cn := range refs.names {
		l = l.union(resolveColumn(cn, rels))
	}
	return l
}

// resolveColumn finds a column reference among the relations: qualified,
// in the relation of that name; unqualified, in the only relation that
// can have it (a base table's columns are not known, so a second relation
// beside one makes an unqualified name ambiguous).
func resolveColumn(cn *ast.ColumnName, rels []*rel) lin {
	var found *rel
	for _, r := range rels {
		switch {
		case cn.Table.O != "":
			if !strings.EqualFold(r.name, cn.Table.O) || (cn.Schema.O != "" && !strings.EqualFold(r.schema, cn.Schema.O)) {
				continue
			}
		case r.base == nil && !hasColumn(r.cols, cn.Name.O):
			continue
		}
		if found != nil {
			return unresolvedLin
		}
		found = r
	}
	if found == nil {
		return unresolvedLin
	}
	if cn.Table.O == "" && found.base != nil && len(rels) > 1 {
		return unresolvedLin
	}
	if found.base != nil {
		return sourceLin(found.base.schema, found.base.name, cn.Name.O)
	}
	var l lin
	n := 0
	for _, c := range found.cols {
		if strings.EqualFold(c.name, cn.Name.O) {
			l, n = c.l, n+1
		}
	}
	if n != 1 {
		return unresolvedLin
	}
	return l
}

// baseColumns gives a base table's columns, each its own source.
func (a *viewAnalyzer) baseColumns(k viewKey) []colLin {
	names := a.cat.tableColumns(k.schema, k.name)
	cols := make([]colLin, len(names))
	for i, n := range names {
		cols[i] = colLin{name: n, l: sourceLin(k.schema, k.name, n)}
	}
	return cols
}

func hasColumn(cols []colLin, name string) bool {
	for _, c := range cols {
		if strings.EqualFold(c.name, name) {
			return true
		}
	}
	return false
}

// expandWildcard gives the columns SELECT * or t.* stands for: a view's or
// derived table's, and a base table's as information_schema lists them.
// NATURAL and USING joins merge columns: the list is then unknown, and so
// is that of a table whose columns cannot be read.
func (a *viewAnalyzer) expandWildcard(w *ast.WildCardField, rels []*rel, natural bool) ([]colLin, bool) {
	if natural || len(rels) == 0 {
		return nil, false
	}
	var out []colLin
	matched := false
	for _, r := range rels {
		if w.Table.O != "" && (!strings.EqualFold(r.name, w.Table.O) || (w.Schema.O != "" && !strings.EqualFold(r.schema, w.Schema.O))) {
			continue
		}
		cols := r.cols
		if r.base != nil {
			cols = a.baseColumns(*r.base)
		}
		if len(cols) == 0 {
			return nil, false
		}
		matched = true
		out = append(out, cols...)
	}
	return out, matched
}

// fieldName is the name a select-list item has for an outer query: its
// alias, or the column it reads; an unnamed expression gets "" (MySQL
// names it after its text, which nothing here reproduces; it cannot be
// referred to by name, only by position).
func fieldName(f *ast.SelectField) string {
	if f.AsName.O != "" {
		return f.AsName.O
	}
	if c, ok := f.Expr.(*ast.ColumnNameExpr); ok {
		return c.Name.Name.O
	}
	return ""
}

// readsView reports whether a statement names a view anywhere (or names a
// relation while the catalog cannot be loaded): its result's column
// definitions then cannot be trusted for lineage. The catalog is loaded
// only when the statement names a relation; a name it does not list (not
// a CTE of the statement: ctes holds their lower-cased names) has it
// reloaded once.
func readsView(stmt ast.StmtNode, views *viewLookup, schema string, ctes map[string]bool) bool {
	v := &viewFinder{views: views, schema: schema, ctes: ctes}
	stmt.Accept(v)
	return v.found
}

type viewFinder struct {
	views  *viewLookup
	schema string
	ctes   map[string]bool
	found  bool
}

func (v *viewFinder) Enter(n ast.Node) (ast.Node, bool) {
	tn, ok := n.(*ast.TableName)
	if !ok || (tn.Schema.O == "" && v.ctes[tn.Name.L]) {
		return n, v.found
	}
	schema := tn.Schema.O
	if schema == "" {
		schema = v.schema
	}
	cat := v.views.catalog()
	if cat != nil && !cat.known(schema, tn.Name.O) {
		cat = v.views.fresh()
	}
	if cat == nil || cat.isView(schema, tn.Name.O) || (tn.Schema.O == "" && cat.viewAnywhere(tn.Name.O)) {
		v.found = true
	}
	return n, v.found
}

func (v *viewFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
