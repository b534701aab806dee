package sqlkind

import "github.com/pingcap/tidb/pkg/parser/ast"

// statementSchemas lists the schemas a statement names explicitly, as
// written (see MySQLStatement.Schemas).
func statementSchemas(s ast.StmtNode) []string {
	w := &schemaWalk{}
	switch x := s.(type) {
	case *ast.UseStmt:
		w.add(x.DBName)
	case *ast.CreateDatabaseStmt:
		w.add(x.Name.O)
	case *ast.AlterDatabaseStmt:
		w.add(x.Name.O)
	case *ast.DropDatabaseStmt:
		w.add(x.Name.O)
	case *ast.ShowStmt:
		w.add(x.DBName)
	}
	s.Accept(w)
	return w.names
}

// schemaWalk collects the schema qualifiers of every name in a statement.
type schemaWalk struct{ names []string }

func (w *schemaWalk) add(name string) {
	if name != "" {
		w.names = append(w.names, name)
	}
}

// Enter implements ast.Visitor.
func (w *schemaWalk) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableName:
		w.add(x.Schema.O)
	case *ast.ColumnName:
		w.add(x.Schema.O)
	case *ast.FuncCallExpr:
		w.add(x.Schema.O)
	}
	return n, false
}

// Leave implements ast.Visitor.
func (w *schemaWalk) Leave(n ast.Node) (ast.Node, bool) { return n, true }
