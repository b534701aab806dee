package sqlkind

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// mysqlReadSettings may be changed per session freely: they change how
// results look, how long things may take or how a transaction isolates,
// never what a statement may touch, as whom, or how the gateway reads
// statement text. Everything else is Unknown (foreign_key_checks,
// unique_checks and sql_log_bin change what writes do; session_track_*
// change the protocol the gateway parses; sql_auto_is_null makes "WHERE id
// IS NULL" match the last inserted row, so a reviewed DELETE that looks
// like a no-op deletes it; default_storage_engine and
// explicit_defaults_for_timestamp change what a reviewed CREATE TABLE
// makes: a BLACKHOLE table, a column that updates itself).
var mysqlReadSettings = setOf(
	"autocommit", "time_zone", "wait_timeout", "interactive_timeout", "net_read_timeout",
	"net_write_timeout", "max_execution_time", "max_statement_time", "lock_wait_timeout",
	"innodb_lock_wait_timeout", "sql_select_limit", "group_concat_max_len",
	"sql_safe_updates", "sql_notes", "sql_warnings", "div_precision_increment",
	"lc_time_names", "lc_messages", "default_week_format", "big_tables", "sql_big_selects",
	"sql_buffer_result", "sql_quote_show_create", "profiling", "profiling_history_size",
	"max_join_size", "max_sort_length", "transaction_isolation", "tx_isolation",
	"tx_isolation_one_shot", "transaction_read_only", "tx_read_only", "tx_read_only_one_shot",
	"transaction_isolation_one_shot", "net_buffer_length", "max_heap_table_size", "tmp_table_size",
	"sort_buffer_size", "join_buffer_size", "optimizer_search_depth", "cte_max_recursion_depth",
	"max_recursive_iterations", "max_error_count",
	"collation_connection", "character_set_results", "character_set_connection",
	"character_set_client", "names", "character set", "sql_mode", "block_encryption_mode",
	"max_sp_recursion_depth", "windowing_use_high_precision",
)

// mysqlSafeModes are sql_mode flags that change what values are accepted or
// how results are computed, never how statement text is tokenized.
// ANSI_QUOTES (double quotes become identifiers), NO_BACKSLASH_ESCAPES
// (backslashes stop escaping), IGNORE_SPACE (function names may be
// followed by spaces), ANSI and MariaDB's ORACLE/MSSQL/DB2/POSTGRESQL
// (which change the grammar) are not here.
var mysqlSafeModes = setOf(
	"", "strict_trans_tables", "strict_all_tables", "error_for_division_by_zero",
	"no_zero_date", "no_zero_in_date", "no_engine_substitution", "no_auto_create_user",
	"only_full_group_by", "traditional", "no_auto_value_on_zero", "pad_char_to_full_length",
	"real_as_float", "allow_invalid_dates", "no_unsigned_subtraction", "no_dir_in_create",
	"no_field_options", "no_key_options", "no_table_options", "time_truncate_fractional",
	"simultaneous_assignment", "pipes_as_concat", "high_not_precedence", "empty_string_is_null",
	"mysql323", "mysql40",
)

// mysqlReadModes are the sql_mode flags a session may set without review.
// The other safe ones change what a reviewed statement means without a
// change to its text: PIPES_AS_CONCAT and HIGH_NOT_PRECEDENCE (and
// MYSQL323/MYSQL40, which include it) change how its expressions parse;
// EMPTY_STRING_IS_NULL, NO_AUTO_VALUE_ON_ZERO, SIMULTANEOUS_ASSIGNMENT,
// NO_UNSIGNED_SUBTRACTION and the like change what its writes store. A
// SET of those is Unknown, reviewed like any statement that changes what
// later ones do.
var mysqlReadModes = setOf(
	"", "strict_trans_tables", "strict_all_tables", "error_for_division_by_zero",
	"no_zero_date", "no_zero_in_date", "no_engine_substitution", "no_auto_create_user",
	"only_full_group_by", "traditional", "no_dir_in_create", "no_field_options",
	"no_key_options", "no_table_options",
)

// MySQLSafeSQLMode reports whether every flag of an sql_mode value keeps
// statement text tokenized the way the gateway reads it. The engine checks
// the upstream's mode at connect with it.
func MySQLSafeSQLMode(mode string) bool {
	for _, f := range strings.Split(mode, ",") {
		if !mysqlSafeModes[strings.ToLower(strings.TrimSpace(f))] {
			return false
		}
	}
	return true
}

// MySQLSafeCharset reports whether a client character set is one the
// gateway reads statements in: utf8mb4 or utf8 (utf8mb3). ASCII-compatible
// single-byte sets would mostly work, but multi-byte sets like GBK or SJIS
// can hide a quote inside a character, so only UTF-8 passes.
func MySQLSafeCharset(cs string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(cs), "'\"`")) {
	case "utf8mb4", "utf8", "utf8mb3":
		return true
	}
	return false
}

// setKind classifies one SET statement's assignments; the most dangerous
// wins.
func (w *myWalk) setKind(s *ast.SetStmt, r *MySQLStatement) (Kind, string) {
	k, why := Read, ""
	for _, v := range s.Variables {
		vk, vwhy := w.assignmentKind(v, r)
		if Max(k, vk) != k || (why == "" && vk == k) {
			why = vwhy
		}
		k = Max(k, vk)
	}
	return k, why
}

func (w *myWalk) assignmentKind(v *ast.VariableAssignment, r *MySQLStatement) (Kind, string) {
	name := strings.ToLower(v.Name)
	switch {
	case name == strings.ToLower(ast.SetNames), name == strings.ToLower(ast.SetCharset):
		// SET NAMES DEFAULT is no literal either: it takes the server's
		// global character set (see globalDefault).
		cs, ok := setLiteral(v.Value)
		bad := !ok || !MySQLSafeCharset(cs)
		r.Settings = append(r.Settings, MySQLSetting{Name: "character_set_client", Value: cs, Default: isDefault(v.Value), Tokenizing: bad})
		if bad {
			return Unknown, fmt.Sprintf("character set %q is not allowed: the gateway reads statements as utf8mb4; use SET NAMES utf8mb4", cs)
		}
		return Read, ""
	case !v.IsSystem:
		// A user variable (@x = ...): only the value expression may do
		// something.
		w.expr(v.Value)
		return Read, ""
	case v.IsGlobal:
		return Admin, fmt.Sprintf("SET GLOBAL %s changes the server for every session", name)
	}
	val, literal := setLiteral(v.Value)
	r.Settings = append(r.Settings, MySQLSetting{Name: name, Value: val, Default: isDefault(v.Value)})
	set := &r.Settings[len(r.Settings)-1]
	switch name {
	case "sql_mode":
		if set.Default {
			set.Tokenizing = true
			return Unknown, globalDefault(name, "a literal list of modes")
		}
		if !literal || !MySQLSafeSQLMode(val) {
			set.Tokenizing = true
			return Unknown, "sql_mode may only be set to a literal list of modes that keep quoting as is " +
				"(no ANSI_QUOTES, NO_BACKSLASH_ESCAPES, IGNORE_SPACE, ANSI or ORACLE)"
		}
		for _, f := range strings.Split(val, ",") {
			if f = strings.ToLower(strings.TrimSpace(f)); !mysqlReadModes[f] {
				return Unknown, fmt.Sprintf("sql_mode %s changes what later statements mean or store without a change to their text", strings.ToUpper(f))
			}
		}
		return Read, ""
	case "character_set_client", "character_set_connection", "character_set_results", "collation_connection":
		if set.Default {
			set.Tokenizing = true
			return Unknown, globalDefault(name, "utf8mb4 (or SET NAMES utf8mb4)")
		}
		if literal && (MySQLSafeCharset(val) || safeCollation(val) || (name == "character_set_results" && isNullish(val))) {
			return Read, ""
		}
		set.Tokenizing = true
		return Unknown, fmt.Sprintf("%s must stay utf8mb4: the gateway reads statements and results as UTF-8", name)
	}
	if !mysqlReadSettings[name] {
		return Unknown, fmt.Sprintf("setting %s is not on the gateway's allow-list of harmless settings", name)
	}
	w.expr(v.Value)
	if _, literal := setLiteral(v.Value); !literal && readsData(v.Value) {
		// A setting can be read back (SELECT @@name, SHOW VARIABLES,
		// information_schema.SESSION_VARIABLES) as a value of no table:
		// masking could not follow a column copied into it.
		return Unknown, fmt.Sprintf("%s set from a table or a user variable carries data past masking; set it to a constant", name)
	}
	return Read, ""
}

// readsData reports whether an expression reads a column, a subquery or a
// user variable.
func readsData(e ast.ExprNode) bool {
	f := &dataFinder{}
	e.Accept(f)
	return f.found
}

type dataFinder struct{ found bool }

func (f *dataFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.ColumnNameExpr, *ast.SubqueryExpr, *ast.ExistsSubqueryExpr:
		f.found = true
	case *ast.VariableExpr:
		f.found = f.found || !x.IsSystem
	}
	return n, f.found
}

func (f *dataFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// globalDefault says why SET name = DEFAULT is refused. DEFAULT takes the
// server's GLOBAL value, which the gateway never checked for character
// sets (its own login asks for utf8mb4 whatever the global is) and checked
// for sql_mode only when the session started (an approved SET GLOBAL may
// have changed it since). A global of gbk or sjis would hide a backslash
// inside a character, so DEFAULT is treated like any value the gateway
// cannot vouch for.
func globalDefault(name, what string) string {
	return fmt.Sprintf("SET %s = DEFAULT takes the server's global value, which the gateway has not checked; set %s instead", name, what)
}

func safeCollation(v string) bool {
	v = strings.ToLower(v)
	return strings.HasPrefix(v, "utf8mb4_") || strings.HasPrefix(v, "utf8_") || strings.HasPrefix(v, "utf8mb3_")
}

func isNullish(v string) bool {
	switch strings.ToLower(v) {
	case "null", "binary", "":
		return true
	}
	return false
}

// setLiteral reads a SET value written as a string literal or a bare word
// (SET autocommit = ON). ok is false for an expression and for a number.
func setLiteral(e ast.ExprNode) (string, bool) {
	switch x := e.(type) {
	case nil:
		return "", true
	case ast.ParamMarkerExpr:
		// A prepared statement's "SET character_set_results = ?": the
		// value arrives with each execute, unseen by the classification.
		return "", false
	case ast.ValueExpr:
		switch v := x.GetValue().(type) {
		case nil:
			return "null", true
		case string:
			return v, true
		default:
			// A number is no name: MariaDB reads SET sql_mode = 4 as a
			// bit mask (4 is ANSI_QUOTES) and a character set or
			// collation number as its id (54 is utf16), so no check of
			// names can vouch for it. Hex and bit literals alike.
			return fmt.Sprint(v), false
		}
	case *ast.ColumnNameExpr:
		return x.Name.Name.O, true
	}
	return "", false
}

func isDefault(e ast.ExprNode) bool {
	_, ok := e.(*ast.DefaultExpr)
	return ok
}
