package lineage

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// argsOnlyFuncs are built-in functions whose value is derived from their
// arguments alone: the lineage of a call is the union of its arguments'.
// Aggregates and window functions are here too: their value is built from
// the aggregated rows' arguments.
var argsOnlyFuncs = setOf(`
abs acos asin atan atan2 cbrt ceil ceiling cos cot degrees div exp factorial floor gcd lcm ln log log10 mod
pi power radians random round scale sign sin sqrt tan trunc width_bucket min_scale trim_scale numeric int2 int4
int8 float4 float8 text varchar bpchar bool date time timestamp timestamptz interval
ascii bit_length btrim char_length character_length chr concat concat_ws convert convert_from convert_to
decode encode format initcap left length lower lpad ltrim md5 normalize octet_length overlay position
quote_ident quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match regexp_matches
regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr repeat replace reverse right rpad rtrim
split_part starts_with string_to_array string_to_table strpos substr substring to_ascii to_hex translate
upper unistr casefold sha224 sha256 sha384 sha512 crc32 crc32c get_byte get_bit set_byte set_bit bit_count
unaccent similar_escape like_escape textcat textlen lengthb
to_char to_date to_number to_timestamp age clock_timestamp current_date date_bin date_part date_trunc extract
isfinite justify_days justify_hours justify_interval make_date make_interval make_time make_timestamp
make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone
coalesce nullif greatest least
array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position array_positions
array_prepend array_remove array_replace array_to_string array_upper cardinality trim_array unnest
array_sample array_shuffle generate_subscripts
generate_series
to_json to_jsonb row_to_json array_to_json json_build_array json_build_object json_object jsonb_build_array
jsonb_build_object jsonb_object json_array_length jsonb_array_length json_each json_each_text jsonb_each
jsonb_each_text json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text
json_object_keys jsonb_object_keys json_populate_record json_populate_recordset jsonb_populate_record
jsonb_populate_recordset json_to_record json_to_recordset jsonb_to_record jsonb_to_recordset json_strip_nulls
jsonb_strip_nulls jsonb_set jsonb_set_lax jsonb_insert jsonb_pretty json_typeof jsonb_typeof json_array_elements
json_array_elements_text jsonb_array_elements jsonb_array_elements_text jsonb_path_exists jsonb_path_match
jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_concat jsonb_delete jsonb_delete_path
json_scalar json_serialize
xmlcomment xmlconcat xmlelement xmlforest xmlpi xmlroot xmlagg xpath xpath_exists xml_is_well_formed
xml_is_well_formed_document xml_is_well_formed_content xmltext xmlparse xmlserialize
avg bit_and bit_or bit_xor bool_and bool_or count every max min sum string_agg array_agg json_agg jsonb_agg
json_object_agg jsonb_object_agg json_agg_strict jsonb_agg_strict json_object_agg_strict jsonb_object_agg_strict
json_object_agg_unique jsonb_object_agg_unique json_object_agg_unique_strict jsonb_object_agg_unique_strict
any_value range_agg range_intersect_agg
corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
regr_syy stddev stddev_pop stddev_samp variance var_pop var_samp
mode percentile_cont percentile_disc rank dense_rank percent_rank cume_dist
row_number ntile lag lead first_value last_value nth_value
grouping
host hostmask inet_merge inet_same_family masklen netmask network set_masklen broadcast family abbrev
gen_random_uuid uuidv4 uuid_extract_version uuid_extract_timestamp
int4range int8range numrange tsrange tstzrange daterange lower_inc upper_inc lower_inf upper_inf isempty range_merge
to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery setweight strip ts_rank ts_rank_cd
ts_headline tsvector_to_array array_to_tsvector numnode querytree
current_user current_role session_user current_schema current_schemas current_database current_catalog
version pg_backend_pid inet_client_addr inet_client_port inet_server_addr inet_server_port
pg_typeof pg_column_size pg_column_compression num_nulls num_nonnulls
merge_action currval lastval nextval setval pg_notify set_config
`)

// flowsOut are built-ins that send their arguments somewhere the masks do
// not reach (a notification, a setting SHOW reads back): their arguments
// are filter uses, like the data of a write.
var flowsOut = setOf(`pg_notify set_config`)

// readsData are built-ins that read tables, files or other sessions by a
// name or a query in a string: their value cannot be traced.
var readsData = setOf(`
query_to_xml query_to_xml_and_xmlschema query_to_xmlschema table_to_xml table_to_xml_and_xmlschema
table_to_xmlschema cursor_to_xml cursor_to_xmlschema schema_to_xml schema_to_xml_and_xmlschema schema_to_xmlschema
database_to_xml database_to_xml_and_xmlschema database_to_xmlschema ts_stat ts_rewrite
pg_read_file pg_read_binary_file lo_get loread lo_export lo_import pg_ls_dir pg_stat_file
dblink dblink_exec dblink_open dblink_fetch
pg_stat_get_activity pg_stat_get_backend_activity pg_cursor pg_prepared_statement pg_logical_slot_get_changes
pg_logical_slot_peek_changes pg_logical_slot_get_binary_changes pg_logical_slot_peek_binary_changes
`)

func setOf(words string) map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// argsOnly reports whether a called function's value derives only from
// its arguments: an unqualified or pg_catalog-qualified name in the list,
// or one the catalog vouches for. Anything else may read any table.
func (a *analyzer) argsOnly(funcname []*pg.Node) bool {
	name, ok := builtinName(funcname)
	if !ok || readsData[name] {
		return false
	}
	if argsOnlyFuncs[name] {
		return true
	}
	if a.funcs == nil {
		return false
	}
	if ok, seen := a.funcMemo[name]; seen {
		return ok
	}
	ok, err := a.funcs.ArgsOnly(a.ctx, name)
	if err != nil {
		a.fail(err)
		return false
	}
	if a.funcMemo == nil {
		a.funcMemo = make(map[string]bool)
	}
	a.funcMemo[name] = ok
	return ok
}

// builtinName returns the name of a function called unqualified or
// through pg_catalog; ok is false for other schemas.
func builtinName(funcname []*pg.Node) (string, bool) {
	parts := make([]string, 0, len(funcname))
	for _, p := range funcname {
		s := p.GetString_()
		if s == nil {
			return "", false
		}
		parts = append(parts, s.Sval)
	}
	switch {
	case len(parts) == 1:
		return parts[0], true
	case len(parts) == 2 && parts[0] == "pg_catalog":
		return parts[1], true
	}
	return "", false
}

// srfColumns names the columns of set-returning functions whose result
// shape is fixed. A function missing here has an unknown shape unless the
// statement gives a column definition list.
var srfColumns = map[string][]string{
	"json_each":                 {"key", "value"},
	"json_each_text":            {"key", "value"},
	"jsonb_each":                {"key", "value"},
	"jsonb_each_text":           {"key", "value"},
	"json_array_elements":       {"value"},
	"json_array_elements_text":  {"value"},
	"jsonb_array_elements":      {"value"},
	"jsonb_array_elements_text": {"value"},
	"json_object_keys":          {"json_object_keys"},
	"jsonb_object_keys":         {"jsonb_object_keys"},
	"generate_series":           {"generate_series"},
	"generate_subscripts":       {"generate_subscripts"},
	"regexp_matches":            {"regexp_matches"},
	"regexp_split_to_table":     {"regexp_split_to_table"},
	"string_to_table":           {"string_to_table"},
	"jsonb_path_query":          {"jsonb_path_query"},
}

// rangeFunction analyzes a function in FROM (implicitly LATERAL): every
// column it yields derives from all its arguments.
func (a *analyzer) rangeFunction(rf *pg.RangeFunction, sc *scope) *rel {
	r := &rel{name: aliasName(rf.Alias)}
	var cols []column
	for _, item := range rf.Functions {
		items := item.GetList().GetItems()
		if len(items) == 0 {
			cols = append(cols, wildUnresolved()...)
			continue
		}
		fc := items[0].GetFuncCall()
		l := a.expr(items[0], sc)
		if fc == nil {
			cols = append(cols, column{name: "?column?", l: l.union(unresolved), wild: true})
			continue
		}
		if r.name == "" && len(fc.Funcname) > 0 {
			r.name = fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
		}
		var defs []*pg.Node
		if len(items) > 1 {
			defs = items[1].GetList().GetItems()
		}
		if len(defs) == 0 && len(rf.Functions) == 1 {
			defs = rf.Coldeflist
		}
		cols = append(cols, funcColumns(fc, defs, l, len(rf.Functions) == 1 && rf.Alias != nil && len(rf.Alias.Colnames) == 0, r.name)...)
	}
	if rf.Ordinality {
		cols = append(cols, column{name: "ordinality"})
	}
	r.cols = rename(cols, rf.Alias)
	return r
}

func funcColumns(fc *pg.FuncCall, defs []*pg.Node, l lin, aliasOnly bool, alias string) []column {
	if len(defs) > 0 {
		cols := make([]column, 0, len(defs))
		for _, d := range defs {
			cols = append(cols, column{name: d.GetColumnDef().GetColname(), l: l})
		}
		return cols
	}
	if len(fc.Funcname) == 0 {
		return []column{{name: "?column?", l: l.union(unresolved), wild: true}}
	}
	name := fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
	if len(fc.Funcname) == 2 && fc.Funcname[0].GetString_().GetSval() != "pg_catalog" {
		name = ""
	}
	if name == "unnest" {
		cols := make([]column, len(fc.Args))
		for i := range cols {
			cols[i] = column{name: "unnest", l: l}
		}
		if len(cols) == 1 && aliasOnly {
			cols[0].name = alias
		}
		return cols
	}
	if names, ok := srfColumns[name]; ok {
		cols := make([]column, len(names))
		for i, n := range names {
			cols[i] = column{name: n, l: l}
		}
		if len(cols) == 1 && aliasOnly {
			cols[0].name = alias
		}
		return cols
	}
	return []column{{name: "?column?", l: l, wild: true}}
}

// tableFunc analyzes XMLTABLE: every column derives from the document,
// the row and column paths.
func (a *analyzer) tableFunc(t *pg.RangeTableFunc, sc *scope) *rel {
	l := a.generic(t.ProtoReflect(), sc)
	a.filter(l) // which rows there are depends on what the paths match
	r := &rel{name: aliasName(t.Alias)}
	for _, c := range t.Columns {
		r.cols = append(r.cols, column{name: c.GetRangeTableFuncCol().GetColname(), l: l})
	}
	if len(r.cols) == 0 {
		r.cols = []column{{name: "?column?", l: l, wild: true}}
	}
	r.cols = rename(r.cols, t.Alias)
	return r
}
