package recording

import (
	"context"
	"testing"
	"time"
)

// A call that ends in time leaves the context live for the next one; a
// call that outlasts the limit has its context canceled, and the next call
// gets a fresh one.
func TestWatchdog(t *testing.T) {
	tests := []struct {
		name    string
		limit   time.Duration
		overrun bool // the call waits until the limit cancels it
	}{
		{name: "in time", limit: time.Hour},
		{name: "overrun", limit: time.Nanosecond, overrun: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := watchdog{limit: tc.limit}
			first := w.arm()
			if tc.overrun {
				<-first.Done()
			}
			w.disarm()
			w.limit = time.Hour // the next call is in time (a 1 ns bound would cancel it too)
			second := w.arm()
			defer w.disarm()
			if err := second.Err(); err != nil {
				t.Fatalf("the next call's context is %v; want a live one", err)
			}
			if reused := first == second; reused == tc.overrun {
				t.Fatalf("next context reused = %v; want %v", reused, !tc.overrun)
			}
			if tc.overrun && first.Err() != context.Canceled {
				t.Fatalf("the overrun call's context is %v; want canceled", first.Err())
			}
		})
	}
}
