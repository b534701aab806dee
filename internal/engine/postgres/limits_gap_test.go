package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDefaultMessageLimit: with limits.max_message_bytes unset the limit
// is 64 MiB. A message claiming more ends that session with 08P01 before
// the gateway allocates or reads its body, and is recorded as the reason;
// a large message under the limit passes.
func TestDefaultMessageLimit(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.AllowPlaintextLoopback = true })
	ctx := context.Background()
	const limit = 64 << 20
	tests := []struct {
		name string
		body uint32 // the length the message claims, without its own 4 bytes
	}{
		{"one byte over", limit + 1},
		{"claims 2 GiB", 1<<31 - 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pgx.Connect(ctx, ev.url("pg-test", "disable"))
			if err != nil {
				t.Fatal(err)
			}
			nc := c.PgConn().Conn()
			hdr := binary.BigEndian.AppendUint32([]byte{'Q'}, tt.body+4)
			if _, err := nc.Write(hdr); err != nil {
				t.Fatal(err)
			}
			nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, _ := io.ReadAll(nc)
			want := fmt.Sprintf("limit of %d bytes (limits.max_message_bytes)", limit)
			if !strings.Contains(string(got), "08P01") || !strings.Contains(string(got), want) {
				t.Fatalf("got %q; want 08P01 naming %q", got, want)
			}
		})
	}
	c := ev.connect(t)
	big := strings.Repeat("x", 8<<20)
	var n int
	if err := c.QueryRow(ctx, "SELECT length($1::text)", big).Scan(&n); err != nil || n != len(big) {
		t.Fatalf("an 8 MiB parameter under the limit: %d %v", n, err)
	}
	waitFor(t, func() bool { return ev.closedFor("message") == len(tests) })
}

// closedFor counts the recorded session.close events whose reason
// mentions substr.
func (ev *env) closedFor(substr string) int {
	var n int
	for _, e := range ev.rec.OfType("session.close") {
		if strings.Contains(e.Data.(map[string]any)["reason"].(string), substr) {
			n++
		}
	}
	return n
}
