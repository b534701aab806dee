package lineage

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// expr returns the lineage of an expression's value and records the
// filter uses inside it (CASE conditions, subqueries' WHERE, aggregate
// FILTER and ORDER BY, windows).
func (a *analyzer) expr(n *pg.Node, sc *scope) lin {
	if n == nil || n.Node == nil {
		return lin{}
	}
	if !a.enter() {
		a.leave()
		return unresolved
	}
	defer a.leave()
	l := a.value(n, sc)
	switch n.Node.(type) {
	case *pg.Node_ColumnRef, *pg.Node_SubLink, *pg.Node_SelectStmt, *pg.Node_CollateClause:
		// The value as stored (or as the subquery built it).
	default:
		l.computed = true
	}
	return l
}

// value is expr without the bookkeeping.
func (a *analyzer) value(n *pg.Node, sc *scope) lin {
	switch x := n.Node.(type) {
	case *pg.Node_ColumnRef:
		return a.columnRef(sc, x.ColumnRef.Fields)
	case *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_SqlvalueFunction, *pg.Node_SetToDefault:
		return lin{}
	case *pg.Node_FuncCall:
		return a.funcCall(x.FuncCall, sc)
	case *pg.Node_AExpr:
		return a.aExpr(x.AExpr, sc)
	case *pg.Node_CaseExpr:
		return a.caseExpr(x.CaseExpr, sc)
	case *pg.Node_SubLink:
		return a.subLink(x.SubLink, sc)
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return unionAll(a.queryNode(n, sc))
	case *pg.Node_JsonAggConstructor:
		return a.aggParts(x.JsonAggConstructor, sc)
	case *pg.Node_TypeCast:
		return a.typeCast(x.TypeCast, sc)
	case *pg.Node_JsonKeyValue:
		return a.keyValue(x.JsonKeyValue, sc)
	case *pg.Node_AIndirection:
		return a.indirection(x.AIndirection, sc)
	case *pg.Node_RangeVar, *pg.Node_RangeFunction, *pg.Node_RangeSubselect, *pg.Node_JoinExpr:
		// A relation where a value was expected: not an expression form
		// the analyzer knows.
		return unresolved
	}
	l := a.generic(n.ProtoReflect(), sc)
	if !deriving(n) {
		// Boolean and NULL tests, GREATEST, subscripts, XMLPARSE, IS JSON
		// and every form not known to only build a value: its inputs
		// answer a question (oracle.go).
		a.filter(l)
	}
	return l
}

// generic is the lineage of a node the analyzer has no rule for: the union
// of everything inside it (Boolean and NULL tests, arrays, rows, COALESCE,
// GREATEST, COLLATE, JSON and XML constructors...). A node that calls code
// by name is handled above, so the union is the whole story.
func (a *analyzer) generic(m protoreflect.Message, sc *scope) lin {
	var l lin
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				l = l.union(a.child(list.Get(i).Message(), sc))
			}
			return true
		}
		l = l.union(a.child(v.Message(), sc))
		return true
	})
	return l
}

func (a *analyzer) child(m protoreflect.Message, sc *scope) lin {
	if !m.IsValid() {
		return lin{}
	}
	switch x := m.Interface().(type) {
	case *pg.Node:
		return a.expr(x, sc)
	case *pg.WindowDef:
		a.window(x, sc)
		return lin{}
	case *pg.JsonAggConstructor:
		return a.aggParts(x, sc)
	case *pg.TypeName:
		return lin{}
	case *pg.JsonKeyValue:
		return a.keyValue(x, sc)
	}
	if !a.enter() {
		a.leave()
		return unresolved
	}
	defer a.leave()
	return a.generic(m, sc)
}

// aggParts records an aggregate's FILTER, ORDER BY and window as filter
// uses; the aggregated values are output.
func (a *analyzer) aggParts(j *pg.JsonAggConstructor, sc *scope) lin {
	if j == nil {
		return lin{}
	}
	if j.AggFilter != nil {
		a.filter(a.expr(j.AggFilter, sc))
	}
	for _, o := range j.AggOrder {
		a.filter(a.sortKey(o, sc, nil))
	}
	a.window(j.Over, sc)
	return lin{}
}

// aExpr: every operator but || compares, tests or may fail on its
// operands (oracle.go); all of them derive their value from both.
func (a *analyzer) aExpr(x *pg.A_Expr, sc *scope) lin {
	left, right := a.expr(x.Lexpr, sc), a.expr(x.Rexpr, sc)
	a.aExprOracle(x, left, right)
	l := left.union(right)
	if !builtinOperator(x.Name) {
		return l.union(unresolved)
	}
	return l
}

// builtinOperator: an operator named with a schema other than pg_catalog
// runs code the analyzer cannot see.
func builtinOperator(name []*pg.Node) bool {
	if len(name) < 2 {
		return true
	}
	return name[0].GetString_().GetSval() == "pg_catalog"
}

// caseExpr: the results are output; the tested value and the WHEN
// conditions decide which result shows, so they are both filter uses and
// part of the value.
func (a *analyzer) caseExpr(c *pg.CaseExpr, sc *scope) lin {
	l := a.expr(c.Arg, sc)
	a.filter(l)
	for _, w := range c.Args {
		cw := w.GetCaseWhen()
		if cw == nil {
			l = l.union(a.expr(w, sc))
			continue
		}
		cond := a.expr(cw.Expr, sc)
		a.filter(cond)
		l = l.union(cond).union(a.expr(cw.Result, sc))
	}
	return l.union(a.expr(c.Defresult, sc))
}

// subLink: a subquery's outputs are part of the value (scalar, ARRAY,
// IN/ANY/ALL compared with the test expression); its conditions were
// recorded while analyzing it.
func (a *analyzer) subLink(s *pg.SubLink, sc *scope) lin {
	l := unionAll(a.queryNode(s.Subselect, sc))
	l = l.union(a.expr(s.Testexpr, sc))
	if s.Testexpr != nil || len(s.OperName) > 0 {
		a.filter(l) // IN, ANY, ALL: the test value against the subquery's
	}
	if len(s.OperName) > 0 && !builtinOperator(s.OperName) {
		l = l.union(unresolved)
	}
	return l
}

// funcCall: a known built-in's value derives from its arguments; anything
// else is unresolved. Aggregate FILTER and ORDER BY and the window are
// filter uses.
func (a *analyzer) funcCall(f *pg.FuncCall, sc *scope) lin {
	if f.AggFilter != nil {
		a.filter(a.expr(f.AggFilter, sc))
	}
	for _, o := range f.AggOrder {
		if f.AggWithinGroup {
			// percentile_cont(0.5) WITHIN GROUP (ORDER BY x): x is the
			// aggregated value.
			continue
		}
		a.filter(a.sortKey(o, sc, nil))
	}
	a.window(f.Over, sc)
	var l lin
	args := make([]lin, len(f.Args))
	for i, arg := range f.Args {
		args[i] = a.expr(arg, sc)
		l = l.union(args[i])
	}
	if f.AggWithinGroup {
		for _, o := range f.AggOrder {
			l = l.union(a.sortKey(o, sc, nil))
		}
	}
	if !a.argsOnly(f.Funcname) {
		// Unknown code may store or compare its arguments anywhere.
		a.filter(l)
		return l.union(unresolved)
	}
	name, _ := builtinName(f.Funcname)
	if flowsOut[name] {
		a.filter(l)
	}
	return a.funcOracle(name, f, args, l)
}
