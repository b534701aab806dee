package pgmask

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/lineage"
)

// statements is the lineage of each statement of an operation's text, and
// which of them send a RowDescription. A simple Query may hold several
// statements; its k-th RowDescription belongs to the k-th statement that
// sends one. When that cannot be told (a statement that may or may not
// send rows: EXECUTE, CALL), the mapping is unsure and every computed
// column is masked whole.
type statements struct {
	list   []stmtLineage
	unsure bool // some statement may or may not send a RowDescription
	err    error
	lc     *seenCatalog // resolves names as the session does, and keeps them
}

type stmtLineage struct {
	res  *lineage.Result // nil: its analysis failed (all unresolved)
	rows rowsKind
	err  error
	// copyTable: COPY table TO STDOUT, whose columns are the table's own
	// (PostgreSQL refuses COPY from a view), not expressions.
	copyTable bool
	// explained is the lineage of the query an EXPLAIN names (nil: none,
	// or its analysis failed, when explain is set): EXPLAIN ANALYZE runs
	// it, and its errors can quote what it reads.
	explain   bool
	explained *lineage.Result
}

type rowsKind uint8

const (
	rowsNo rowsKind = iota
	rowsYes
	rowsMaybe
)

// analyze parses the operation's text once and traces every statement.
// The catalog resolves unqualified names through the session's
// search_path.
func analyze(ctx context.Context, cat *resCatalog, op *guard.Operation) *statements {
	out := &statements{}
	tree, err := pg.Parse(op.Text)
	if err != nil {
		out.err = err
		return out
	}
	lc := &seenCatalog{PGCatalog: cat.cat.WithSearchPath(searchPath(op.State))}
	out.lc = lc
	for _, raw := range tree.Stmts {
		s := stmtLineage{rows: rowsOf(raw.Stmt), copyTable: raw.Stmt.GetCopyStmt().GetRelation() != nil}
		s.res, s.err = lineage.AnalyzeStmt(ctx, raw.Stmt, lc)
		if x := raw.Stmt.GetExplainStmt(); x != nil {
			s.explain = true
			s.explained, _ = lineage.AnalyzeStmt(ctx, x.Query, lc)
		}
		if s.rows == rowsMaybe {
			out.unsure = true
		}
		out.list = append(out.list, s)
	}
	return out
}

// rowsOf says whether a statement answers with a RowDescription.
func rowsOf(n *pg.Node) rowsKind {
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		if x.SelectStmt.IntoClause != nil {
			return rowsNo
		}
		return rowsYes
	case *pg.Node_InsertStmt:
		return yesIf(len(x.InsertStmt.ReturningList) > 0)
	case *pg.Node_UpdateStmt:
		return yesIf(len(x.UpdateStmt.ReturningList) > 0)
	case *pg.Node_DeleteStmt:
		return yesIf(len(x.DeleteStmt.ReturningList) > 0)
	case *pg.Node_MergeStmt:
		return yesIf(len(x.MergeStmt.ReturningList) > 0)
	case *pg.Node_ExplainStmt, *pg.Node_VariableShowStmt:
		return rowsYes
	case *pg.Node_FetchStmt:
		return yesIf(!x.FetchStmt.Ismove)
	case *pg.Node_ExecuteStmt, *pg.Node_CallStmt:
		return rowsMaybe
	}
	return rowsNo
}

func yesIf(b bool) rowsKind {
	if b {
		return rowsYes
	}
	return rowsNo
}

// forRowDescription returns the lineage of the statement whose result the
// idx-th RowDescription describes; nil (everything unresolved) when that
// is not certain.
func (s *statements) forRowDescription(idx int, d *pgproto3.RowDescription) *lineage.Result {
	st := s.stmtFor(idx)
	if st == nil || st.res == nil {
		return nil
	}
	if len(s.list) > 1 && !namesAgree(st.res, d) {
		// Several statements: a RowDescription whose names differ from
		// the statement's may belong to another one. Over-masking is the
		// safe mistake.
		return nil
	}
	return st.res
}

func namesAgree(res *lineage.Result, d *pgproto3.RowDescription) bool {
	if len(res.Columns) != len(d.Fields) {
		return false
	}
	for i, f := range d.Fields {
		if res.Columns[i].Name != string(f.Name) {
			return false
		}
	}
	return true
}

// stmtFor returns the statement the idx-th RowDescription belongs to, or
// nil when unsure.
func (s *statements) stmtFor(idx int) *stmtLineage {
	if s.err != nil {
		return nil
	}
	if len(s.list) == 1 {
		return &s.list[0]
	}
	if s.unsure {
		return nil
	}
	k := 0
	for i := range s.list {
		if s.list[i].rows != rowsYes {
			continue
		}
		if k == idx {
			return &s.list[i]
		}
		k++
	}
	return nil
}

// copyStmt returns the one COPY ... TO STDOUT of the text; nil when there
// is none or more than one (their CopyData cannot be told apart).
func (s *statements) copyStmt() *stmtLineage {
	var found *stmtLineage
	for i := range s.list {
		st := &s.list[i]
		if st.res == nil || st.res.Copy == nil {
			if st.err != nil && len(s.list) > 1 {
				return nil // a statement not understood may be a COPY
			}
			continue
		}
		if found != nil {
			return nil
		}
		found = st
	}
	return found
}

// searchPath turns the session's search_path setting into schema names,
// "$user" replaced by the current role.
func searchPath(st guard.State) []string {
	var out []string
	for _, part := range splitPath(st.SearchPath) {
		if part == "$user" {
			if st.Role == "" {
				continue
			}
			part = st.Role
		}
		out = append(out, part)
	}
	return out
}

// splitPath splits a search_path value on commas outside double quotes
// and unquotes each name.
func splitPath(v string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	flush := func() {
		if name := cur.String(); name != "" {
			out = append(out, name)
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' && quoted && i+1 < len(v) && v[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			flush()
		case !quoted && (c == ' ' || c == '\t'):
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}
