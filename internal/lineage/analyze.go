package lineage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/countersign/countersign/internal/mask"
)

// Bounds on the work one statement may cause. Beyond them the analysis
// stops and the affected values are unresolved (masked whole).
const (
	maxDepth     = 200     // nested expressions and queries
	maxViewDepth = 8       // views of views
	maxViews     = 64      // view definitions expanded per statement
	maxText      = 1 << 20 // statement text; longer is refused
)

// Analyze traces the output columns and filter uses of one SQL statement.
// It is AnalyzeContext with a background context.
func Analyze(sql string, cat Catalog) (*Result, error) {
	return AnalyzeContext(context.Background(), sql, cat)
}

// AnalyzeContext traces the output columns and filter uses of one SQL
// statement, asking cat about relations. An error (the text does not
// parse, holds more than one statement, the catalog failed) means nothing
// is known: the caller masks every column and treats filter uses as
// unresolved.
func AnalyzeContext(ctx context.Context, sql string, cat Catalog) (*Result, error) {
	if cat == nil {
		return nil, errors.New("lineage: no catalog: the engine must pass the resource's catalog")
	}
	if len(sql) > maxText {
		return nil, fmt.Errorf("lineage: statement of %d bytes is longer than the %d the analyzer reads", len(sql), maxText)
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("lineage: statement does not parse: %w", err)
	}
	switch len(tree.Stmts) {
	case 0:
		return &Result{}, nil
	case 1:
	default:
		return nil, fmt.Errorf("lineage: text holds %d statements; analyze each on its own", len(tree.Stmts))
	}
	return AnalyzeStmt(ctx, tree.Stmts[0].Stmt, cat)
}

// AnalyzeStmt is AnalyzeContext on a statement already parsed with
// pg_query_go (one RawStmt's Stmt), for a caller that parsed the text for
// another purpose: parsing is most of Analyze's cost. The tree is read,
// never modified.
func AnalyzeStmt(ctx context.Context, stmt *pg.Node, cat Catalog) (*Result, error) {
	if cat == nil {
		return nil, errors.New("lineage: no catalog: the engine must pass the resource's catalog")
	}
	a := newAnalyzer(ctx, cat)
	res := &Result{}
	a.statement(stmt, res)
	if a.err != nil {
		return nil, a.err
	}
	res.Filters = a.filterList()
	res.FilterUnresolved = res.FilterUnresolved || a.filterUnres
	return res, nil
}

type analyzer struct {
	ctx         context.Context
	cat         Catalog
	funcs       FunctionCatalog // nil when cat does not implement it
	filters     map[mask.Source]struct{}
	filterUnres bool
	depth       int
	viewDepth   int
	views       int
	inView      int // > 0 while analyzing a stored view definition
	viewMemo    map[[2]string][]column
	funcMemo    map[string]bool
	err         error // first catalog error
}

func newAnalyzer(ctx context.Context, cat Catalog) *analyzer {
	a := &analyzer{ctx: ctx, cat: cat}
	a.funcs, _ = cat.(FunctionCatalog)
	return a
}

// filter records the sources of a value used other than as output.
// Inside a view definition nothing is recorded: the view's author chose
// those uses, not the client.
func (a *analyzer) filter(l lin) {
	if a.inView > 0 {
		return
	}
	if l.unres {
		a.filterUnres = true
	}
	if len(l.srcs) == 0 {
		return
	}
	if a.filters == nil {
		a.filters = make(map[mask.Source]struct{})
	}
	for _, s := range l.srcs {
		a.filters[s] = struct{}{}
	}
}

func (a *analyzer) filterCols(cols []column) {
	for _, c := range cols {
		a.filter(c.l)
	}
}

func (a *analyzer) filterList() []mask.Source {
	if len(a.filters) == 0 {
		return nil
	}
	out := make([]mask.Source, 0, len(a.filters))
	for s := range a.filters {
		out = append(out, s)
	}
	slices.SortFunc(out, cmpSource)
	return out
}

func (a *analyzer) fail(err error) {
	if a.err == nil {
		a.err = fmt.Errorf("lineage: catalog lookup failed: %w", err)
	}
}

// enter bounds recursion; when it returns false the caller must answer
// "unresolved" without descending.
func (a *analyzer) enter() bool {
	a.depth++
	return a.depth <= maxDepth
}

func (a *analyzer) leave() { a.depth-- }

// outputs turns analyzed columns into the Result's columns.
func outputs(res *Result, cols []column) {
	res.Columns = make([]mask.Column, 0, len(cols))
	for _, c := range cols {
		mc := mask.Column{Name: c.name, Resolved: !c.l.unres && !c.wild, Sources: c.l.srcs}
		if c.wild {
			res.unknownWidth++
		}
		res.Columns = append(res.Columns, mc)
	}
}
