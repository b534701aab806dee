package mysql

import (
	"fmt"
	"maps"

	"github.com/countersign/countersign/internal/guard"

	"github.com/countersign/countersign/internal/sqlkind"
)

// onQuery: COM_QUERY, one or more statements. body is the client's packet
// (valid until the next read from the client): the text is copied once, for
// the decision and the recording, and body itself is forwarded.
func (c *conn) onQuery(body []byte) bool {
	text := string(body)
	class, executes, stmts := c.e.classifySession(text, c.prepared)
	// The texts SQL-level EXECUTEs run are bound as parameters, so an
	// approval of "EXECUTE s" covers what s is now and nothing else.
	var params []guard.Param
	// What the EXECUTEs run is checked for settings as if written here
	// (stmts is shared through the classifier's cache: copied, not
	// appended to).
	checked := stmts
	for _, t := range executes {
		params = append(params, guard.Param{Value: []byte(t)})
		checked = append(checked[:len(checked):len(checked)], c.e.o.Classifier.Statements(t)...)
	}
	op := c.newOperation("COM_QUERY", text, params, class)
	pre := c.refusalOf(statementSchemas(checked), checked)
	if schema, why := c.textSchema(stmts); why != "" {
		pre = refusal{verdictPreparedSchema, why}
	} else if schema != op.g.State.Schema {
		op.g.State.Schema = schema
		pre = c.refusalOf(withSchema(statementSchemas(checked), schema), checked)
	}
	if pre.code == "" {
		c.viewClass(op, stmts) // viewkind.go
	}
	op.sets = hasSettings(checked)
	op, v := c.decideOp(op, pre)
	if v.Decision != guard.Allow {
		return c.deny(v)
	}
	op.stmts = stmts
	if !c.writeUp(comQuery, body) {
		return false
	}
	if !c.relayResults(op, false) {
		return false
	}
	c.trackState(op.stmts, op.ran())
	c.done(op)
	c.afterRun(op)
	return true
}

// trackState follows USE and SQL-level PREPARE/DEALLOCATE of the
// statements that ran. A multi-statement text stops at its first error;
// each statement before it answered with one result (OK or a result set),
// so the first ran statements are those results (a CALL answers with
// several; CALL is Unknown and reviewed). Every name a statement that did
// not run prepares or deallocates is forgotten, so its EXECUTE is Unknown.
func (c *conn) trackState(stmts []sqlkind.MySQLStatement, ran int) {
	for i, s := range stmts {
		ok := i < ran
		switch {
		case s.Use != "" && ok:
			c.state.Schema = s.Use
		case s.Prepare != nil && ok:
			c.preparedIn[s.Prepare.Name] = c.state.Schema
			if s.Prepare.FromVariable {
				delete(c.prepared, s.Prepare.Name)
			} else {
				c.prepared[s.Prepare.Name] = s.Prepare.Text
			}
		case s.Prepare != nil:
			delete(c.prepared, s.Prepare.Name)
			delete(c.preparedIn, s.Prepare.Name)
		case s.Deallocate != "":
			delete(c.prepared, s.Deallocate)
			delete(c.preparedIn, s.Deallocate)
		}
	}
}

// verdictPreparedSchema refuses a text that mixes schemas (textSchema).
const verdictPreparedSchema = "prepared_in_other_schema"

// textSchema is the schema a COM_QUERY text's operation is decided, shown
// and recorded in, or why it is refused. MariaDB resolves the unqualified
// names of a statement prepared with SQL-level PREPARE in the schema that
// was current at the PREPARE, not at its EXECUTE. So a text that is one
// EXECUTE takes the schema its statement was prepared in; a text of
// several statements, one of which executes a statement prepared in
// another schema than the one current where it stands, is refused: one
// operation shows one schema. USE, PREPARE and DEALLOCATE earlier in the
// text count, as trackState will apply them.
func (c *conn) textSchema(stmts []sqlkind.MySQLStatement) (schema, why string) {
	cur, in := c.state.Schema, c.preparedIn
	copied := false
	for _, s := range stmts {
		switch {
		case s.Use != "":
			cur = s.Use
		case s.Prepare != nil || s.Deallocate != "":
			if !copied {
				in, copied = maps.Clone(in), true
			}
			if s.Prepare != nil {
				in[s.Prepare.Name] = cur
			} else {
				delete(in, s.Deallocate)
			}
		case s.Execute != "":
			at, ok := in[s.Execute]
			if !ok || at == cur {
				continue
			}
			if len(stmts) == 1 {
				return at, ""
			}
			return "", fmt.Sprintf("countersign: EXECUTE %s runs a statement prepared in schema %q, where its names resolve, but the current schema there is %q; "+
				"send that EXECUTE as a statement of its own (its review then shows %q), or prepare it again in %q", s.Execute, at, cur, at, cur)
		}
	}
	return c.state.Schema, ""
}

// onInitDB: COM_INIT_DB is decided and recorded as the USE it is.
func (c *conn) onInitDB(db string) bool {
	text := "USE " + quoteIdent(db)
	op, v := c.decide("COM_INIT_DB", text, nil, c.e.o.Classifier.Classify(text), c.refusalOf([]string{db}, nil))
	if v.Decision != guard.Allow {
		return c.deny(v)
	}
	if !c.writeUp(comInitDB, []byte(db)) {
		return false
	}
	p, ok := c.readUp()
	if !ok {
		return false
	}
	c.awaitRead(op)
	if isErr(p) {
		op.errCode = errCode(p)
	} else {
		c.state.Schema = db
	}
	c.noteStatus(p)
	if !c.sendResult(op, c.maskErr(op, p)) {
		return false
	}
	c.done(op)
	return true
}

// onFieldList: COM_FIELD_LIST reads a table's columns; it is decided as
// the SHOW COLUMNS it amounts to.
func (c *conn) onFieldList(body []byte) bool {
	cur := &cursor{b: body}
	table := string(cur.nulString())
	if cur.bad {
		table = string(body)
	}
	text := "SHOW COLUMNS FROM " + quoteIdent(table)
	op, v := c.decide("COM_FIELD_LIST", text, nil, c.e.o.Classifier.Classify(text), refusal{})
	if v.Decision != guard.Allow {
		return c.deny(v)
	}
	if !c.writeUp(comFieldList, body) {
		return false
	}
	for {
		p, ok := c.readUp()
		if !ok {
			return false
		}
		c.awaitRead(op)
		if !c.forward(op, p) {
			return false
		}
		if isEOF(p) || isErr(p) {
			if isErr(p) {
				op.errCode = errCode(p)
			}
			break
		}
	}
	if !c.finishResult(op) {
		return false
	}
	c.done(op)
	return true
}

func quoteIdent(s string) string {
	b := []byte{'`'}
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, s[i])
	}
	return string(append(b, '`'))
}

// sendResult sends a single-packet answer, or the recording error instead.
func (c *conn) sendResult(op *operation, p []byte) bool {
	if op.failed {
		return c.out.send(errPacket(erUnknown, "HY000", recordingFailedReason)) == nil
	}
	return c.out.send(p) == nil
}

// forward queues one result packet for the client (dropped when the
// recording failed), flushing in batches.
func (c *conn) forward(op *operation, p []byte) bool {
	if op.failed {
		return true
	}
	c.out.sendBuffered(p)
	if c.out.pending() >= 64<<10 {
		return c.out.flush() == nil
	}
	return true
}

// finishResult flushes; after a failed recording the client gets its error
// (with the sequence number the next packet would have had).
func (c *conn) finishResult(op *operation) bool {
	if op.failed {
		c.out.reset(c.out.seq)
		return c.out.send(errPacket(erUnknown, "HY000", recordingFailedReason)) == nil
	}
	return c.out.flush() == nil
}

// relayResults streams the upstream's answer to one command: OK, ERR, or
// result sets (several when SERVER_MORE_RESULTS_EXISTS is set), through the
// operation's filter, row by row.
func (c *conn) relayResults(op *operation, binary bool) bool {
	for {
		p, ok := c.readUpTransient()
		if !ok {
			return false
		}
		c.awaitRead(op)
		switch {
		case len(p) == 0:
			c.fail(erMalformedPacket, "08S01", "countersign: the upstream sent an empty packet")
			return false
		case p[0] == 0x00:
			c.noteStatus(p)
			op.results++
			op.rows += affectedRows(p)
			if !c.forward(op, p) {
				return false
			}
		case isErr(p):
			op.errCode = errCode(p)
			if !c.forward(op, c.maskErr(op, p)) {
				return false
			}
			return c.finishResult(op)
		case p[0] == 0xfb:
			if !c.localInfile(op, p) {
				return false
			}
			continue
		default:
			if !c.relayResultSet(op, p, binary) {
				return false
			}
			if op.errCode == "" {
				op.results++
			}
		}
		if c.status&statusMoreResults == 0 {
			return c.finishResult(op)
		}
	}
}

func affectedRows(ok []byte) int64 {
	cur := &cursor{b: ok[1:]}
	n, _ := cur.lenenc()
	return int64(n)
}

// relayResultSet streams one result set: column count, definitions, EOF,
// rows, EOF (or ERR).
func (c *conn) relayResultSet(op *operation, head []byte, binary bool) bool {
	cur := &cursor{b: head}
	n, _ := cur.lenenc()
	if cur.bad || n == 0 || n > 4096 {
		c.fail(erMalformedPacket, "08S01", "countersign: the upstream sent a malformed result header")
		return false
	}
	if !c.forward(op, head) {
		return false
	}
	cols, ok := c.readColumns(op, int(n))
	if !ok {
		return false
	}
	if op.filter != nil {
		if err := op.filter.Columns(cols); err != nil {
			c.closeWith(fmt.Sprintf("the result could not be masked (%v)", err))
			return false
		}
	}
	if op.capture != nil {
		if err := op.capture.columns(cols); err != nil {
			c.closeWith(fmt.Sprintf("the result could not be masked for the recording (%v)", err))
			return false
		}
	}
	p, ok := c.readUpTransient() // EOF after the definitions
	if !ok {
		return false
	}
	if !c.forward(op, p) {
		return false
	}
	return c.relayRows(op, len(cols), binary)
}

// readColumns reads and forwards a result set's n column definitions and
// returns them decoded. A result set whose definitions are byte for byte
// those of the connection's previous one (the same statement again, with
// other literals) gets the previous decoding: the same slice, which
// filters and the capture only read.
func (c *conn) readColumns(op *operation, n int) ([]Column, bool) {
	k := &c.cols
	same := len(k.cols) == n
	k.next, k.nextEnds = k.next[:0], k.nextEnds[:0]
	var cols []Column
	if !same {
		cols = make([]Column, 0, n)
	}
	for i := 0; i < n; i++ {
		p, ok := c.readUpTransient()
		if !ok {
			return nil, false
		}
		if same && string(p) != string(k.raw[k.start(i):k.ends[i]]) {
			cols, same = append(make([]Column, 0, n), k.cols[:i]...), false
		}
		if !same {
			col, good := parseColumn(p)
			if !good {
				c.fail(erMalformedPacket, "08S01", "countersign: the upstream sent a malformed column definition")
				return nil, false
			}
			cols = append(cols, col)
		}
		k.next = append(k.next, p...)
		k.nextEnds = append(k.nextEnds, len(k.next))
		if !c.forward(op, c.maskColumnDef(op, p)) {
			return nil, false
		}
	}
	if same {
		return k.cols, true
	}
	k.keep(cols)
	return cols, true
}

// columnCache is the column definitions of a connection's last result
// set, raw and decoded (readColumns).
type columnCache struct {
	raw  []byte   // the definition payloads, one after the other
	ends []int    // where each ends in raw
	cols []Column // their decoding; shared, never written to
	next []byte   // raw of the result set being read
	// nextEnds are next's ends.
	nextEnds []int
}

// columnCacheKeep bounds the definitions a connection keeps.
const columnCacheKeep = 16 << 10

func (k *columnCache) start(i int) int {
	if i == 0 {
		return 0
	}
	return k.ends[i-1]
}

// keep makes the result set just read (next) the one to compare with.
func (k *columnCache) keep(cols []Column) {
	if len(k.next) > columnCacheKeep {
		k.raw, k.ends, k.cols, k.next, k.nextEnds = nil, nil, nil, nil, nil
		return
	}
	k.raw, k.next = k.next, k.raw
	k.ends, k.nextEnds = k.nextEnds, k.ends
	k.cols = cols
}

func (c *conn) relayRows(op *operation, ncols int, binary bool) bool {
	var buf []byte
	for {
		p, ok := c.readUpTransient()
		if !ok {
			return false
		}
		switch {
		case isEOF(p):
			c.noteStatus(p)
			return c.forward(op, p)
		case isErr(p):
			op.errCode = errCode(p)
			c.status &^= statusMoreResults
			return c.forward(op, c.maskErr(op, p))
		}
		op.rows++
		if op.capture != nil { // before the client's filter: the copy is masked for the trail
			if err := op.capture.add(p, binary); err != nil {
				c.closeWith(fmt.Sprintf("a row could not be masked for the recording (%v)", err))
				return false
			}
		}
		if op.filter != nil && op.filter.Active() {
			var err error
			if p, buf, err = c.filterRow(op, p, ncols, binary, buf); err != nil {
				c.closeWith(fmt.Sprintf("a row could not be masked (%v)", err))
				return false
			}
		}
		if !c.forward(op, p) {
			return false
		}
	}
}

func (c *conn) filterRow(op *operation, p []byte, ncols int, binary bool, buf []byte) ([]byte, []byte, error) {
	if binary {
		out, err := op.filter.BinaryRow(p)
		return out, buf, err
	}
	vals, ok := parseTextRow(p, ncols)
	if !ok {
		return nil, buf, fmt.Errorf("malformed row from the upstream")
	}
	if err := op.filter.TextRow(vals); err != nil {
		return nil, buf, err
	}
	buf = appendTextRow(buf[:0], vals)
	return buf, buf, nil
}

// localInfile answers the server's LOCAL INFILE request. It is passed to
// the client only for an allowed LOAD DATA LOCAL statement, and only when
// it asks for the file that statement names; anything else (a server
// asking for a file the client never named, such as ~/.ssh/id_rsa) is
// answered with an empty file: the server loads nothing and no client
// file is read.
func (c *conn) localInfile(op *operation, req []byte) bool {
	allowed := false
	for _, s := range op.stmts {
		allowed = allowed || (s.LoadLocal && s.LoadFile == string(req[1:]))
	}
	if !allowed || op.failed {
		return c.writeUpRaw(nil)
	}
	if !c.forward(op, req) || c.out.flush() != nil {
		return false
	}
	c.rd.seq = c.out.seq
	for {
		p, err := c.rd.next()
		if err != nil {
			c.readFailed(err)
			c.closeBoth()
			return false
		}
		if !c.writeUpRaw(p) {
			return false
		}
		if len(p) == 0 {
			break
		}
	}
	c.out.seq = c.rd.seq
	return true
}

// writeUpRaw writes one packet to the upstream within the current exchange.
func (c *conn) writeUpRaw(payload []byte) bool {
	if err := c.up.WritePacket(withHeader(payload)); err != nil {
		c.upstreamGone(err)
		return false
	}
	return true
}

// maskErr passes an upstream ERR packet's message through the operation's
// filter (masking), rebuilding the packet.
func (c *conn) maskErr(op *operation, p []byte) []byte {
	if q, ok := c.interruptedErr(p); ok {
		return q // the gateway's own text: nothing of the upstream's to mask
	}
	if op.filter == nil || !isErr(p) || len(p) < 3 {
		return p
	}
	code := uint16(p[1]) | uint16(p[2])<<8
	head := 3
	if len(p) >= 9 && p[3] == '#' {
		head = 9
	}
	msg := op.filter.ErrorMessage(code, p[head:])
	out := make([]byte, 0, head+len(msg))
	out = append(out, p[:head]...)
	return append(out, msg...)
}
