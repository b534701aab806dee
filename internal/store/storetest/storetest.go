// Package storetest is the suite every store.Store implementation passes.
// The implementations run it against real databases (a temp SQLite file, a
// fresh PostgreSQL database): no mocks.
//
//	func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }
//
// Subtests share one store and run in parallel, so each uses names (token
// ids, writers) of its own.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/store"
)

// Run runs the whole suite. open returns a fresh, migrated store; Run
// closes what it opens (open may register further cleanup with t).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	st := open(t)
	t.Cleanup(func() { _ = st.Close() })
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Now", testNow},
		{"Ping", testPing},
		{"Identity", testIdentity},
		{"TokenRoundTrip", testTokenRoundTrip},
		{"TokenNotFound", testTokenNotFound},
		{"TokenDuplicate", testTokenDuplicate},
		{"TokenList", testTokenList},
		{"TokenRevoke", testTokenRevoke},
		{"TokenExpiryByStoreClock", testTokenExpiry},
		{"TokenIssueAuthenticate", testTokenIssueAuthenticate},
		{"AdminEvents", testAdminEvents},
		{"EventsRoundTrip", testEventsRoundTrip},
		{"EventsPaging", testEventsPaging},
		{"EventsDuplicateSeq", testEventsDuplicate},
		{"EventsDuplicateInBatch", testEventsDuplicateInBatch},
		{"EventsEmptyBatch", testEventsEmpty},
		{"Writers", testWriters},
		{"Checkpoints", testCheckpoints},
		{"Retention", testRetention},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ConcurrentTokens", testConcurrentTokens},
	}
	// The group returns when every parallel subtest is done, before Close.
	t.Run("group", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, st)
			})
		}
	})
	t.Run("Reviews", func(t *testing.T) { Reviews(t, st) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// unique returns prefix-<random hex>, so subtests never collide.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func now(t *testing.T, st store.Store) time.Time {
	t.Helper()
	n, err := st.Now(ctxOf(t))
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return n
}

func testNow(t *testing.T, st store.Store) {
	n := now(t, st)
	if n.Location() != time.UTC {
		t.Errorf("Now is in %v, want UTC", n.Location())
	}
	if d := time.Since(n); d > time.Hour || d < -time.Hour {
		t.Errorf("Now = %v, more than an hour from this machine's clock %v", n, time.Now())
	}
	if n != n.Truncate(time.Microsecond) {
		t.Errorf("Now = %v has sub-microsecond digits; a stored time would not read back equal", n)
	}
	// The clock is read at the call, not at some transaction's start.
	later := now(t, st)
	if later.Before(n) {
		t.Errorf("Now went back from %v to %v", n, later)
	}
}

func testPing(t *testing.T, st store.Store) {
	if err := st.Ping(ctxOf(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testClose(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded; want an error")
	}
	if err := st.AppendEvents(ctx, chain("w-closed", 1, 1)); err == nil {
		t.Error("AppendEvents after Close succeeded; want an error (fail closed)")
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}
