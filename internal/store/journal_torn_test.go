package store

import (
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// TestTornTail: what replay drops after a segment's last valid record is
// reported unless it is the zeros written ahead.
func TestTornTail(t *testing.T) {
	seg := frameRecord(t, fuzzHeaderV2(), []recording.Stored{{Writer: "w-1", Seq: 1, Type: "x", Time: time.Unix(1, 0).UTC(),
		PrevHash: make([]byte, 32), Hash: make([]byte, 32), Data: []byte(`{}`)}}, keyOf(fuzzNonce))
	end := len(seg)
	torn := append(append([]byte(nil), seg...), 9, 0, 0, 0, 1, 2)
	tests := []struct {
		name string
		data []byte
		off  int
		n    int
	}{
		{"clean end", seg, end, 0},
		{"zeros written ahead", append(append([]byte(nil), seg...), make([]byte, 64)...), end, 0},
		{"a write cut short", torn, end, 6},
		{"cut short, then zeros", append(append([]byte(nil), torn...), make([]byte, 64)...), end, 6},
		{"header only", fuzzHeaderV2(), journalHeaderSize, 0},
		{"version-1 header only", []byte(journalMagicV1), len(journalMagicV1), 0},
		{"nonce cut short", fuzzHeaderV2()[:magicSize+3], magicSize + 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := segmentRecords(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if off, n := tornTail(tt.data, recs); off != tt.off || n != tt.n {
				t.Fatalf("tornTail = %d, %d; want %d, %d", off, n, tt.off, tt.n)
			}
		})
	}
}
