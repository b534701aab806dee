package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// A segment is written with O_DIRECT|O_DSYNC where the file system takes
// it (ext4, xfs, tmpfs): a record's write then goes from this buffer to
// the device and returns once it is durable, in one system call. The
// buffered way, a write into the page cache and then fdatasync, costs
// two system calls and the page cache's writeback on every group commit:
// on the development VM 10-30% more CPU for each commit (15-40 µs) and
// a longer wait (bench/README.md, "The journal's write"). The
// durability is the same: an O_DSYNC write is complete as fdatasync
// would make it (ext4 flushes the device's cache for it the same way).
//
// Direct I/O moves whole blocks from aligned memory, so the journal keeps
// the bytes of the segment's last, partly written block (segment.tail),
// and a record's write starts at that block: the tail, the record, and
// zeros to the next block boundary, where the file holds zeros already
// (zeroAhead). Rewriting the tail's bytes unchanged is what the page
// cache's writeback does as well (it writes whole pages), so a write torn
// by a crash leaves the records before it as they were.
const directBlock = 4096

// createSegmentFile creates path for a new segment, for direct I/O unless
// noDirect or the file system refuses it.
func createSegmentFile(path string, noDirect bool) (f *os.File, direct bool, err error) {
	const flags = os.O_RDWR | os.O_CREATE | os.O_EXCL
	if noDirect {
		f, err = os.OpenFile(path, flags, 0o600)
		return f, false, err
	}
	f, err = os.OpenFile(path, flags|syscall.O_DIRECT|syscall.O_DSYNC, 0o600)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, flags, 0o600)
	return f, false, err
}

// alignedBuf returns a buffer of n bytes whose address is a multiple of
// directBlock, reusing buf when it is large enough.
func alignedBuf(buf []byte, n int) []byte {
	if cap(buf) >= n {
		return buf[:n]
	}
	b := make([]byte, n+directBlock)
	skip := (directBlock - int(uintptr(unsafe.Pointer(&b[0]))%directBlock)) % directBlock
	return b[skip : skip+n : skip+n]
}

func alignDown(n int64) int64 { return n &^ (directBlock - 1) }
func alignUp(n int64) int64   { return alignDown(n + directBlock - 1) }

// writeHeaderDirect writes a new segment's header as the start of its
// first zeroChunk (the rest zeros): direct I/O cannot write the header's
// 24 bytes alone.
func (seg *segment) writeHeaderDirect(header []byte) error {
	buf := alignedBuf(nil, zeroChunk)
	copy(buf, header)
	if _, err := writeAt(seg.f, buf, 0); err != nil {
		return err
	}
	seg.zeroed = zeroChunk
	seg.tail = append(make([]byte, 0, directBlock), header...)
	return nil
}

// writeDirect writes rec at the segment's end through buf (returned for
// reuse): from the start of the tail's block to the block boundary after
// rec. It is durable when it returns (O_DSYNC). The tail follows only a
// write that succeeded: a failed one is cut back to the old size.
func (seg *segment) writeDirect(buf, rec []byte) ([]byte, error) {
	off := seg.size
	start, end := alignDown(off), alignUp(off+int64(len(rec)))
	buf = alignedBuf(buf, int(end-start))
	n := copy(buf, seg.tail) // len(seg.tail) == off-start
	n += copy(buf[n:], rec)
	clear(buf[n:])
	if _, err := writeAt(seg.f, buf, start); err != nil {
		return buf, err
	}
	last := alignDown(off + int64(len(rec)))
	seg.tail = append(seg.tail[:0], buf[last-start:int64(n)]...)
	return buf, nil
}

// writeAt writes the journal's files; tests replace it to fail writes.
var writeAt = (*os.File).WriteAt

// leaveDirect turns direct I/O off for the segment's file. O_DSYNC stays
// (fcntl cannot change it), which only makes each write durable twice.
func (seg *segment) leaveDirect() error {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(seg.fd), syscall.F_GETFL, 0)
	if errno == 0 {
		_, _, errno = syscall.Syscall(syscall.SYS_FCNTL, uintptr(seg.fd), syscall.F_SETFL, flags&^syscall.O_DIRECT)
	}
	if errno != 0 {
		return fmt.Errorf("turning direct I/O off: %w", errno)
	}
	seg.direct, seg.tail = false, nil
	return nil
}
