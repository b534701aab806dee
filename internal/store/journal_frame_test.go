package store

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// plantedSegment is a segment of two records in the format of key (0: a
// version-1 segment), the second holding in its data whole records a user
// could write without reading the segment: one framed as version 1, and
// version-2 frames summed with nonces made up. It returns the segment,
// where the planted frames end and where the first record ends.
func plantedSegment(t *testing.T, header []byte, key frameKey) (seg []byte, framesEnd, firstEnd int) {
	t.Helper()
	evs := fuzzSeedEvents()
	forged := evs[:1:1]
	frames := frameRecord(t, nil, forged, 0)
	for range 8 {
		guess := make([]byte, nonceSize)
		_, _ = rand.Read(guess)
		frames = frameRecord(t, frames, forged, keyOf(guess))
	}
	planted := evs[1]
	planted.Data = json.RawMessage(append(append([]byte(`{"text":"SELECT '`), frames...), `'"}`...))
	seg = frameRecord(t, header, evs[:1], key)
	firstEnd = len(seg)
	seg = frameRecord(t, seg, []recording.Stored{planted}, key)
	return seg, bytes.Index(seg, frames) + len(frames), firstEnd
}

// TestSegmentRecordsIgnorePlantedFrames tears a record holding planted
// frames at every byte after them, by a cut and by zeros (pages that did
// not reach the disk): in a segment of the version this build writes the
// torn record is a torn tail, every time. The same segment in version 1
// is refused at each of those tears: the denial of service the nonce
// ends.
func TestSegmentRecordsIgnorePlantedFrames(t *testing.T) {
	header, key := appendHeader(nil)
	seg, framesEnd, firstEnd := plantedSegment(t, header, key)
	v1, v1FramesEnd, _ := plantedSegment(t, []byte(journalMagicV1), 0)
	for cut := framesEnd; cut < len(seg); cut++ {
		zeroed := bytes.Clone(seg)
		clear(zeroed[cut:])
		for _, torn := range [][]byte{seg[:cut], zeroed} {
			recs, err := segmentRecords(torn)
			if err != nil || len(recs) != 1 {
				t.Fatalf("torn at %d of %d: %d records, %v; want the first record and a torn tail", cut, len(seg), len(recs), err)
			}
			if off, n := tornTail(torn, recs); off != firstEnd || n == 0 {
				t.Fatalf("torn at %d: tornTail = %d, %d; want %d and the torn bytes", cut, off, n, firstEnd)
			}
		}
	}
	for cut := v1FramesEnd; cut < len(v1); cut++ {
		if _, err := segmentRecords(v1[:cut]); err == nil {
			t.Fatalf("version 1, torn at %d after the planted frame: no error; the old rule should find the frame", cut)
		}
	}
}

// TestFrameBelongsToItsSegment: a record is valid only in a segment with
// its segment's nonce; the same bytes under another nonce, or read as
// version 1, are not a record.
func TestFrameBelongsToItsSegment(t *testing.T) {
	_, key := appendHeader(nil)
	_, other := appendHeader(nil)
	rec := frameRecord(t, nil, fuzzSeedEvents(), key)
	if _, _, err := readRecord(rec, key); err != nil {
		t.Fatalf("a record does not read in its own segment: %v", err)
	}
	for name, k := range map[string]frameKey{"another segment": other, "version 1": 0} {
		if _, _, err := readRecord(rec, k); err == nil {
			t.Errorf("a record reads as valid in %s", name)
		}
	}
}

// TestNewSegmentHeader: each segment gets a header of the version this
// build writes with its own nonce, its records are summed with that
// nonce's key, and only its owner can read it.
func TestNewSegmentHeader(t *testing.T) {
	j := newJournal(t.TempDir(), nil)
	var nonces [][]byte
	for range 2 {
		seg, err := j.newSegment()
		if err != nil {
			t.Fatal(err)
		}
		defer seg.f.Close()
		b, err := os.ReadFile(seg.path)
		if err != nil {
			t.Fatal(err)
		}
		start, key, err := readHeader(b)
		if err != nil || start != journalHeaderSize || string(b[:magicSize]) != journalMagic || key != seg.key {
			t.Fatalf("new segment: header %q, records at %d, key %x (segment's %x), %v", b[:magicSize], start, key, seg.key, err)
		}
		if seg.size != int64(journalHeaderSize) {
			t.Fatalf("a new segment's size is %d, want its header's %d", seg.size, journalHeaderSize)
		}
		if fi, err := seg.f.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("segment file: %v, %v; want mode 0600 (the nonce is a secret)", fi, err)
		}
		nonces = append(nonces, b[magicSize:journalHeaderSize])
	}
	if bytes.Equal(nonces[0], nonces[1]) || allZero(nonces[0]) {
		t.Fatalf("two segments' nonces: %x, %x; want random ones", nonces[0], nonces[1])
	}
}

// TestJournalFramingAllocs: framing and summing a batch into the
// journal's reused buffer allocates nothing (the append path's cost).
func TestJournalFramingAllocs(t *testing.T) {
	evs := fuzzSeedEvents()
	_, key := appendHeader(nil)
	buf, _ := appendRecord(nil, evs)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = appendRecord(buf[:0], evs)
		sumRecord(buf, key)
	})
	if allocs != 0 {
		t.Fatalf("framing a record allocates %v times, want 0", allocs)
	}
}

// BenchmarkJournalFrame is the append path's framing of one batch of 64
// events: encoding and summing.
func BenchmarkJournalFrame(b *testing.B) {
	seed := fuzzSeedEvents()[0]
	seed.Data = bytes.Repeat([]byte("x"), 200)
	evs := make([]recording.Stored, 64)
	for i := range evs {
		evs[i] = seed
		evs[i].Seq = int64(i + 1)
	}
	_, key := appendHeader(nil)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendRecord(buf[:0], evs)
		sumRecord(buf, key)
	}
	b.SetBytes(int64(len(buf)))
}
