package mysql

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// watchedConn is the client connection as the packet reader sees it once
// the session runs. While the gateway waits (a hold for review, a write's
// durability) it is read in the background: a client that goes away ends
// the wait at once, so the held operation is withdrawn; bytes a client
// sends meanwhile (a pipelined command) are kept for the packet reader.
type watchedConn struct {
	conn net.Conn
	mu   sync.Mutex
	buf  []byte // read during a watch, not yet given to the reader
	err  error  // the read error that ended a watch
}

// maxWatchBuffer bounds what a client may send while it waits; beyond it
// the watch stops reading and TCP pushes back.
const maxWatchBuffer = 1 << 20

func (w *watchedConn) Read(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf) > 0 {
		n := copy(p, w.buf)
		w.buf = w.buf[n:]
		w.mu.Unlock()
		return n, nil
	}
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return w.conn.Read(p)
}

// watch reads the client in the background until stop; gone runs when
// the client's connection ends.
func (w *watchedConn) watch(gone func()) (stop func()) {
	done := make(chan struct{})
	_ = w.conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := w.conn.Read(b)
			w.mu.Lock()
			w.buf = append(w.buf, b[:n]...)
			full := len(w.buf) >= maxWatchBuffer
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				w.err = err
				w.mu.Unlock()
				gone()
				return
			}
			w.mu.Unlock()
			if err != nil || full {
				return
			}
		}
	}()
	return func() {
		_ = w.conn.SetReadDeadline(time.Now())
		<-done
		_ = w.conn.SetReadDeadline(time.Time{})
	}
}

// errClientGone is the cause of a wait the client ended by disconnecting.
var errClientGone = errors.New("the client disconnected while it waited")

// waitWatching runs wait with a context that ends when the client goes
// away; it reports whether the client went.
func (c *conn) waitWatching(wait func(ctx context.Context)) (gone bool) {
	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	if c.watched == nil {
		wait(ctx)
		return false
	}
	stop := c.watched.watch(func() { cancel(errClientGone) })
	wait(ctx)
	stop()
	return errors.Is(context.Cause(ctx), errClientGone)
}
