package sqlkind

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// stmtKind decides one MySQL statement's kind, walking the parts that run.
func (m *MySQLClassifier) stmtKind(s ast.StmtNode, r *MySQLStatement, w *myWalk) (Kind, string) {
	switch x := s.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		w.node(s)
		return Read, ""
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.NonTransactionalDMLStmt, *ast.TruncateTableStmt:
		w.node(s)
		return Write, ""
	case *ast.LoadDataStmt:
		w.node(s)
		if x.FileLocRef != ast.FileLocClient {
			return Unknown, "LOAD DATA INFILE without LOCAL reads a file on the database server"
		}
		// The client chooses the file's content after the decision: like
		// COPY ... FROM STDIN, no review of the text covers its rows (the
		// guard asks for a write grant instead).
		r.LoadLocal, r.LoadFile, r.CopyIn = true, x.Path, true
		return Write, "LOAD DATA LOCAL INFILE writes rows the gateway cannot see when it decides"
	case *ast.ExplainStmt:
		if !x.Analyze {
			w.node(x.Stmt)
			return Read, ""
		}
		var inner MySQLStatement
		k, why := m.stmtKind(x.Stmt, &inner, w)
		if why == "" {
			why = "EXPLAIN ANALYZE runs the statement"
		}
		return k, why
	case *ast.UseStmt:
		r.Use = x.DBName
		w.objects = append(w.objects, x.DBName)
		return Read, ""
	case *ast.SetStmt:
		return w.setKind(x, r)
	case *ast.CreateTableStmt, *ast.CreateViewStmt:
		w.node(s)
		return Schema, ""
	case *ast.CallStmt:
		w.node(s)
		return Unknown, "CALL runs a stored procedure, which may do anything"
	case *ast.DoStmt:
		w.node(s)
		return Unknown, "DO evaluates expressions for their effects"
	case *ast.PrepareStmt:
		return m.prepareKind(x, r, w)
	case *ast.ExecuteStmt:
		r.Execute, r.ExecuteUsing = strings.ToLower(x.Name), len(x.UsingVars) > 0
		return Unknown, fmt.Sprintf("EXECUTE %s runs a prepared statement that is not known here", x.Name)
	case *ast.DeallocateStmt:
		r.Deallocate = strings.ToLower(x.Name)
		return Read, ""
	}
	return myUtilityKind(s, w)
}

// myUtilityKinds maps the other statement types of the grammar to their
// kind, by Go type name. A type not listed is Unknown, so a statement a
// later grammar adds fails closed until someone decides it.
var myUtilityKinds = func() map[string]Kind {
	m := map[string]Kind{}
	add := func(k Kind, names ...string) {
		for _, n := range names {
			m[n] = k
		}
	}
	add(Read, "ShowStmt", "HelpStmt", "BeginStmt", "CommitStmt", "RollbackStmt",
		"SavepointStmt", "ReleaseSavepointStmt", "DeallocateStmt", "UnlockTablesStmt",
		"ExplainForStmt")
	add(Write, "LockTablesStmt")
	add(Privilege, "GrantStmt", "GrantRoleStmt", "GrantProxyStmt", "RevokeStmt",
		"RevokeRoleStmt", "CreateUserStmt", "AlterUserStmt", "DropUserStmt",
		"RenameUserStmt", "SetPwdStmt", "SetRoleStmt", "SetDefaultRoleStmt")
	add(Admin, "FlushStmt", "KillStmt", "ShutdownStmt", "RestartStmt", "AdminStmt",
		"ChangeStmt", "BRIEStmt", "AlterInstanceStmt", "SetConfigStmt", "OptimizeTableStmt",
		"RepairTableStmt", "AnalyzeTableStmt", "CompactTableStmt", "CreateResourceGroupStmt",
		"AlterResourceGroupStmt", "DropResourceGroupStmt", "CreatePlacementPolicyStmt",
		"AlterPlacementPolicyStmt", "DropPlacementPolicyStmt")
	add(Schema, "CreateDatabaseStmt", "AlterDatabaseStmt", "DropDatabaseStmt",
		"DropTableStmt", "AlterTableStmt", "RenameTableStmt", "CreateIndexStmt",
		"DropIndexStmt", "CreateSequenceStmt", "AlterSequenceStmt", "DropSequenceStmt",
		"ProcedureInfo", "DropProcedureStmt", "CreateStatisticsStmt", "DropStatisticsStmt")
	return m
}()

func myUtilityKind(s ast.StmtNode, w *myWalk) (Kind, string) {
	t := reflect.TypeOf(s)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k, ok := myUtilityKinds[t.Name()]
	if !ok {
		return Unknown, fmt.Sprintf("statement type %s is not classified", t.Name())
	}
	if k == Read {
		// A read statement may still evaluate expressions now: SHOW ...
		// WHERE runs its condition (a stored function, GET_LOCK, a
		// locking subquery) for every row.
		w.node(s)
		return k, ""
	}
	// Only the objects matter here: the kind already needs review by
	// default, and definitions (a view's query) do not run now.
	ow := myWalk{}
	ow.node(s)
	w.objects = append(w.objects, ow.objects...)
	w.vars = append(w.vars, ow.vars...)
	return k, ""
}

// prepareKind: SQL-level PREPARE runs nothing; the statement it prepares is
// decided at each EXECUTE (see ClassifySession). PREPARE from a string
// literal is a read naming the objects of the prepared text; from a user
// variable, whose value the gateway does not know, it is Unknown, and so is
// every EXECUTE of it.
func (m *MySQLClassifier) prepareKind(x *ast.PrepareStmt, r *MySQLStatement, w *myWalk) (Kind, string) {
	r.Prepare = &MySQLPrepare{Name: strings.ToLower(x.Name), Text: x.SQLText, FromVariable: x.SQLVar != nil}
	if x.SQLVar != nil {
		return Unknown, fmt.Sprintf("PREPARE %s FROM a user variable: the statement is not known to the gateway; prepare from a string literal", x.Name)
	}
	inner := m.Classify(x.SQLText)
	w.objects = append(w.objects, inner.Objects...)
	for _, st := range m.Statements(x.SQLText) {
		r.Schemas = append(r.Schemas, st.Schemas...)
	}
	return Read, ""
}
