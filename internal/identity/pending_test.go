package identity

import (
	"testing"
	"time"
)

func TestPending(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPending[int](2)
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"put a", func() bool { return p.put("a", 1, now, time.Minute) == nil }, true},
		{"put b", func() bool { return p.put("b", 2, now, 2*time.Minute) == nil }, true},
		{"full: put c refused", func() bool { return p.put("c", 3, now, time.Minute) == errTooManyLogins }, true},
		{"get b keeps it", func() bool { v, ok := p.get("b", now); return ok && v == 2 }, true},
		{"get b again", func() bool { _, ok := p.get("b", now); return ok }, true},
		{"take a", func() bool { v, ok := p.take("a", now); return ok && v == 1 }, true},
		{"take a twice", func() bool { _, ok := p.take("a", now); return ok }, false},
		{"put c after a was used", func() bool { return p.put("c", 3, now, time.Minute) == nil }, true},
		{"c expired at its ttl", func() bool { _, ok := p.take("c", now.Add(time.Minute)); return ok }, false},
		{"unknown key", func() bool { _, ok := p.get("zz", now); return ok }, false},
		{"put d", func() bool { return p.put("d", 4, now, time.Minute) == nil }, true},
		{"full of expired entries: put e sweeps them", func() bool { return p.put("e", 5, now.Add(3*time.Minute), time.Minute) == nil }, true},
		{"b was swept", func() bool { _, ok := p.get("b", now); return ok }, false},
		{"drop e", func() bool { p.drop("e"); _, ok := p.get("e", now.Add(3*time.Minute)); return ok }, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
}
