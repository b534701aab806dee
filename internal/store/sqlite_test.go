package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "data", "countersign.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openSQLite)
}

func TestSQLiteNoSecretStored(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	defer st.Close()
	storetest.NoSecretStored(t, st, func(t *testing.T) [][]byte { return store.DumpForTest(t, st) })
}

func TestSQLiteFileAndPragmas(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	st, err := store.Open(context.Background(), "sqlite://"+dir+"/c.db")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("parent directory not created: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("parent directory mode %v, want 0700", fi.Mode().Perm())
	}
	got := store.PragmasForTest(t, st)
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PRAGMA %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if got["busy_timeout"] == "0" {
		t.Error("busy_timeout is 0; concurrent readers would fail with SQLITE_BUSY")
	}
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "r.db")
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := st.AppendEvents(ctx, storetest.Chain("w1", 1, 3)); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	st.Close()
	st, err = store.Open(ctx, url) // the migrations are already applied
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	evs, err := st.Events(ctx, "w1", 1, 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("after reopen: %d events, %v; want 3", len(evs), err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url, want string
	}{
		{"unknown scheme", "mysql://root:hunter2@db/x", "sqlite://PATH or postgres://"},
		{"no path", "sqlite://", "names no file"},
		{"query in path", "sqlite://" + dir + "/x.db?mode=ro", "may not contain"},
		{"memory", "sqlite://:memory:", "may not contain"},
		{"parent is a file", "sqlite://" + notDir + "/x.db", "creating the directory"},
		{"bad postgres url", "postgres://u:hunter2@host:notaport/db", "not a valid PostgreSQL URL"},
		{"no postgres there", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2", "check that PostgreSQL runs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, err := store.Open(context.Background(), c.url)
			if err == nil {
				st.Close()
				t.Fatalf("Open(%q) succeeded; want an error", c.url)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%q) = %v; want it to say %q", c.url, err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open(%q) error shows the password: %v", c.url, err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"sqlite://./countersign.db", "sqlite://./countersign.db"},
		{"postgres://cs:s3cret@db.example.com:5432/cs", "postgres://cs:***@db.example.com:5432/cs"},
		{"postgresql://cs@db/cs?sslmode=verify-full", "postgresql://cs@db/cs?sslmode=verify-full"},
		{"postgres://db/cs?user=cs&password=s3cret", "postgres://db/cs?password=***&user=cs"},
		{"postgres://cs:s3%2Fcret@db/cs", "postgres://cs:***@db/cs"},
		{"postgres://cs:s3/cr#et@db/cs", "postgres://***@db/cs"},
		{"postgres://cs:bad%zz@db/cs", "postgres://***@db/cs"},
		{"host=db user=cs password=s3cret dbname=cs", "host=db user=cs password=*** dbname=cs"},
		{"host=db password='s3 cret'", "host=db password=***"},
	}
	for _, c := range cases {
		got := store.Describe(c.in)
		if got != c.want {
			t.Errorf("Describe(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "s3") || strings.Contains(got, "cret") {
			t.Errorf("Describe(%q) = %q still shows the password", c.in, got)
		}
	}
}

func ExampleDescribe() {
	fmt.Println(store.Describe("postgres://countersign:hunter2@db.internal/countersign"))
	// Output: postgres://countersign:***@db.internal/countersign
}
