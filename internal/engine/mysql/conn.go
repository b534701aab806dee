package mysql

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
)

// conn is one client connection: fresh per connection, nothing shared but
// the Engine.
type conn struct {
	e   *Engine
	nc  net.Conn // the client's TCP connection
	cc  net.Conn // nc, or the TLS connection on top of it
	rd  *packetReader
	out clientWriter

	ctx    context.Context // ends with the session
	cancel context.CancelFunc

	id     string
	sess   *guard.Session
	actor  string // sess.Identity.Key(), kept: every event names it
	res    *config.Resource
	isTLS  bool
	caps   uint32 // the client's capabilities, as the gateway accepted them
	connID uint32
	salt   []byte
	db     string // the schema the client asked for at connect
	// extOffered are the MariaDB extended capabilities the greeting
	// offered, clientExt those the client took of them (bulk.go).
	extOffered, clientExt uint32

	up    *upstream
	upBuf []byte     // writeUp's framing buffer, reused
	intr  interrupts // grant-end interrupts (interrupt.go)

	readWait boundedWait  // awaitRead's time limit (ops.go)
	cols     columnCache  // the last result set's column definitions (query.go)
	lineages lineageCache // recent statements' lineages, for masking (lineagecache.go)
	// viewCat is the view catalog the connection last classified views
	// with, current while the cache's epoch is viewEpoch (viewkind.go).
	viewCat   *viewCatalog
	viewEpoch uint64

	// watched is the client connection under rd once the session runs
	// (wait.go); nil before.
	watched *watchedConn

	// client loop only
	state    guard.State
	multi    bool // multi-statements are on (capability or COM_SET_OPTION)
	stmts    map[uint32]*stmt
	lastStmt uint32            // the statement prepared last (MariaDB's id 0xffffffff); 0: none
	prepared map[string]string // SQL-level PREPARE name FROM 'text', by lower-case name
	// varsSet: the session may hold user variables (uservars.go);
	// noVarTable: the upstream cannot list them.
	varsSet, noVarTable bool
	// preparedIn is the schema each SQL-level prepared statement (from a
	// literal or a variable) was prepared in, by lower-case name (query.go).
	preparedIn map[string]string
	status     uint16 // last upstream server status flags
	upClosed   bool
	// unreadable is set when the upstream session took settings the
	// gateway cannot follow (tokenizing.go): the next command ends the
	// session with it.
	unreadable string

	closeOnce sync.Once
	reason    atomic.Pointer[string]
	opened    bool // session.open is recorded; session.close must follow
}

func newConn(e *Engine, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{e: e, nc: nc, cc: nc, ctx: ctx, cancel: cancel, stmts: map[uint32]*stmt{},
		prepared: map[string]string{}, preparedIn: map[string]string{}}
	c.out.w = nc
	return c
}

func (c *conn) sessionID() string { return c.id }

// run is the whole life of the connection.
func (c *conn) run() {
	defer c.cancel()
	if c.startup() {
		c.loop()
	}
	c.finish()
}

func (c *conn) setReason(r string) { c.reason.CompareAndSwap(nil, &r) }

// kill ends the session from outside (shutdown).
func (c *conn) kill(reason string) {
	c.setReason(reason)
	c.closeBoth()
}

// closeWith ends the session with an internal error the client sees.
func (c *conn) closeWith(reason string) {
	c.setReason(reason)
	_ = c.out.send(errPacket(erUnknown, "HY000", "countersign: "+reason+"; reconnect and try again"))
	c.closeBoth()
}

// fail ends the session with an error the client sees.
func (c *conn) fail(code uint16, state, msg string) {
	c.setReason(msg)
	_ = c.out.send(errPacket(code, state, msg))
	c.closeBoth()
}

func (c *conn) closeBoth() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.cc.Close()
		c.nc.Close()
		if c.up != nil {
			c.up.Conn.Close()
		}
	})
}

// finish says goodbye to the upstream and records session.close once the
// session was opened.
func (c *conn) finish() {
	if c.up != nil && !c.upClosed {
		c.up.ResetSequence()
		_ = c.up.WritePacket(withHeader([]byte{comQuit}))
	}
	c.closeBoth()
	if !c.opened {
		return
	}
	reason := "client disconnected"
	if r := c.reason.Load(); r != nil {
		reason = *r
	}
	c.e.recordClose(c, reason)
}

// withHeader prepends the 4 bytes go-mysql's WritePacket fills with the
// packet header.
func withHeader(payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload))
	return append(b, payload...)
}

// clientWriter frames packets to the client. Only the client loop writes
// (MySQL has no asynchronous messages), so the lock only guards against a
// shutdown racing a write.
type clientWriter struct {
	mu  sync.Mutex
	w   net.Conn
	seq uint8
	buf []byte
}

// send writes one logical packet with the next sequence number.
func (w *clientWriter) send(payload []byte) error {
	w.sendBuffered(payload)
	return w.flush()
}

// sendBuffered appends a packet to the pending buffer; flush writes it.
// Result sets go out in batches, not one write per row.
func (w *clientWriter) sendBuffered(payload []byte) {
	w.mu.Lock()
	w.buf = appendPacket(w.buf, payload, &w.seq)
	w.mu.Unlock()
}

func (w *clientWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *clientWriter) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

func (w *clientWriter) setConn(nc net.Conn) {
	w.mu.Lock()
	w.w = nc
	w.mu.Unlock()
}

// reset starts the sequence of a new command's response.
func (w *clientWriter) reset(seq uint8) {
	w.mu.Lock()
	w.seq = seq
	w.buf = w.buf[:0]
	w.mu.Unlock()
}

var noDeadline time.Time

// timeNow is time.Now; a variable so idle tests need no sleeps.
var timeNow = time.Now
