package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// pgAdmin is the test server; CI starts it. Unreachable is a failure.
const pgAdmin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// freshDatabase creates cs_store_test_<random> and drops it when tb ends.
func freshDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgAdmin)
	if err != nil {
		tb.Fatalf("PostgreSQL test server at %s: %v (start it; these tests do not skip)", pgAdmin, err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "cs_store_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, pgAdmin)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
}

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
