package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/store"
	"github.com/jackc/pgx/v5"
)

type forwarded struct {
	pid    uint32
	secret []byte
}

// TestCancelRelayAcrossReplicas: replicas sharing a store claim distinct
// ids, and a cancel forwarded to one id reaches that replica only.
func TestCancelRelayAcrossReplicas(t *testing.T) {
	st := openReviewPG(t)
	ctx := context.Background()
	a, err := st.CancelRelay(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := st.CancelRelay(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Replica() == b.Replica() {
		t.Fatalf("two live replicas share id %d", a.Replica())
	}
	gotA, gotB := make(chan forwarded, 4), make(chan forwarded, 4)
	defer a.ReceiveCancels(func(pid uint32, s []byte) { gotA <- forwarded{pid, s} })()
	defer b.ReceiveCancels(func(pid uint32, s []byte) { gotB <- forwarded{pid, s} })()

	tests := []struct {
		name   string
		pid    uint32
		secret []byte
		want   chan forwarded
	}{
		{"to b", uint32(b.Replica())<<24 | 0x123456, []byte{1, 2, 3, 4}, gotB},
		{"to a", uint32(a.Replica())<<24 | 0xabcdef, []byte{9, 8, 7, 6}, gotA},
		{"long secret (protocol 3.2)", uint32(b.Replica())<<24 | 7, bytes.Repeat([]byte{0xee}, 32), gotB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.ForwardCancel(ctx, tt.pid, tt.secret); err != nil {
				t.Fatal(err)
			}
			select {
			case f := <-tt.want:
				if f.pid != tt.pid || !bytes.Equal(f.secret, tt.secret) {
					t.Fatalf("delivered %x %x; want %x %x", f.pid, f.secret, tt.pid, tt.secret)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the cancel was not delivered")
			}
		})
	}
	// Each went to one replica only: a marker sent last arrives on each
	// channel with nothing before it.
	for _, r := range []struct {
		id  uint8
		got chan forwarded
	}{{a.Replica(), gotA}, {b.Replica(), gotB}} {
		if err := b.ForwardCancel(ctx, uint32(r.id)<<24|0xffffff, []byte{0}); err != nil {
			t.Fatal(err)
		}
		if f := <-r.got; f.pid != uint32(r.id)<<24|0xffffff {
			t.Fatalf("replica %d also received %x", r.id, f.pid)
		}
	}
}

// TestCancelRelayFreesItsID: a closed relay's id can be claimed again
// (PostgreSQL releases the lock when the closed connection's backend
// exits, a moment after Close returns).
func TestCancelRelayFreesItsID(t *testing.T) {
	st := openReviewPG(t)
	ctx := context.Background()
	a, err := st.CancelRelay(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := a.Replica()
	a.Close()
	for range 500 {
		b, err := st.CancelRelay(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := b.Replica()
		b.Close()
		if got == id {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica id %d was never claimed again after its relay closed", id)
}

// TestCancelToUnheldReplicaCostsNothing: CancelRequests come before any
// authentication, so one that names a replica id no live gateway holds
// must not become a notification in the shared store (a flood of them
// would otherwise cost every listener).
func TestCancelToUnheldReplicaCostsNothing(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("PostgreSQL on 127.0.0.1:5432 is needed: %v", err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("cs_cancel_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
	url := "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	st, err := store.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.CancelRelay(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	unheld := a.Replica() + 1 // the only relay holds its own id

	// A plain listener on the unheld id's channel: it holds no lock, so
	// it sees whatever the relay would send there.
	spy, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close(ctx)
	channel := fmt.Sprintf("countersign_cancel_%d", unheld)
	if _, err := spy.Exec(ctx, "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := a.ForwardCancel(ctx, uint32(unheld)<<24|uint32(i), []byte{1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Exec(ctx, "SELECT 1"); err != nil { // keep admin alive
		t.Fatal(err)
	}
	marker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close(ctx)
	if _, err := marker.Exec(ctx, "SELECT pg_notify($1, 'marker')", channel); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := spy.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != "marker" {
		t.Fatalf("a cancel naming unheld replica %d was notified (%q) before the marker", unheld, n.Payload)
	}
}
