package mysql

import (
	"encoding/binary"
	"regexp"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/countersign/countersign/internal/sqlkind"
)

// verdictVariables refuses an operation whose user variables could not be
// read.
const verdictVariables = "user_variables_unreadable"

// A user variable is session state the client sets freely (SET @x = ...
// is a read), and a statement reading one does what its value says:
// UPDATE t SET balance = @amount, or CALL transfer() whose body reads
// @amount. An approval bound to the text alone would run again,
// unreviewed, after SET @amount changed. So before an operation that is
// not a read is decided, the values of the user variables it names, and
// once the session may have set any (noteVariables) of all the session
// holds, are read from the session's upstream and bound into its digest
// (guard.State). One round trip, only for such operations. It resets
// the SHOW WARNINGS list (listing every variable reads a table), and
// ROW_COUNT() and FOUND_ROWS(): a statement that may read those is
// refused instead, and GET DIAGNOSTICS, which reads what the statement
// before it left, is not bound.

// bindVariables puts the current values of the user variables op reads
// into its state, or returns why it cannot (the operation is refused). Once
// the session may have set variables (noteVariables), every one it holds is
// bound: a procedure, a trigger or a view's function reads them without
// the statement naming them (CALL transfer() reading @amount).
func (c *conn) bindVariables(op *operation) refusal {
	cl := &op.g.Class
	switch {
	case cl.Kind == sqlkind.Read || (len(cl.Variables) == 0 && !c.varsSet):
		return refusal{}
	case getDiagnostics.MatchString(op.g.Text):
		// It reads the last statement's diagnostics, which any query of
		// the gateway's would replace, and no variable but a condition
		// number.
		return refusal{}
	case countFuncs.MatchString(op.g.Text):
		return refusal{verdictVariables, "countersign binds the session's user variables to the review of a statement " +
			"that is not a read by reading them just before it, which would reset the ROW_COUNT() or FOUND_ROWS() " +
			"this statement reads; read it with SELECT first and use the value, or run this in a session without user variables"}
	}
	if c.varsSet && !c.noVarTable {
		if names, vals, ok := c.sessionVariables(); ok {
			op.g.State.Variables, op.g.State.VariableValues = names, vals
			return refusal{}
		}
		c.noVarTable = true
		c.e.log.Warn("the upstream lists no session user variables (information_schema.USER_VARIABLES, "+
			"performance_schema.user_variables_by_thread); only those a statement names are bound to its review", "session", c.id)
	}
	if len(cl.Variables) == 0 {
		return refusal{}
	}
	var q strings.Builder
	q.WriteString("SELECT ")
	for i, n := range cl.Variables {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("@`")
		q.WriteString(strings.ReplaceAll(n, "`", "``"))
		q.WriteString("`")
	}
	r, err := c.up.Execute(q.String())
	if err != nil || r.Resultset == nil || len(r.Values) != 1 || len(r.Fields) != len(cl.Variables) {
		c.e.log.Warn("reading user variables failed; the operation is refused", "session", c.id, "error", err)
		return refusal{verdictVariables, "countersign could not read the user variables this statement uses, " +
			"whose values are bound to its review; try again"}
	}
	var vals []byte
	for i := range cl.Variables {
		vals = appendVariable(vals, r, 0, i)
	}
	op.g.State.Variables = "@" + strings.Join(cl.Variables, ", @")
	op.g.State.VariableValues = vals
	return refusal{}
}

// getDiagnostics matches a text that is one GET DIAGNOSTICS and nothing
// else; countFuncs a text that may read what the gateway's query resets.
var (
	getDiagnostics = regexp.MustCompile(`(?is)^\s*GET\s+(?:(?:CURRENT|STACKED)\s+)?DIAGNOSTICS\b[^;]*;?\s*$`)
	countFuncs     = regexp.MustCompile(`(?i)row_count|found_rows`)
)

// sessionVariablesQueries list every user variable of the session with its
// value: MariaDB's (the user_variables plugin, on by default), then
// MySQL 8's.
var sessionVariablesQueries = []string{
	"SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.USER_VARIABLES ORDER BY VARIABLE_NAME",
	"SELECT VARIABLE_NAME, VARIABLE_VALUE FROM performance_schema.user_variables_by_thread " +
		"WHERE THREAD_ID = PS_CURRENT_THREAD_ID() ORDER BY VARIABLE_NAME",
}

// sessionVariables reads every user variable of the session: their names
// ("@a, @b") and an encoding of names and values for the digest. ok is
// false when the upstream has neither table.
func (c *conn) sessionVariables() (names string, vals []byte, ok bool) {
	for _, q := range sessionVariablesQueries {
		r, err := c.up.Execute(q)
		if err != nil || r.Resultset == nil || len(r.Fields) != 2 {
			continue
		}
		shown := make([]string, len(r.Values))
		for i := range r.Values {
			name, _ := r.GetString(i, 0)
			shown[i] = "@" + name
			vals = appendVariable(vals, r, i, 0)
			vals = appendVariable(vals, r, i, 1)
		}
		return strings.Join(shown, ", "), vals, true
	}
	return "", nil, false
}

// appendVariable encodes one value of r for the digest: its length, its
// bytes, and whether it is NULL.
func appendVariable(b []byte, r *gomysql.Result, row, col int) []byte {
	null, _ := r.IsNull(row, col)
	s, _ := r.GetString(row, col)
	b = binary.AppendUvarint(b, uint64(len(s)))
	b = append(b, s...)
	if null {
		return append(b, 0)
	}
	return append(b, 1)
}

// noteVariables notes, after an operation ran, that the session may now
// hold user variables: any text with an @ may set one (SET @x, @x :=,
// SELECT ... INTO @x, a PREPARE of such a text), and an Unknown operation
// (a procedure) may set any.
func (c *conn) noteVariables(op *operation) {
	if !c.varsSet && (op.g.Class.Kind == sqlkind.Unknown || strings.IndexByte(op.g.Text, '@') >= 0) {
		c.varsSet = true
	}
}
