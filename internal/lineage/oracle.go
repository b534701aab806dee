package lineage

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Output oracles. A filter: deny column may be read only as masked output,
// because anything else answers a question about the hidden value. An
// output expression can answer one too: by raising an error for some
// values (1/(ssn = 'x')::int, ssn::int, make_date(..., length(ssn))), by
// being NULL for some (nullif, substring(ssn from 'regex')), by the number
// of rows it yields (regexp_split_to_table, generate_series in FROM), or by
// a small derived value a partial or hash strategy shows (ssn = 'x',
// length(ssn), max(ssn)). Such an expression may even be computed and
// thrown away (a MATERIALIZED CTE's column no one selects) and still raise.
//
// So the rule is an allow list: a value built from a column is output
// only along a path of operations that derive a value from it without
// testing it: column references, the casts in safeCastTypes, ||,
// COALESCE, CASE results, row, array, JSON and XML constructors, field
// selection and the functions in safeFuncs. Every other operation that
// takes it as an input (comparisons, pattern matches, Boolean and NULL
// tests, IN/ANY, NULLIF, GREATEST/LEAST, subscripts, every other function,
// operator and cast) makes its sources filter uses, wherever the
// expression stands; the value keeps its lineage, so it is masked too.
// An operation the analyzer does not know is not on the list: fail closed.

// argRule says which arguments of a safe function are the data it derives
// its value from; the others choose what it does (a pattern, a position)
// and are filter uses when they carry a column.
type argRule uint8

const (
	allData   argRule = iota // every argument is data
	firstData                // the first is data, the others are parameters
	restData                 // the first is a format, the others are data
	// positions: the first is data, the others must be integer constants.
	// substring(s from 'regex') is NULL where the pattern does not match.
	positions
	// pairs: json_build_object(key, value, ...): every argument is data,
	// and the even ones are object keys (lin.keys).
	pairs
	// keyFirst: json_object_agg(key, value): data, the first a key.
	keyFirst
)

// safeFuncs are built-ins (also in argsOnlyFuncs) whose value is derived
// from their data arguments, cannot fail on their value, is NULL only
// where an argument is, and yields a number of rows that does not depend
// on the value (beyond an array's or object's size, like NULL-ness
// visible anyway).
var safeFuncs = map[string]argRule{
	"upper": allData, "lower": allData, "initcap": allData, "reverse": allData, "md5": allData,
	"concat": allData, "concat_ws": allData, "quote_ident": allData, "quote_literal": allData,
	"quote_nullable": allData, "text": allData, "varchar": allData, "bpchar": allData,
	"to_json": allData, "to_jsonb": allData, "row_to_json": allData, "array_to_json": allData,
	"json_build_array": allData, "json_build_object": pairs, "jsonb_build_array": allData,
	"jsonb_build_object": pairs,
	"count":              allData, "array_agg": allData, "string_agg": allData, "json_agg": allData,
	"jsonb_agg": allData, "json_agg_strict": allData, "jsonb_agg_strict": allData,
	"json_object_agg": keyFirst, "jsonb_object_agg": keyFirst, "json_object_agg_strict": keyFirst,
	"jsonb_object_agg_strict": keyFirst, "xmlagg": allData, "any_value": allData,
	"first_value": allData, "last_value": allData, "unnest": allData,
	"json_each": allData, "json_each_text": allData, "jsonb_each": allData, "jsonb_each_text": allData,
	"lag": firstData, "lead": firstData, "nth_value": firstData,
	"btrim": firstData, "ltrim": firstData, "rtrim": firstData, "trim": firstData,
	"replace": firstData, "translate": firstData, "regexp_replace": firstData, "encode": firstData,
	"left": firstData, "right": firstData, "array_to_string": firstData,
	"substr": positions, "substring": positions,
	"format": restData,
}

// expands are the safe functions that yield a row an element or key:
// over keys built from a column (which merge equal values) the number of
// rows answers an equality.
var expands = setOf(`unnest json_each json_each_text jsonb_each jsonb_each_text`)

// param reports whether argument i of a function under rule r chooses
// what it does rather than being its data.
func (r argRule) param(i int) bool {
	switch r {
	case restData:
		return i == 0
	case firstData, positions:
		return i > 0
	}
	return false
}

// key reports whether argument i is an object key.
func (r argRule) key(i int) bool {
	return (r == pairs && i%2 == 0) || (r == keyFirst && i == 0)
}

// safeCastTypes are the cast targets that cannot fail on any input: the
// character types (an explicit cast to a length truncates) and name.
var safeCastTypes = setOf(`text varchar bpchar name`)

// storedCastTypes may fail, but only on input a client cannot shape when
// it is a stored value as it is: text to bytea fails on a malformed
// backslash escape, a fixed property of what was stored (like its being
// NULL). Applied to a computed value ('\x' || translate(ssn, ...)) it
// answers the client's question, so it is a filter use then.
var storedCastTypes = setOf(`bytea`)

// funcOracle records the filter uses of a call to a built-in whose value
// derives from its arguments (args, in order; all is their union), and
// returns all with keys set when the call builds object keys from a
// column.
func (a *analyzer) funcOracle(name string, f *pg.FuncCall, args []lin, all lin) lin {
	rule, safe := safeFuncs[name]
	if !safe || f.AggDistinct || f.AggWithinGroup {
		// DISTINCT compares the values; WITHIN GROUP orders them.
		a.filter(all)
		return all
	}
	if f.FuncVariadic && rule != allData {
		a.filter(all) // VARIADIC hides which argument is which
		return all
	}
	if expands[name] && all.keys {
		a.filter(all) // one row a key: as many as there are distinct values
		return all
	}
	for i, l := range args {
		if rule.param(i) {
			a.filter(l)
		}
		if i > 0 && rule == positions && f.Args[i].GetAConst().GetIval() == nil {
			a.filter(all)
		}
		if rule.key(i) && (len(l.srcs) > 0 || l.unres) {
			all.keys = true
		}
	}
	return all
}

// keyValue: a JSON_OBJECT or JSON_OBJECTAGG member; a key built from a
// column sets keys.
func (a *analyzer) keyValue(kv *pg.JsonKeyValue, sc *scope) lin {
	if kv == nil {
		return lin{}
	}
	k := a.expr(kv.Key, sc)
	var v lin
	if kv.Value != nil {
		v = a.generic(kv.Value.ProtoReflect(), sc)
	}
	l := k.union(v)
	l.keys = l.keys || len(k.srcs) > 0 || k.unres
	return l
}

// indirection: field selection derives a value; a subscript's index is a
// filter use, and so is the value when it may hold keys built from a
// column (jsonb_build_object(ssn, 1)['guess']).
func (a *analyzer) indirection(x *pg.A_Indirection, sc *scope) lin {
	l := a.expr(x.Arg, sc)
	for _, ind := range x.Indirection {
		idx := ind.GetAIndices()
		if idx == nil {
			continue
		}
		sub := a.expr(idx.Lidx, sc).union(a.expr(idx.Uidx, sc))
		a.filter(sub)
		if l.keys {
			a.filter(l)
		}
		l = l.union(sub)
	}
	return l
}

// typeCast: a cast other than to a character type can fail on its input
// (ssn::int, ('\x' || ssn)::bytea, ssn::json).
func (a *analyzer) typeCast(tc *pg.TypeCast, sc *scope) lin {
	l := a.expr(tc.Arg, sc)
	name := castTarget(tc.TypeName)
	if jsonCasts[name] && jsonMade(tc.Arg) {
		return l
	}
	if !safeCastTypes[name] && (!storedCastTypes[name] || l.computed) {
		a.filter(l)
	}
	return l
}

// jsonCasts between json and jsonb cannot fail on JSON the built-in
// constructors made (it never holds \u0000); on text they can.
var jsonCasts = setOf(`json jsonb`)

var jsonMakers = setOf(`to_json to_jsonb row_to_json array_to_json json_build_array json_build_object
jsonb_build_array jsonb_build_object json_agg jsonb_agg json_agg_strict jsonb_agg_strict json_object_agg
jsonb_object_agg json_object_agg_strict jsonb_object_agg_strict`)

// jsonMade reports whether n is a call of a built-in JSON constructor.
func jsonMade(n *pg.Node) bool {
	f := n.GetFuncCall()
	if f == nil {
		return false
	}
	name, ok := builtinName(f.Funcname)
	return ok && jsonMakers[name]
}

// castTarget names a built-in scalar cast target, or "" for anything else
// (arrays, %TYPE, types outside pg_catalog).
func castTarget(tn *pg.TypeName) string {
	if tn == nil || tn.Setof || tn.PctType || len(tn.ArrayBounds) > 0 {
		return ""
	}
	name, _ := builtinName(tn.Names)
	return name
}

// fieldOps select a field or element of a JSON value by a key or path,
// NULL where there is none: with a constant key, on a value whose keys
// are not built from a column, they only derive a value.
var fieldOps = setOf(`-> ->> #> #>>`)

// aExprOracle records the filter uses of an operator: || derives a value
// from both sides without testing either; -> and ->> with a key that
// carries no column select a field; every other operator compares, tests
// or may fail on its operands.
func (a *analyzer) aExprOracle(x *pg.A_Expr, left, right lin) {
	name, ok := builtinName(x.Name)
	switch {
	case x.Kind != pg.A_Expr_Kind_AEXPR_OP || !ok:
	case name == "||":
		return
	case fieldOps[name] && len(right.srcs) == 0 && !right.unres && !left.keys:
		return
	}
	a.filter(left.union(right))
}

// deriving reports whether an expression node only builds a value from its
// parts (so that the parts stay output); every other node the analyzer has
// no rule for tests or may reject its parts.
func deriving(n *pg.Node) bool {
	switch x := n.Node.(type) {
	case *pg.Node_AArrayExpr, *pg.Node_RowExpr, *pg.Node_CoalesceExpr, *pg.Node_CollateClause,
		*pg.Node_ResTarget, *pg.Node_List, *pg.Node_String_, *pg.Node_AStar,
		*pg.Node_JsonValueExpr, *pg.Node_JsonArrayConstructor,
		*pg.Node_JsonArrayQueryConstructor, *pg.Node_JsonArrayAgg, *pg.Node_GroupingFunc:
		return true
	case *pg.Node_JsonObjectConstructor:
		return !x.JsonObjectConstructor.Unique // WITH UNIQUE KEYS compares the keys
	case *pg.Node_JsonObjectAgg:
		return !x.JsonObjectAgg.Unique
	case *pg.Node_XmlExpr:
		switch x.XmlExpr.Op {
		case pg.XmlExprOp_IS_XMLELEMENT, pg.XmlExprOp_IS_XMLFOREST, pg.XmlExprOp_IS_XMLCONCAT:
			return true
		}
	}
	return false
}
