package sqlkind

import (
	"fmt"
	"strings"
)

// MariaDB's lexer reads COUNT, SUM, NOW, SUBSTRING, MID, SESSION_USER and
// the other names below as the built-in only when "(" follows the bare
// word at once. "count (a)", "count/**/(a)" and "`count`(a)" are calls of
// a function named count that is not built in: a stored function of the
// current schema, which may do anything. TiDB's parser reads several of
// them as the built-in whatever stands between, so the gateway looks at
// the text itself. The list is what MariaDB 10.11 answers "FUNCTION
// db.name does not exist" for when called with a space before "(", for
// the names on the read allow-list (mysqlfuncs.go).
var mysqlParenKeywords = setOf(
	"adddate", "bit_and", "bit_or", "bit_xor", "cast", "count", "cume_dist", "curdate",
	"curtime", "date_add", "date_sub", "dense_rank", "extract", "first_value", "group_concat",
	"json_arrayagg", "json_objectagg", "lag", "lead", "max", "mid", "min", "now", "nth_value",
	"ntile", "percent_rank", "position", "rank", "session_user", "std", "stddev",
	"stddev_pop", "stddev_samp", "subdate", "substr", "substring", "sum", "system_user",
	"trim", "var_pop", "var_samp", "variance",
)

// mysqlStoredLookalike returns why a comment-free variant calls a stored
// function that looks like a built-in, "" when it does not.
func mysqlStoredLookalike(variant string) string {
	for i := 0; i < len(variant); {
		ch := variant[i]
		switch {
		case ch == '\'' || ch == '"':
			end, ok := quotedEnd(variant, i)
			if !ok {
				return "" // the scan refused it before; the parser will
			}
			i = end
		case ch == '`':
			end, ok := quotedEnd(variant, i)
			if !ok {
				return ""
			}
			name := strings.ReplaceAll(variant[i+1:end-1], "``", "`")
			if why := lookalikeCall(variant, end, name, true); why != "" {
				return why
			}
			i = end
		case isWordByte(ch):
			j := i
			for j < len(variant) && isWordByte(variant[j]) {
				j++
			}
			if i == 0 || variant[i-1] != '.' {
				if why := lookalikeCall(variant, j, variant[i:j], false); why != "" {
					return why
				}
			}
			i = j
		default:
			i++
		}
	}
	return ""
}

// lookalikeCall: name ends at end; it calls a stored function when it is
// one of mysqlParenKeywords and "(" follows after whitespace, or at all
// when the name was quoted.
func lookalikeCall(variant string, end int, name string, quoted bool) string {
	if !mysqlParenKeywords[strings.ToLower(name)] {
		return ""
	}
	k := end
	for k < len(variant) && isMySQLSpace(variant[k]) {
		k++
	}
	if k >= len(variant) || variant[k] != '(' || (k == end && !quoted) {
		return ""
	}
	return fmt.Sprintf("%s with a space, comment or quotes before its \"(\" is not the built-in: MariaDB calls a stored function %s of the current schema, which may do anything; write %s( without them",
		name, strings.ToLower(name), strings.ToUpper(name))
}
