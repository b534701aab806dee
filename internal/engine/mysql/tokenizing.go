package mysql

import (
	"fmt"
	"strings"

	"github.com/countersign/countersign/internal/sqlkind"
)

// Invariant 8: the gateway and the server must read statement text the
// same way. sql_mode flags such as ANSI_QUOTES and NO_BACKSLASH_ESCAPES
// change where a string ends; a client character set like GBK can hide a
// quote inside a character; a UTF-16 result set hides values from the
// masking detectors. A later statement could then mean one thing to the
// classifier and another to the server, so no review can make such a
// session safe: a SET that would do it is refused outright, before the
// guard is asked (no review is created for it). So is SET ... = DEFAULT
// (and SET NAMES DEFAULT) of these settings: it takes the server's global
// value, which the gateway has not checked.
//
// A statement the parser cannot read (SET NAMES sjis, BEGIN NOT ATOMIC
// ... END, EXECUTE IMMEDIATE, a CALL) is Unknown and may run once
// approved; whatever it did, the session's settings are read back from
// the upstream afterwards (checkSessionReadable) and a session whose
// settings the gateway cannot read any more is ended. COM_RESET_CONNECTION
// takes the server's global settings, which an approved SET GLOBAL may
// have changed, so it is checked the same way.

const verdictTokenizing = "tokenizing_setting"

// erWrongValueForVar is ER_WRONG_VALUE_FOR_VAR, what MySQL answers a SET
// of a value it refuses.
const erWrongValueForVar = 1231

// tokenizingRefusal says why the statements must not run, "" when they
// may.
func tokenizingRefusal(stmts []sqlkind.MySQLStatement) string {
	for _, st := range stmts {
		for _, set := range st.Settings {
			if !set.Tokenizing {
				continue
			}
			val := set.Value
			switch {
			case set.Default:
				val = "DEFAULT (the server's global value, which the gateway has not checked; write the value itself)"
			case val == "" || val == "null":
				val = "a value not written as a literal"
			default:
				val = "'" + val + "'"
			}
			return fmt.Sprintf("countersign refuses setting %s to %s: it would make the server read statement text "+
				"(or results) differently from the gateway; sql_mode must keep ANSI_QUOTES, NO_BACKSLASH_ESCAPES, "+
				"IGNORE_SPACE and ANSI/ORACLE off, and character sets must stay utf8mb4 (no review can allow this)", set.Name, val)
		}
	}
	return ""
}

// sessionSettingsQuery reads back what tokenizingRefusal guards, and the
// current schema.
const sessionSettingsQuery = "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.character_set_results, DATABASE()"

// sessionUnreadable reads the upstream session's sql_mode and character
// sets after an operation that may have changed them, and says what the
// gateway could not follow any more ("" when the session is fine). It
// also takes the current schema from the server: an approved Unknown
// statement (EXECUTE of a prepared USE, a stored procedure) may have
// switched it where the gateway could not see, and every later operation
// is decided, reviewed and recorded in it. The query uses no table, so it
// leaves the client's SHOW WARNINGS list as it was.
func (c *conn) sessionUnreadable(after string) string {
	r, err := c.up.Execute(sessionSettingsQuery)
	if err != nil || r.Resultset == nil || len(r.Values) != 1 || len(r.Fields) != 4 {
		return "countersign could not read the session's sql_mode and character sets back after " + after + "; the session is ended: reconnect"
	}
	mode, _ := r.GetString(0, 0)
	client, _ := r.GetString(0, 1)
	results, _ := r.GetString(0, 2)
	c.state.Schema, _ = r.GetString(0, 3) // NULL (no schema) reads as ""
	var bad []string
	if !sqlkind.MySQLSafeSQLMode(mode) {
		bad = append(bad, fmt.Sprintf("sql_mode is %q", mode))
	}
	if !sqlkind.MySQLSafeCharset(client) {
		bad = append(bad, fmt.Sprintf("character_set_client is %q", client))
	}
	if results != "" && results != "binary" && !sqlkind.MySQLSafeCharset(results) {
		bad = append(bad, fmt.Sprintf("character_set_results is %q", results))
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("countersign ended the session: after %s %s, and the gateway would read "+
		"statements or results differently from the server; reconnect (and leave these settings as they are)", after, strings.Join(bad, ", "))
}

// hasSettings reports whether any statement changes a session variable.
func hasSettings(stmts []sqlkind.MySQLStatement) bool {
	for _, s := range stmts {
		if len(s.Settings) > 0 {
			return true
		}
	}
	return false
}

// afterRun: an Unknown operation that ran may have changed the session's
// settings (and schema) in ways its parse could not show. So may a SET
// the classifier let through, were the classifier wrong about it: the
// settings are read back after every SET too (one round trip, only for
// texts with a SET), and a session the gateway cannot follow any more
// ends, whatever the classifier said. The operation's results are
// already with the client, so such a session is cut from its upstream
// now and the client is told at its next command (an error out of turn
// would only desynchronise it).
func (c *conn) afterRun(op *operation) {
	unknown := op.g.Class.Kind == sqlkind.Unknown
	if (!unknown && !op.sets) || c.unreadable != "" {
		return
	}
	after := "a SET statement ran"
	if unknown {
		// A stored procedure (CALL), EXECUTE IMMEDIATE or a compound
		// statement may have prepared SQL-level statements the gateway
		// did not see, under names it tracks, in another schema: their
		// EXECUTEs are Unknown until prepared again through the gateway.
		c.prepared, c.preparedIn = map[string]string{}, map[string]string{}
		after = "an unknown statement ran"
	}
	if why := c.sessionUnreadable(after); why != "" {
		c.unreadable = why
		c.setReason(why)
		c.upClosed = true
		_ = c.up.Conn.Close()
	}
}
