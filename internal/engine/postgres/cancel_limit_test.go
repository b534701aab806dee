package postgres

import (
	"testing"
	"time"
)

// TestForwardLimit: a burst of unauthenticated cancels naming other
// replicas is cut at the bucket's size, and the rate refills it.
func TestForwardLimit(t *testing.T) {
	var l forwardLimit
	t0 := time.Unix(1000, 0)
	allowed := func(at time.Time, n int) int {
		k := 0
		for range n {
			if l.allow(at) {
				k++
			}
		}
		return k
	}
	steps := []struct {
		name string
		at   time.Time
		n    int
		want int
	}{
		{"a burst is cut at the bucket's size", t0, 1000, int(forwardBurst)},
		{"nothing more at the same instant", t0, 10, 0},
		{"a tenth of a second refills rate/10", t0.Add(100 * time.Millisecond), 1000, int(forwardRate / 10)},
		{"a long pause refills only to the burst", t0.Add(time.Hour), 1000, int(forwardBurst)},
	}
	for _, s := range steps {
		if got := allowed(s.at, s.n); got != s.want {
			t.Fatalf("%s: %d allowed, want %d", s.name, got, s.want)
		}
	}
}
