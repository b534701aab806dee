package sqlkind

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// pgWalk collects what one statement's tree touches and does. It visits every
// node with protobuf reflection, so a node type added to the grammar is still
// walked; only the nodes that call code or name relations are looked at.
type pgWalk struct {
	objects, functions, operators, types, attrs []string
	// writes is set by any INSERT, UPDATE, DELETE or MERGE anywhere in the
	// tree (a data-modifying CTE) and by SELECT ... FOR UPDATE/SHARE.
	writes bool
	// ctes is the stack of CTE names in scope: an unqualified relation of
	// that name is the CTE, not a table.
	ctes []string
	// depth bounds recursion; parse trees are bounded by the parser's own
	// stack depth limit, this is a second guard.
	depth int
	// objectsOnly collects relations only: used for definitions (DDL),
	// whose expressions are stored, not run.
	objectsOnly bool
}

const maxWalkDepth = 20000

func (w *pgWalk) node(n *pg.Node) {
	if n == nil || n.Node == nil {
		return
	}
	w.msg(n.ProtoReflect())
}

func (w *pgWalk) msg(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxWalkDepth {
		// Too deep to be sure what it does: force the fail-closed path.
		w.functions = append(w.functions, "(nesting too deep)")
		return
	}
	if w.objectsOnly {
		if x, ok := m.Interface().(*pg.RangeVar); ok {
			w.rangeVar(x)
		}
		w.fields(m, "")
		return
	}
	switch x := m.Interface().(type) {
	case *pg.RangeVar:
		w.rangeVar(x)
	case *pg.FuncCall:
		w.functions = append(w.functions, nameOf(x.Funcname))
	case *pg.RangeTableSample:
		// TABLESAMPLE method(args) calls the method's handler function.
		w.functions = append(w.functions, nameOf(x.Method))
	case *pg.A_Expr:
		w.aExpr(x)
	case *pg.SubLink:
		w.subLink(x)
	case *pg.CaseExpr:
		if x.Arg != nil {
			// CASE x WHEN y compares with the = operator that search_path
			// finds for x's and y's types.
			w.operators = append(w.operators, "=")
		}
	case *pg.JoinExpr:
		if x.IsNatural || len(x.UsingClause) > 0 {
			// NATURAL and USING joins compare the columns with =.
			w.operators = append(w.operators, "=")
		}
	case *pg.SortBy:
		if len(x.UseOp) > 0 {
			w.operators = append(w.operators, nameOf(x.UseOp))
		}
	case *pg.TypeName:
		// Casts, column definition lists (AS r(a mytype)), XMLTABLE columns
		// and PREPARE parameter types all convert input into the type,
		// which runs a domain's CHECK constraints.
		w.types = append(w.types, nameOf(x.Names))
	case *pg.ColumnRef:
		w.columnRef(x)
	case *pg.A_Indirection:
		for _, ind := range x.Indirection {
			if s := ind.GetString_(); s != nil {
				w.attrs = append(w.attrs, s.Sval)
			}
		}
	case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
		w.writes = true
		w.target(x)
	case *pg.SelectStmt:
		if len(x.LockingClause) > 0 {
			w.writes = true
		}
	}
	if wc := withClauseOf(m.Interface()); wc != nil {
		w.withScope(m, wc)
		return
	}
	w.fields(m, "")
}

// fields walks every message-typed field of m except the one named skip.
func (w *pgWalk) fields(m protoreflect.Message, skip protoreflect.Name) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() == skip {
			return true
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.msg(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			w.msg(v.Message())
		}
		return true
	})
}

// withScope walks a statement with a WITH clause: a CTE body sees the CTEs
// before it (all of them when RECURSIVE), the statement body sees all.
func (w *pgWalk) withScope(m protoreflect.Message, wc *pg.WithClause) {
	base := len(w.ctes)
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		if wc.Recursive {
			w.ctes = append(w.ctes, cte.Ctename)
		}
	}
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			w.node(c)
			continue
		}
		w.node(cte.Ctequery)
		if !wc.Recursive {
			w.ctes = append(w.ctes, cte.Ctename)
		}
	}
	w.fields(m, "with_clause")
	w.ctes = w.ctes[:base]
}

func withClauseOf(m protoreflect.ProtoMessage) *pg.WithClause {
	switch x := m.(type) {
	case *pg.SelectStmt:
		return x.WithClause
	case *pg.InsertStmt:
		return x.WithClause
	case *pg.UpdateStmt:
		return x.WithClause
	case *pg.DeleteStmt:
		return x.WithClause
	case *pg.MergeStmt:
		return x.WithClause
	}
	return nil
}

// target records the table a data-modifying statement changes. It is
// never a CTE, even when a CTE in scope has its name (WITH t AS (...)
// DELETE FROM t deletes from the table t), so it is recorded here, outside
// the CTE scoping of rangeVar, for the recording's list of what changed.
func (w *pgWalk) target(m any) {
	var r *pg.RangeVar
	switch x := m.(type) {
	case *pg.InsertStmt:
		r = x.Relation
	case *pg.UpdateStmt:
		r = x.Relation
	case *pg.DeleteStmt:
		r = x.Relation
	case *pg.MergeStmt:
		r = x.Relation
	}
	if r != nil {
		w.objects = append(w.objects, rangeVarName(r))
	}
}

func (w *pgWalk) rangeVar(r *pg.RangeVar) {
	if r.Schemaname == "" && r.Catalogname == "" {
		for _, c := range w.ctes {
			if c == r.Relname {
				return
			}
		}
	}
	w.objects = append(w.objects, rangeVarName(r))
}

func rangeVarName(r *pg.RangeVar) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{r.Catalogname, r.Schemaname, r.Relname} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

func (w *pgWalk) aExpr(x *pg.A_Expr) {
	switch x.Kind {
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		// BETWEEN is spelled as a keyword but runs >= and <=.
		w.operators = append(w.operators, ">=", "<=")
	default:
		if len(x.Name) > 0 {
			w.operators = append(w.operators, nameOf(x.Name))
		}
	}
}

// columnRef records the names after the first of t.f: PostgreSQL reads it
// as f(t) when t has no column f ("functional notation"), and a.b.c may
// call b or c depending on which of a and a.b name a relation.
func (w *pgWalk) columnRef(c *pg.ColumnRef) {
	for _, f := range c.Fields[min(1, len(c.Fields)):] {
		if s := f.GetString_(); s != nil {
			w.attrs = append(w.attrs, s.Sval)
		}
	}
}

// subLink records the operator a sub-select comparison runs. x IN (SELECT
// ...) has no operator name in the parse tree; PostgreSQL compares with =.
func (w *pgWalk) subLink(x *pg.SubLink) {
	switch {
	case len(x.OperName) > 0:
		w.operators = append(w.operators, nameOf(x.OperName))
	case x.SubLinkType == pg.SubLinkType_ANY_SUBLINK:
		w.operators = append(w.operators, "=")
	}
}

// nameOf joins a parser name list ("pg_catalog", "lower") with dots. The
// parser has already folded unquoted identifiers to lower case.
func nameOf(list []*pg.Node) string {
	var b strings.Builder
	for i, n := range list {
		if i > 0 {
			b.WriteByte('.')
		}
		if s := n.GetString_(); s != nil {
			b.WriteString(s.Sval)
		} else {
			b.WriteString("?")
		}
	}
	return b.String()
}
