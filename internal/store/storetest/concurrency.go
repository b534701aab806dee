package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/store"
)

// testConcurrentAppend: several chains commit at once (the recording of
// several replicas, or several processes' tests), each in many batches.
func testConcurrentAppend(t *testing.T, st store.Store) {
	const writers, batches, size = 8, 10, 7
	ctx := ctxOf(t)
	names := make([]string, writers)
	errs := make(chan error, writers*batches)
	var wg sync.WaitGroup
	for i := range names {
		names[i] = unique(fmt.Sprintf("w-conc%d", i))
		all := chain(names[i], 1, batches*size)
		wg.Go(func() {
			for b := range batches {
				if err := st.AppendEvents(ctx, all[b*size:(b+1)*size]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent AppendEvents: %v", err)
	}
	for _, w := range names {
		if got := events(t, st, w, 1, 0); len(got) != batches*size {
			t.Errorf("chain %s has %d events, want %d", w, len(got), batches*size)
		}
	}
}

// testConcurrentTokens: tokens created, read and revoked at once.
func testConcurrentTokens(t *testing.T, st store.Store) {
	const n = 24
	ctx := ctxOf(t)
	id := person(unique("conc"))
	errs := make(chan error, 3*n)
	var wg sync.WaitGroup
	for range n {
		tok := token(t, st, id, time.Hour)
		wg.Go(func() {
			if err := st.UpsertIdentity(ctx, id); err != nil {
				errs <- err
			}
			if err := st.CreateToken(ctx, tok); err != nil {
				errs <- err
				return
			}
			if _, err := st.TokenByHash(ctx, tok.Hash); err != nil {
				errs <- err
			}
			if err := st.RevokeToken(ctx, tok.ID); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent tokens: %v", err)
	}
	got, err := st.ListTokens(ctx, store.TokenFilter{Issuer: id.Issuer, Subject: id.Subject})
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	if len(got) != n {
		t.Fatalf("ListTokens = %d tokens, want %d", len(got), n)
	}
	for _, tok := range got {
		if tok.RevokedAt == nil {
			t.Errorf("token %s was revoked but reads unrevoked", tok.ID)
		}
	}
}
