package mysql

import (
	"strings"
	"sync"

	"github.com/countersign/countersign/internal/mask"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// lineage is what the statement text says about its result columns, for
// the columns whose definitions carry no org_table (computed ones) and for
// org_tables that are not tables (derived tables, CTEs).
//
// It covers the simple cases and fails closed on the rest: a single SELECT
// without a wildcard, whose computed columns are expressions over
// columns of the tables in its FROM clause (qualified by alias, or
// unqualified with a single table). A subquery in a column, a set
// operation, several statements, executable comments or text the parser
// rejects leave every computed column unresolved (masked whole). A
// statement that names a view is traced by viewlineage.go instead: the
// column definitions of its result cannot be trusted.
type lineage struct {
	parsed bool
	// stmt is the parsed statement, for the view check and, when it
	// reads a view, the trace through the views' definitions
	// (viewlineage.go).
	stmt ast.StmtNode
	// elsewhere: the statement's result comes from text that is not in it
	// (EXECUTE of a prepared statement): its column definitions cannot be
	// checked against the relations it names.
	elsewhere bool
	// metadata: SHOW and EXPLAIN describe the schema, not table data; their
	// computed columns get the detectors only.
	metadata bool
	// diagnostics: SHOW WARNINGS or SHOW ERRORS, whose messages quote
	// values of the statement before (masked in mymask.go).
	diagnostics bool
	// planText: an EXPLAIN in a format other than the table (JSON), which
	// prints conditions with the values of const tables in them.
	planText bool
	// processList: SHOW PROCESSLIST, whose Info is statement texts.
	processList bool
	// credentials: SHOW GRANTS and SHOW CREATE USER, which print the
	// upstream account's password hash or key as a quoted string.
	credentials bool
	// derived are the lower-cased names of derived tables and CTEs: a
	// column definition naming one as org_table has no table lineage.
	derived map[string]bool
	// fields are the SELECT's output expressions, when they can be matched
	// to result columns one to one (no wildcard).
	fields []*ast.SelectField
	tables map[string]tableRef // by lower-cased alias or name
	single *tableRef           // the only table source, if there is one
}

type tableRef struct {
	schema, table string
	base          bool // a named relation (table or view), not a derived table
}

// analyzeLineage parses text; schema is the session's current schema.
func analyzeLineage(text, schema string) *lineage {
	l := &lineage{derived: map[string]bool{}, tables: map[string]tableRef{}}
	if strings.Contains(text, "/*!") || strings.Contains(text, "/*M!") {
		return l // the server may run something else than the parser sees
	}
	stmt := parseOne(text)
	if stmt == nil {
		return l
	}
	l.parsed = true
	l.stmt = stmt
	stmt.Accept(&derivedNames{l: l})
	switch s := stmt.(type) {
	case *ast.ShowStmt:
		l.metadata = true
		l.diagnostics = s.Tp == ast.ShowWarnings || s.Tp == ast.ShowErrors
		l.processList = s.Tp == ast.ShowProcessList
		l.credentials = s.Tp == ast.ShowGrants || s.Tp == ast.ShowCreateUser
	case *ast.ExplainStmt:
		l.metadata = true
		switch strings.ToLower(s.Format) {
		case "", "row", "traditional":
		default:
			l.planText = true
		}
	case *ast.ExecuteStmt:
		l.elsewhere = true
	case *ast.SelectStmt:
		l.selectStmt(s, schema)
	}
	return l
}

// echoMetadata reports whether a metadata result's column (by name) shows
// values rather than the schema: every column of a JSON plan, the Info
// (statement text) of SHOW PROCESSLIST. It is masked whole.
func (l *lineage) echoMetadata(name string) bool {
	return l.planText || (l.processList && strings.EqualFold(name, "Info"))
}

// lineageParsers are parsers for the lineage and view analyses, reused:
// building one costs more than a point select's parse, and every result
// of a resource with masking rules is analyzed.
var lineageParsers = sync.Pool{New: func() any { return parser.New() }}

// parseOne parses text that must be exactly one statement; nil otherwise.
// The statement is the caller's: the parser reuses only its result slice.
func parseOne(text string) ast.StmtNode {
	p := lineageParsers.Get().(*parser.Parser)
	stmts, _, err := p.Parse(text, "", "")
	var stmt ast.StmtNode
	if err == nil && len(stmts) == 1 {
		stmt = stmts[0]
	}
	lineageParsers.Put(p)
	return stmt
}

func (l *lineage) selectStmt(s *ast.SelectStmt, schema string) {
	if s.Kind != ast.SelectStmtKindSelect || s.Fields == nil {
		return
	}
	for _, f := range s.Fields.Fields {
		if f.WildCard != nil {
			return
		}
	}
	l.fields = s.Fields.Fields
	if s.From == nil || s.From.TableRefs == nil {
		return
	}
	var sources []*ast.TableSource
	collectSources(s.From.TableRefs, &sources)
	for _, ts := range sources {
		ref := tableRef{}
		name := ts.AsName.L
		if tn, ok := ts.Source.(*ast.TableName); ok {
			ref = tableRef{schema: tn.Schema.O, table: tn.Name.O, base: true}
			if ref.schema == "" {
				ref.schema = schema
			}
			if name == "" {
				name = tn.Name.L
			}
			if l.derived[tn.Name.L] && tn.Schema.O == "" {
				ref.base = false // a CTE of that name
			}
		}
		l.tables[name] = ref
	}
	if len(sources) == 1 {
		for _, r := range l.tables {
			r := r
			l.single = &r
		}
	}
}

func collectSources(n ast.ResultSetNode, out *[]*ast.TableSource) {
	switch x := n.(type) {
	case *ast.Join:
		if x.Left != nil {
			collectSources(x.Left, out)
		}
		if x.Right != nil {
			collectSources(x.Right, out)
		}
	case *ast.TableSource:
		*out = append(*out, x)
	}
}

// computed returns the lineage of result column i, a computed one.
func (l *lineage) computed(i int, isView func(schema, table string) bool) mask.Column {
	switch {
	case l.metadata:
		return mask.Column{Resolved: true}
	case l.fields == nil || i >= len(l.fields):
		return mask.Column{}
	}
	refs := &columnRefs{}
	l.fields[i].Expr.Accept(refs)
	if refs.opaque {
		return mask.Column{}
	}
	col := mask.Column{Resolved: true}
	for _, cn := range refs.names {
		ref, ok := l.resolve(cn)
		if !ok || !ref.base || isView(ref.schema, ref.table) {
			return mask.Column{}
		}
		col.Sources = append(col.Sources, mask.Source{Schema: ref.schema, Table: ref.table, Column: cn.Name.O})
	}
	return col
}

func (l *lineage) resolve(cn *ast.ColumnName) (tableRef, bool) {
	if cn.Table.O == "" {
		if l.single == nil {
			return tableRef{}, false
		}
		return *l.single, true
	}
	r, ok := l.tables[cn.Table.L]
	if !ok || (cn.Schema.O != "" && !strings.EqualFold(cn.Schema.O, r.schema)) {
		return tableRef{}, false
	}
	return r, true
}

// derivedNames collects the names of derived tables and CTEs.
type derivedNames struct{ l *lineage }

func (d *derivedNames) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableSource:
		if _, ok := x.Source.(*ast.TableName); !ok && x.AsName.L != "" {
			d.l.derived[x.AsName.L] = true
		}
	case *ast.CommonTableExpression:
		d.l.derived[x.Name.L] = true
	}
	return n, false
}

func (d *derivedNames) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// columnRefs collects the column references of an expression; a subquery,
// a variable or anything reading data other than through a column makes
// it opaque.
type columnRefs struct {
	names  []*ast.ColumnName
	opaque bool
}

func (c *columnRefs) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.ColumnNameExpr:
		c.names = append(c.names, x.Name)
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr, *ast.DefaultExpr, *ast.ValuesExpr:
		c.opaque = true
		return n, true
	case *ast.VariableExpr:
		// A user variable may hold anything a statement put there; a
		// system variable holds configuration, not table data.
		if !x.IsSystem {
			c.opaque = true
			return n, true
		}
	}
	return n, false
}

func (c *columnRefs) Leave(n ast.Node) (ast.Node, bool) { return n, true }
