package lineage

import (
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/countersign/countersign/internal/mask"
)

// statement analyzes one top-level statement into res.
func (a *analyzer) statement(n *pg.Node, res *Result) {
	top := &scope{}
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		cols := a.selectStmt(x.SelectStmt, top)
		if x.SelectStmt.IntoClause != nil {
			a.filterCols(cols) // SELECT INTO: the rows flow into a table
			return
		}
		outputs(res, cols)
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		outputs(res, a.queryNode(n, top))
	case *pg.Node_CopyStmt:
		a.copyStmt(x.CopyStmt, res)
	case *pg.Node_CreateTableAsStmt:
		// CREATE TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW: the rows
		// flow into a relation the client can read without the masks.
		if x.CreateTableAsStmt.Query.GetExecuteStmt() != nil {
			res.FilterUnresolved = true
			return
		}
		a.filterCols(a.queryNode(x.CreateTableAsStmt.Query, top))
	case *pg.Node_ViewStmt:
		// A view stores its query; its outputs are traced when it is read,
		// but its conditions are the client's choice: report them.
		a.queryNode(x.ViewStmt.Query, top)
	case *pg.Node_ExplainStmt:
		// The plan shows no values, but EXPLAIN ANALYZE runs the statement
		// and its row counts answer its conditions.
		inner := &Result{}
		a.statement(x.ExplainStmt.Query, inner)
		res.FilterUnresolved = inner.FilterUnresolved
		res.Columns = append(res.Columns, plainColumn("QUERY PLAN"))
	case *pg.Node_DeclareCursorStmt:
		res.Defines = x.DeclareCursorStmt.Portalname
		a.statement(x.DeclareCursorStmt.Query, res)
	case *pg.Node_PrepareStmt:
		res.Defines = x.PrepareStmt.Name
		a.statement(x.PrepareStmt.Query, res)
	case *pg.Node_ExecuteStmt:
		res.Refers = x.ExecuteStmt.Name
		for _, p := range x.ExecuteStmt.Params {
			a.filter(a.expr(p, top))
		}
	case *pg.Node_FetchStmt:
		if !x.FetchStmt.Ismove {
			res.Refers = x.FetchStmt.Portalname
		}
	case *pg.Node_VariableShowStmt:
		res.Columns = append(res.Columns, plainColumn(x.VariableShowStmt.Name))
	default:
		if !noData(n) {
			// CALL, DO, ALTER TABLE ... CHECK, CREATE INDEX and the rest
			// may read table data in ways not traced here.
			res.FilterUnresolved = true
		}
	}
}

// noData reports whether a statement kind reads no table data at all.
func noData(n *pg.Node) bool {
	switch n.GetNode().(type) {
	case *pg.Node_TransactionStmt, *pg.Node_VariableSetStmt, *pg.Node_DiscardStmt,
		*pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_NotifyStmt,
		*pg.Node_DeallocateStmt, *pg.Node_ClosePortalStmt, *pg.Node_CheckPointStmt,
		*pg.Node_LockStmt, *pg.Node_ConstraintsSetStmt, *pg.Node_LoadStmt,
		*pg.Node_CreateStmt, *pg.Node_DropStmt, *pg.Node_CreateSchemaStmt,
		*pg.Node_CommentStmt, *pg.Node_GrantStmt, *pg.Node_GrantRoleStmt,
		*pg.Node_CreateRoleStmt, *pg.Node_AlterRoleStmt, *pg.Node_DropRoleStmt,
		*pg.Node_CreateFunctionStmt, *pg.Node_TruncateStmt, *pg.Node_CreateSeqStmt,
		*pg.Node_RenameStmt, *pg.Node_DropOwnedStmt, *pg.Node_ReassignOwnedStmt,
		*pg.Node_CreateExtensionStmt, *pg.Node_CompositeTypeStmt, *pg.Node_CreateEnumStmt:
		return true
	}
	return false
}

// plainColumn is a computed column that carries no table data.
func plainColumn(name string) mask.Column {
	return mask.Column{Name: name, Resolved: true}
}
