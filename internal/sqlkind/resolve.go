package sqlkind

import (
	"context"
	"fmt"
	"strings"
)

// Volatility is pg_proc.provolatile: what a function may do.
type Volatility byte

const (
	Immutable Volatility = 'i'
	Stable    Volatility = 's'
	Volatile  Volatility = 'v'
)

// FuncInfo is what the upstream catalog says about every function (or
// operator, through its implementing function) of one name.
type FuncInfo struct {
	// Volatility is the most volatile of the name's overloads: one volatile
	// overload makes the name volatile.
	Volatility Volatility
	// BuiltIn is true when every overload lives in pg_catalog. An overload
	// elsewhere could be the one PostgreSQL picks, so the name is not trusted.
	BuiltIn bool
}

// RelationInfo is what the upstream catalog says about the relations of one
// name, in every schema when the name is unqualified.
type RelationInfo struct {
	// Views are the definitions (SELECT text) of views of that name; reading
	// a view runs its query.
	Views []string
	// Policies are the row-security expressions on tables of that name;
	// reading such a table runs them.
	Policies []string
	// Checks are the CHECK constraint, index, partial-index predicate and
	// statistics expressions, on tables of that name and the tables
	// inheriting from them, that call a user function marked immutable:
	// planning a read of the table folds such a call when it takes no
	// column, which runs it (constraint exclusion of children, partitions
	// and UNION ALL members; loading index and statistics definitions).
	Checks []string
	// CodeColumns are the columns ("name type") of those relations whose
	// type runs user code when a value is converted to it: a domain whose
	// CHECK calls a function outside pg_catalog (or a volatile one), or an
	// array, row or range type of one (see CodeTypeCatalog). An expression
	// that meets such a column may convert another value to its type
	// (COALESCE, UNION, array_append, a string constant compared with an
	// array of the domain), which runs the CHECK. Partition and index keys
	// (of the relation or a descendant) whose operator class has a support
	// function of user code are listed here too ("partition key of t
	// (...)", "index t_x_idx (...)"): planning a read prunes partitions
	// with that function, and an index scan compares with it.
	CodeColumns []string
}

// Catalog answers questions about the upstream database. A name missing from
// a returned map is not in the catalog. Implementations cache per resource;
// see package pgcatalog.
type Catalog interface {
	Functions(ctx context.Context, names []string) (map[string]FuncInfo, error)
	Operators(ctx context.Context, names []string) (map[string]FuncInfo, error)
	// Types reports, for each type name, whether casting to it runs only
	// built-in code.
	Types(ctx context.Context, names []string) (map[string]bool, error)
	Relations(ctx context.Context, names []string) (map[string]RelationInfo, error)
}

// maxViewDepth bounds view expansion (views of views); deeper is Unknown.
const maxViewDepth = 8

// Resolve settles what Classify left to the catalog: the statement keeps (or
// gets) its kind only when every function, operator and cast it uses
// resolves to an allow-listed function or a built-in immutable or stable
// one, and every view and row-security policy it reads does the same
// (expanded recursively). Anything else makes it Unknown, with the reason. A
// catalog error is returned with c unchanged; the caller must treat the
// operation as Unknown.
func (p *PostgresClassifier) Resolve(ctx context.Context, c Classification, cat Catalog) (Classification, error) {
	return p.resolve(ctx, c, cat, 0)
}

func (p *PostgresClassifier) resolve(ctx context.Context, c Classification, cat Catalog, depth int) (Classification, error) {
	if c.pending == Unknown {
		return c, nil
	}
	why, err := p.unsafeNames(ctx, c, cat, depth)
	if err != nil {
		return c, err
	}
	if why != "" {
		c.Kind, c.pending = Unknown, Unknown
		c.Reason = why
		return c, nil
	}
	if c.Kind == Unknown {
		c.Kind, c.Reason = c.pending, ""
	}
	return c, nil
}

// unsafeNames returns why c is not safe to run as its kind, or "".
func (p *PostgresClassifier) unsafeNames(ctx context.Context, c Classification, cat Catalog, depth int) (string, error) {
	checks := []func(context.Context, Classification, Catalog) (string, error){
		p.checkFunctions, checkOperators, checkTypes, checkImplicitCasts,
	}
	for _, check := range checks {
		if why, err := check(ctx, c, cat); err != nil || why != "" {
			return why, err
		}
	}
	return p.checkRelations(ctx, c, cat, depth)
}

func (p *PostgresClassifier) checkFunctions(ctx context.Context, c Classification, cat Catalog) (string, error) {
	names := append(append([]string(nil), c.Functions...), c.attrs...)
	if len(names) == 0 {
		return "", nil
	}
	infos, err := cat.Functions(ctx, names)
	if err != nil {
		return "", fmt.Errorf("looking up functions %s: %w", strings.Join(names, ", "), err)
	}
	for _, f := range c.Functions {
		if why := p.funcUnsafe(f, infos[f], hasKey(infos, f)); why != "" {
			return why, nil
		}
	}
	for _, a := range c.attrs {
		// t.x is a column unless a function x exists; then it may be x(t).
		info, ok := infos[a]
		if !ok {
			continue
		}
		if why := p.funcUnsafe(a, info, true); why != "" {
			return why + " (t." + a + " may call it)", nil
		}
		if base, _ := builtinName(a); writeFuncs[base] && !p.allowFuncs[a] {
			// (x).nextval is nextval(x): a write the statement's kind,
			// settled from its calls, does not count.
			return fmt.Sprintf("t.%s may call %s(t), which changes state", a, a), nil
		}
	}
	return "", nil
}

func (p *PostgresClassifier) funcUnsafe(name string, info FuncInfo, found bool) string {
	if p.allowFuncs[name] {
		return ""
	}
	base, _ := builtinName(name)
	switch {
	case !found:
		return fmt.Sprintf("function %s is not in the upstream catalog", name)
	case !info.BuiltIn:
		return fmt.Sprintf("function %s is not a PostgreSQL built-in; a user function may do anything", name)
	case runsHidden[base] != "":
		return fmt.Sprintf("function %s %s", name, runsHidden[base])
	case readFuncs[base] || writeFuncs[base]:
		return ""
	case info.Volatility != Immutable && info.Volatility != Stable:
		return fmt.Sprintf("function %s is volatile: it may change data", name)
	}
	return ""
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func checkOperators(ctx context.Context, c Classification, cat Catalog) (string, error) {
	if len(c.Operators) == 0 {
		return "", nil
	}
	infos, err := cat.Operators(ctx, c.Operators)
	if err != nil {
		return "", fmt.Errorf("looking up operators %s: %w", strings.Join(c.Operators, " "), err)
	}
	for _, o := range c.Operators {
		info, ok := infos[o]
		switch {
		case !ok:
			return fmt.Sprintf("operator %s is not in the upstream catalog", o), nil
		case !info.BuiltIn:
			return fmt.Sprintf("operator %s is user-defined; its function may do anything", o), nil
		case info.Volatility != Immutable && info.Volatility != Stable:
			return fmt.Sprintf("operator %s runs a volatile function", o), nil
		}
	}
	return "", nil
}

func checkTypes(ctx context.Context, c Classification, cat Catalog) (string, error) {
	if len(c.Types) == 0 {
		return "", nil
	}
	safe, err := cat.Types(ctx, c.Types)
	if err != nil {
		return "", fmt.Errorf("looking up types %s: %w", strings.Join(c.Types, ", "), err)
	}
	for _, t := range c.Types {
		if !safe[t] {
			return fmt.Sprintf("a cast to %s may run user-defined code", t), nil
		}
	}
	return "", nil
}

// CastCatalog is implemented by a Catalog that can tell whether the
// database has casts PostgreSQL applies unasked that run user code: an
// implicit cast runs wherever a value of its source type meets a function
// or operator that wants the target type, and a cast to json or jsonb runs
// inside to_json, row_to_json, json_agg and the like. While such a cast
// exists no statement that reaches a value (a relation, function, operator
// or cast) counts as resolved. A Catalog without this method is trusted to
// have none (test doubles); pgcatalog has it.
type CastCatalog interface {
	// UserImplicitCasts returns those casts ("mood -> text"); empty when
	// there are none.
	UserImplicitCasts(ctx context.Context) ([]string, error)
}

// codeColumn names an entry of RelationInfo.CodeColumns in a reason.
func codeColumn(c string) string {
	if strings.HasPrefix(c, "partition key ") || strings.HasPrefix(c, "index ") {
		return c
	}
	return "column " + c
}

// CodeTypeCatalog is implemented by a Catalog that can list the types
// whose input runs user code (RelationInfo.CodeColumns says which columns
// have one). PostgreSQL converts a string constant to its target type
// while it parses a statement, and a bound parameter while it binds it,
// both before an extended-protocol Execute is decided: the PostgreSQL
// engine asks before it forwards a Parse that is not a read.
type CodeTypeCatalog interface {
	// CodeTypes returns those types' names; empty when there are none.
	CodeTypes(ctx context.Context) ([]string, error)
}

func checkImplicitCasts(ctx context.Context, c Classification, cat Catalog) (string, error) {
	cc, ok := cat.(CastCatalog)
	if !ok || len(c.Objects)+len(c.Functions)+len(c.Types)+len(c.Operators) == 0 {
		return "", nil
	}
	casts, err := cc.UserImplicitCasts(ctx)
	if err != nil {
		return "", fmt.Errorf("looking up implicit casts: %w", err)
	}
	if len(casts) > 0 {
		return fmt.Sprintf("the database has casts that run user code without being named (%s); any statement "+
			"reaching a value may run them", strings.Join(casts, ", ")), nil
	}
	return "", nil
}

// checkRelations expands the views and row-security policies c reads.
func (p *PostgresClassifier) checkRelations(ctx context.Context, c Classification, cat Catalog, depth int) (string, error) {
	if len(c.Objects) == 0 {
		return "", nil
	}
	rels, err := cat.Relations(ctx, c.Objects)
	if err != nil {
		return "", fmt.Errorf("looking up relations %s: %w", strings.Join(c.Objects, ", "), err)
	}
	for _, name := range c.Objects {
		if strings.Count(name, ".") > 1 {
			// db.schema.rel: the catalog is asked by schema and name only,
			// so a view named this way would not be expanded.
			return fmt.Sprintf("relation %s names a database; write it as schema.relation", name), nil
		}
		info, ok := rels[name]
		if !ok && c.pending == Read {
			// Not a table or view the catalog's connections can see: created
			// in the session's open transaction (a view there would not be
			// expanded), named through the pg_temp alias, or mistyped. A
			// read would run unreviewed; other kinds are reviewed (or run
			// under a grant) with their text, and a migration's CREATE
			// TABLE x; INSERT INTO x keeps its kind.
			return fmt.Sprintf("relation %s is not in the upstream catalog (is it new in this transaction, "+
				"or named through pg_temp?), so what reading it runs cannot be checked", name), nil
		}
		if len(info.CodeColumns) > 0 {
			return fmt.Sprintf("relation %s has %s, which runs user code when a value is converted to its type "+
				"(a domain CHECK calling a function outside pg_catalog) or compared with it (a user operator class "+
				"of a partition or index key); a statement reaching it may run that code", name, codeColumn(info.CodeColumns[0])), nil
		}
		for _, def := range info.Views {
			if why, err := p.expand(ctx, "view "+name, def, c.pending, cat, depth); err != nil || why != "" {
				return why, err
			}
		}
		for _, pol := range info.Policies {
			q := "SELECT 1 WHERE " + pol
			if why, err := p.expand(ctx, "row-security policy on "+name, q, Read, cat, depth); err != nil || why != "" {
				return why, err
			}
		}
		for _, expr := range info.Checks {
			what := "a constraint, index or statistics expression on " + name + " that planning folds"
			if why, err := p.checkFolded(ctx, what, expr, cat, depth); err != nil || why != "" {
				return why, err
			}
		}
	}
	return "", nil
}

// expand classifies a stored query the statement runs and requires it to be
// no more dangerous than the statement itself.
func (p *PostgresClassifier) expand(ctx context.Context, what, query string, limit Kind, cat Catalog, depth int) (string, error) {
	if depth >= maxViewDepth {
		return fmt.Sprintf("%s nests views more than %d deep", what, maxViewDepth), nil
	}
	inner, err := p.resolve(ctx, p.Classify(query), cat, depth+1)
	if err != nil {
		return "", err
	}
	if inner.Kind == Unknown || Max(inner.Kind, limit) != limit {
		return fmt.Sprintf("%s is %s: %s", what, inner.Kind, inner.Reason), nil
	}
	return "", nil
}
