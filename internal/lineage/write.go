package lineage

import pg "github.com/pganalyze/pg_query_go/v6"

// Writes: the data a statement stores flows into a table the client can
// read back without the masks, so every source of it is a filter use. A
// RETURNING list is output; a returned target column carries the table's
// own column and whatever the statement stored into it.

func (a *analyzer) writeScope(with *pg.WithClause, outer *scope) *scope {
	sc := outer.child()
	if with != nil {
		a.with(with, sc)
	}
	return sc
}

// target resolves the table a write changes, with columns of its own.
func (a *analyzer) target(rv *pg.RangeVar, sc *scope) *rel {
	if rv == nil {
		return &rel{cols: wildUnresolved()}
	}
	r := a.rangeVar(rv, &scope{}) // a write's target is never a CTE
	r.cols = append([]column(nil), r.cols...)
	return r
}

// store adds l to the target column called name and records the flow.
func (a *analyzer) store(t *rel, name string, l lin) {
	a.filter(l)
	found := false
	for i := range t.cols {
		if t.cols[i].name == name || t.cols[i].wild {
			t.cols[i].l = t.cols[i].l.union(l)
			found = true
		}
	}
	if !found {
		t.cols = append(t.cols, column{name: name, l: l.union(unresolved)})
	}
}

// assign analyzes SET lists: UPDATE, ON CONFLICT DO UPDATE, MERGE.
func (a *analyzer) assign(t *rel, list []*pg.Node, sc *scope) {
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			a.filterUnres = true
			continue
		}
		for _, ind := range rt.Indirection {
			a.filter(a.expr(ind, sc)) // subscripts choose where the value goes
		}
		val := rt.Val
		if m := rt.Val.GetMultiAssignRef(); m != nil {
			val = m.Source
			if row := m.Source.GetRowExpr(); row != nil && int(m.Colno) >= 1 && int(m.Colno) <= len(row.Args) {
				val = row.Args[m.Colno-1]
			}
		}
		a.store(t, rt.Name, a.expr(val, sc))
	}
}

func (a *analyzer) insertStmt(s *pg.InsertStmt, outer *scope) []column {
	sc := a.writeScope(s.WithClause, outer)
	t := a.target(s.Relation, sc)
	var src []column
	if s.SelectStmt != nil {
		src = a.queryNode(s.SelectStmt, sc)
	}
	names := make([]string, 0, len(t.cols))
	for _, c := range s.Cols {
		names = append(names, c.GetResTarget().GetName())
	}
	if len(names) == 0 {
		for _, c := range t.cols {
			names = append(names, c.name)
		}
	}
	for i, c := range src {
		switch {
		case c.wild:
			for _, n := range names {
				a.store(t, n, c.l)
			}
		case i < len(names):
			a.store(t, names[i], c.l)
		default:
			a.store(t, "?column?", c.l.union(unresolved))
		}
	}
	if oc := s.OnConflictClause; oc != nil {
		a.onConflict(oc, t, sc)
	}
	rs := &scope{rels: []*rel{t}, parent: sc.parent, ctes: sc.ctes}
	return a.targets(s.ReturningList, rs)
}

func (a *analyzer) onConflict(oc *pg.OnConflictClause, t *rel, sc *scope) {
	excluded := &rel{name: "excluded", cols: append([]column(nil), t.cols...)}
	cs := &scope{rels: []*rel{t, excluded}, parent: sc.parent, ctes: sc.ctes}
	if oc.Infer != nil {
		for _, e := range oc.Infer.IndexElems {
			ie := e.GetIndexElem()
			switch {
			case ie == nil:
				a.filter(a.expr(e, cs))
			case ie.Expr != nil:
				a.filter(a.expr(ie.Expr, cs))
			default:
				a.filter(a.bareName(cs, ie.Name))
			}
		}
		a.filter(a.expr(oc.Infer.WhereClause, cs))
	}
	a.assign(t, oc.TargetList, cs)
	a.filter(a.expr(oc.WhereClause, cs))
}

func (a *analyzer) updateStmt(s *pg.UpdateStmt, outer *scope) []column {
	sc := a.writeScope(s.WithClause, outer)
	t := a.target(s.Relation, sc)
	sc.rels = append([]*rel{t}, a.fromList(s.FromClause, sc)...)
	a.filter(a.expr(s.WhereClause, sc))
	a.assign(t, s.TargetList, sc)
	return a.targets(s.ReturningList, sc)
}

func (a *analyzer) deleteStmt(s *pg.DeleteStmt, outer *scope) []column {
	sc := a.writeScope(s.WithClause, outer)
	t := a.target(s.Relation, sc)
	sc.rels = append([]*rel{t}, a.fromList(s.UsingClause, sc)...)
	a.filter(a.expr(s.WhereClause, sc))
	return a.targets(s.ReturningList, sc)
}

func (a *analyzer) mergeStmt(s *pg.MergeStmt, outer *scope) []column {
	sc := a.writeScope(s.WithClause, outer)
	t := a.target(s.Relation, sc)
	sc.rels = append([]*rel{t}, a.fromItem(s.SourceRelation, sc, nil)...)
	a.filter(a.expr(s.JoinCondition, sc))
	for _, n := range s.MergeWhenClauses {
		w := n.GetMergeWhenClause()
		if w == nil {
			a.filterUnres = true
			continue
		}
		a.filter(a.expr(w.Condition, sc))
		switch w.CommandType {
		case pg.CmdType_CMD_UPDATE:
			a.assign(t, w.TargetList, sc)
		case pg.CmdType_CMD_INSERT:
			a.mergeInsert(t, w, sc)
		}
	}
	return a.targets(s.ReturningList, sc)
}

func (a *analyzer) mergeInsert(t *rel, w *pg.MergeWhenClause, sc *scope) {
	for i, v := range w.Values {
		name := "?column?"
		switch {
		case i < len(w.TargetList):
			name = w.TargetList[i].GetResTarget().GetName()
		case len(w.TargetList) == 0 && i < len(t.cols):
			name = t.cols[i].name
		}
		a.store(t, name, a.expr(v, sc))
	}
}
