package sqlkind

import "sync"

// lru is a bounded map with two generations: entries live in the current
// generation and are copied forward when read from the previous one; when
// the current generation is full it becomes the previous one. That keeps
// what is in use, evicts what is not, and costs one map lookup on a hit.
type lru struct {
	mu        sync.Mutex
	max       int
	cur, prev map[string]*analysis
}

func newLRU(size int) *lru {
	if size < 0 {
		return &lru{}
	}
	half := max(size/2, 1)
	return &lru{max: half, cur: make(map[string]*analysis, half)}
}

func (l *lru) get(k string) (*analysis, bool) {
	if l.max == 0 {
		return nil, false
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
	return nil, false
}

func (l *lru) put(k string, a *analysis) {
	if l.max == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putLocked(k, a)
}

func (l *lru) putLocked(k string, a *analysis) {
	if len(l.cur) >= l.max {
		l.prev, l.cur = l.cur, make(map[string]*analysis, l.max)
	}
	l.cur[k] = a
}
