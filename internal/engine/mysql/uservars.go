package mysql

import (
	"encoding/binary"
	"strings"

	"github.com/countersign/countersign/internal/sqlkind"
)

// verdictVariables refuses an operation whose user variables could not be
// read.
const verdictVariables = "user_variables_unreadable"

// A user variable is session state the client sets freely (SET @x = ...
// is a read), and a statement reading one does what its value says:
// UPDATE t SET balance = @amount. An approval bound to the text alone
// would run again, unreviewed, after SET @amount changed. So before an
// operation that is not a read and reads user variables is decided, their
// values are read from the session's upstream and bound into its digest
// (guard.State). One round trip, only for such operations. The query
// names no table, so the client's SHOW WARNINGS list stays as it was; it
// does reset ROW_COUNT() and FOUND_ROWS(), which the statement could read.

// bindVariables puts the current values of the user variables op reads
// into its state, or returns why it cannot (the operation is refused).
func (c *conn) bindVariables(op *operation) refusal {
	cl := &op.g.Class
	if cl.Kind == sqlkind.Read || len(cl.Variables) == 0 {
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
		null, _ := r.IsNull(0, i)
		s, _ := r.GetString(0, i)
		vals = binary.AppendUvarint(vals, uint64(len(s)))
		vals = append(vals, s...)
		if null {
			vals = append(vals, 0)
		} else {
			vals = append(vals, 1)
		}
	}
	op.g.State.Variables = "@" + strings.Join(cl.Variables, ", @")
	op.g.State.VariableValues = vals
	return refusal{}
}
