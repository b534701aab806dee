package sqlkind

// mysqlReadFuncs are MySQL and MariaDB built-in functions that change
// nothing: a SELECT calling only these is a read. A name not listed here
// (a stored function, a UDF, a built-in nobody has looked at) makes the
// statement Unknown: MySQL resolves a built-in name before a stored
// function of the same name only when no schema is written, and a loaded
// UDF can shadow nothing built in, so the bare names below are safe, and
// any schema-qualified name is not. Every name here must be a built-in of
// MariaDB as well as of MySQL: MariaDB 10.11 calls a stored function for
// ANY_VALUE(), REGEXP_LIKE() or TiDB's operator names such as eq() (it
// answers "FUNCTION db.eq does not exist" when there is none). Some of
// these names are built-ins only when "(" follows at once (mysqlcalls.go).
//
// SLEEP and BENCHMARK are here: they take time but hold no lock and write
// nothing (issue 3 settles sleeping as a read). RAND, UUID and friends
// return new values on each call and write nothing.
var mysqlReadFuncs = setOf(
	// flow control and comparison
	"if", "ifnull", "nullif", "coalesce", "isnull", "greatest", "least", "interval", "strcmp",
	"case", "in", "field", "elt", "find_in_set", "make_set", "export_set",
	// aggregates and windows (parsed as their own nodes, listed for safety)
	"count", "sum", "avg", "min", "max", "group_concat", "bit_and", "bit_or", "bit_xor",
	"std", "stddev", "stddev_pop", "stddev_samp", "var_pop", "var_samp", "variance",
	"json_arrayagg", "json_objectagg", "row_number", "rank", "dense_rank", "percent_rank",
	"cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
	// strings
	"ascii", "bin", "bit_length", "char", "char_length", "character_length", "concat",
	"concat_ws", "format", "from_base64", "to_base64", "hex", "unhex", "insert", "instr",
	"lcase", "lower", "left", "length", "locate", "lpad", "ltrim", "mid", "oct",
	"octet_length", "ord", "position", "quote", "repeat", "replace", "reverse", "right",
	"rpad", "rtrim", "soundex", "space", "substr", "substring", "substring_index", "trim",
	"ucase", "upper", "weight_string", "regexp_instr", "regexp_replace",
	"regexp_substr", "like", "convert", "collation", "charset", "coercibility",
	// numbers
	"abs", "acos", "asin", "atan", "atan2", "ceil", "ceiling", "conv", "cos", "cot",
	"crc32", "degrees", "div", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi",
	"pow", "power", "radians", "rand", "round", "sign", "sin", "sqrt", "tan", "truncate",
	"bit_count",
	// dates and times
	"adddate", "addtime", "convert_tz", "curdate", "current_date", "current_time",
	"current_timestamp", "curtime", "date", "date_add", "date_format", "date_sub",
	"datediff", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "extract",
	"from_days", "from_unixtime", "get_format", "hour", "last_day", "localtime",
	"localtimestamp", "makedate", "maketime", "microsecond", "minute", "month",
	"monthname", "now", "period_add", "period_diff", "quarter", "sec_to_time", "second",
	"str_to_date", "subdate", "subtime", "sysdate", "time", "time_format", "time_to_sec",
	"timediff", "timestamp", "timestampadd", "timestampdiff", "to_days", "to_seconds",
	"unix_timestamp", "utc_date", "utc_time", "utc_timestamp", "week", "weekday",
	"weekofyear", "year", "yearweek",
	// json
	"json_array", "json_array_append", "json_array_insert", "json_contains",
	"json_contains_path", "json_depth", "json_extract", "json_insert", "json_keys",
	"json_length", "json_merge", "json_merge_patch", "json_merge_preserve", "json_object",
	"json_overlaps", "json_pretty", "json_quote", "json_remove", "json_replace",
	"json_search", "json_set", "json_type", "json_unquote", "json_valid", "json_value",
	// information (they read the session)
	"connection_id", "current_user", "current_role", "database", "schema", "found_rows",
	"last_insert_id", "row_count", "session_user", "system_user", "user", "version",
	"charset", "benchmark",
	// misc
	"sleep", "uuid", "uuid_short", "md5", "sha",
	"sha1", "sha2", "compress", "uncompress", "uncompressed_length", "inet_aton",
	"inet_ntoa", "inet6_aton", "inet6_ntoa", "is_ipv4", "is_ipv6", "default",
	"values", "name_const", "is_free_lock", "is_used_lock", "random_bytes",
	// keywords MariaDB parses as syntax, never as a stored function
	"and", "or", "xor", "not", "cast", "row",
)

// mysqlWriteFuncs change state outside the statement's tables: named locks
// live until released and block other sessions; sequences advance.
var mysqlWriteFuncs = setOf(
	"get_lock", "release_lock", "release_all_locks", "nextval", "setval", "lastval",
)

// mysqlUnknownFuncs are refused outright, with a reason: they reach outside
// the database's own rules.
var mysqlUnknownFuncs = map[string]string{
	"load_file":                  "LOAD_FILE reads a file on the database server",
	"master_pos_wait":            "MASTER_POS_WAIT waits on replication",
	"source_pos_wait":            "SOURCE_POS_WAIT waits on replication",
	"sys_exec":                   "sys_exec runs a shell command through a UDF",
	"sys_eval":                   "sys_eval runs a shell command through a UDF",
	"password":                   "PASSWORD hashes a password; it belongs to account management",
	"encrypt":                    "ENCRYPT calls the server's crypt()",
	"des_encrypt":                "DES_ENCRYPT reads the server's key file",
	"des_decrypt":                "DES_DECRYPT reads the server's key file",
	"wait_for_executed_gtid_set": "waits on replication",
}
