package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// cancelLockClass is the first key of the two-key advisory locks that
// claim replica ids (the migration lock uses the one-key form, a separate
// key space in PostgreSQL).
const cancelLockClass = 0x63730001 // "cs", 1

// replicaIDs is how many replica ids there are: the top byte of a
// PostgreSQL BackendKeyData process id.
const replicaIDs = 256

func cancelChannel(replica uint8) string { return fmt.Sprintf("countersign_cancel_%d", replica) }

// CancelRelay carries PostgreSQL CancelRequests between the gateway
// replicas that share this database. A client's cancel travels on a new
// connection that a load balancer may send to any replica; the process id
// the client holds names the replica of its session in its top byte, so
// the replica that receives it forwards it there with pg_notify on that
// replica's channel.
//
// Each replica claims its id with a session advisory lock held by its
// listening connection, so two live replicas never hold one id. If that
// connection is lost the lock goes with it and is taken again on
// reconnecting; should another replica have claimed the id meanwhile, both
// receive the same cancels, which is harmless: a cancel acts only where
// its secret matches.
//
// A forwarded cancel is acknowledged: the receiving replica notifies the
// sender's channel once it has acted on it, and ForwardCancel returns only
// then. PostgreSQL closes a cancel connection only after it has signalled
// the backend, and clients rely on that (libpq's PQcancel and pgx wait for
// the close so that their next command cannot be the one cancelled); the
// gateway closes the client's cancel connection when ForwardCancel
// returns, so returning at the notification would let the cancel arrive
// after the client's next command had started, and cancel it.
//
// Payloads: "c" + hex(pid, sender id, nonce, secret) is a cancel to act on
// and acknowledge; "a" + hex(nonce) is its acknowledgement; plain
// hex(pid, secret), from a replica of an earlier version, is a cancel
// that nobody waits for. An earlier version ignores the first two as
// malformed, so during a rolling upgrade a cancel between versions may be
// lost, never misread.
type CancelRelay struct {
	p       *Postgres
	replica uint8
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	mu     sync.Mutex
	handle func(pid uint32, secret []byte)
	// waiting holds, per nonce, the ForwardCancel calls waiting for their
	// acknowledgement.
	waiting map[[nonceLen]byte]chan struct{}
}

// nonceLen is the length of the random nonce that pairs a forwarded cancel
// with its acknowledgement.
const nonceLen = 8

// Payload prefixes: the legacy form is plain hex, which neither is.
const (
	payloadCancel = "c"
	payloadAck    = "a"
)

// ackTimeout bounds the notification that acknowledges a cancel; the
// sender's context bounds its wait for it anyway.
const ackTimeout = 10 * time.Second

// ErrCancelUnacknowledged is returned by ForwardCancel when the replica a
// cancel was sent to did not say it acted on it before the context ended:
// the cancel may still act, later.
var ErrCancelUnacknowledged = errors.New("the replica holding the session did not acknowledge the cancel")

// CancelRelay claims a replica id no other live replica holds and listens
// for the cancels forwarded to it; Close releases both.
func (p *Postgres) CancelRelay(ctx context.Context, log *slog.Logger) (*CancelRelay, error) {
	if log == nil {
		log = slog.Default()
	}
	conn, id, err := p.claimReplica(ctx, -1)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	r := &CancelRelay{p: p, replica: id, log: log, cancel: cancel, done: make(chan struct{}),
		waiting: map[[nonceLen]byte]chan struct{}{}}
	go r.run(bg, conn)
	return r, nil
}

// claimReplica takes a connection of its own out of the pool (it must keep
// its session: the lock and LISTEN live there) and locks a replica id on
// it: want when it is 0..255, else the first free one.
func (p *Postgres) claimReplica(ctx context.Context, want int) (*pgx.Conn, uint8, error) {
	pc, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: connecting to %s for the cancel relay: %w", p.desc, err)
	}
	conn := pc.Hijack()
	fail := func(err error) (*pgx.Conn, uint8, error) {
		conn.Close(context.Background())
		return nil, 0, err
	}
	first, last := 0, replicaIDs-1
	if want >= 0 {
		first, last = want, want
	}
	id := -1
	for i := first; i <= last; i++ {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int4, $2::int4)`, cancelLockClass, i).Scan(&ok); err != nil {
			return fail(fmt.Errorf("store: claiming a replica id in %s: %w", p.desc, err))
		}
		if ok {
			id = i
			break
		}
	}
	switch {
	case id < 0 && want >= 0:
		// Another replica took our id while we were disconnected: listen
		// anyway, so cancels of our sessions still reach us.
		id = want
	case id < 0:
		return fail(fmt.Errorf("store: all %d replica ids in %s are held by running gateways; stop one, or point this one at another store", replicaIDs, p.desc))
	}
	if _, err := conn.Exec(ctx, `LISTEN `+cancelChannel(uint8(id))); err != nil {
		return fail(fmt.Errorf("store: listening for cancels in %s: %w", p.desc, err))
	}
	return conn, uint8(id), nil
}

// Replica is the id this process claimed (0..255).
func (r *CancelRelay) Replica() uint8 { return r.replica }

// ReceiveCancels hands every cancel forwarded to this replica to fn until
// stop is called. One receiver at a time: a later call replaces fn. fn
// returns once it has acted on the cancel: its return is what the sender
// waits for.
func (r *CancelRelay) ReceiveCancels(fn func(pid uint32, secret []byte)) (stop func()) {
	r.mu.Lock()
	r.handle = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.handle = nil
		r.mu.Unlock()
	}
}

// ForwardCancel sends a cancel to the replica whose id is the top byte of
// pid, if a live replica holds that id, and returns once that replica has
// acted on it (for a session of its own: the upstream has received the
// cancel and closed the connection that carried it), or with
// ErrCancelUnacknowledged when ctx ends first. Anyone who can reach the
// listener may send CancelRequests, before any authentication, so a cancel
// naming an id nobody holds must cost the shared store no notification:
// the pg_notify runs only when the id's advisory lock is held, and then
// there is nothing to wait for.
func (r *CancelRelay) ForwardCancel(ctx context.Context, pid uint32, secret []byte) error {
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	acked := make(chan struct{})
	r.mu.Lock()
	r.waiting[nonce] = acked
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiting, nonce)
		r.mu.Unlock()
	}()
	payload := make([]byte, 0, 4+1+nonceLen+len(secret))
	payload = binary.BigEndian.AppendUint32(payload, pid)
	payload = append(payload, r.replica)
	payload = append(payload, nonce[:]...)
	payload = append(payload, secret...)
	replica := uint8(pid >> 24)
	tag, err := r.p.pool.Exec(ctx, `SELECT pg_notify($1, $2) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $3::int4::oid AND objid = $4::int4::oid AND objsubid = 2 AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		LIMIT 1`,
		cancelChannel(replica), payloadCancel+hex.EncodeToString(payload), cancelLockClass, int32(replica))
	if err != nil {
		return fmt.Errorf("store: forwarding a cancel to replica %d: %w", replica, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // no live replica holds the id: no session to cancel
	}
	select {
	case <-acked:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: forwarding a cancel to replica %d: %w (%w)", replica, ErrCancelUnacknowledged, ctx.Err())
	}
}

// acknowledge tells replica to that the cancel it sent with nonce was
// acted on.
func (r *CancelRelay) acknowledge(to uint8, nonce []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if _, err := r.p.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, cancelChannel(to), payloadAck+hex.EncodeToString(nonce)); err != nil {
		r.log.Warn("cancel relay: acknowledging a forwarded cancel failed", "replica", to, "err", err)
	}
}

// Close stops listening and releases the replica id.
func (r *CancelRelay) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// run delivers notifications until ctx ends, reconnecting (to the same id)
// after a failure.
func (r *CancelRelay) run(ctx context.Context, conn *pgx.Conn) {
	defer close(r.done)
	for {
		err := r.listen(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("cancel relay interrupted; reconnecting", "replica", r.replica, "err", err)
		for conn = nil; conn == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if conn, _, err = r.p.claimReplica(ctx, int(r.replica)); err != nil {
				r.log.Warn("cancel relay reconnect failed", "replica", r.replica, "err", err)
			}
		}
	}
}

func (r *CancelRelay) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		r.receive(n.Channel, n.Payload)
	}
}

// receive handles one notification on this replica's channel.
func (r *CancelRelay) receive(channel, payload string) {
	kind := ""
	if len(payload) > 0 && (payload[:1] == payloadCancel || payload[:1] == payloadAck) {
		kind, payload = payload[:1], payload[1:]
	}
	b, err := hex.DecodeString(payload)
	if err != nil {
		r.log.Warn("cancel relay: malformed notification ignored", "channel", channel)
		return
	}
	if kind == payloadAck {
		if len(b) != nonceLen {
			r.log.Warn("cancel relay: malformed acknowledgement ignored", "channel", channel)
			return
		}
		r.mu.Lock()
		acked := r.waiting[[nonceLen]byte(b)]
		delete(r.waiting, [nonceLen]byte(b))
		r.mu.Unlock()
		if acked != nil {
			close(acked)
		}
		return
	}
	if len(b) < 4 || (kind == payloadCancel && len(b) < 4+1+nonceLen) {
		r.log.Warn("cancel relay: malformed notification ignored", "channel", channel)
		return
	}
	pid := binary.BigEndian.Uint32(b)
	if uint8(pid>>24) != r.replica {
		return
	}
	secret := b[4:]
	var ack func()
	if kind == payloadCancel {
		from, nonce := b[4], b[5:5+nonceLen]
		secret = b[5+nonceLen:]
		ack = func() { r.acknowledge(from, nonce) }
	}
	r.mu.Lock()
	h := r.handle
	r.mu.Unlock()
	// The receiver may dial the upstream; the next notification must not
	// wait for that. The acknowledgement waits for it: it says the cancel
	// has done whatever it will do.
	go func() {
		if h != nil {
			h(pid, secret)
		}
		if ack != nil {
			ack()
		}
	}()
}
