package store

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseWaitsForConnectionsInUse: a query still running when Close is
// called holds its connection, which database/sql closes only once it is
// released; Close returns after that, so the files are quiet once it has
// (the last connection to close rewrites the WAL's -shm file).
func TestCloseWaitsForConnectionsInUse(t *testing.T) {
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "close.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.Query("SELECT value FROM json_each('[1,2,3]')")
	if err != nil {
		t.Fatal(err)
	}
	var released, early atomic.Bool
	closed := make(chan error)
	go func() {
		err := s.Close()
		early.Store(!released.Load())
		closed <- err
	}()
	time.Sleep(20 * time.Millisecond) // lets Close get ahead, should it not wait
	released.Store(true)
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if early.Load() {
		t.Fatal("Close returned while a connection was still in use")
	}
}
