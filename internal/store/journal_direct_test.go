package store

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

// TestJournalDirectWrites: records written directly (whole blocks, the
// last block's earlier bytes rewritten from memory) or through the page
// cache read back as exactly the records written, in order, with zeros
// after them; a write cut back by undoWrite leaves no trace, and the next
// record follows the last good one. Sizes cross block boundaries, fill a
// block exactly, and span several blocks.
func TestJournalDirectWrites(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noDirect bool
	}{
		{"direct", false},
		{"page cache", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal(t.TempDir(), nil)
			j.noDirect = tc.noDirect
			var want [][]byte
			write := func(events int) { want = append(want, writeRecord(t, j, events)) }
			for _, n := range []int{1, 2, 3, 17, 1, 40, 1, 1, 9} {
				write(n)
			}
			if !tc.noDirect && !j.seg.direct {
				t.Skip("the temporary directory's file system takes no O_DIRECT")
			}
			if tc.noDirect && j.seg.direct {
				t.Fatal("noDirect: the segment was opened for direct I/O")
			}
			// A write that failed half-way: bytes after the end, cut back.
			garbage(t, j.seg.path, j.seg.size, 5000)
			if err := undoWrite(j.seg, j.seg.size); err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{2, 1, 30} {
				write(n)
			}
			defer j.seg.f.Close()
			data := readsBack(t, j.seg.path, want)
			if !allZero(data[j.seg.size:]) {
				t.Fatalf("bytes after the last record (offset %d) are not zero", j.seg.size)
			}
		})
	}
}

// TestJournalDirectRefused: a file system that opens a segment for
// direct I/O but refuses its writes (EINVAL: it wants another alignment)
// makes the journal write through the page cache, in that segment and
// every later one, instead of failing every append; the records before
// and after read back whole.
func TestJournalDirectRefused(t *testing.T) {
	j := newJournal(t.TempDir(), nil)
	var want [][]byte
	write := func(events int) { want = append(want, writeRecord(t, j, events)) }
	write(3)
	if !j.seg.direct {
		t.Skip("the temporary directory's file system takes no O_DIRECT")
	}
	defer j.seg.f.Close()
	real := writeAt
	t.Cleanup(func() { writeAt = real })
	writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if off%directBlock == 0 && len(b)%directBlock == 0 {
			return 0, syscall.EINVAL // what refuses a direct write
		}
		return real(f, b, off)
	}
	write(5)
	write(1)
	if j.seg.direct || !j.noDirect {
		t.Fatalf("after EINVAL: segment direct %v, journal noDirect %v; want the page cache from then on", j.seg.direct, j.noDirect)
	}
	seg, err := j.newSegment()
	if err != nil {
		t.Fatal(err)
	}
	seg.f.Close()
	if seg.direct {
		t.Fatal("a segment made after EINVAL was opened for direct I/O")
	}
	readsBack(t, j.seg.path, want)
}

// writeRecord frames a record of n gateway events, writes it to the
// journal's segment (rolling one when needed) and returns its payload.
func writeRecord(t *testing.T, j *journal, n int) []byte {
	t.Helper()
	rec, err := appendRecord(nil, gatewayEvents(n))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.roll(len(rec)); err != nil {
		t.Fatal(err)
	}
	sumRecord(rec, j.seg.key)
	if err := j.write(j.seg, rec); err != nil {
		t.Fatalf("write of %d bytes at %d: %v", len(rec), j.seg.size, err)
	}
	return rec[recordHeaderSize:]
}

// readsBack checks that the segment at path holds exactly the payloads
// want, in order, and returns its content.
func readsBack(t *testing.T, path string, want [][]byte) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := segmentRecords(data)
	if err != nil || len(recs) != len(want) {
		t.Fatalf("the segment holds %d records (%v), want %d", len(recs), err, len(want))
	}
	for i, r := range recs {
		if !bytes.Equal(r.payload, want[i]) {
			t.Fatalf("record %d at offset %d differs from what was written", i, r.off)
		}
	}
	return data
}

// garbage writes n non-zero bytes at off through a descriptor of its own.
func garbage(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, n), off); err != nil {
		t.Fatal(err)
	}
}
