package identity_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/store"
)

// tokenEnv is the real embedded store (SQLite in a temporary directory)
// whose clock a test can move forward: Now is the store's Now plus an
// offset, so expiry is judged exactly as in production, only later.
type tokenEnv struct {
	store.Store
	dir string
	mu  sync.Mutex
	off time.Duration
}

func newTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &tokenEnv{Store: st, dir: dir}
}

func (e *tokenEnv) Now(ctx context.Context) (time.Time, error) {
	now, err := e.Store.Now(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Add(e.off), err
}

func (e *tokenEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.off += d
}

// fileBytesContain reports whether any file of the store's directory (the
// database, its WAL and shared memory) holds b.
func (e *tokenEnv) fileBytesContain(t *testing.T, b []byte) bool {
	t.Helper()
	found := false
	// Every file under the store's directory: the database, its WAL and
	// the recording journal's segments.
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(data, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
