package mysql

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/countersign/countersign/internal/guard"
)

// Command bytes.
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comPing             = 0x0e
	comChangeUser       = 0x11
	comBinlogDump       = 0x12
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comSetOption        = 0x1b
	comStmtFetch        = 0x1c
	comBinlogDumpGTID   = 0x1e
	comResetConnection  = 0x1f
	// comStmtBulkExecute is MariaDB's array execute (bulk.go). A client
	// may send it only after both sides agreed on
	// MARIADB_CLIENT_STMT_BULK_OPERATIONS (an extended capability); the
	// gateway forwards it only when its upstream agreed too, and refuses
	// it otherwise: splitting it into single executes would change its
	// meaning (DEFAULT and IGNORE indicators, one result).
	comStmtBulkExecute = 0xfa
)

// clientReadBuffer is the client reader's buffer once the session runs:
// most commands fit, longer ones are read through it in pieces.
const clientReadBuffer = 16 << 10

// upWriteKeep bounds the command buffer kept between commands; a longer
// command's buffer is dropped after use.
const upWriteKeep = 64 << 10

// upReadKeep bounds the buffer kept for upstream packets larger than the
// read buffer (upread.go).
const upReadKeep = 64 << 10

// loop reads client commands, one handler per command. A handler returns
// false when the session must end.
func (c *conn) loop() {
	c.watched = &watchedConn{conn: c.cc}
	// Buffered from here on (not during the handshake, where bytes read
	// ahead could belong to the TLS handshake that follows an SSLRequest):
	// a command's header and payload come in one read instead of two.
	// Bytes the watch reads while the gateway waits follow, in order,
	// whatever the buffer already holds.
	c.rd.r = bufio.NewReaderSize(c.watched, clientReadBuffer)
	for {
		c.rd.seq = 0
		if c.e.o.Limits.IdleTimeout > 0 {
			_ = c.cc.SetReadDeadline(timeNow().Add(c.e.o.Limits.IdleTimeout))
		}
		p, err := c.rd.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		_ = c.cc.SetReadDeadline(noDeadline)
		if len(p) == 0 {
			c.fail(erMalformedPacket, "08S01", "empty command packet")
			return
		}
		c.out.reset(1)
		if c.unreadable != "" {
			c.fail(erUnknown, "HY000", c.unreadable)
			return
		}
		if !c.dispatch(p[0], p[1:]) {
			return
		}
	}
}

func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, errPacketTooLarge):
		c.fail(erNetPacketTooLarge, "08S01", fmt.Sprintf(
			"countersign: the packet is larger than limits.max_message_bytes (%d bytes); send smaller statements or ask an admin to raise the limit", c.e.o.Limits.MaxMessageBytes))
	case errors.Is(err, errSequence):
		c.fail(erMalformedPacket, "08S01", "countersign: "+err.Error())
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.setReason("client disconnected")
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.fail(erUnknown, "HY000", "countersign: the session was idle longer than limits.idle_timeout")
			return
		}
		c.setReason("client read failed: " + err.Error())
	}
}

func (c *conn) dispatch(cmd byte, body []byte) bool {
	switch cmd {
	case comQuit:
		c.setReason("client quit")
		return false
	case comQuery:
		return c.onQuery(body)
	case comInitDB:
		return c.onInitDB(string(body))
	case comFieldList:
		return c.onFieldList(body)
	case comPing:
		return c.passThrough(cmd, body)
	case comSetOption:
		return c.onSetOption(body)
	case comStmtPrepare:
		return c.onPrepare(string(body))
	case comStmtExecute:
		return c.onExecute(body)
	case comStmtSendLongData:
		return c.onLongData(body)
	case comStmtClose:
		return c.onStmtClose(body)
	case comStmtReset:
		return c.onStmtReset(body)
	case comResetConnection:
		return c.onResetConnection()
	case comChangeUser:
		return c.refuse("COM_CHANGE_USER is not allowed through countersign: reconnect as the other resource instead")
	case comBinlogDump, comBinlogDumpGTID:
		return c.refuse("replication (COM_BINLOG_DUMP) is not allowed through countersign; connect to the upstream directly for replication")
	case comStmtBulkExecute:
		return c.onBulkExecute(body)
	case comStmtFetch:
		return c.refuse("cursor fetches are not supported through countersign; read results without a server-side cursor (useCursorFetch=false)")
	}
	return c.refuse(fmt.Sprintf("command 0x%02x is not supported through countersign", cmd))
}

// refuse answers a command with an error and keeps the session.
func (c *conn) refuse(msg string) bool {
	return c.out.send(errPacket(erUnknownCom, "08S01", msg)) == nil
}

// passThrough forwards a command whose answer is a single OK or ERR.
func (c *conn) passThrough(cmd byte, body []byte) bool {
	if !c.writeUp(cmd, body) {
		return false
	}
	p, ok := c.readUp()
	if !ok {
		return false
	}
	c.noteStatus(p)
	return c.out.send(p) == nil
}

// onSetOption forwards COM_SET_OPTION (multi-statements on or off).
func (c *conn) onSetOption(body []byte) bool {
	if len(body) != 2 {
		c.fail(erMalformedPacket, "08S01", "malformed COM_SET_OPTION")
		return false
	}
	if !c.passThrough(comSetOption, body) {
		return false
	}
	c.multi = body[0] == 0
	return true
}

// writeUp sends one command to the upstream, framed in a buffer the
// connection keeps for the next command.
func (c *conn) writeUp(cmd byte, body []byte) bool {
	c.up.ResetSequence()
	b := append(c.upBuf[:0], 0, 0, 0, 0, cmd)
	b = append(b, body...)
	if cap(b) <= upWriteKeep {
		c.upBuf = b
	}
	if err := c.up.WritePacket(b); err != nil {
		c.upstreamGone(err)
		return false
	}
	return true
}

// readUp reads one upstream packet.
func (c *conn) readUp() ([]byte, bool) {
	p, err := c.up.ReadPacket()
	if err != nil {
		c.upstreamGone(err)
		return nil, false
	}
	return p, true
}

// readUpTransient reads one upstream packet in place in the upstream's read
// buffer, or in a buffer it reuses (upread.go): the packet is valid only
// until the next read from the upstream.
// The relay uses it for packets it copies (to the client's buffer, the
// capture, column names) before it reads the next one.
func (c *conn) readUpTransient() ([]byte, bool) {
	p, err := c.up.readTransient()
	if err != nil {
		c.upstreamGone(err)
		return nil, false
	}
	return p, true
}

func (c *conn) upstreamGone(err error) {
	c.upClosed = true
	c.e.log.Info("mysql upstream connection failed", "session", c.id, "error", err)
	_ = c.out.flush()
	c.fail(erUnknown, "08S01", "countersign: the upstream connection ended; reconnect")
}

// noteStatus keeps the server status of an OK or EOF packet.
func (c *conn) noteStatus(p []byte) {
	switch {
	case len(p) >= 1 && p[0] == 0x00:
		cur := &cursor{b: p[1:]}
		cur.lenenc()
		cur.lenenc()
		if st := cur.u16(); !cur.bad {
			c.status = st
		}
	case isEOF(p) && len(p) >= 5:
		c.status = uint16(p[3]) | uint16(p[4])<<8
	}
}

func isEOF(p []byte) bool { return len(p) >= 1 && len(p) < 9 && p[0] == 0xfe }
func isErr(p []byte) bool { return len(p) >= 1 && p[0] == 0xff }

// errCode reads an ERR packet's error number.
func errCode(p []byte) string {
	if len(p) < 3 {
		return "?"
	}
	return fmt.Sprint(uint16(p[1]) | uint16(p[2])<<8)
}

// onResetConnection: COM_RESET_CONNECTION drops the session's state
// upstream (variables, temporary tables, prepared statements, an open
// transaction). It is recorded, durably, before it runs.
func (c *conn) onResetConnection() bool {
	if err := c.e.recordEvent(c, "COM_RESET_CONNECTION", map[string]any{
		"kind": "read", "decision": "allow", "in_transaction": c.status&statusInTrans != 0,
	}); err != nil {
		c.e.log.Error("recording COM_RESET_CONNECTION failed", "session", c.id, "error", err)
		return c.out.send(errPacket(erUnknown, "HY000", recordingFailedReason)) == nil
	}
	c.stmts, c.prepared, c.preparedIn = map[uint32]*stmt{}, map[string]string{}, map[string]string{}
	before := c.snapshot()
	if !c.writeUp(comResetConnection, nil) {
		return false
	}
	p, ok := c.readUp()
	if !ok {
		return false
	}
	c.noteStatus(p)
	if !isErr(p) && before.InTransaction {
		// The reset rolled the open transaction back: approvals it
		// consumed are restored, as after a ROLLBACK.
		c.e.o.Guard.Done(c.ctx, c.sess, &guard.Operation{Text: "COM_RESET_CONNECTION", State: before},
			guard.Verdict{Decision: guard.Allow}, guard.Outcome{CommandTag: "COM_RESET_CONNECTION", RolledBack: true})
	}
	// The session now has the server's global settings, which an approved
	// SET GLOBAL may have changed since the connect.
	if why := c.sessionUnreadable("COM_RESET_CONNECTION"); !isErr(p) && why != "" {
		c.fail(erUnknown, "HY000", why)
		return false
	}
	return c.out.send(p) == nil
}
