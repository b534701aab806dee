package store

import (
	"errors"
	"os"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// PauseIndexerForTest keeps the journal's indexer from storing anything
// in SQLite until resume is called: it holds the lock of the writer's
// insert statements, which every insert takes. Appends still become
// durable in the journal. Resume before Close.
func PauseIndexerForTest(st Store) (resume func()) {
	s := st.(*SQLite)
	s.appends.mu.Lock()
	return s.appends.mu.Unlock
}

// SegmentRecordForTest is one journal record holding events, framed as
// AppendEvents writes it into the segment file at seg (whose header holds
// the nonce the record's sum covers).
func SegmentRecordForTest(t testing.TB, seg string, events []recording.Stored) []byte {
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := readHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	return frameRecord(t, nil, events, key)
}

// FrameForTest is one record holding events, summed as in a segment whose
// header holds nonce; a nil nonce frames it as a version-1 segment does.
func FrameForTest(t testing.TB, events []recording.Stored, nonce []byte) []byte {
	key := frameKey(0)
	if nonce != nil {
		key = keyOf(nonce)
	}
	return frameRecord(t, nil, events, key)
}

// frameRecord appends one record holding events, summed with key, to dst.
func frameRecord(t testing.TB, dst []byte, events []recording.Stored, key frameKey) []byte {
	start := len(dst)
	dst, err := appendRecord(dst, events)
	if err != nil {
		t.Fatal(err)
	}
	sumRecord(dst[start:], key)
	return dst
}

// SegmentHeaderForTest is a header of the segments this build writes,
// with a fresh nonce.
func SegmentHeaderForTest() []byte {
	h, _ := appendHeader(nil)
	return h
}

// SegmentHeaderV1ForTest is the header of a version-1 segment (an older
// build's, which had no nonce).
func SegmentHeaderV1ForTest() []byte { return []byte(journalMagicV1) }

// JournalDirForTest is the journal directory of the SQLite file at path.
func JournalDirForTest(path string) string { return journalDir(path) }

// SetSegmentLimitForTest sets the size at which appends move to a new
// segment.
func SetSegmentLimitForTest(st Store, n int64) {
	j := st.(*SQLite).journal
	j.mu.Lock()
	defer j.mu.Unlock()
	j.limit = n
}

// BreakJournalForTest replaces the current segment's file descriptor with
// a read-only one on the same file: the next write fails (EBADF), and so
// does cutting the file back. The segment must exist (append first).
func BreakJournalForTest(t testing.TB, st Store) {
	j := st.(*SQLite).journal
	j.mu.Lock()
	defer j.mu.Unlock()
	ro, err := os.Open(j.seg.path)
	if err != nil {
		t.Fatal(err)
	}
	rw := j.seg.f // keeps the lock; closed when the test ends
	t.Cleanup(func() { rw.Close(); ro.Close() })
	j.seg.f, j.seg.fd = ro, int(ro.Fd())
}

// FailSyncOnceForTest makes the next sync of SQLite's files before a
// segment deletion fail, as an fsync that meets a disk error does; later
// ones run normally.
func FailSyncOnceForTest(st Store) {
	j := st.(*SQLite).journal
	j.qmu.Lock()
	defer j.qmu.Unlock()
	real, failed := j.sync, false
	j.sync = func() error {
		if !failed {
			failed = true
			return errors.New("input/output error (injected by the test)")
		}
		return real()
	}
}
