package store_test

import (
	"context"
	"testing"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// freshDatabase creates cs_store_test_<random> and drops it when tb ends.
func freshDatabase(tb testing.TB) string { return storetest.PostgresDatabase(tb, "cs_store_test") }

func openPostgres(t *testing.T) store.Store {
	t.Helper()
	url := freshDatabase(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() }) // before the drop (cleanups run last first)
	return st
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openPostgres)
}

func TestPostgresNoSecretStored(t *testing.T) {
	t.Parallel()
	st := openPostgres(t)
	storetest.NoSecretStored(t, st, func(t *testing.T) [][]byte { return store.DumpForTest(t, st) })
}

// TestPostgresReplicasMigrateTogether: replicas starting at once against
// one database take turns at the migration lock; all of them come up.
func TestPostgresReplicasMigrateTogether(t *testing.T) {
	t.Parallel()
	url := freshDatabase(t)
	const replicas = 4
	errs := make(chan error, replicas)
	for range replicas {
		go func() {
			st, err := store.Open(context.Background(), "postgresql"+url[len("postgres"):])
			if err == nil {
				err = st.Ping(context.Background())
				st.Close()
			}
			errs <- err
		}()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Errorf("replica Open: %v", err)
		}
	}
}
