package sqlkind

import "sync"

// lru is a bounded map with two generations: entries live in the current
// generation and are copied forward when read from the previous one; when
// the current generation is full it becomes the previous one. That keeps
// what is in use, evicts what is not, and costs one map lookup on a hit.
// Both dialects' classifiers use it for their analyses.
type lru[V any] struct {
	mu        sync.RWMutex // a hit in the current generation only reads
	max       int
	cur, prev map[string]V
}

func newLRU[V any](size int) *lru[V] {
	if size < 0 {
		return &lru[V]{}
	}
	half := max(size/2, 1)
	return &lru[V]{max: half, cur: make(map[string]V, half)}
}

func (l *lru[V]) get(k string) (V, bool) {
	var zero V
	if l.max == 0 {
		return zero, false
	}
	l.mu.RLock()
	a, ok := l.cur[k]
	l.mu.RUnlock()
	if ok {
		return a, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.cur[k]; ok {
		return a, true
	}
	if a, ok := l.prev[k]; ok {
		l.putLocked(k, a)
		return a, true
	}
	return zero, false
}

func (l *lru[V]) put(k string, a V) {
	if l.max == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putLocked(k, a)
}

func (l *lru[V]) putLocked(k string, a V) {
	if len(l.cur) >= l.max {
		l.prev, l.cur = l.cur, make(map[string]V, l.max)
	}
	l.cur[k] = a
}
