package mysql

import (
	"encoding/binary"
	"fmt"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
)

// paramCountAvailable is COM_STMT_EXECUTE's PARAMETER_COUNT_AVAILABLE flag.
const paramCountAvailable = 0x08

// stmt is a statement the client prepared (COM_STMT_PREPARE), under the
// upstream's statement id.
type stmt struct {
	text string
	// schema is the current schema when the statement was prepared:
	// MariaDB resolves its unqualified names there at every execute
	// (re-prepares included), whatever the current schema is then. Each
	// execute is decided, reviewed, masked and recorded in it.
	schema  string
	class   sqlkind.Classification
	stmts   []sqlkind.MySQLStatement
	nparams int
	types   []uint16       // parameter types of the last execute that sent them
	long    map[int][]byte // COM_STMT_SEND_LONG_DATA, per parameter
	longLen int            // bytes held in long, bounded by max_message_bytes
}

// onPrepare forwards the prepare (it runs nothing) and keeps the text and
// its classification for the executes, which are decided one by one.
func (c *conn) onPrepare(text string) bool {
	if !c.writeUp(comStmtPrepare, []byte(text)) {
		return false
	}
	p, ok := c.readUp()
	if !ok {
		return false
	}
	if isErr(p) || len(p) < 12 || p[0] != 0x00 {
		c.lastStmt = 0 // MariaDB forgets its last statement too
		return c.out.send(p) == nil
	}
	id := binary.LittleEndian.Uint32(p[1:])
	c.lastStmt = id
	ncols := int(binary.LittleEndian.Uint16(p[5:]))
	nparams := int(binary.LittleEndian.Uint16(p[7:]))
	c.stmts[id] = &stmt{text: text, schema: c.state.Schema, class: c.e.o.Classifier.Classify(text),
		stmts: c.e.o.Classifier.Statements(text), nparams: nparams, long: map[int][]byte{}}
	c.out.sendBuffered(p)
	for _, n := range []int{nparams, ncols} {
		if n == 0 {
			continue
		}
		for i := 0; i <= n; i++ { // n definitions and an EOF
			q, ok := c.readUp()
			if !ok {
				return false
			}
			c.out.sendBuffered(q)
		}
	}
	return c.out.flush() == nil
}

// lastStmtID is the statement id MariaDB (10.2 and later) reads as the
// statement prepared last on the connection; MariaDB Connector/J sends it
// when it pipelines a prepare with its execute.
const lastStmtID = 0xffffffff

// lookupStmt finds the statement a command's body names. MariaDB's
// lastStmtID is resolved here and replaced in body (the client's packet,
// about to be forwarded) by the id it stands for, so the server runs the
// statement the gateway decided on whatever it thinks was prepared last.
func (c *conn) lookupStmt(body []byte) (uint32, *stmt, bool) {
	if len(body) < 4 {
		return 0, nil, false
	}
	id := binary.LittleEndian.Uint32(body)
	if id == lastStmtID && c.up.mariadb && c.lastStmt != 0 {
		id = c.lastStmt
		binary.LittleEndian.PutUint32(body, id)
	}
	s, ok := c.stmts[id]
	return id, s, ok
}

// onLongData keeps a parameter's long data for the execute's decision and
// forwards it (nothing runs until the execute). It has no response.
func (c *conn) onLongData(body []byte) bool {
	_, s, ok := c.lookupStmt(body)
	if !ok || len(body) < 6 {
		return true // MySQL answers nothing here either; the execute fails
	}
	param := int(binary.LittleEndian.Uint16(body[4:]))
	data := body[6:]
	if param >= s.nparams {
		return true
	}
	s.longLen += len(data)
	if s.longLen > c.e.o.Limits.MaxMessageBytes {
		c.fail(erNetPacketTooLarge, "08S01", "countersign: the long data of a prepared statement exceeds limits.max_message_bytes")
		return false
	}
	s.long[param] = append(s.long[param], data...)
	c.up.ResetSequence()
	return c.writeUpRaw(append([]byte{comStmtSendLongData}, body...))
}

func (c *conn) onStmtClose(body []byte) bool {
	if id, _, ok := c.lookupStmt(body); ok {
		delete(c.stmts, id)
		if id == c.lastStmt {
			c.lastStmt = 0
		}
	}
	c.up.ResetSequence()
	return c.writeUpRaw(append([]byte{comStmtClose}, body...))
}

func (c *conn) onStmtReset(body []byte) bool {
	if _, s, ok := c.lookupStmt(body); ok {
		s.long, s.longLen = map[int][]byte{}, 0
	}
	return c.passThrough(comStmtReset, body)
}

// onExecute decides COM_STMT_EXECUTE from the prepared text and the bound
// parameters, long data included, then forwards it as the client sent it.
func (c *conn) onExecute(body []byte) bool {
	_, s, ok := c.lookupStmt(body)
	if !ok {
		return c.out.send(errPacket(erUnknownStmt, "HY000", "unknown prepared statement handler given to mysqld_stmt_execute")) == nil
	}
	params, types, err := decodeExecuteTypes(body, s)
	if err != nil {
		return c.out.send(errPacket(erWrongArguments, "HY000", "Incorrect arguments to mysqld_stmt_execute: "+err.Error())) == nil
	}
	op, pre := c.stmtOperation("COM_STMT_EXECUTE", s, params)
	op, v := c.decideOp(op, pre)
	if v.Decision != guard.Allow {
		// The server keeps the long data of an execute it never got: so
		// does the gateway, or the next execute would be decided on an
		// inline value the server ignores for the long data.
		return c.deny(v)
	}
	// The types the execute sent hold from now on, on the server as here:
	// kept before, a refused execute would leave the gateway reading the
	// next one's values with types the server never got.
	s.types = types
	s.long, s.longLen = map[int][]byte{}, 0
	op.stmts = s.stmts
	if !c.writeUp(comStmtExecute, body) || !c.relayResults(op, true) {
		return false
	}
	c.trackState(op.stmts, op.ran())
	c.done(op)
	c.afterRun(op)
	return true
}

// stmtOperation is the operation of an execute of s, in the schema s was
// prepared in: its digest, its review, the allowed-schema check of its
// unqualified names, its masking lineage and its recording all name the
// schema the server runs it in, not the session's current one (an
// approval of "DELETE FROM t in staging" must not empty prod.t, prepared
// there before a COM_INIT_DB). It also returns what refuses it before the
// guard is asked.
func (c *conn) stmtOperation(command string, s *stmt, params []guard.Param) (*operation, refusal) {
	op := c.newOperation(command, s.text, params, s.class)
	op.g.State.Schema = s.schema
	op.sets = hasSettings(s.stmts)
	pre := c.refusalOf(withSchema(statementSchemas(s.stmts), s.schema), s.stmts)
	if pre.code == "" {
		c.viewClass(op, s.stmts) // viewkind.go
	}
	return op, pre
}

// withSchema adds the schema unqualified names resolve in to the schemas
// a statement names, when there is one.
func withSchema(names []string, schema string) []string {
	if schema == "" {
		return names
	}
	return append(names[:len(names):len(names)], schema)
}

// decodeExecute reads the parameters of a COM_STMT_EXECUTE body (after the
// command byte): statement id, flags, iteration count, NULL bitmap, the
// new-params-bound flag, types, values. Values sent as long data are taken
// from there. Every parameter becomes a guard.Param (binary format, its
// type with the unsigned flag in bit 15).
func decodeExecute(body []byte, s *stmt) ([]guard.Param, error) {
	params, _, err := decodeExecuteTypes(body, s)
	return params, err
}

// decodeExecuteTypes is decodeExecute that also returns the parameter
// types the values were read with (sent with the execute, or s's); s is
// not changed.
func decodeExecuteTypes(body []byte, s *stmt) ([]guard.Param, []uint16, error) {
	cur := &cursor{b: body}
	cur.u32()
	flags := cur.u8()
	cur.u32()
	if cur.bad {
		return nil, nil, errShort
	}
	// 0x08 is MySQL 8's PARAMETER_COUNT_AVAILABLE, which changes the layout
	// only under CLIENT_QUERY_ATTRIBUTES; the gateway offers that to no
	// client and asks it of no upstream, so both sides ignore the bit
	// (go-mysql's client sets it whenever there are parameters). The
	// cursor bits would open a server-side cursor read by COM_STMT_FETCH.
	if flags&^paramCountAvailable != 0 {
		return nil, nil, fmt.Errorf("cursor flags %#x are not supported through countersign", flags)
	}
	n := s.nparams
	if n == 0 {
		return nil, s.types, nil
	}
	nulls := cur.bytes((n + 7) / 8)
	types := s.types
	if bound := cur.u8(); bound == 1 {
		types = make([]uint16, n)
		for i := range types {
			types[i] = cur.u16()
		}
	}
	if cur.bad {
		return nil, nil, errShort
	}
	if len(types) != n {
		return nil, nil, fmt.Errorf("no parameter types were sent")
	}
	params := make([]guard.Param, n)
	for i := range params {
		t := types[i]
		params[i] = guard.Param{Format: 1, Type: uint32(t)}
		if nulls[i/8]&(1<<(i%8)) != 0 {
			params[i].Null = true
			continue
		}
		if d, ok := s.long[i]; ok {
			params[i].Value = append([]byte(nil), d...)
			continue
		}
		if !bulkTypeAgrees(byte(t)) {
			return nil, nil, fmt.Errorf("parameter %d has type %#x, which the server and countersign do not read alike; bind it as a string or an integer of another width", i+1, byte(t))
		}
		v, err := bulkValue(cur, byte(t))
		if err != nil {
			return nil, nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		params[i].Value = append([]byte(nil), v...)
	}
	return params, types, nil
}

// binaryValue reads one binary-protocol value of type t.
func binaryValue(cur *cursor, t byte) ([]byte, error) {
	var v []byte
	switch t {
	case 0x06: // NULL
		return nil, nil
	case 0x01: // TINY
		v = cur.bytes(1)
	case 0x02, 0x0d: // SHORT, YEAR
		v = cur.bytes(2)
	case 0x03, 0x09, 0x04: // LONG, INT24, FLOAT
		v = cur.bytes(4)
	case 0x08, 0x05: // LONGLONG, DOUBLE
		v = cur.bytes(8)
	case 0x07, 0x0a, 0x0b, 0x0c: // TIMESTAMP, DATE, TIME, DATETIME
		n := cur.u8()
		v = cur.bytes(int(n))
	case 0x00, 0x0f, 0x10, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff:
		v = cur.lenencBytes()
	default:
		return nil, fmt.Errorf("unknown parameter type %#x", t)
	}
	if cur.bad {
		return nil, errShort
	}
	return v, nil
}
