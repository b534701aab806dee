package mysql

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Invariant 7: when a grant that allowed operations of this session ends,
// the guard calls guard.Session.Interrupt (conn.interrupt). MySQL cancels a
// running statement with KILL QUERY <thread id> sent on another connection
// of the same user, as the mysql client does on Ctrl-C; the gateway logs in
// a short-lived connection with the resource's credentials for it. The
// client learns why from the interrupted statement's own error: MySQL has
// no asynchronous notice, so ERR 1317 (Query execution was interrupted) is
// answered with the grant's reason instead of the server's text, same code
// and SQLSTATE.
//
// The interrupt and the client loop meet at two atomics, in this order on
// each side (sequentially consistent, so one of them sees the other):
//
//	client loop (decide)                guard (grant ended)
//	  running = n (begin)                 session's grant-end count++
//	  read the grant-end count            read running: if n, KILL QUERY
//
// An operation allowed just before the end is therefore either withdrawn
// by decide (the count moved) or killed upstream (running was set).

// interrupts is a connection's side of grant-end interrupts.
type interrupts struct {
	// running numbers the operation the upstream may be working on from
	// its decision until its outcome (done); 0: none. Written by the
	// client loop only.
	running atomic.Uint64
	seq     uint64 // client loop only: the last number given
	// thread is the upstream connection id KILL QUERY names.
	thread atomic.Uint32
	// why is the reason of the last interrupt, for the operation it
	// interrupted; its ERR 1317 carries it to the client.
	why atomic.Pointer[interruption]
}

type interruption struct {
	op     uint64
	reason string
}

// beginRunning marks an allowed operation as possibly running upstream.
func (c *conn) beginRunning() {
	c.intr.seq++
	c.intr.thread.Store(c.up.GetConnectionID())
	c.intr.running.Store(c.intr.seq)
}

// endRunning marks that the upstream is done with the operation.
func (c *conn) endRunning() { c.intr.running.Store(0) }

// interrupt is guard.Session.Interrupt. An idle session is left alone (its
// next operation is decided anew); a running operation is killed upstream.
// It returns at once: the kill runs in its own goroutine.
func (c *conn) interrupt(reason string) {
	op := c.intr.running.Load()
	if op == 0 {
		return
	}
	c.intr.why.Store(&interruption{op: op, reason: reason})
	go c.killRunning(op, c.intr.thread.Load())
}

// killRunning sends KILL QUERY for the upstream thread while operation op
// is still the one running. MySQL and MariaDB forget a KILL QUERY that
// arrives while the thread is idle (the command may still be on its way
// upstream), so it is sent again, a bounded number of times, until the
// operation is over.
func (c *conn) killRunning(op uint64, thread uint32) {
	ctx, cancel := context.WithTimeout(c.ctx, killTimeout)
	defer cancel()
	kc, err := dialUpstream(ctx, c.res, "", 0)
	if err != nil {
		if c.ctx.Err() != nil {
			return // the session ended: nothing runs any more
		}
		c.e.log.Warn("mysql upstream login to cancel a statement after its grant ended failed; the statement runs on",
			"session", c.id, "resource", c.res.Name, "error", err)
		return
	}
	defer kc.Close()
	// A hung upstream does not hold this goroutine: the socket (not
	// go-mysql's Conn, which is not safe for concurrent use) is closed
	// under a KILL in flight.
	stop := context.AfterFunc(ctx, func() { _ = kc.Conn.Conn.Close() })
	defer stop()
	for range interruptTries {
		if c.intr.running.Load() != op {
			return
		}
		if _, err := kc.Execute(fmt.Sprintf("KILL QUERY %d", thread)); err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.e.log.Warn("mysql KILL QUERY after a grant ended failed; the statement runs on",
				"session", c.id, "resource", c.res.Name, "error", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interruptRetry):
		}
	}
}

// interruptTries and interruptRetry bound the kills sent for one operation;
// killTimeout bounds the whole attempt, login included.
const (
	interruptTries = 10
	interruptRetry = 200 * time.Millisecond
	killTimeout    = upstreamConnectTimeout + interruptTries*interruptRetry
)

// interruptedErr replaces the text of the running operation's ERR 1317
// with the reason of the interrupt that caused it, keeping code and
// SQLSTATE, so the client learns which grant ended. Any other packet is
// returned as it is.
func (c *conn) interruptedErr(p []byte) ([]byte, bool) {
	if !isErr(p) || len(p) < 3 || uint16(p[1])|uint16(p[2])<<8 != erQueryInterrupted {
		return p, false
	}
	why := c.intr.why.Load()
	if why == nil || why.op != c.intr.running.Load() {
		return p, false
	}
	state := "70100"
	if len(p) >= 9 && p[3] == '#' {
		state = string(p[4:9])
	}
	return errPacket(erQueryInterrupted, state, "countersign: "+why.reason), true
}

// verdictGrantEnded withdraws an operation whose grant ended before it ran.
const verdictGrantEnded = "grant_ended"

// grantEndedMessage is what the client of a withdrawn operation reads.
const grantEndedMessage = "the grant that allowed this operation ended before it ran; it was withdrawn: ask for a review or a new grant ('countersign grants request')"
