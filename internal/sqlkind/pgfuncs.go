package sqlkind

import "strings"

// readFuncs are built-in functions known to change nothing, so a statement
// calling only these is a read without a catalog lookup. Each is either
// marked immutable or stable in pg_proc (it cannot write by PostgreSQL's own
// rules for built-ins), or volatile only because its result changes from call
// to call, never because it changes state:
//
//   - random, random_normal, gen_random_uuid, clock_timestamp, timeofday:
//     volatile because each call returns a new value; they write nothing.
//   - pg_sleep, pg_sleep_for, pg_sleep_until: volatile because they wait;
//     they hold no lock and write nothing (issue 3 settles pg_sleep as read).
//   - currval, lastval: volatile, but only read the session's sequence cache.
//   - everything else listed: immutable or stable in pg_proc.
//
// Resolve still checks these names in the upstream catalog, because an
// overload in another schema (public.lower(int)) would shadow the built-in.
var readFuncs = setOf(
	// volatile only in their result
	"random", "random_normal", "gen_random_uuid", "clock_timestamp", "timeofday",
	"pg_sleep", "pg_sleep_for", "pg_sleep_until", "currval", "lastval",
	// aggregates and window functions (immutable)
	"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and",
	"bool_or", "every", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value", "stddev", "variance",
	// strings (immutable)
	"lower", "upper", "length", "char_length", "octet_length", "substr", "substring",
	"trim", "btrim", "ltrim", "rtrim", "replace", "concat", "concat_ws", "left",
	"right", "lpad", "rpad", "position", "strpos", "split_part", "md5", "initcap",
	"regexp_replace", "regexp_match", "regexp_matches", "starts_with", "reverse", "repeat",
	// numbers (immutable)
	"abs", "round", "ceil", "ceiling", "floor", "trunc", "mod", "power", "sqrt", "greatest", "least",
	// dates and times (stable: they read the transaction time or TimeZone)
	"now", "statement_timestamp", "transaction_timestamp", "date_trunc", "date_part",
	"extract", "age", "to_char", "to_date", "to_timestamp", "make_date", "make_interval",
	// json (immutable or stable)
	"json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array",
	"to_json", "to_jsonb", "jsonb_pretty", "json_extract_path_text", "jsonb_extract_path_text",
	// sets and arrays (immutable)
	"generate_series", "unnest", "array_length", "cardinality", "array_to_string",
	// session information (stable)
	"version", "current_setting", "current_database", "current_schema", "current_schemas",
	"pg_backend_pid", "pg_typeof", "format", "format_type", "pg_get_userbyid",
	"has_table_privilege", "has_schema_privilege", "pg_table_is_visible",
)

// writeFuncs are built-in functions that change state a write grant covers:
// a SELECT calling one is a write (issue 3: pg_notify is a write).
//
//   - nextval, setval: advance or set a sequence.
//   - pg_notify: sends a notification, like NOTIFY.
//   - advisory locks: take locks, like LOCK (a write).
var writeFuncs = setOf(
	"nextval", "setval", "pg_notify",
	"pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
	"pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
	"pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
	"pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
)

// runsHidden are built-in functions marked stable that nevertheless run
// code the statement does not name, so no catalog answer makes them reads:
//
//   - the *_to_xml family reads the tables and views named by an argument
//     (or every one in a schema or the database) with its own queries, so
//     a view calling a volatile function runs unseen.
//   - the json populate family, the generic input functions (record_in,
//     array_in, domain_in, ...) and pg_input_is_valid convert input into a
//     type the caller chooses: a domain's CHECK constraint (or a row
//     type's domain column) may call a user function.
var runsHidden = func() map[string]string {
	m := map[string]string{}
	for _, f := range []string{"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
		"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
		"database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
		"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
		"cursor_to_xml", "cursor_to_xmlschema"} {
		m[f] = "reads relations (or runs a query) named at run time, which may run their code"
	}
	for _, f := range []string{"json_populate_record", "json_populate_recordset",
		"jsonb_populate_record", "jsonb_populate_recordset", "record_in", "record_recv",
		"array_in", "array_recv", "domain_in", "domain_recv", "range_in", "range_recv",
		"multirange_in", "multirange_recv", "pg_input_is_valid", "pg_input_error_info"} {
		m[f] = "converts input into a type the caller chooses, whose domain checks may run user code"
	}
	return m
}()

// safeTypes are built-in type names a cast to which runs only built-in
// input or cast functions, so the cast needs no catalog lookup to be a
// read. The parser qualifies keyword types itself (int → pg_catalog.int4),
// which are accepted by prefix.
var safeTypes = setOf(
	"text", "varchar", "bpchar", "name", "int2", "int4", "int8", "numeric", "float4",
	"float8", "bool", "date", "time", "timetz", "timestamp", "timestamptz", "interval",
	"json", "jsonb", "uuid", "bytea", "inet", "cidr", "oid", "regclass", "regtype",
	"regproc", "regprocedure", "regnamespace", "regrole", "xml", "money",
)

// builtinName strips an explicit pg_catalog qualification; an unqualified
// name is returned as is. ok is false for a name in another schema.
func builtinName(name string) (string, bool) {
	if rest, found := strings.CutPrefix(name, "pg_catalog."); found {
		return rest, true
	}
	return name, !strings.Contains(name, ".")
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
