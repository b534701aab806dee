package mysql

import (
	"slices"
	"strings"
	"unicode"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Filter uses (masking rules with filter: deny). A filter: deny column may
// only be read as output: a statement that uses it in a condition, a join,
// an ordering, a grouping, a deduplication, a test or a computation, or
// as the data of a write, is refused by the guard unless an unmask grant
// covers the identity (internal/guard/masking.go). The engine tells the
// guard which table columns the statement uses so: filterUses fills
// guard.Operation.FilterUses and, when it cannot tell, FilterUnresolved.
//
// What counts as output is narrow, narrower than in the PostgreSQL
// engine: a column named bare (parenthesized, aliased) in the select list
// of the statement's result, of a derived table, CTE or view whose column
// is itself read as output, of a scalar subquery read as output, or of a
// UNION ALL branch. Any other expression over a column (a function,
// CONCAT included, an operator, a cast, an aggregate, a window) is a
// filter use of every column in it: MySQL has no pass-through allow list
// here (CONCAT(ssn, <a long value>) turns NULL past max_allowed_packet,
// which tells the value's length).
//
// It fails closed. FilterUnresolved is set for: a text the parser
// rejects or that holds executable comments (/*! */, /*M! */: the server
// may run what the parser skipped); an Unknown operation (a stored
// function or procedure, dynamic SQL, HANDLER, a view running one); a
// PREPARE from a variable and an EXECUTE of a statement the gateway has
// not seen prepared; a qualified column whose table it cannot find; a
// wildcard, NATURAL join or DISTINCT * over a table whose columns it
// cannot read; a view whose definition it cannot read or parse, nested
// deeper than maxFilterDepth or past maxViewsPerOperation definitions; a
// catalog it cannot load; a statement form it does not know that names
// columns of several tables.
//
// An unqualified column is taken to be every column of that name that
// any relation in scope, the enclosing queries' included, may hold (a
// base table may hold any name), and every select-list entry of the
// query or an enclosing one aliased so (MariaDB reads ORDER BY (SELECT
// s), OVER (ORDER BY s) as the alias s): the server picks one, the
// gateway counts them all. A qualified one counts every relation of that
// name, letter case aside, out to the first scope spelling it exactly.
//
// A schema change that moves a table's rows out of the rule's name
// (RENAME TABLE, ALTER TABLE ... RENAME, EXCHANGE PARTITION) or converts
// them all (CONVERT TO CHARACTER SET) is a use of all its columns;
// ALTER TABLE ... ORDER BY, of the columns it orders by.

// maxFilterDepth bounds nested queries, views and prepared texts.
const maxFilterDepth = 32

// filterUses annotates op for the guard (see above); called before
// Decide. Operations of resources without a filter: deny rule that
// applies to the session are left alone.
func (c *conn) filterUses(op *operation) {
	if c.res == nil || len(c.res.Policy.Masking) == 0 ||
		!mask.DenyApplies(c.res.Policy.Masking, guard.RoleNames(c.sess.Identity)) {
		return
	}
	var cat *viewCatalog
	tried := false
	catalog := func() *viewCatalog {
		if !tried {
			tried = true
			cat, _ = c.viewCatalog(op.started)
		}
		return cat
	}
	uses, unres := analyzeFilterUses(op.g.Text, op.g.State.Schema, op.g.Class.Kind, c.prepared, c.preparedIn, catalog)
	op.g.FilterUses = uses
	op.g.FilterUnresolved = op.g.FilterUnresolved || unres
}

// analyzeFilterUses returns the table columns a text of the given kind
// uses other than as output, and whether that could not be told.
// prepared and preparedIn are the session's SQL-level prepared texts and
// their schemas (read, not changed); catalog gives the resource's view
// catalog, or nil when it cannot be loaded.
func analyzeFilterUses(text, schema string, kind sqlkind.Kind, prepared, preparedIn map[string]string, catalog func() *viewCatalog) ([]mask.Source, bool) {
	if kind == sqlkind.Unknown {
		// A stored function or procedure, dynamic SQL, HANDLER: what it
		// compares is not in the text.
		return nil, true
	}
	w := &filterWalk{schema: schema, prepared: prepared, preparedIn: preparedIn, catalog: catalog}
	w.text(text)
	uses := w.uses
	slices.SortFunc(uses, func(a, b mask.Source) int {
		return strings.Compare(a.Schema+"\x00"+a.Table+"\x00"+a.Column, b.Schema+"\x00"+b.Table+"\x00"+b.Column)
	})
	return slices.Compact(uses), w.unres
}

// filterWalk collects the filter uses of one operation.
type filterWalk struct {
	schema     string // the current schema, for unqualified table names
	uses       []mask.Source
	unres      bool
	depth      int
	views      int                       // view definitions walked, each time one is read (bounded: maxViewsPerOperation)
	prepared   map[string]string         // SQL-level prepared texts by name
	preparedIn map[string]string         // and the schema each was prepared in
	copied     bool                      // prepared and preparedIn are the walk's own copies
	inField    map[*ast.SelectField]bool // select-list entries being counted (aliasUse)

	catalog func() *viewCatalog // nil result: no catalog
}

// text walks every statement of a text.
func (w *filterWalk) text(text string) {
	if strings.Contains(text, "/*!") || strings.Contains(text, "/*M!") {
		w.unres = true
		return
	}
	p := lineageParsers.Get().(*parser.Parser)
	stmts, _, err := p.Parse(text, "", "")
	lineageParsers.Put(p)
	if err != nil {
		w.unres = true
		return
	}
	for _, s := range stmts {
		w.stmt(s)
	}
}

// fuCol is a column of a derived table, CTE or view: the table columns
// its value is, as output.
type fuCol struct {
	name  string // lower case
	srcs  []mask.Source
	unres bool
	star  *fuRel // a wildcard: every column of that relation
}

// fuRel is a relation in a FROM clause.
type fuRel struct {
	alias         string // lower-cased name it is referred to by
	aliasO        string // and as written in the FROM clause
	schema, table string // as named, for qualified references; "" if derived
	base          bool   // a table: any column name is schema.table.name
	cols          []fuCol
	opaque        bool // its columns are unknown
}

// fuScope is the FROM clause of one query, inside its enclosing ones.
type fuScope struct {
	rels   []*fuRel
	parent *fuScope
	ctes   map[string]*fuRel
	fields []*ast.SelectField // for select-list aliases in GROUP BY, HAVING, ORDER BY
}

func (w *filterWalk) use(srcs ...mask.Source) { w.uses = append(w.uses, srcs...) }

func (w *filterWalk) stmt(n ast.StmtNode) {
	if w.depth > maxFilterDepth {
		w.unres = true
		return
	}
	switch s := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		w.query(s, nil, true)
	case *ast.InsertStmt:
		w.insert(s)
	case *ast.UpdateStmt:
		sc := w.with(s.With, nil)
		w.from(s.TableRefs, sc)
		for _, a := range s.List {
			w.expr(a.Expr, sc) // the data of a write
		}
		w.expr(s.Where, sc)
		w.node(s.Order, sc)
		w.node(s.Limit, sc)
	case *ast.DeleteStmt:
		sc := w.with(s.With, nil)
		w.from(s.TableRefs, sc)
		w.expr(s.Where, sc)
		w.node(s.Order, sc)
		w.node(s.Limit, sc)
	case *ast.CreateTableStmt:
		if s.Select != nil {
			w.query(s.Select, nil, false) // the data of a write
		} else {
			w.fallback(s)
		}
	case *ast.RenameTableStmt:
		// The rule names the table: renamed, its columns are no longer
		// the rule's, and any statement may test them.
		for _, tt := range s.TableToTables {
			w.allCols(w.tableRel(tt.OldTable))
		}
	case *ast.AlterTableStmt:
		for _, spec := range s.Specs {
			switch spec.Tp {
			case ast.AlterTableRenameTable:
				w.allCols(w.tableRel(s.Table)) // as RENAME TABLE
			case ast.AlterTableExchangePartition:
				// The partition's rows move into the other table, out of
				// the rule's sight (and its rows into this one).
				w.allCols(w.tableRel(s.Table))
				w.allCols(w.tableRel(spec.NewTable))
			case ast.AlterTableOrderByColumns:
				// The rows are stored in that order (Aria, MyISAM): a
				// later unordered read tells it.
				t := w.tableRel(s.Table)
				for _, it := range spec.OrderByList {
					if it == nil || it.Column == nil {
						w.unres = true
						continue
					}
					w.use(mask.Source{Schema: t.schema, Table: t.table, Column: it.Column.Name.O})
				}
			case ast.AlterTableOption:
				// CONVERT TO CHARACTER SET converts every value: it
				// fails on one the character set cannot hold.
				for _, o := range spec.Options {
					if o.Tp == ast.TableOptionCharset && o.UintValue == ast.TableOptionCharsetWithConvertTo {
						w.allCols(w.tableRel(s.Table))
					}
				}
			}
		}
		w.fallback(s)
	case *ast.CreateViewStmt:
		// Its conditions run whenever the view is read.
		w.query(s.Select, nil, true)
	case *ast.ExplainStmt:
		// A plan tells what const tables hold ("Impossible WHERE noticed
		// after reading const tables"): what it explains counts.
		if s.Stmt != nil {
			w.stmt(s.Stmt)
		}
	case *ast.SetStmt:
		for _, v := range s.Variables {
			// A value kept in a variable leaves masking's sight: it
			// counts as the data of a write.
			w.expr(v.Value, nil)
		}
	case *ast.DoStmt:
		for _, e := range s.Exprs {
			w.expr(e, nil)
		}
	case *ast.UseStmt:
		w.schema = s.DBName
	case *ast.PrepareStmt:
		name := strings.ToLower(s.Name)
		w.own()
		if s.SQLVar != nil {
			w.unres = true
			delete(w.prepared, name)
			return
		}
		w.nested(s.SQLText, w.schema)
		w.prepared[name], w.preparedIn[name] = s.SQLText, w.schema
	case *ast.ExecuteStmt:
		name := strings.ToLower(s.Name)
		text, ok := w.prepared[name]
		if !ok {
			w.unres = true
			return
		}
		schema, ok := w.preparedIn[name]
		if !ok {
			schema = w.schema
		}
		w.nested(text, schema)
	case *ast.DeallocateStmt:
		w.own()
		delete(w.prepared, strings.ToLower(s.Name))
	case *ast.ShowStmt, *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt,
		*ast.ReleaseSavepointStmt, *ast.DropTableStmt, *ast.TruncateTableStmt,
		*ast.DropDatabaseStmt, *ast.CreateDatabaseStmt, *ast.SetPwdStmt, *ast.KillStmt, *ast.FlushStmt:
		// Read no table data (a view's definition counts when read).
	default:
		w.fallback(n)
	}
}

// tableRel is the base table a schema change names.
func (w *filterWalk) tableRel(tn *ast.TableName) *fuRel {
	if tn == nil {
		return &fuRel{opaque: true}
	}
	schema := tn.Schema.O
	if schema == "" {
		schema = w.schema
	}
	return &fuRel{alias: tn.Name.L, schema: schema, table: tn.Name.O, base: true}
}

// own copies the connection's prepared statements before the walk
// changes them (a PREPARE or DEALLOCATE earlier in the same text).
func (w *filterWalk) own() {
	if w.copied {
		return
	}
	p, in := make(map[string]string, len(w.prepared)), make(map[string]string, len(w.preparedIn))
	for k, v := range w.prepared {
		p[k] = v
	}
	for k, v := range w.preparedIn {
		in[k] = v
	}
	w.prepared, w.preparedIn, w.copied = p, in, true
}

// nested walks a prepared text in the schema it resolves names in.
func (w *filterWalk) nested(text, schema string) {
	saved := w.schema
	w.schema = schema
	w.depth++
	w.text(text)
	w.depth--
	w.schema = saved
}

// fallback is for statement forms the walk does not know: every column
// they name is a use of the one table they name; several tables (or
// none) with columns, or a query inside, are unresolved. ALTER TABLE t
// ADD UNIQUE (ssn) fails on a duplicate value: it counts.
func (w *filterWalk) fallback(n ast.Node) {
	v := &fallbackNames{}
	n.Accept(v)
	if v.query || (len(v.cols) > 0 && len(v.tables) != 1) {
		w.unres = true
		return
	}
	for _, cn := range v.cols {
		t := v.tables[0]
		schema := t.Schema.O
		if schema == "" {
			schema = w.schema
		}
		w.use(mask.Source{Schema: schema, Table: t.Name.O, Column: cn.Name.O})
	}
}

type fallbackNames struct {
	tables []*ast.TableName
	cols   []*ast.ColumnName
	query  bool
}

func (f *fallbackNames) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableName:
		if !slices.ContainsFunc(f.tables, func(t *ast.TableName) bool { return t.Schema.L == x.Schema.L && t.Name.L == x.Name.L }) {
			f.tables = append(f.tables, x)
		}
	case *ast.ColumnName:
		f.cols = append(f.cols, x)
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.SubqueryExpr:
		f.query = true
		return n, true
	}
	return n, false
}

func (f *fallbackNames) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func (w *filterWalk) insert(s *ast.InsertStmt) {
	target := &fuScope{}
	w.from(s.Table, target)
	for _, row := range s.Lists {
		for _, e := range row {
			w.expr(e, target) // the data of a write
		}
	}
	if s.Select != nil {
		w.query(s.Select, nil, false)
	}
	if len(s.OnDuplicate) == 0 {
		return
	}
	// ON DUPLICATE KEY UPDATE may name the SELECT's columns too.
	if s.Select != nil {
		sel, ok := s.Select.(*ast.SelectStmt)
		if !ok {
			w.unres = true
			return
		}
		target.ctes = w.with(sel.With, nil).ctes
		w.from(sel.From, target)
	}
	for _, a := range s.OnDuplicate {
		w.expr(a.Expr, target)
	}
}

// with registers a WITH clause's CTEs in a new scope under parent.
func (w *filterWalk) with(wc *ast.WithClause, parent *fuScope) *fuScope {
	sc := &fuScope{parent: parent}
	if wc == nil {
		return sc
	}
	sc.ctes = map[string]*fuRel{}
	for _, cte := range wc.CTEs {
		name := cte.Name.L
		if wc.IsRecursive {
			// Its own body reads it: columns unknown there.
			sc.ctes[name] = &fuRel{alias: name, opaque: true}
		}
		var cols []fuCol
		if cte.Query != nil {
			cols = w.query(cte.Query.Query, sc, true)
		}
		if len(cte.ColNameList) > 0 {
			if len(cte.ColNameList) != len(cols) || hasStar(cols) {
				sc.ctes[name] = &fuRel{alias: name, opaque: true}
				continue
			}
			for i, n := range cte.ColNameList {
				cols[i].name = n.L
			}
		}
		r := &fuRel{alias: name, cols: cols}
		if wc.IsRecursive {
			// The recursive part's columns were read as opaque; the
			// result's columns are the whole CTE's, unknown.
			r.opaque = true
		}
		sc.ctes[name] = r
	}
	return sc
}

func hasStar(cols []fuCol) bool {
	return slices.ContainsFunc(cols, func(c fuCol) bool { return c.star != nil })
}

// query walks a SELECT or set operation and returns its columns. output
// says its columns are read as output; otherwise (DISTINCT, UNION,
// a subquery in a condition, the data of a write) every column in its
// select list is a filter use.
func (w *filterWalk) query(n ast.Node, parent *fuScope, output bool) []fuCol {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxFilterDepth {
		w.unres = true
		return nil
	}
	switch x := n.(type) {
	case *ast.SelectStmt:
		return w.selectStmt(x, parent, output)
	case *ast.SetOprStmt:
		sc := w.with(x.With, parent)
		cols := w.setOpr(x.SelectList, sc, output)
		if x.OrderBy != nil {
			w.allOf(cols)
		}
		w.node(x.Limit, sc)
		return cols
	case *ast.SetOprSelectList:
		return w.setOpr(x, parent, output)
	case *ast.SubqueryExpr:
		return w.query(x.Query, parent, output)
	}
	w.unres = true
	return nil
}

// setOpr: only UNION ALL reads its branches as output; UNION, INTERSECT
// and EXCEPT compare them.
func (w *filterWalk) setOpr(l *ast.SetOprSelectList, parent *fuScope, output bool) []fuCol {
	if l == nil {
		w.unres = true
		return nil
	}
	sc := w.with(l.With, parent)
	for i, s := range l.Selects {
		if i == 0 {
			continue
		}
		if t := afterSetOperator(s); t == nil || *t != ast.UnionAll {
			output = false
		}
	}
	var out []fuCol
	for i, s := range l.Selects {
		cols := w.query(s, sc, output)
		if i == 0 {
			out = cols
			continue
		}
		if len(cols) != len(out) || hasStar(cols) || hasStar(out) {
			// Columns by position cannot be matched up: their names are
			// the first branch's, their values anyone's.
			for j := range out {
				out[j] = fuCol{name: out[j].name, unres: true}
			}
			continue
		}
		for j := range out {
			out[j].srcs = append(slices.Clip(out[j].srcs), cols[j].srcs...)
			out[j].unres = out[j].unres || cols[j].unres
		}
	}
	if l.OrderBy != nil {
		w.allOf(out)
	}
	w.node(l.Limit, sc)
	return out
}

func afterSetOperator(n ast.Node) *ast.SetOprType {
	switch x := n.(type) {
	case *ast.SelectStmt:
		return x.AfterSetOperator
	case *ast.SetOprSelectList:
		return x.AfterSetOperator
	}
	return nil
}

// allOf counts every column as a filter use.
func (w *filterWalk) allOf(cols []fuCol) {
	for _, c := range cols {
		w.colUse(c)
	}
}

func (w *filterWalk) colUse(c fuCol) {
	w.use(c.srcs...)
	if c.unres {
		w.unres = true
	}
	if c.star != nil {
		w.allCols(c.star)
	}
}

func (w *filterWalk) selectStmt(s *ast.SelectStmt, parent *fuScope, output bool) []fuCol {
	sc := w.with(s.With, parent)
	if s.From != nil {
		w.from(s.From, sc)
	}
	if s.Distinct || s.SelectIntoOpt != nil {
		output = false // deduplicated, or written to a file
	}
	for _, row := range s.Lists {
		w.node(row, sc)
	}
	var cols []fuCol
	if s.Fields == nil {
		// TABLE t: every column.
		for _, r := range sc.rels {
			cols = append(cols, fuCol{star: r})
		}
	} else {
		sc.fields = s.Fields.Fields
		for _, f := range s.Fields.Fields {
			cols = append(cols, w.field(f, sc)...)
		}
	}
	if !output {
		w.allOf(cols)
	}
	w.expr(s.Where, sc)
	if s.GroupBy != nil {
		for _, it := range s.GroupBy.Items {
			w.byItem(it, sc)
		}
	}
	if s.Having != nil {
		w.byExpr(s.Having.Expr, sc)
	}
	for i := range s.WindowSpecs {
		w.node(&s.WindowSpecs[i], sc)
	}
	if s.OrderBy != nil {
		for _, it := range s.OrderBy.Items {
			w.byItem(it, sc)
		}
	}
	w.node(s.Limit, sc)
	return cols
}

// field is the column(s) of one select-list entry: a bare column keeps
// its lineage, a scalar subquery its own column's; anything else is a
// filter use of what it reads.
func (w *filterWalk) field(f *ast.SelectField, sc *fuScope) []fuCol {
	if wc := f.WildCard; wc != nil {
		var out []fuCol
		for _, r := range sc.rels {
			if wc.Table.L == "" || (r.alias == wc.Table.L && (wc.Schema.L == "" || strings.EqualFold(wc.Schema.O, r.schema))) {
				out = append(out, fuCol{star: r})
			}
		}
		if len(out) == 0 {
			w.unres = true
		}
		return out
	}
	name := f.AsName.L
	e := unparen(f.Expr)
	switch x := e.(type) {
	case *ast.ColumnNameExpr:
		if name == "" {
			name = x.Name.Name.L
		}
		srcs, unres := w.resolve(x.Name, sc)
		if x.Name.Table.L == "" {
			// (SELECT s) in an ORDER BY reads the enclosing query's
			// alias s (its own select list's aliases it cannot name).
			w.aliasUse(x.Name.Name.L, sc.parent)
		}
		return []fuCol{{name: name, srcs: srcs, unres: unres}}
	case *ast.SubqueryExpr:
		inner := w.query(x.Query, sc, true)
		c := fuCol{name: name}
		for _, ic := range inner {
			c.srcs = append(c.srcs, ic.srcs...)
			c.unres = c.unres || ic.unres || ic.star != nil
		}
		return []fuCol{c}
	}
	w.expr(f.Expr, sc)
	return []fuCol{{name: name}}
}

func unparen(e ast.ExprNode) ast.ExprNode {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// byItem is a GROUP BY or ORDER BY item: a position or a select-list
// alias stands for that select-list expression.
func (w *filterWalk) byItem(it *ast.ByItem, sc *fuScope) {
	if _, ok := unparen(it.Expr).(*ast.PositionExpr); ok {
		for _, f := range sc.fields {
			w.fieldUse(f, sc)
		}
		return
	}
	w.byExpr(it.Expr, sc)
}

// byExpr walks an expression that may name select-list aliases.
func (w *filterWalk) byExpr(e ast.ExprNode, sc *fuScope) {
	if e == nil {
		return
	}
	v := &aliasNames{}
	e.Accept(v)
	for _, n := range v.names {
		for _, f := range sc.fields {
			if f.AsName.L != "" && f.AsName.L == n {
				w.fieldUse(f, sc)
			}
		}
	}
	w.expr(e, sc)
}

// fieldUse counts what a select-list entry reads as filter uses.
func (w *filterWalk) fieldUse(f *ast.SelectField, sc *fuScope) {
	// An entry whose expression names its own alias ((SELECT s) AS s)
	// is counted once.
	if w.inField[f] {
		return
	}
	if w.inField == nil {
		w.inField = map[*ast.SelectField]bool{}
	}
	w.inField[f] = true
	defer delete(w.inField, f)
	if f.WildCard != nil {
		for _, c := range w.field(f, sc) {
			w.colUse(c)
		}
		return
	}
	w.expr(f.Expr, sc)
}

type aliasNames struct{ names []string }

func (a *aliasNames) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.ColumnNameExpr:
		if x.Name.Table.L == "" {
			a.names = append(a.names, x.Name.Name.L)
		}
		return n, true
	case *ast.SubqueryExpr:
		return n, true
	}
	return n, false
}

func (a *aliasNames) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// from adds a FROM clause's relations to sc and walks its join
// conditions: ON, USING and NATURAL compare columns.
func (w *filterWalk) from(t *ast.TableRefsClause, sc *fuScope) {
	if t == nil || t.TableRefs == nil {
		return
	}
	w.join(t.TableRefs, sc)
}

// join adds the relations of a join tree and returns them.
func (w *filterWalk) join(n ast.ResultSetNode, sc *fuScope) []*fuRel {
	switch x := n.(type) {
	case nil:
		return nil
	case *ast.Join:
		left := w.join(x.Left, sc)
		right := w.join(x.Right, sc)
		if x.On != nil {
			w.expr(x.On.Expr, sc)
		}
		for _, cn := range x.Using {
			for _, r := range append(slices.Clip(left), right...) {
				srcs, found, unres := r.lookup(cn.Name.L, cn.Name.O, w)
				if found {
					w.use(srcs...)
				}
				w.unres = w.unres || unres
			}
		}
		if x.NaturalJoin {
			for _, r := range append(slices.Clip(left), right...) {
				w.allCols(r)
			}
		}
		return append(left, right...)
	case *ast.TableSource:
		r := w.tableSource(x, sc)
		sc.rels = append(sc.rels, r)
		return []*fuRel{r}
	}
	w.unres = true
	return nil
}

func (w *filterWalk) tableSource(ts *ast.TableSource, sc *fuScope) *fuRel {
	switch x := ts.Source.(type) {
	case *ast.TableName:
		r := w.tableName(x, sc)
		if ts.AsName.L != "" {
			r.alias, r.aliasO = ts.AsName.L, ts.AsName.O
		}
		return r
	case *ast.SelectStmt, *ast.SetOprStmt:
		// Seen from inside, the scope's CTEs and enclosing queries (and,
		// counted as well though MariaDB hides them, the FROM clause's
		// other tables).
		return &fuRel{alias: ts.AsName.L, aliasO: ts.AsName.O, cols: w.query(x, sc, true)}
	}
	w.unres = true
	return &fuRel{alias: ts.AsName.L, opaque: true}
}

// tableName is a CTE in scope, a view (traced through its definition:
// its conditions count) or a table.
func (w *filterWalk) tableName(tn *ast.TableName, sc *fuScope) *fuRel {
	if tn.Schema.L == "" {
		for s := sc; s != nil; s = s.parent {
			if r, ok := s.ctes[tn.Name.L]; ok {
				cp := *r
				cp.aliasO = tn.Name.O
				return &cp
			}
		}
	}
	schema := tn.Schema.O
	if schema == "" {
		schema = w.schema
	}
	r := &fuRel{alias: tn.Name.L, aliasO: tn.Name.O, schema: schema, table: tn.Name.O, base: true}
	cat := w.catalog()
	if cat == nil {
		w.unres = true // every relation may be a view
		return r
	}
	_, views := cat.lookup(schema, tn.Name.O)
	for _, k := range views {
		r.cols = append(r.cols, w.view(cat, k)...)
	}
	if len(views) > 0 && !cat.tables[strings.ToLower(schema+"."+tn.Name.O)] {
		r.base = false
	}
	return r
}

// view walks a view's definition (its conditions are uses of what the
// statement reads) and returns its columns: each the view's own column
// (a rule may name it) and what the definition builds it from.
func (w *filterWalk) view(cat *viewCatalog, k viewKey) []fuCol {
	vi := cat.view(k.schema, k.name)
	w.views++
	if vi == nil || vi.def == "" || strings.Contains(vi.def, "/*") || w.depth >= maxFilterDepth || w.views > maxViewsPerOperation {
		w.unres = true
		return nil
	}
	stmt := parseOne(vi.def)
	if stmt == nil {
		w.unres = true
		return nil
	}
	saved := w.schema
	w.schema = k.schema
	cols := w.query(stmt, nil, true)
	w.schema = saved
	if len(cols) != len(vi.cols) || hasStar(cols) {
		w.unres = true
		return nil
	}
	out := make([]fuCol, len(cols))
	for i, c := range vi.cols {
		out[i] = fuCol{name: strings.ToLower(c), unres: cols[i].unres,
			srcs: append([]mask.Source{{Schema: k.schema, Table: k.name, Column: c}}, cols[i].srcs...)}
	}
	return out
}

// lookup finds a column by name in the relation: its sources, whether
// the relation may hold it, and whether that cannot be told.
func (r *fuRel) lookup(lname, name string, w *filterWalk) (srcs []mask.Source, found, unres bool) {
	if r.opaque {
		return nil, true, true
	}
	if r.base {
		srcs = append(srcs, mask.Source{Schema: r.schema, Table: r.table, Column: name})
		found = true
	}
	for _, c := range r.cols {
		if c.star != nil {
			s, f, u := c.star.lookup(lname, name, w)
			srcs, found, unres = append(srcs, s...), found || f, unres || u
			continue
		}
		// An unaliased expression's name is its text ("(SELECT ssn
		// FROM t)"), which the walk does not rebuild: it may be any.
		if c.name == lname || c.name == "" {
			srcs, found, unres = append(srcs, c.srcs...), true, unres || c.unres
		}
	}
	return srcs, found, unres
}

// allCols counts every column of the relation as a filter use (a
// wildcard in a condition's subquery, NATURAL, DISTINCT *).
func (w *filterWalk) allCols(r *fuRel) {
	if r.opaque {
		w.unres = true
		return
	}
	if r.base {
		var cols []string
		if cat := w.catalog(); cat != nil {
			cols = cat.tableColumns(r.schema, r.table)
		}
		if cols == nil {
			w.unres = true
		}
		for _, c := range cols {
			w.use(mask.Source{Schema: r.schema, Table: r.table, Column: c})
		}
	}
	w.allOf(r.cols)
}

// resolve gives the table columns a column reference may stand for.
func (w *filterWalk) resolve(cn *ast.ColumnName, sc *fuScope) (srcs []mask.Source, unres bool) {
	if cn.Table.L == "" {
		// Found nowhere: a select-list alias (byExpr), or an error.
		for s := sc; s != nil; s = s.parent {
			for _, r := range s.rels {
				rs, _, u := r.lookup(cn.Name.L, cn.Name.O, w)
				srcs, unres = append(srcs, rs...), unres || u
			}
		}
		return srcs, unres
	}
	// Every relation of that name, letter case aside, from the innermost
	// scope out to the first that has one spelled exactly so: MariaDB
	// may tell X from x (lower_case_table_names=0: an inner X does not
	// hide an outer x), or not.
	found := false
	for s := sc; s != nil; s = s.parent {
		exact := false
		for _, r := range s.rels {
			if r.alias != cn.Table.L {
				continue
			}
			if cn.Schema.L != "" && !strings.EqualFold(cn.Schema.O, r.schema) {
				continue
			}
			rs, _, u := r.lookup(cn.Name.L, cn.Name.O, w)
			srcs, unres, found = append(srcs, rs...), unres || u, true
			exact = exact || r.aliasO == cn.Table.O
		}
		if exact {
			break
		}
	}
	if !found {
		return nil, true
	}
	return srcs, unres
}

// expr counts every column an expression reads as a filter use; its
// subqueries are walked with their select lists as filter uses too.
func (w *filterWalk) expr(e ast.ExprNode, sc *fuScope) {
	if e == nil {
		return
	}
	w.node(e, sc)
}

func (w *filterWalk) node(n ast.Node, sc *fuScope) {
	if n == nil {
		return
	}
	switch x := n.(type) {
	case *ast.Limit:
		if x == nil {
			return
		}
	case *ast.OrderByClause:
		if x == nil {
			return
		}
	case *ast.RowExpr:
		if x == nil {
			return
		}
	}
	n.Accept(&exprUses{w: w, sc: sc})
}

type exprUses struct {
	w  *filterWalk
	sc *fuScope
}

func (v *exprUses) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.ColumnNameExpr:
		v.name(x.Name)
		return n, true
	case *ast.ColumnName:
		v.name(x)
		return n, true
	case *ast.SubqueryExpr:
		v.w.query(x.Query, v.sc, false)
		return n, true
	case *ast.SelectStmt, *ast.SetOprStmt:
		v.w.query(x, v.sc, false)
		return n, true
	case *ast.TableName:
		v.w.unres = true // a relation outside a FROM clause the walk knows
		return n, true
	}
	return n, false
}

func (v *exprUses) name(cn *ast.ColumnName) {
	srcs, unres := v.w.resolve(cn, v.sc)
	v.w.use(srcs...)
	v.w.unres = v.w.unres || unres
	if cn.Table.L == "" {
		v.w.aliasUse(cn.Name.L, v.sc)
	}
}

// aliasUse counts the select-list entries, of the query and of the
// enclosing ones, that an unqualified name in an expression may stand
// for: MariaDB resolves it to a select-list alias in a window, and in a
// subquery of the select list, GROUP BY, HAVING or ORDER BY (ORDER BY
// (SELECT s) orders by what s aliases). Counted wherever the name is,
// a few statements more are refused than need be.
func (w *filterWalk) aliasUse(name string, sc *fuScope) {
	// An unaliased entry is named by its text ("(SELECT ssn FROM t)",
	// which HAVING may name): a name no identifier has may be any of
	// them (a bare column's name is the column's, resolved already).
	text := strings.ContainsFunc(name, func(r rune) bool {
		return r != '_' && r != '$' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for s := sc; s != nil; s = s.parent {
		for _, f := range s.fields {
			if w.inField[f] {
				continue
			}
			if f.AsName.L == name || (text && f.AsName.L == "") {
				w.fieldUse(f, s)
			}
		}
	}
}

func (v *exprUses) Leave(n ast.Node) (ast.Node, bool) { return n, true }
