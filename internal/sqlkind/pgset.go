package sqlkind

import (
	"fmt"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// readSettings may be changed freely: they change how results look or how
// long things may take, never what a statement may touch or as whom.
// search_path is here because tools set it; the engine binds it into later
// digests. Everything else is Unknown: settings like session_replication_role
// (skips triggers) or row_security change what statements do.
var readSettings = setOf(
	"search_path", "application_name", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "idle_session_timeout", "timezone",
	"datestyle", "intervalstyle", "extra_float_digits", "client_min_messages",
	"bytea_output", "xmloption", "transaction_isolation", "transaction_read_only",
	"transaction_deferrable", "default_transaction_isolation",
	"default_transaction_read_only", "default_transaction_deferrable",
	"work_mem", "jit", "lc_monetary", "lc_numeric", "lc_time",
	// SET TRANSACTION ... and SET SESSION CHARACTERISTICS AS TRANSACTION ...
	"transaction", "session characteristics",
)

// privilegeSettings change who the session acts as.
var privilegeSettings = setOf("role", "session_authorization")

// setKind classifies SET and RESET. standard_conforming_strings may only be
// on and client_encoding only UTF8: the gateway reads text as UTF-8 with
// standard strings, and anything else would let it misread what runs.
func (p *PostgresClassifier) setKind(s *pg.VariableSetStmt, r *stmtResult) (Kind, string) {
	name := strings.ToLower(s.Name)
	set := &Setting{Name: name, Local: s.IsLocal}
	switch s.Kind {
	case pg.VariableSetKind_VAR_SET_VALUE:
		set.Value = setValue(s.Args)
	case pg.VariableSetKind_VAR_RESET_ALL:
		set.Name, set.Reset = "all", true
		r.Set = set
		return Privilege, "RESET ALL resets every setting the gateway tracks"
	case pg.VariableSetKind_VAR_SET_MULTI:
	default:
		set.Reset = true
	}
	r.Set = set
	switch {
	case privilegeSettings[name]:
		return Privilege, "changes the role the session acts as"
	case name == "standard_conforming_strings":
		if set.Reset || isOn(set.Value) {
			return Read, ""
		}
		return Unknown, "standard_conforming_strings must stay on: the gateway cannot read statements written for it off"
	case name == "client_encoding":
		if set.Reset || isUTF8(set.Value) {
			return Read, ""
		}
		return Unknown, "client_encoding must stay UTF8: the gateway reads statements as UTF-8"
	case readSettings[name]:
		return Read, ""
	}
	return Unknown, fmt.Sprintf("setting %s is not on the gateway's allow-list of harmless settings", name)
}

func setValue(args []*pg.Node) string {
	vals := make([]string, 0, len(args))
	for _, a := range args {
		vals = append(vals, constString(a))
	}
	return strings.Join(vals, ", ")
}

// constString renders a SET argument: a constant or a typed constant
// (SET TIME ZONE INTERVAL '...').
func constString(n *pg.Node) string {
	if tc := n.GetTypeCast(); tc != nil {
		return constString(tc.Arg)
	}
	c := n.GetAConst()
	switch {
	case c == nil:
		return "?"
	case c.GetSval() != nil:
		return c.GetSval().Sval
	case c.GetIval() != nil:
		return strconv.Itoa(int(c.GetIval().Ival))
	case c.GetFval() != nil:
		return c.GetFval().Fval
	case c.GetBoolval() != nil:
		return strconv.FormatBool(c.GetBoolval().Boolval)
	}
	return "?"
}

func isOn(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}

func isUTF8(v string) bool {
	switch strings.ToLower(strings.ReplaceAll(v, "-", "")) {
	case "utf8", "unicode":
		return true
	}
	return false
}
