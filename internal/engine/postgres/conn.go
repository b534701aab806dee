package postgres

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// conn is one client connection: fresh per connection, nothing shared but
// the Engine.
type conn struct {
	e   *Engine
	nc  net.Conn // the client's TCP connection
	cc  net.Conn // nc, or the TLS connection on top of it
	rd  *clientReader
	be  *pgproto3.Backend
	out clientWriter

	ctx    context.Context // ends with the session
	cancel context.CancelFunc

	id       string
	sess     *guard.Session
	res      *config.Resource
	params   map[string]string // allowed startup parameters passed upstream
	isTLS    bool
	userName string // the client's user parameter: informational only
	actor    string // sess.Identity.Key(), kept: every event names it
	pid      uint32 // the gateway's BackendKeyData process id; 0 before startup ends

	up    net.Conn
	fe    *pgproto3.Frontend
	upw   []byte // buffered messages for the upstream, written by the client loop only
	upKey upstreamKey

	q     queue
	state sessionState

	// client loop only
	stmts           map[string]*stmt // protocol- and SQL-level prepared statements
	portals         map[string]*portal
	boundOps        []*portal // portals holding an operation their Bind decided (dropBoundOps)
	ignoreUntilSync bool
	copyExec        bool                // an extended-protocol COPY FROM STDIN may be under way (the queue knows for sure)
	refreshAtSync   bool                // read the state after the client's next Sync
	refreshNext     bool                // read the state before the client's next command
	refreshing      *refresh            // a read of the state whose answer is not yet in
	txDirty         bool                // a tracked setting changed in a transaction still open
	cat             sqlkind.Catalog     // Options.Catalog's, made on first use
	rcat            *resCatalog         // the engine's, when Options.Catalog is nil
	curStmts        []sqlkind.Statement // the statements being classified, for lookupPrepared
	lookup          func(string) (sqlkind.Classification, bool)

	// catLast is the last operation that may change the catalog (schema,
	// privilege, admin, unknown) the client loop allowed, until it sees its
	// transaction ended: till then the shared catalog may not show what it
	// (or one before it) did (catalog.go). Client loop only.
	catLast *operation
	// catTx is the last such operation the relay finished in the
	// transaction still open upstream (relay only).
	catTx *operation

	holdMu     sync.Mutex
	holdCancel context.CancelCauseFunc

	closeOnce sync.Once
	reason    atomic.Pointer[string]
	opened    bool // session.open is recorded; session.close must follow
}

func newConn(e *Engine, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{e: e, nc: nc, cc: nc, ctx: ctx, cancel: cancel,
		stmts: map[string]*stmt{}, portals: map[string]*portal{}}
	c.out.w = nc
	c.state.init()
	c.lookup = c.lookupPrepared
	return c
}

func (c *conn) sessionID() string { return c.id }

// run is the whole life of the connection.
func (c *conn) run() {
	defer c.cancel()
	ok := c.startup()
	if c.pid != 0 {
		defer c.e.cancels.remove(c.pid)
	}
	if !ok {
		c.finish()
		return
	}
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		defer c.recoverInto("relay")
		c.relay()
	}()
	c.clientLoop()
	c.shutdownUpstream()
	<-relayDone
	c.finish()
}

func (c *conn) recoverInto(where string) {
	if r := recover(); r != nil {
		c.e.log.Error("panic in postgres session", "session", c.id, "where", where, "panic", r)
		c.closeWith("internal error")
	}
}

// setReason keeps the first reason the session ended for.
func (c *conn) setReason(r string) {
	c.reason.CompareAndSwap(nil, &r)
}

// kill ends the session from outside (shutdown): both sides are closed so
// both loops return.
func (c *conn) kill(reason string) {
	c.setReason(reason)
	c.out.send(fatal(codeAdminShutdown, "countersign: "+reason))
	c.closeBoth()
}

// closeWith ends the session with an internal error.
func (c *conn) closeWith(reason string) {
	c.setReason(reason)
	c.out.send(fatal(codeInternalError, "countersign: "+reason+"; reconnect and try again"))
	c.closeBoth()
}

// fail ends the session with an error the client sees.
func (c *conn) fail(code, msg string) {
	c.setReason(msg)
	c.out.send(fatal(code, msg))
	c.closeBoth()
}

func (c *conn) closeBoth() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.cc.Close()
		c.nc.Close()
		if c.up != nil {
			c.up.Close()
		}
	})
}

// shutdownUpstream says goodbye to the upstream and closes both sides.
func (c *conn) shutdownUpstream() {
	if c.up != nil {
		c.upw, _ = (&pgproto3.Terminate{}).Encode(c.upw)
		_ = c.flushUpstream()
	}
	c.closeBoth()
}

// finish records session.close once the session was opened.
func (c *conn) finish() {
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

// clientWriter serialises writes to the client: the relay and the client
// loop (notices while an operation is held, fatal errors) both write whole
// messages under its lock.
type clientWriter struct {
	mu  sync.Mutex
	w   net.Conn
	buf []byte
}

func (w *clientWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(b)
	return err
}

func (w *clientWriter) send(msgs ...pgproto3.BackendMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = w.buf[:0]
	for _, m := range msgs {
		var err error
		if w.buf, err = m.Encode(w.buf); err != nil {
			return err
		}
	}
	_, err := w.w.Write(w.buf)
	return err
}

func (w *clientWriter) setConn(nc net.Conn) {
	w.mu.Lock()
	w.w = nc
	w.mu.Unlock()
}

// sessionState is what the relay learns from the upstream and the client
// loop reads to build each operation's State.
type sessionState struct {
	tx     atomic.Uint32 // last ReadyForQuery status byte
	mu     sync.Mutex
	params map[string]string // ParameterStatus as last reported
	// searchPath and role are bound into every digest.
	searchPath string
	role       string
}

func (s *sessionState) init() {
	s.tx.Store('I')
	s.params = map[string]string{}
}

func (s *sessionState) txStatus() byte { return byte(s.tx.Load()) }

func (s *sessionState) snapshot() guard.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return guard.State{SearchPath: s.searchPath, Role: s.role, InTransaction: s.txStatus() != 'I'}
}
