package mysql

import (
	"errors"
	"fmt"
	"sync"

	"github.com/countersign/countersign/internal/guard"
)

// COM_STMT_BULK_EXECUTE (MariaDB's array execute) runs a prepared
// statement once per row of parameters in one command:
//
//	0xfa, int<4> statement id, int<2> bulk flags,
//	if flags & SEND_TYPES_TO_SERVER: per parameter, type<1> and flag<1>,
//	then until the end of the packet, per row, per parameter:
//	  indicator<1> (0 a value follows, 1 NULL, 2 DEFAULT, 3 IGNORE),
//	  the value in the binary protocol when the indicator is 0.
//
// MariaDB takes it only from a client that agreed on
// MARIADB_CLIENT_STMT_BULK_OPERATIONS, so the gateway forwards it only
// when both its client and its upstream agreed on that (login.go asks the
// upstream; the greeting offers it to clients as bulkOffer says). It is
// one operation: the prepared statement's text, classified as the
// statement is, with every row's values (indicators included) as its
// parameters, row by row, so that the digest an approval binds covers
// exactly the rows that run. It is decided, held, refused and recorded as
// COM_STMT_EXECUTE is, and its answer (an OK, or a result set for
// RETURNING) goes through the same relay and masking.
//
// The gateway forwards the client's packet as it is, so its decoder must
// read every row exactly as MariaDB does: bulkTypeAgrees and bulkValue
// refuse what the two would read differently, and
// TestRealBulkDecoderAgreesWithMariaDB checks every type code against the
// real server.
const (
	bulkSendTypes   = 128 // STMT_BULK_FLAG_SEND_TYPES_TO_SERVER
	bulkUnitResults = 64  // STMT_BULK_FLAG_SEND_UNIT_RESULTS

	indicatorNone    = 0
	indicatorNull    = 1
	indicatorDefault = 2
	indicatorIgnore  = 3
)

// maxBulkValues bounds the values (rows × parameters) of one bulk execute:
// each becomes a guard.Param, several times the size of a one-byte NULL
// indicator, so a packet within limits.max_message_bytes could otherwise
// cost gigabytes. MariaDB's connectors split their batches by
// max_allowed_packet; a client can split them further.
const maxBulkValues = 1 << 18

// erUnsupportedPS is ER_UNSUPPORTED_PS, MariaDB's answer to a bulk execute
// it cannot run.
const erUnsupportedPS = 1295

// bulkNotAgreed is the refusal of a bulk execute the session did not agree
// on (the client, or the upstream, did not negotiate it).
const bulkNotAgreed = "COM_STMT_BULK_EXECUTE (array binding) is not supported on this session through countersign " +
	"(the client or the resource's server did not agree on MariaDB's bulk operations): " +
	"execute the prepared statement once per row, or use a multi-row INSERT"

// The values the guard sees for the DEFAULT and IGNORE indicators: text
// format, which no binary value has, so neither can be confused with a
// value. Read-only.
var (
	paramDefault = []byte("DEFAULT")
	paramIgnore  = []byte("IGNORE")
)

// bulkExec is a decoded COM_STMT_BULK_EXECUTE.
type bulkExec struct {
	flags uint16
	// types are those the rows were read with: sent with it, or the
	// statement's; sent tells which.
	types []uint16
	sent  bool
	rows  int
	// params are the rows' values, row by row, nparams each. Their
	// values share one copy of the packet's rows.
	params []guard.Param
}

// bulkError is a bulk execute the gateway refuses without reading further:
// an ERR for the client, and the session goes on. Any other decode error
// is a malformed packet, which ends the session.
type bulkError struct {
	code uint16
	msg  string
}

func (e *bulkError) Error() string { return e.msg }

// decodeBulk reads a COM_STMT_BULK_EXECUTE body (after the command byte)
// of a statement with nparams parameters whose last types were last (nil:
// none yet). It checks everything MariaDB would fail on part-way, after
// running the rows before it: a refusal here runs nothing.
func decodeBulk(body []byte, nparams int, last []uint16) (bulkExec, error) {
	var b bulkExec
	cur := &cursor{b: body}
	cur.u32() // the statement id: the caller's
	b.flags = cur.u16()
	switch {
	case cur.bad:
		return b, errors.New("it is shorter than its header")
	case b.flags&^(bulkSendTypes|bulkUnitResults) != 0:
		return b, &bulkError{erUnsupportedPS, fmt.Sprintf("countersign: bulk flags %#x are not supported", b.flags)}
	case b.flags&bulkUnitResults != 0:
		// It needs MARIADB_CLIENT_BULK_UNIT_RESULTS, which the gateway
		// does not negotiate (MariaDB 10.11 refuses the flag alike).
		return b, &bulkError{erUnsupportedPS, "countersign: SEND_UNIT_RESULTS was not negotiated on this session; send the bulk execute without it"}
	case nparams == 0:
		return b, &bulkError{erUnsupportedPS, "countersign: a statement without parameters cannot be executed in bulk"}
	}
	b.types = last
	if b.flags&bulkSendTypes != 0 {
		b.types, b.sent = make([]uint16, nparams), true
		for i := range b.types {
			b.types[i] = cur.u16()
		}
		if cur.bad {
			return b, errors.New("its parameter types are cut short")
		}
	}
	if len(b.types) != nparams {
		return b, &bulkError{erWrongArguments, "Incorrect arguments to mysqld_stmt_bulk_execute: no parameter types were sent"}
	}
	for i, t := range b.types {
		if !bulkTypeAgrees(byte(t)) {
			return b, &bulkError{erWrongArguments, fmt.Sprintf(
				"countersign: parameter %d has type %#x, which MariaDB and countersign do not read alike in a bulk execute; "+
					"bind it as a string or an integer of another width", i+1, byte(t))}
		}
	}
	rows := cur.b
	if len(rows) == 0 {
		return b, errors.New("it carries no rows")
	}
	// Two passes: the first checks and counts, so that the second
	// allocates the parameters once.
	n, err := scanBulkRows(rows, b.types, nil)
	if err != nil {
		return b, err
	}
	if n > maxBulkValues {
		return b, &bulkError{erWrongArguments, fmt.Sprintf(
			"countersign: a bulk execute may carry at most %d values (rows × parameters), this one has %d: send the rows in smaller batches", maxBulkValues, n)}
	}
	b.params = make([]guard.Param, 0, n)
	data := append([]byte(nil), rows...)
	if _, err := scanBulkRows(data, b.types, &b.params); err != nil {
		return b, err
	}
	b.rows = n / nparams
	return b, nil
}

// scanBulkRows reads rows of len(types) values each until rows ends, and
// returns how many values it read; params, when not nil, gets them (their
// values are slices of rows). A row cut short, an unknown indicator or
// type is an error.
func scanBulkRows(rows []byte, types []uint16, params *[]guard.Param) (int, error) {
	cur := &cursor{b: rows}
	n := 0
	for row := 1; len(cur.b) > 0; row++ {
		for i, t := range types {
			ind := cur.u8()
			if cur.bad {
				return n, fmt.Errorf("row %d stops before parameter %d", row, i+1)
			}
			p := guard.Param{Format: 1, Type: uint32(t)}
			switch ind {
			case indicatorNone:
				v, err := bulkValue(cur, byte(t))
				if err != nil {
					return n, fmt.Errorf("row %d, parameter %d: %w", row, i+1, err)
				}
				p.Value = v
			case indicatorNull:
				p.Null = true
			case indicatorDefault:
				p.Format, p.Value = 0, paramDefault
			case indicatorIgnore:
				p.Format, p.Value = 0, paramIgnore
			default:
				return n, fmt.Errorf("row %d, parameter %d: unknown indicator %d", row, i+1, ind)
			}
			if params != nil {
				*params = append(*params, p)
			}
			n++
			if n > maxBulkValues && params == nil {
				return n, nil // counted enough to refuse it
			}
		}
	}
	return n, nil
}

// bulkTypeAgrees says whether MariaDB reads a value of parameter type t
// as binaryValue does. MariaDB 10.11 reads no bytes at all for INT24,
// YEAR, BIT and GEOMETRY (the parameter becomes NULL), and fails on NULL
// and JSON part-way through the rows, after running the rows before. A
// decoder reading 4, 2 or a length-prefixed string there would decide on
// rows other than those MariaDB runs: the bytes it took for one value
// are, to MariaDB, the next indicators and values (a client could hide
// whole rows in them). So these types are refused before anything runs.
// The unsigned flag (the type's second byte) changes no length.
func bulkTypeAgrees(t byte) bool {
	switch t {
	case 0x06, 0x09, 0x0d, 0x10, 0xf5, 0xff: // NULL, INT24, YEAR, BIT, JSON, GEOMETRY
		return false
	}
	return true
}

// bulkValue reads one value of a bulk row as MariaDB does. A temporal
// value's length is one byte to binaryValue, but MariaDB reads it as a
// length-encoded integer: 0xfc and up would be a 2-, 3- or 8-byte length
// to it and a 252-byte value to binaryValue, so such a length is refused
// (no client sends one: DATETIME is at most 11 bytes, TIME 12).
func bulkValue(cur *cursor, t byte) ([]byte, error) {
	switch t {
	case 0x07, 0x0a, 0x0b, 0x0c: // TIMESTAMP, DATE, TIME, DATETIME
		if len(cur.b) > 0 && cur.b[0] > 12 {
			return nil, fmt.Errorf("a temporal value of %d bytes (at most 12)", cur.b[0])
		}
	}
	return binaryValue(cur, t)
}

// onBulkExecute decides a COM_STMT_BULK_EXECUTE and forwards it.
func (c *conn) onBulkExecute(body []byte) bool {
	if c.clientExt&extStmtBulkOperations == 0 || !c.up.bulk {
		return c.refuse(bulkNotAgreed)
	}
	_, s, ok := c.lookupStmt(body)
	if !ok {
		c.bulkMalformed("it names no statement prepared on this session")
		return false
	}
	if len(s.long) > 0 {
		// MariaDB refuses long data with a bulk execute too; it keeps the
		// long data of a command it never got, and so does the gateway.
		return c.out.send(errPacket(erWrongArguments, "HY000",
			"Incorrect arguments to mysqld_stmt_bulk_execute: long data (COM_STMT_SEND_LONG_DATA) cannot be used with a bulk execute; send the values inline, or reset the statement")) == nil
	}
	b, err := decodeBulk(body, s.nparams, s.types)
	if err != nil {
		var refused *bulkError
		if errors.As(err, &refused) {
			return c.out.send(errPacket(refused.code, "HY000", refused.msg)) == nil
		}
		c.bulkMalformed(err.Error())
		return false
	}
	op, pre := c.stmtOperation("COM_STMT_BULK_EXECUTE", s, b.params)
	op.bulkRows = b.rows
	op, v := c.decideOp(op, pre)
	if v.Decision != guard.Allow {
		return c.deny(v)
	}
	op.stmts = s.stmts
	if !c.writeUp(comStmtBulkExecute, body) || !c.relayResults(op, true) {
		return false
	}
	if b.sent && bulkTypesRead(op.errCode) {
		s.types = b.types // the server keeps them for the next execute
	}
	c.trackState(op.stmts, op.ran())
	c.done(op)
	c.afterRun(op)
	return true
}

// bulkTypesRead says whether MariaDB read the types of a bulk execute
// that answered with error code (errCode's; "" for success). It checks
// the statement before it reads them: a statement without parameters, or
// one that cannot run in bulk (a SELECT, a CALL, a DELETE ... RETURNING),
// is refused with ER_UNSUPPORTED_PS, an unknown statement with
// ER_UNKNOWN_STMT, a cut header with ER_MALFORMED_PACKET, and it keeps
// the types it had. Once it has them, an error (a duplicate key in a
// row) leaves them set. Taking them after a refusal would have the
// gateway read the next execute without types with types MariaDB never
// took: the guard would decide on other values than those that run.
func bulkTypesRead(errCode string) bool {
	switch errCode {
	case fmt.Sprint(erUnsupportedPS), fmt.Sprint(erUnknownStmt), fmt.Sprint(erMalformedPacket):
		return false
	}
	return true
}

// bulkMalformed ends the session: after a bulk execute the gateway cannot
// read, it cannot tell what the client meant to run.
func (c *conn) bulkMalformed(why string) {
	c.fail(erMalformedPacket, "08S01", "countersign: malformed COM_STMT_BULK_EXECUTE: "+why+"; the session is ended, reconnect")
}

// bulkOffer decides whether the greeting offers clients bulk execute. The
// greeting goes out before the client names its resource (as its user),
// so the gateway cannot know whether that resource's server agrees; it
// offers bulk only when the last login to every resource seen so far
// agreed on it (MariaDB does, MySQL does not). The first session after a
// start is therefore not offered it, nor is any once a resource's server
// did not agree; a client offered it whose own upstream then does not
// agree has its bulk executes refused (bulkNotAgreed), and the session
// goes on.
type bulkOffer struct {
	mu   sync.Mutex
	seen map[string]bool // resource name -> its last login agreed
}

// note records whether the login to resource agreed on bulk.
func (o *bulkOffer) note(resource string, agreed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	o.seen[resource] = agreed
}

// offer says whether to offer bulk to the next client.
func (o *bulkOffer) offer() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, agreed := range o.seen {
		if !agreed {
			return false
		}
	}
	return len(o.seen) > 0
}
