package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/countersign/countersign/internal/store"
)

// openReviewPG makes a fresh database on the local PostgreSQL and opens the
// store on it; the database is dropped afterwards.
func openReviewPG(t *testing.T) *store.Postgres {
	t.Helper()
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "cs_notify_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("PostgreSQL on 127.0.0.1:5432 is needed: %v", err)
	}
	st, err := store.OpenPostgres(context.Background(), "postgres://postgres@127.0.0.1:5432/"+name+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		_, _ = admin.Exec("DROP DATABASE " + name + " WITH (FORCE)")
		admin.Close()
	})
	return st
}

// TestReviewNotifierAcrossReplicas: a decision on one replica wakes the
// waiter on another, through LISTEN/NOTIFY.
func TestReviewNotifierAcrossReplicas(t *testing.T) {
	st := openReviewPG(t)
	a, b := st.ReviewNotifier(nil), st.ReviewNotifier(nil)
	defer a.Close()
	defer b.Close()
	wake, stop := b.Subscribe("r-x")
	defer stop()
	other, stopOther := b.Subscribe("r-y")
	defer stopOther()
	if err := a.Notify(context.Background(), "r-x"); err != nil {
		t.Fatal(err)
	}
	<-wake
	select {
	case <-other:
		t.Fatal("a notification of r-x woke the waiter of r-y")
	default:
	}
}
