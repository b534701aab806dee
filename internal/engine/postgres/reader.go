package postgres

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// clientReader is what the client-side decoder reads from. It adds two
// things a plain net.Conn lacks:
//   - the idle timeout, which only counts while nothing is in flight, so a
//     long-running statement is not cut for the client's silence;
//   - a watch used while an operation is held for review: the client is read
//     in the background so that a disconnect withdraws the wait; the bytes
//     read meanwhile are served first afterwards.
type clientReader struct {
	conn net.Conn
	idle time.Duration
	busy func() bool // reports whether operations are in flight

	mu  sync.Mutex
	buf []byte
	err error
	// cap bounds what a watch buffers; beyond it the watch stops reading and
	// TCP pushes back on the client.
	cap int
}

var errIdle = errors.New("idle timeout")

func (r *clientReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		r.mu.Unlock()
		return n, nil
	}
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return 0, err
	}
	r.mu.Unlock()
	for {
		if r.idle > 0 {
			_ = r.conn.SetReadDeadline(time.Now().Add(r.idle))
		}
		n, err := r.conn.Read(p)
		if err != nil && n == 0 && r.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			if r.busy != nil && r.busy() {
				continue
			}
			return 0, errIdle
		}
		return n, err
	}
}

// watch reads the client in the background until the returned stop is
// called; gone is called if the client disconnects meanwhile.
func (r *clientReader) watch(gone func()) (stop func()) {
	done := make(chan struct{})
	// Cleared here, not in the goroutine: stop may run before it starts,
	// and its deadline must not be undone.
	_ = r.conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := r.conn.Read(b)
			r.mu.Lock()
			r.buf = append(r.buf, b[:n]...)
			full := len(r.buf) >= r.cap
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				r.err = err
				r.mu.Unlock()
				gone()
				return
			}
			r.mu.Unlock()
			if err != nil || full {
				return
			}
		}
	}()
	return func() {
		_ = r.conn.SetReadDeadline(time.Now())
		<-done
		_ = r.conn.SetReadDeadline(time.Time{})
	}
}
