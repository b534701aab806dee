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
		if len(x.OperName) > 0 {
			w.operators = append(w.operators, nameOf(x.OperName))
		}
	case *pg.SortBy:
		if len(x.UseOp) > 0 {
			w.operators = append(w.operators, nameOf(x.UseOp))
		}
	case *pg.TypeCast:
		if x.TypeName != nil {
			w.types = append(w.types, nameOf(x.TypeName.Names))
		}
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

// columnRef records t.f's last name: PostgreSQL reads it as f(t) when t has
// no column f ("functional notation").
func (w *pgWalk) columnRef(c *pg.ColumnRef) {
	if len(c.Fields) < 2 {
		return
	}
	if s := c.Fields[len(c.Fields)-1].GetString_(); s != nil {
		w.attrs = append(w.attrs, s.Sval)
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
