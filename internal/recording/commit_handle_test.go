package recording

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestCommitWait covers each order of Wait and Finish: the channel is
// made only by a Wait that comes first.
func TestCommitWait(t *testing.T) {
	boom := errors.New("store refused")
	tests := []struct {
		name    string
		err     error
		waiters int // Waits started before Finish
	}{
		{"finished before wait", nil, 0},
		{"failed before wait", boom, 0},
		{"one waiter", nil, 1},
		{"many waiters, failed", boom, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCommit()
			var wg sync.WaitGroup
			errs := make([]error, tt.waiters)
			for i := range tt.waiters {
				wg.Go(func() { errs[i] = c.Wait(context.Background()) })
			}
			c.Finish(42, tt.err)
			wg.Wait()
			for _, err := range append(errs, c.Wait(context.Background())) {
				if !errors.Is(err, tt.err) && err != tt.err {
					t.Fatalf("Wait = %v, want %v", err, tt.err)
				}
			}
			if c.Seq() != 42 {
				t.Fatalf("Seq = %d", c.Seq())
			}
		})
	}
	t.Run("context ends first", func(t *testing.T) {
		c := NewCommit()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v", err)
		}
		c.Finish(1, nil)
		if err := c.Wait(context.Background()); err != nil {
			t.Fatalf("Wait after Finish = %v", err)
		}
	})
}

func TestCommitNoChannelUnlessWaited(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { NewCommit().Finish(1, nil) }); n > 1 {
		t.Fatalf("an unwaited Commit allocates %.0f times; want 1", n)
	}
}
