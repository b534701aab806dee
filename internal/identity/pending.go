package identity

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// loginTTL is how long a started login (browser or device) may take.
const loginTTL = 10 * time.Minute

// maxPending bounds the logins in flight. Start is reachable before anyone
// is authenticated, so without a bound it would be a memory exhaustion.
const maxPending = 10000

var errTooManyLogins = errors.New("too many logins are in progress; try again in a minute")

// pending remembers started logins in memory, each usable once, until it
// expires. With several gateway replicas a login must therefore finish on
// the replica that started it (sticky sessions), until this moves into the
// store.
type pending[T any] struct {
	mu    sync.Mutex
	limit int
	items map[string]pendingItem[T]
}

type pendingItem[T any] struct {
	value   T
	expires time.Time
}

func newPending[T any](limit int) *pending[T] {
	return &pending[T]{limit: limit, items: make(map[string]pendingItem[T])}
}

// put remembers v under key until now+ttl. Expired entries are dropped
// when the map is full, so a put costs O(1) until then.
func (p *pending[T]) put(key string, v T, now time.Time, ttl time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.items) >= p.limit {
		for k, it := range p.items {
			if !now.Before(it.expires) {
				delete(p.items, k)
			}
		}
	}
	if len(p.items) >= p.limit {
		return errTooManyLogins
	}
	p.items[key] = pendingItem[T]{value: v, expires: now.Add(ttl)}
	return nil
}

// take removes and returns the value: whatever happens next, the key cannot
// be used again.
func (p *pending[T]) take(key string, now time.Time) (T, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it, ok := p.items[key]
	delete(p.items, key)
	if !ok || !now.Before(it.expires) {
		var zero T
		return zero, false
	}
	return it.value, true
}

// get returns the value without consuming it (device polls repeat).
func (p *pending[T]) get(key string, now time.Time) (T, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it, ok := p.items[key]
	if !ok || !now.Before(it.expires) {
		delete(p.items, key)
		var zero T
		return zero, false
	}
	return it.value, true
}

// drop forgets the key.
func (p *pending[T]) drop(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.items, key)
}

// randomString is 32 bytes from crypto/rand, base64url: states, nonces and
// device handles.
func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
