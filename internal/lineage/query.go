package lineage

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// queryNode analyzes anything that yields rows: a SELECT, or a write with
// RETURNING (a data-modifying CTE). Anything else is unresolved.
func (a *analyzer) queryNode(n *pg.Node, outer *scope) []column {
	if !a.enter() {
		a.leave()
		a.filterUnres = true
		return wildUnresolved()
	}
	defer a.leave()
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		return a.selectStmt(x.SelectStmt, outer)
	case *pg.Node_InsertStmt:
		return a.insertStmt(x.InsertStmt, outer)
	case *pg.Node_UpdateStmt:
		return a.updateStmt(x.UpdateStmt, outer)
	case *pg.Node_DeleteStmt:
		return a.deleteStmt(x.DeleteStmt, outer)
	case *pg.Node_MergeStmt:
		return a.mergeStmt(x.MergeStmt, outer)
	}
	a.filterUnres = true
	return wildUnresolved()
}

func wildUnresolved() []column {
	return []column{{name: "?column?", l: unresolved, wild: true}}
}

// selectStmt analyzes a SELECT (or VALUES, or a set operation) and returns
// its output columns; filter uses are recorded on the way.
func (a *analyzer) selectStmt(s *pg.SelectStmt, outer *scope) []column {
	if s == nil {
		return wildUnresolved()
	}
	sc := outer.child()
	if s.WithClause != nil {
		a.with(s.WithClause, sc)
	}
	var out []column
	switch {
	case s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED:
		l, r := a.selectStmt(s.Larg, sc), a.selectStmt(s.Rarg, sc)
		if !s.All {
			// UNION, INTERSECT and EXCEPT without ALL compare rows: how
			// many remain answers whether values are equal.
			a.filterCols(l)
			a.filterCols(r)
		}
		out = setOp(l, r)
	case len(s.ValuesLists) > 0:
		out = a.values(s.ValuesLists, sc)
	default:
		sc.rels = a.fromList(s.FromClause, sc)
		if s.WhereClause != nil {
			a.filter(a.expr(s.WhereClause, sc))
		}
		out = a.targets(s.TargetList, sc)
		for _, g := range s.GroupClause {
			a.filter(a.sortKey(g, sc, out))
		}
		if s.HavingClause != nil {
			a.filter(a.expr(s.HavingClause, sc))
		}
		for _, w := range s.WindowClause {
			a.window(w.GetWindowDef(), sc)
		}
		for _, d := range s.DistinctClause {
			if d.GetNode() != nil { // plain DISTINCT is a list of one empty node
				a.filter(a.sortKey(d, sc, out))
			} else {
				a.filterCols(out) // it compares every output column
			}
		}
	}
	for _, o := range s.SortClause {
		a.filter(a.sortKey(o, sc, out))
	}
	if s.LimitCount != nil {
		a.filter(a.expr(s.LimitCount, sc))
	}
	if s.LimitOffset != nil {
		a.filter(a.expr(s.LimitOffset, sc))
	}
	return out
}

// setOp combines the branches of UNION, INTERSECT or EXCEPT: column i
// depends on column i of each branch. Without ALL the branches' values are
// compared, which the caller records as filter uses.
func setOp(l, r []column) []column {
	if len(l) != len(r) || hasWild(l) || hasWild(r) {
		return wildUnresolved()
	}
	out := make([]column, len(l))
	for i := range l {
		out[i] = column{name: l[i].name, l: l[i].l.union(r[i].l)}
	}
	return out
}

func hasWild(cols []column) bool {
	for _, c := range cols {
		if c.wild {
			return true
		}
	}
	return false
}

func (a *analyzer) values(rows []*pg.Node, sc *scope) []column {
	var out []column
	for _, row := range rows {
		items := row.GetList().GetItems()
		if out == nil {
			out = make([]column, len(items))
			for i := range out {
				out[i].name = "column" + itoa(i+1)
			}
		}
		if len(items) != len(out) {
			return wildUnresolved()
		}
		for i, it := range items {
			out[i].l = out[i].l.union(a.expr(it, sc))
		}
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// with brings the CTEs of a WITH clause into scope, in order: each sees
// the ones before it, and itself when RECURSIVE.
func (a *analyzer) with(wc *pg.WithClause, sc *scope) {
	for _, n := range wc.Ctes {
		c := n.GetCommonTableExpr()
		if c == nil {
			a.filterUnres = true
			continue
		}
		var cols []column
		if wc.Recursive {
			cols = a.recursiveCTE(c, sc)
		} else {
			cols = a.queryNode(c.Ctequery, sc)
		}
		cols = rename(cols, &pg.Alias{Colnames: c.Aliascolnames})
		cols = cteExtras(c, cols)
		sc.ctes = &cte{name: c.Ctename, cols: cols, next: sc.ctes}
	}
}

// recursiveCTE finds the fixed point of a recursive CTE: its non-recursive
// branch first, then the whole query with the CTE bound to what is known,
// until the lineage stops growing.
func (a *analyzer) recursiveCTE(c *pg.CommonTableExpr, sc *scope) []column {
	s := c.Ctequery.GetSelectStmt()
	if s == nil || s.Op != pg.SetOperation_SETOP_UNION || s.Larg == nil {
		inner := sc.child()
		inner.ctes = &cte{name: c.Ctename, cols: wildUnresolved(), next: sc.ctes}
		return a.queryNode(c.Ctequery, inner)
	}
	cols := a.selectStmt(s.Larg, sc)
	for range 8 {
		inner := sc.child()
		bound := rename(cols, &pg.Alias{Colnames: c.Aliascolnames})
		inner.ctes = &cte{name: c.Ctename, cols: bound, next: sc.ctes}
		next := setOp(cols, a.selectStmt(s.Rarg, inner))
		if sameCols(next, cols) {
			if !s.All {
				a.filterCols(next) // UNION drops rows equal to earlier ones
			}
			return next
		}
		cols = next
	}
	return wildUnresolved()
}

func sameCols(x, y []column) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].wild != y[i].wild || !x[i].l.equal(y[i].l) {
			return false
		}
	}
	return true
}

// cteExtras adds the columns SEARCH and CYCLE clauses append.
func cteExtras(c *pg.CommonTableExpr, cols []column) []column {
	listed := func(list []*pg.Node) lin {
		var l lin
		for _, n := range list {
			name := n.GetString_().GetSval()
			for _, col := range cols {
				if col.name == name || col.wild {
					l = l.union(col.l)
				}
			}
		}
		return l
	}
	if sc := c.SearchClause; sc != nil {
		cols = append(cols, column{name: sc.SearchSeqColumn, l: listed(sc.SearchColList)})
	}
	if cc := c.CycleClause; cc != nil {
		l := listed(cc.CycleColList)
		cols = append(cols, column{name: cc.CycleMarkColumn, l: l}, column{name: cc.CyclePathColumn, l: l})
	}
	return cols
}

// targets analyzes a target list (or RETURNING list) into output columns,
// expanding * and t.*.
func (a *analyzer) targets(list []*pg.Node, sc *scope) []column {
	out := make([]column, 0, len(list))
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			out = append(out, column{name: "?column?", l: unresolved})
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) {
			out = append(out, a.expandStar(cr, sc)...)
			continue
		}
		name := rt.Name
		if name == "" {
			name = colName(rt.Val)
		}
		out = append(out, column{name: name, l: a.expr(rt.Val, sc)})
	}
	return out
}

func isStar(cr *pg.ColumnRef) bool {
	return len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

func (a *analyzer) expandStar(cr *pg.ColumnRef, sc *scope) []column {
	if len(cr.Fields) == 1 {
		var out []column
		for _, r := range sc.rels {
			out = append(out, r.cols...)
		}
		return out
	}
	q := make([]string, 0, len(cr.Fields)-1)
	for _, f := range cr.Fields[:len(cr.Fields)-1] {
		s := f.GetString_()
		if s == nil {
			return wildUnresolved()
		}
		q = append(q, s.Sval)
	}
	r := findRel(sc, q)
	if r == nil {
		return wildUnresolved()
	}
	return r.cols
}

// colName is the name PostgreSQL gives an unnamed output column, near
// enough: the engine matches columns by position, the name is for people.
func colName(n *pg.Node) string {
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		f := x.ColumnRef.Fields
		if len(f) > 0 && f[len(f)-1].GetString_() != nil {
			return f[len(f)-1].GetString_().Sval
		}
	case *pg.Node_FuncCall:
		f := x.FuncCall.Funcname
		if len(f) > 0 {
			return f[len(f)-1].GetString_().GetSval()
		}
	case *pg.Node_TypeCast:
		if name := colName(x.TypeCast.Arg); name != "?column?" {
			return name
		}
		if tn := x.TypeCast.TypeName; tn != nil && len(tn.Names) > 0 {
			return tn.Names[len(tn.Names)-1].GetString_().GetSval()
		}
	case *pg.Node_CaseExpr:
		return "case"
	case *pg.Node_CollateClause:
		return colName(x.CollateClause.Arg)
	case *pg.Node_RowExpr:
		return "row"
	case *pg.Node_CoalesceExpr:
		return "coalesce"
	case *pg.Node_MinMaxExpr:
		if x.MinMaxExpr.Op == pg.MinMaxOp_IS_LEAST {
			return "least"
		}
		return "greatest"
	case *pg.Node_SubLink:
		return subLinkName(x.SubLink)
	case *pg.Node_XmlExpr:
		return xmlNames[x.XmlExpr.Op]
	case *pg.Node_JsonObjectConstructor:
		return "json_object"
	case *pg.Node_JsonArrayConstructor, *pg.Node_JsonArrayQueryConstructor:
		return "json_array"
	case *pg.Node_JsonObjectAgg:
		return "json_objectagg"
	case *pg.Node_JsonArrayAgg:
		return "json_arrayagg"
	case *pg.Node_AIndirection:
		ind := x.AIndirection.Indirection
		if len(ind) > 0 && ind[len(ind)-1].GetString_() != nil {
			return ind[len(ind)-1].GetString_().Sval
		}
	}
	return "?column?"
}

// sortKey is the lineage of a GROUP BY, ORDER BY or DISTINCT ON item: an
// output column's position or name, or an expression over the input.
func (a *analyzer) sortKey(n *pg.Node, sc *scope, out []column) lin {
	if sb := n.GetSortBy(); sb != nil {
		n = sb.Node
	}
	if c := n.GetAConst(); c != nil {
		if iv := c.GetIval(); iv != nil {
			i := int(iv.Ival)
			if i >= 1 && i <= len(out) {
				return out[i-1].l
			}
			return unresolved
		}
		return lin{}
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
		name := cr.Fields[0].GetString_().Sval
		var l lin
		found := false
		for _, o := range out {
			if o.name == name {
				l, found = l.union(o.l), true
			}
		}
		if in := a.bareName(sc, name); !in.unres || !found {
			l = l.union(in)
		}
		return l
	}
	if gs := n.GetGroupingSet(); gs != nil {
		var l lin
		for _, c := range gs.Content {
			l = l.union(a.sortKey(c, sc, out))
		}
		return l
	}
	return a.expr(n, sc)
}

// window records a window's PARTITION BY and ORDER BY as filter uses.
func (a *analyzer) window(w *pg.WindowDef, sc *scope) {
	if w == nil {
		return
	}
	for _, p := range w.PartitionClause {
		a.filter(a.expr(p, sc))
	}
	for _, o := range w.OrderClause {
		a.filter(a.sortKey(o, sc, nil))
	}
	if w.StartOffset != nil {
		a.filter(a.expr(w.StartOffset, sc))
	}
	if w.EndOffset != nil {
		a.filter(a.expr(w.EndOffset, sc))
	}
}

func subLinkName(s *pg.SubLink) string {
	switch s.SubLinkType {
	case pg.SubLinkType_EXISTS_SUBLINK:
		return "exists"
	case pg.SubLinkType_ARRAY_SUBLINK:
		return "array"
	case pg.SubLinkType_EXPR_SUBLINK:
		sel := s.Subselect.GetSelectStmt()
		for sel != nil && sel.Larg != nil {
			sel = sel.Larg
		}
		if sel != nil && len(sel.TargetList) > 0 {
			rt := sel.TargetList[0].GetResTarget()
			if rt.GetName() != "" {
				return rt.GetName()
			}
			return colName(rt.GetVal())
		}
	}
	return "?column?"
}

var xmlNames = map[pg.XmlExprOp]string{
	pg.XmlExprOp_IS_XMLCONCAT:    "xmlconcat",
	pg.XmlExprOp_IS_XMLELEMENT:   "xmlelement",
	pg.XmlExprOp_IS_XMLFOREST:    "xmlforest",
	pg.XmlExprOp_IS_XMLPARSE:     "xmlparse",
	pg.XmlExprOp_IS_XMLPI:        "xmlpi",
	pg.XmlExprOp_IS_XMLROOT:      "xmlroot",
	pg.XmlExprOp_IS_XMLSERIALIZE: "xmlserialize",
	pg.XmlExprOp_IS_DOCUMENT:     "?column?",
}
