package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// plantedChain is a chain of n events whose event at seq planted holds,
// inside its statement text, whole journal records a user could write
// without reading the segment: one framed as version 1 segments sum
// them, and version-2 frames summed with nonces the attacker made up.
// Each frame holds a forged event that decodes. frames is the planted
// bytes, to find them in the segment.
func plantedChain(t *testing.T, writer string, n int, planted int64) (chain []recording.Stored, frames []byte) {
	t.Helper()
	forged := storetest.Chain(writer, planted, 1)
	forged[0].Data = json.RawMessage(`{"forged":true}`)
	frames = store.FrameForTest(t, forged, nil)
	for range 4 {
		guess := make([]byte, 16)
		_, _ = rand.Read(guess)
		frames = append(frames, store.FrameForTest(t, forged, guess)...)
	}
	text := append([]byte(`{"text":"SELECT '`), frames...)
	text = append(text, `' AS planted, 'the record goes on after the frames'"}`...)
	chain = storetest.Chain(writer, 1, n)
	var buf []byte
	prev := chain[planted-2].Hash
	for i := planted - 1; i < int64(n); i++ {
		e := chain[i]
		if e.Seq == planted {
			e.Data = text
		}
		e.PrevHash = prev
		e.Hash, buf = recording.ChainHash(buf, prev, e)
		chain[i], prev = e, e.Hash
	}
	return chain, frames
}

// TestJournalReplayIgnoresPlantedFrame is the attack on replay's rule that
// a bad record followed by a valid one is damage in the middle: a user
// plants whole records in their statement's text, and a crash tears the
// record holding it after the planted frames. Before segments carried a
// nonce, replay found the planted version-1 frame valid and refused to
// open the store until an operator repaired the file. Now none of the
// planted frames is valid in the segment, so the torn record is dropped
// as a torn tail (its caller was never told it succeeded), everything
// before it is there, and the chain goes on.
func TestJournalReplayIgnoresPlantedFrame(t *testing.T) {
	t.Parallel()
	chain, frames := plantedChain(t, "w-plant", 5, 4)
	tears := []struct {
		name string
		tear func(t *testing.T, seg string, cut, end int64)
	}{
		{"truncated after the frames", func(t *testing.T, seg string, cut, end int64) { truncate(t, seg, cut) }},
		{"truncated at the record's last byte", func(t *testing.T, seg string, cut, end int64) { truncate(t, seg, end-1) }},
		{"zeros after the frames", func(t *testing.T, seg string, cut, end int64) { zero(t, seg, cut, end) }},
		{"zeros from the record's middle", func(t *testing.T, seg string, cut, end int64) { zero(t, seg, (cut+end)/2, end) }},
	}
	for _, tc := range tears {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, seg := journaled(t, chain[:2], chain[2:4])
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if hdr := store.SegmentHeaderForTest(); !bytes.HasPrefix(b, hdr[:8]) {
				t.Fatalf("the segment starts %q; want a segment of the version this build writes (%q)", b[:8], hdr[:8])
			}
			at := bytes.Index(b, frames)
			start, end := lastRecord(t, seg)
			if at < 0 || int64(at) < start {
				t.Fatal("the planted frames are not in the segment's last record")
			}
			tc.tear(t, seg, int64(at+len(frames)), end)
			st, err := store.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatalf("a crash tearing a record that holds a user's planted frames keeps the store from opening: %v", err)
			}
			defer st.Close()
			if got := seqs(t, st, "w-plant"); fmt.Sprint(got) != "[1 2 3]" {
				t.Fatalf("after replay the chain holds %v, want [1 2 3]", got)
			}
			appendOK(t, st, chain[3:])
			if got := seqs(t, st, "w-plant"); fmt.Sprint(got) != "[1 2 3 4 5]" {
				t.Fatalf("the chain holds %v after going on, want [1 2 3 4 5]", got)
			}
		})
	}
}

// TestJournalReplayRefusesCorruptMiddleV2: the nonce does not weaken the
// rule against damage in the middle. A corrupt record followed by valid
// ones in a segment of the version this build writes refuses the open,
// and so does one whose damage is in the record holding planted frames.
func TestJournalReplayRefusesCorruptMiddleV2(t *testing.T) {
	t.Parallel()
	chain, frames := plantedChain(t, "w-mid", 6, 4)
	cases := []struct {
		name string
		// at is the byte to flip, given the segment and its records'
		// offsets (one event each: seq 3 to 6, 4 planted).
		at func(b []byte, recs []int64) int64
	}{
		{"a plain record", func(b []byte, recs []int64) int64 { return recs[0] + 20 }},
		{"the planted record, after its frames", func(b []byte, recs []int64) int64 {
			return int64(bytes.Index(b, frames) + len(frames) + 3)
		}},
		{"the planted record's length", func(b []byte, recs []int64) int64 { return recs[1] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, seg := journaled(t, chain[:2], chain[2:])
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			flip(t, seg, tc.at(b, recordOffsets(t, seg)))
			st, err := store.OpenSQLite(context.Background(), path)
			if err == nil {
				st.Close()
				t.Fatal("Open replayed a segment with a corrupt record in its middle")
			}
			if !strings.Contains(err.Error(), "is corrupt and a valid record follows") {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// TestJournalReplaysVersion1Segment: a segment an older build wrote
// (version 1: no nonce, sum = CRC-32C(payload)) is still replayed, with
// the old rule: a torn last record is dropped, a corrupt middle refused.
// Appends after the upgrade go to a segment of the new version.
func TestJournalReplaysVersion1Segment(t *testing.T) {
	t.Parallel()
	chain := storetest.Chain("w-v1", 1, 6)
	planted, _ := plantedChain(t, "w-v1", 6, 4)
	rec := func(t *testing.T, evs []recording.Stored) []byte { return store.FrameForTest(t, evs, nil) }
	cases := []struct {
		name string
		seg  func(t *testing.T) []byte // the version-1 segment's content
		want string                    // the seqs stored after the open
		err  string
	}{
		{name: "intact, zeros ahead", want: "[1 2 3 4 5]", seg: func(t *testing.T) []byte {
			b := append(store.SegmentHeaderV1ForTest(), rec(t, chain[2:4])...)
			return append(append(b, rec(t, chain[4:5])...), make([]byte, 4096)...)
		}},
		{name: "last record torn", want: "[1 2 3 4]", seg: func(t *testing.T) []byte {
			b := append(store.SegmentHeaderV1ForTest(), rec(t, chain[2:4])...)
			last := rec(t, chain[4:5])
			return append(b, last[:len(last)-7]...)
		}},
		{name: "corrupt middle", err: "is corrupt and a valid record follows", seg: func(t *testing.T) []byte {
			b := append(store.SegmentHeaderV1ForTest(), rec(t, chain[2:4])...)
			b = append(b, rec(t, chain[4:5])...)
			b[len(store.SegmentHeaderV1ForTest())+30] ^= 0x40
			return b
		}},
		// Version 1 keeps its rule, planted frames included: only a
		// process that crashed before the upgrade left such a segment.
		{name: "planted frame, torn after it", err: "is corrupt and a valid record follows", seg: func(t *testing.T) []byte {
			b := append(store.SegmentHeaderV1ForTest(), rec(t, planted[2:3])...)
			last := rec(t, planted[3:4])
			return append(b, last[:len(last)-10]...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "v1.db")
			st := openAt(t, path)
			appendOK(t, st, chain[:2])
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			seg := filepath.Join(store.JournalDirForTest(path), "00000000000000000001-1-000000000000.seg")
			if err := os.WriteFile(seg, tc.seg(t), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := store.OpenSQLite(context.Background(), path)
			if tc.err != "" {
				if err == nil {
					st.Close()
					t.Fatalf("Open succeeded; want it to say %q", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v; want it to say %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open over a version-1 segment: %v", err)
			}
			defer st.Close()
			if got := seqs(t, st, "w-v1"); fmt.Sprint(got) != tc.want {
				t.Fatalf("after replaying the version-1 segment the chain holds %v, want %s", got, tc.want)
			}
			if _, err := os.Stat(seg); !os.IsNotExist(err) {
				t.Fatalf("the replayed version-1 segment is still there: %v", err)
			}
			checkNewSegmentVersion(t, st, path, chain[len(seqs(t, st, "w-v1")):])
		})
	}
}

// checkNewSegmentVersion appends evs with the indexer paused and checks
// that the segment they went to is of the version this build writes.
func checkNewSegmentVersion(t *testing.T, st *store.SQLite, path string, evs []recording.Stored) {
	t.Helper()
	resume := store.PauseIndexerForTest(st)
	defer resume()
	appendOK(t, st, evs[:1])
	segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("the journal holds %v, want one segment", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if hdr := store.SegmentHeaderForTest(); !bytes.HasPrefix(b, hdr[:8]) {
		t.Fatalf("a new segment starts %q, want %q", b[:8], hdr[:8])
	}
}

// recordOffsets is where each record of the segment starts, read by the
// records' lengths up to the zeros written ahead.
func recordOffsets(t *testing.T, seg string) []int64 {
	t.Helper()
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := len(store.SegmentHeaderForTest()); off+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 {
			break
		}
		offs = append(offs, int64(off))
		off += 8 + n
	}
	return offs
}

// zero overwrites path's bytes from..to with zeros: the pages of a write
// that did not reach the disk, over the zeros written ahead.
func zero(t *testing.T, path string, from, to int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[from:to])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
