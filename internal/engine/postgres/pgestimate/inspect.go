package pgestimate

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// statement is what inspect learned of the text.
type statement struct {
	schema, table string
	funcs         []string // lower-cased names, unqualified
	types         []string // type names cast to
	columns       []string // every column named
}

// plainNodes are the parse-tree nodes an explained statement may hold
// without a closer look: none of them calls a function, names a type or
// reads a relation of its own. Every other node is refused (a whitelist:
// a node this list does not know, say one a newer parser adds, gets no
// estimate). FuncCall, TypeCast, TypeName, ColumnRef, A_Expr and
// A_Indirection are checked one by one in node.
var plainNodes = map[string]bool{
	"A_Const": true, "ParamRef": true, "BoolExpr": true, "NullTest": true, "BooleanTest": true,
	"CaseExpr": true, "CaseWhen": true, "CoalesceExpr": true, "MinMaxExpr": true,
	"RowExpr": true, "A_ArrayExpr": true, "A_Indices": true, "SQLValueFunction": true,
	"SetToDefault": true, "MultiAssignRef": true, "ResTarget": true, "List": true,
	"String": true, "Integer": true, "Float": true, "Boolean": true, "BitString": true,
	"CollateClause": true,
}

// readsOther are the nodes and fields that bring in another relation or a
// subquery.
var readsOther = map[string]bool{
	"withClause": true, "fromClause": true, "usingClause": true, "WithClause": true,
	"RangeVar": true, "RangeFunction": true, "RangeSubselect": true, "RangeTableFunc": true,
	"SubLink": true, "JoinExpr": true,
}

// topFields are the fields of the INSERT, UPDATE or DELETE itself that may
// be present (relation is taken out before the walk).
var topFields = map[string]bool{
	"cols": true, "selectStmt": true, "targetList": true, "whereClause": true,
	"returningList": true, "override": true,
}

// inspect accepts exactly one plain INSERT, UPDATE or DELETE on one table
// whose expressions use only columns of that table, constants, parameters,
// built-in operators and readFuncs: nothing the planner could run user code
// for. Anything else is refused with the reason.
func inspect(text string) (statement, noEstimate) {
	var st statement
	if len(text) > maxText {
		return st, "the statement is too long to explain"
	}
	// The estimator's connection speaks UTF-8 (forced at its startup), and
	// pg_query reads UTF-8: bytes that are not could be read differently by
	// the two.
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return st, "the statement is not valid UTF-8"
	}
	js, err := pg.ParseToJSON(text)
	if err != nil {
		return st, "the statement does not parse"
	}
	var tree struct {
		Stmts []struct {
			Stmt map[string]map[string]any `json:"stmt"`
		} `json:"stmts"`
	}
	if err := json.Unmarshal([]byte(js), &tree); err != nil || len(tree.Stmts) != 1 {
		return st, "only a single statement is explained"
	}
	var body map[string]any
	for k, v := range tree.Stmts[0].Stmt {
		switch k {
		case "InsertStmt", "UpdateStmt", "DeleteStmt":
			body = v
		default:
			return st, "only a plain INSERT, UPDATE or DELETE is explained"
		}
	}
	rel, _ := body["relation"].(map[string]any)
	st.schema, _ = rel["schemaname"].(string)
	st.table, _ = rel["relname"].(string)
	if st.table == "" || rel["catalogname"] != nil {
		return st, "the statement's table is not plain"
	}
	// A column may be qualified by what names the table in the statement:
	// its alias if it has one, else its name as written.
	w := walker{st: &st, qualifier: []string{st.table}}
	if st.schema != "" {
		w.qualifier3 = []string{st.schema, st.table}
	}
	if a, ok := rel["alias"].(map[string]any); ok {
		name, _ := a["aliasname"].(string)
		if name == "" || a["colnames"] != nil {
			return st, "the statement's table is not plain"
		}
		w.qualifier, w.qualifier3 = []string{name}, nil
	}
	delete(body, "relation")
	for _, k := range sortedKeys(body) {
		switch {
		case readsOther[k]:
			w.refuse("the statement reads other relations or subqueries; only single-table statements are explained")
		case k == "onConflictClause":
			w.refuse("INSERT ... ON CONFLICT is not explained")
		case !topFields[k]:
			w.refuse(noEstimate("the statement uses " + k + ", which is not explained"))
		case k == "selectStmt":
			w.selectStmt(body[k])
		default:
			w.walk(body[k])
		}
	}
	if w.bad != "" {
		return st, w.bad
	}
	return st, ""
}

// walker collects what the expressions use and refuses what could run
// code or read another relation.
type walker struct {
	st *statement
	// qualifier (or qualifier3, schema and table) is what may stand before
	// a column's name: anything else makes a.b the function b(a).
	qualifier, qualifier3 []string
	bad                   noEstimate
}

func (w *walker) refuse(why noEstimate) {
	if w.bad == "" {
		w.bad = why
	}
}

// walk visits a value of the JSON tree: a node ({"Type": {fields}}), a
// node's fields, or a list. Keys of node types start with a capital, keys
// of fields do not. Keys are visited in order, so that a statement with
// two faults always gets the same reason.
func (w *walker) walk(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.walk(e)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if k != "" && k[0] >= 'A' && k[0] <= 'Z' {
				w.node(k, x[k])
			} else if readsOther[k] {
				w.refuse("the statement reads other relations or subqueries; only single-table statements are explained")
			} else {
				w.walk(x[k])
			}
		}
	}
}

func (w *walker) node(k string, v any) {
	m, _ := v.(map[string]any)
	switch {
	case readsOther[k]:
		w.refuse("the statement reads other relations or subqueries; only single-table statements are explained")
	case k == "FuncCall":
		w.funcCall(m)
	case k == "TypeCast":
		w.walk(m["arg"])
		w.typeName(m["typeName"])
	case k == "ColumnRef":
		w.columnRef(m)
	case k == "A_Expr":
		// An operator named with its schema (OPERATOR(s.=)) is found there,
		// whatever the search_path.
		if names := strs(m["name"]); len(names) != 1 && !(len(names) == 2 && names[0] == "pg_catalog") {
			w.refuse("the statement names an operator's schema")
			return
		}
		w.walk(m["lexpr"])
		w.walk(m["rexpr"])
	case k == "A_Indirection":
		// (x).f is f(x), a function call the tree does not show as one; only
		// subscripts, x[i], are let through.
		ind, _ := m["indirection"].([]any)
		for _, e := range ind {
			if im, _ := e.(map[string]any); im["A_Indices"] == nil || len(im) != 1 {
				w.refuse("the statement selects a field with (x).f, which may call the function f")
				return
			}
		}
		w.walk(m)
	case plainNodes[k]:
		w.walk(v)
	default:
		w.refuse(noEstimate("the statement uses " + k + ", which is not explained"))
	}
}

// selectStmt accepts the VALUES lists (or a SELECT without FROM) of an
// INSERT.
func (w *walker) selectStmt(v any) {
	m, _ := v.(map[string]any)
	sel, ok := m["SelectStmt"].(map[string]any)
	if !ok || len(m) != 1 {
		w.refuse("only INSERT ... VALUES is explained")
		return
	}
	for _, k := range sortedKeys(sel) {
		switch {
		case readsOther[k]:
			w.refuse("the statement reads other relations or subqueries; only single-table statements are explained")
		case k == "valuesLists" || k == "targetList":
			w.walk(sel[k])
		case k == "op" && sel[k] == "SETOP_NONE", k == "limitOption" && sel[k] == "LIMIT_OPTION_DEFAULT":
		default:
			w.refuse("only INSERT ... VALUES is explained")
		}
	}
}

func (w *walker) columnRef(m map[string]any) {
	f, _ := m["fields"].([]any)
	names := strs(f)
	switch {
	case len(names) == 0: // a bare *, as in RETURNING *
		return
	case len(names) != len(f): // t.* and the like
		w.refuse("the statement uses a star reference")
		return
	}
	// t.f is f(t) when t has no column f, and a.b, where a is a column
	// rather than the table, is b(a): a qualifier must name the table, and
	// every name must be a column of it (checked in the catalog).
	qual := names[:len(names)-1]
	if len(qual) > 0 && !slices.Equal(qual, w.qualifier) && !slices.Equal(qual, w.qualifier3) {
		w.refuse("the statement names something that is not a column of its table")
		return
	}
	w.st.columns = append(w.st.columns, names[len(names)-1])
}

func (w *walker) typeName(v any) {
	m, _ := v.(map[string]any)
	names := strs(m["names"])
	switch {
	case len(names) == 0 || len(names) > 2 || (len(names) == 2 && names[0] != "pg_catalog"):
		w.refuse("the statement casts to a type outside pg_catalog")
		return
	case m["setof"] != nil || m["pct_type"] != nil:
		w.refuse("the statement casts to a type that is not plain")
		return
	}
	w.st.types = append(w.st.types, names[len(names)-1])
	w.walk(m["typmods"])
}

// funcFields are the fields a call of an allow-listed function may have:
// no aggregate, window, VARIADIC or named arguments.
var funcFields = map[string]bool{"funcname": true, "args": true, "funcformat": true, "location": true}

func (w *walker) funcCall(m map[string]any) {
	names := strs(m["funcname"])
	if len(names) == 0 || len(names) > 2 || (len(names) == 2 && names[0] != "pg_catalog") {
		w.refuse("the statement calls a function outside pg_catalog")
		return
	}
	name := strings.ToLower(names[len(names)-1])
	if !slices.Contains(readFuncs, name) {
		w.refuse(noEstimate(fmt.Sprintf("the statement calls %s, which is not on the read-only allow-list", name)))
		return
	}
	for k := range m {
		if !funcFields[k] {
			w.refuse(noEstimate(fmt.Sprintf("the statement calls %s as an aggregate, a window function or with named or VARIADIC arguments", name)))
			return
		}
	}
	w.st.funcs = append(w.st.funcs, name)
	w.walk(m["args"])
}

// strs reads a list of {"String": {"sval": ...}} nodes.
func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		m, _ := e.(map[string]any)
		s, _ := m["String"].(map[string]any)
		if sv, ok := s["sval"].(string); ok {
			out = append(out, sv)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// qualify returns the text with its table named by schema and name, as
// pg_query writes it back: what is explained runs under search_path
// pg_catalog alone, so that nothing the statement names can resolve to an
// object created elsewhere between the checks and the plan.
func qualify(text, schema, table string) (string, error) {
	tree, err := pg.Parse(text)
	if err != nil || len(tree.Stmts) != 1 {
		return "", fmt.Errorf("the statement does not parse")
	}
	n := tree.Stmts[0].Stmt
	var rel *pg.RangeVar
	switch {
	case n.GetInsertStmt() != nil:
		rel = n.GetInsertStmt().Relation
	case n.GetUpdateStmt() != nil:
		rel = n.GetUpdateStmt().Relation
	case n.GetDeleteStmt() != nil:
		rel = n.GetDeleteStmt().Relation
	}
	if rel == nil {
		return "", fmt.Errorf("the statement has no table")
	}
	rel.Schemaname, rel.Relname = schema, table
	return pg.Deparse(tree)
}
