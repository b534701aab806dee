package sqlkind

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// myWalk collects what a MySQL statement touches and does, as an
// ast.Visitor over the whole statement.
type myWalk struct {
	objects   []string
	functions []string
	// writes is set by parts that change data inside a read-looking
	// statement: SELECT ... FOR UPDATE / LOCK IN SHARE MODE.
	writes bool
	// unknown is why a part of the statement makes it Unknown
	// (SELECT ... INTO OUTFILE), "" otherwise.
	unknown string
	// setsSession is set by LAST_INSERT_ID(expr), which sets the value
	// later statements and the client read as the last insert id.
	setsSession bool
	// vars are the user variables read (@x; not @x := ..., which sets it).
	vars []string
}

// Enter implements ast.Visitor.
func (w *myWalk) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableName:
		w.objects = append(w.objects, qualify(x.Schema.O, x.Name.O))
	case *ast.FuncCallExpr:
		w.functions = append(w.functions, funcName(x))
		w.setsSession = w.setsSession || (funcName(x) == "last_insert_id" && len(x.Args) > 0)
	case *ast.AggregateFuncExpr:
		// Aggregates are checked like any call: TiDB knows some MariaDB
		// does not (APPROX_COUNT_DISTINCT), which MariaDB resolves to a
		// stored function of the current schema.
		w.functions = append(w.functions, strings.ToLower(x.F))
	case *ast.WindowFuncExpr:
		w.functions = append(w.functions, strings.ToLower(x.Name))
	case *ast.VariableExpr:
		if !x.IsSystem && x.Value == nil {
			w.vars = append(w.vars, strings.ToLower(x.Name))
		}
	case *ast.SelectStmt:
		w.selectParts(x)
	}
	return n, false
}

// Leave implements ast.Visitor.
func (w *myWalk) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func (w *myWalk) selectParts(s *ast.SelectStmt) {
	if s.LockInfo != nil && s.LockInfo.LockType != ast.SelectLockNone {
		w.writes = true
	}
	if s.SelectIntoOpt != nil {
		switch s.SelectIntoOpt.Tp {
		case ast.SelectIntoOutfile:
			w.unknown = "SELECT ... INTO OUTFILE writes a file on the database server"
		case ast.SelectIntoDumpfile:
			w.unknown = "SELECT ... INTO DUMPFILE writes a file on the database server"
		}
	}
}

// node walks a whole statement or expression; nil is fine.
func (w *myWalk) node(n ast.Node) {
	if n == nil {
		return
	}
	n.Accept(w)
}

func (w *myWalk) expr(e ast.ExprNode) {
	if e != nil {
		e.Accept(w)
	}
}

// qualify writes schema.name as written; an empty schema leaves the bare
// name.
func qualify(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// funcName is the lower-case name, schema-qualified when the text
// qualifies it (db.f(): always a stored function).
func funcName(f *ast.FuncCallExpr) string {
	name := strings.ToLower(f.FnName.O)
	if f.Schema.O != "" {
		return strings.ToLower(f.Schema.O) + "." + name
	}
	return name
}
