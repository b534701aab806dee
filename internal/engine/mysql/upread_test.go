package mysql

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// Upstream packets around the read buffer's size and the protocol's
// fragment size (upread.go) reach the client whole, through the text and
// the binary protocol, on one connection (so a packet read in place is
// followed by one assembled from fragments and back).
func TestUpstreamPacketSizes(t *testing.T) {
	t.Parallel()
	_, db, _ := maskEnv(t)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var maxPacket int
	if err := conn.QueryRowContext(context.Background(), "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, upstreamBuffer - 8, upstreamBuffer - 7, upstreamBuffer, 3 * upstreamBuffer, 10, maxPayload - 4, maxPayload - 3, maxPayload, 7}
	for _, n := range sizes {
		if n > maxPacket {
			t.Logf("size %d skipped: max_allowed_packet is %d", n, maxPacket)
			continue
		}
		for _, binary := range []bool{false, true} {
			var got string
			var err error
			if binary {
				err = conn.QueryRowContext(context.Background(), "SELECT REPEAT('x', ?)", n).Scan(&got)
			} else {
				err = conn.QueryRowContext(context.Background(), "SELECT REPEAT('x', "+strconv.Itoa(n)+")").Scan(&got)
			}
			if err != nil {
				t.Fatalf("size %d (binary %v): %v", n, binary, err)
			}
			if len(got) != n || strings.Trim(got, "x") != "" {
				t.Fatalf("size %d (binary %v): got %d bytes", n, binary, len(got))
			}
		}
	}
}
