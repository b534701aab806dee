package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelMap maps the BackendKeyData the gateway gave each client to its
// session, so a CancelRequest (which arrives on a fresh connection) reaches
// the session it names.
type cancelMap struct {
	replica uint8
	mu      sync.Mutex
	byPID   map[uint32]*cancelEntry
}

type cancelEntry struct {
	secret []byte
	c      *conn
}

func newCancelMap(replica uint8) *cancelMap {
	return &cancelMap{replica: replica, byPID: map[uint32]*cancelEntry{}}
}

// add gives c a fresh random key whose process id carries the replica id in
// its top byte.
func (m *cancelMap) add(c *conn) (pid uint32, secret []byte, err error) {
	secret = make([]byte, 4)
	var b [4]byte
	for range 100 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, nil, err
		}
		if _, err := rand.Read(secret); err != nil {
			return 0, nil, err
		}
		pid = uint32(m.replica)<<24 | binary.BigEndian.Uint32(b[:])&0x00ffffff
		m.mu.Lock()
		if _, used := m.byPID[pid]; !used {
			m.byPID[pid] = &cancelEntry{secret: secret, c: c}
			m.mu.Unlock()
			return pid, secret, nil
		}
		m.mu.Unlock()
	}
	return 0, nil, errors.New("no free cancel key")
}

func (m *cancelMap) remove(pid uint32) {
	m.mu.Lock()
	delete(m.byPID, pid)
	m.mu.Unlock()
}

// lookup returns the session whose key matches, comparing the secret in
// constant time.
func (m *cancelMap) lookup(pid uint32, secret []byte) *conn {
	m.mu.Lock()
	ent := m.byPID[pid]
	m.mu.Unlock()
	if ent == nil || subtle.ConstantTimeCompare(ent.secret, secret) != 1 {
		return nil
	}
	return ent.c
}

// upstreamKey is what it takes to cancel the upstream backend of a session.
type upstreamKey struct {
	pid     uint32
	secret  []byte
	address string
	tls     *tls.Config // nil: the upstream is spoken to in plaintext
	timeout time.Duration
}

// cancelUpstream opens a connection to the upstream and sends its
// CancelRequest, after an SSLRequest when the upstream needs TLS.
func cancelUpstream(k upstreamKey) error {
	nc, err := net.DialTimeout("tcp", k.address, k.timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(k.timeout))
	var w io.ReadWriter = nc
	if k.tls != nil {
		req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
		if _, err := nc.Write(req); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil {
			return err
		}
		if b[0] != 'S' {
			return fmt.Errorf("upstream %s refused TLS for the cancel request", k.address)
		}
		tc := tls.Client(nc, k.tls)
		if err := tc.Handshake(); err != nil {
			return err
		}
		w = tc
	}
	msg, err := (&pgproto3.CancelRequest{ProcessID: k.pid, SecretKey: k.secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when it has read the request.
	_, _ = io.Copy(io.Discard, w)
	return nil
}

// CancelRelay carries CancelRequests between gateway replicas (several
// gateways sharing a PostgreSQL store; internal/store's *CancelRelay
// satisfies it). A client sends its cancel on a new connection, which a
// load balancer may hand to any replica: the process id names the replica
// holding the session, and the receiving replica forwards it there.
//
// A forwarded cancel must have acted when ForwardCancel returns, because
// the gateway then closes the client's cancel connection, and clients take
// that close as PostgreSQL's word that the cancel was processed: libpq's
// PQcancel and pgx wait for it so that their next command cannot be the
// one a late cancel hits. PostgreSQL up to 16 even signals the backend
// twice (the process, then its process group), so the first signal can
// end the statement and the second, if the close did not wait for it,
// cancel the client's next one (TestCancelAnyReplica saw exactly that).
type CancelRelay interface {
	// ForwardCancel delivers a cancel to the replica whose id is the top
	// byte of pid and returns once that replica's fn has returned, or
	// with an error when ctx ends first.
	ForwardCancel(ctx context.Context, pid uint32, secret []byte) error
	// ReceiveCancels hands each cancel forwarded to this replica to fn
	// until stop is called; fn returns when the cancel has acted (the
	// upstream closed the connection that carried it).
	ReceiveCancels(fn func(pid uint32, secret []byte)) (stop func())
}

// routeCancel acts on a CancelRequest: at once when the session is on this
// replica, else through the relay to the replica its process id names.
// Unknown keys are ignored, as PostgreSQL does; the secret is checked only
// where the session lives. It returns, and the caller closes the client's
// cancel connection, only once the cancel has acted (CancelRelay), or
// after forwardTimeout when the other replica does not answer.
func (e *Engine) routeCancel(pid uint32, secret []byte) {
	if uint8(pid>>24) == e.o.ReplicaID || e.o.CancelRelay == nil {
		e.cancel(pid, secret)
		return
	}
	if !e.forwards.allow(time.Now()) {
		e.log.Warn("cancel not forwarded: more than the forwarding limit arrive", "replica", pid>>24, "per_second", forwardRate)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	if err := e.o.CancelRelay.ForwardCancel(ctx, pid, secret); err != nil {
		e.log.Warn("forwarding a cancel to another replica failed", "replica", pid>>24, "error", err)
	}
}

// Forwarded cancels are bounded: a CancelRequest needs no authentication,
// so without a bound anyone who reaches the port could turn cancels into
// traffic on the store every replica shares. People press Ctrl+C far less
// often than this.
const (
	forwardRate  = 100.0 // cancels a second, sustained
	forwardBurst = 200.0
)

// forwardLimit is a token bucket; its zero value is full.
type forwardLimit struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (l *forwardLimit) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = forwardBurst
	} else {
		l.tokens = min(forwardBurst, l.tokens+now.Sub(l.last).Seconds()*forwardRate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
