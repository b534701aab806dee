package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"
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
