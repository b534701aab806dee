package sqlkind

import (
	"context"
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Planning a read folds the constant parts of a table's CHECK constraints
// (constraint exclusion), index expressions and statistics expressions:
// an immutable function called only on constants runs then, once per plan
// or per backend. A call that takes a column runs only for writes, so only
// the column-free calls of such an expression are checked.

// checkFolded resolves the column-free calls of a stored expression as the
// catalog check of a read; it returns why they are not safe, or "".
func (p *PostgresClassifier) checkFolded(ctx context.Context, what, expr string, cat Catalog, depth int) (string, error) {
	if depth >= maxViewDepth {
		return fmt.Sprintf("%s nests more than %d deep", what, maxViewDepth), nil
	}
	tree, err := pg.Parse("SELECT " + expr)
	if err != nil || len(tree.Stmts) != 1 {
		return fmt.Sprintf("%s cannot be read by the gateway's parser", what), nil
	}
	var w pgWalk
	w.folded(tree.Stmts[0].Stmt.ProtoReflect())
	c := Classification{Kind: Read, Statements: 1, Functions: sortedUnique(w.functions),
		Operators: sortedUnique(w.operators), Types: sortedUnique(w.types)}
	p.settleFunctions(&c)
	inner, err := p.resolve(ctx, c, cat, depth+1)
	if err != nil {
		return "", err
	}
	if inner.Kind != Read {
		return fmt.Sprintf("%s is %s: %s", what, inner.Kind, inner.Reason), nil
	}
	return "", nil
}

// folded collects the calls, operators and casts of every column-free
// call, operator or cast in m: the parts the planner can fold.
func (w *pgWalk) folded(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	switch m.Interface().(type) {
	case *pg.FuncCall, *pg.A_Expr, *pg.TypeCast:
		if !hasColumnRef(m) {
			w.msg(m)
			return
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.folded(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			w.folded(v.Message())
		}
		return true
	})
}

// hasColumnRef reports whether m refers to a column anywhere below it.
func hasColumnRef(m protoreflect.Message) bool {
	if !m.IsValid() {
		return false
	}
	if _, ok := m.Interface().(*pg.ColumnRef); ok {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasColumnRef(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			found = hasColumnRef(v.Message())
		}
		return !found
	})
	return found
}
