package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// The journal is the durable medium of SQLite's AppendEvents. A SQLite
// commit with synchronous=FULL costs a WAL write, an fsync and the
// driver's work on every statement: the recording's group commit, on the
// path of every operation, spent most of its time there. An append to a
// file made durable at once costs a fraction of that, so AppendEvents
// writes the batch as one record of this process's journal segment in one
// synchronous direct write (journal_direct.go; a write and an fdatasync
// where the file system takes no direct I/O), and returns; a background
// indexer (journal_index.go) then inserts what was journaled into SQLite,
// many batches per transaction and without an fsync of its own (the
// journal holds the events durably meanwhile), and a segment is deleted
// only once SQLite's files are synced with all of it. Open replays what
// a process that died left in the journal (journal_replay.go).
//
// AppendEvents still returns only when the batch is durable (DESIGN.md
// invariant 2), and refuses what SQLite would have refused, before
// writing: a (writer, seq) stored or journaled already, a seq twice in the
// batch, a time SQLite cannot keep, a missing hash. Every method that
// reads or changes the events, checkpoints or retention marks first waits
// for the indexer to store what was journaled before the call
// (waitIndexed), so this process reads its own appends as before, and a
// checkpoint is never stored ahead of the events it covers.
type journal struct {
	dir   string
	log   *slog.Logger
	limit int64        // segmentLimit; tests lower it
	sync  func() error // makes what the indexer stored in SQLite durable

	// mu serializes appends: the seq checks and the durable write.
	mu     sync.Mutex
	seg    *segment         // where appends go; nil until the first
	buf    []byte           // the record being written, reused
	dbuf   []byte           // its aligned copy for a direct write (journal_direct.go), reused
	next   map[string]int64 // per writer: no seq >= next is stored or journaled
	runs   []writerRun      // the batch's writers, reused
	closed bool
	// noDirect: a direct write failed with EINVAL (a file system that
	// opens files O_DIRECT but wants another alignment), so segments are
	// written through the page cache from then on.
	noDirect bool

	// qmu guards the indexer's queue and progress, and the segments.
	qmu         sync.Mutex
	queue       []journalRecord // journaled, not yet indexed, in order
	journaled   uint64          // records appended since open
	indexed     uint64          // records of those stored in SQLite
	indexErr    error           // the indexer's last error; nil once it succeeds
	progress    chan struct{}   // closed (and replaced) when indexed or indexErr change
	stopped     bool            // the indexer has exited
	waiters     int             // waitIndexed calls waiting
	queuedBytes int             // record bytes in queue
	failed      error           // a failed write left the file unknown: every append fails
	syncFailed  error           // SQLite's files could not be synced: no segment is deleted any more
	segs        []*segment      // segments with an open file
	// kept holds indexed segments not deleted because a sync failed: open,
	// so that their locks keep another process (a CLI command) from
	// replaying and deleting them while this one runs; closed by close.
	kept []*segment

	wake      chan struct{} // capacity 1: "the queue is not empty"
	hurry     chan struct{} // capacity 1: "a reader waits"
	stop      chan struct{} // closed by close
	done      chan struct{} // closed when the indexer has exited
	closeOnce sync.Once
	closeErr  error
	lastPass  time.Time // when the indexer last emptied the queue; the indexer's own
}

// journalRecord is one AppendEvents call waiting for the indexer: a copy
// of its events (the caller may reuse its own), the size of its record
// and the segment that holds it.
type journalRecord struct {
	events []recording.Stored
	size   int
	seg    *segment
}

// segment is one journal file, held under an exclusive flock for as long
// as this process has it open: another process's Open replays only files
// it can lock, so never one that is being written.
type segment struct {
	f    *os.File
	fd   int
	path string
	size int64 // bytes of header and records, written and synced; under journal.mu
	// zeroed is the file's size: from size to zeroed it holds zeros,
	// written ahead so that a record's write overwrites allocated blocks
	// and its fdatasync need not commit the file system's journal.
	zeroed int64
	// key sums the segment's records (journal_format.go: a record valid
	// for this segment cannot be forged by a user's text).
	key frameKey
	// direct: the file is open O_DIRECT|O_DSYNC (journal_direct.go), so
	// a write is durable when it returns and zeroed is a block boundary;
	// tail is then the file's bytes from the last block boundary at or
	// below size up to size.
	direct bool
	tail   []byte

	// Under journal.qmu.
	pending int  // records queued, not yet indexed
	sealed  bool // appends go to a newer segment
}

// writerRun is one writer of a batch being checked: the seq its next
// event must have to take the fast path, and the next seq after the batch.
type writerRun struct {
	writer          string
	start, cur, end int64
}

const (
	// journalSuffix names segment files; the journal directory is
	// <database>.journal.
	journalSuffix = ".seg"
	// journalTempSuffix names a segment being created; Open deletes those
	// no live process holds.
	journalTempSuffix = ".new"
	// maxQueued bounds the bytes journaled and not yet indexed that the
	// indexer's queue holds in memory: when SQLite refuses the indexer for
	// long, appends fail (the operations are refused) rather than the
	// process growing without end.
	maxQueued = 256 << 20
	// segmentLimit is the size at which appends move to a new segment, so
	// that indexed records are deleted with their file.
	segmentLimit = 64 << 20
	// zeroChunk is how far ahead of the last record a segment is filled
	// with zeros. An fdatasync after an append that grows the file commits
	// the file system's metadata too (on ext4 here 0.9 ms a write, against
	// 0.3 ms for an overwrite, dd oflag=dsync): zeros written ahead make
	// that one fdatasync per chunk instead of one per record.
	zeroChunk = 1 << 20
	// maxIndexBackoff bounds the wait between the indexer's retries.
	maxIndexBackoff = 5 * time.Second
)

func journalDir(dbPath string) string { return dbPath + ".journal" }

func newJournal(dir string, sync func() error) *journal {
	return &journal{dir: dir, sync: sync, log: slog.Default(), limit: segmentLimit, next: map[string]int64{},
		progress: make(chan struct{}), wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// AppendEvents makes the batch durable in this process's journal segment
// (one synchronous write) and queues it for the indexer. It returns
// ErrDuplicate when a (writer, seq) of the batch is stored or journaled
// already, or appears twice in it; then nothing of the batch is kept.
func (s *SQLite) AppendEvents(ctx context.Context, events []recording.Stored) error {
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: appending events: %w", err)
	}
	return s.journal.append(ctx, s, events)
}

func (j *journal) append(ctx context.Context, s *SQLite, events []recording.Stored) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errors.New("store: the store is closed; no event can be appended")
	}
	if err := j.backlog(); err != nil {
		return err
	}
	if err := j.check(ctx, s, events); err != nil {
		return err
	}
	var err error
	if j.buf, err = appendRecord(j.buf[:0], events); err != nil {
		return err
	}
	if err := j.roll(len(j.buf)); err != nil {
		return err
	}
	seg := j.seg
	sumRecord(j.buf, seg.key) // the sum depends on the segment roll chose
	if err := j.write(seg, j.buf); err != nil {
		return err
	}
	for _, r := range j.runs {
		j.next[r.writer] = r.end
	}
	j.enqueue(journalRecord{events: cloneEvents(events), size: len(j.buf), seg: seg})
	return nil
}

// cloneEvents copies events for the indexer: the slice, and their bytes
// into one block (strings are immutable already). Two allocations a batch,
// and nothing to decode.
func cloneEvents(events []recording.Stored) []recording.Stored {
	n := 0
	for i := range events {
		n += len(events[i].Data) + len(events[i].PrevHash) + len(events[i].Hash)
	}
	block := make([]byte, 0, n)
	out := make([]recording.Stored, len(events))
	for i, e := range events {
		var data []byte
		data, block = cloneInto(block, e.Data)
		e.Data = data
		e.PrevHash, block = cloneInto(block, e.PrevHash)
		e.Hash, block = cloneInto(block, e.Hash)
		out[i] = e
	}
	return out
}

// cloneInto appends b to block and returns the copy (nil stays nil).
func cloneInto(block, b []byte) (cp, _ []byte) {
	if b == nil {
		return nil, block
	}
	start := len(block)
	block = append(block, b...)
	return block[start:len(block):len(block)], block
}

// err is why the journal is not healthy, or nil: appends fail for good
// (a write that could not be undone), or SQLite refuses the indexer, so
// every read of the recording waits and appends pile up until backlog
// refuses them. Readiness (Ping) reports it instead of answering ready.
func (j *journal) err() error {
	if j == nil {
		return nil
	}
	j.qmu.Lock()
	defer j.qmu.Unlock()
	switch {
	case j.failed != nil:
		return j.failed
	case j.syncFailed != nil:
		return fmt.Errorf("store: SQLite's files could not be synced, so the journal keeps every segment until the next start replays them (check the disk): %w", j.syncFailed)
	case j.queuedBytes > maxQueued:
		return fmt.Errorf("store: %d MiB of journaled events are waiting for SQLite, so appends are refused until the indexer catches up (its last error: %v)", j.queuedBytes>>20, j.indexErr)
	case j.indexErr != nil && j.indexed < j.journaled:
		return fmt.Errorf("store: %d journaled batches cannot be stored in SQLite, so reads of the recording wait (retrying): %w", j.journaled-j.indexed, j.indexErr)
	}
	return nil
}

// backlog refuses appends after a write that could not be undone, and
// while the indexer is too far behind.
func (j *journal) backlog() error {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	if j.failed != nil {
		return j.failed
	}
	if j.queuedBytes > maxQueued {
		return fmt.Errorf("store: %d MiB of journaled events are waiting for SQLite (the indexer's last error: %v); no more are accepted until it catches up", j.queuedBytes>>20, j.indexErr)
	}
	return nil
}

// check refuses a batch that SQLite would refuse. The fast path, a batch
// that continues each of its writers' chains exactly, needs no query:
// nothing at or after a writer's next seq exists.
func (j *journal) check(ctx context.Context, s *SQLite, events []recording.Stored) error {
	j.runs = j.runs[:0]
	fast := true
	for i := range events {
		e := &events[i]
		if e.PrevHash == nil || e.Hash == nil {
			return fmt.Errorf("store: event %s/%d has no hash or previous hash; the recording chains every event it stores", e.Writer, e.Seq)
		}
		if e.Seq == math.MaxInt64 {
			return fmt.Errorf("store: event %s/%d: the seq is out of range", e.Writer, e.Seq)
		}
		r, err := j.run(ctx, s, e.Writer)
		if err != nil {
			return err
		}
		if e.Seq != r.cur {
			fast = false
		}
		r.cur, r.end = e.Seq+1, max(r.end, e.Seq+1)
	}
	if fast {
		return nil
	}
	return j.checkSlow(ctx, s, events)
}

// run returns the batch's entry for writer, adding it (with the writer's
// next seq, read from SQLite the first time this process sees it).
func (j *journal) run(ctx context.Context, s *SQLite, writer string) (*writerRun, error) {
	for i := range j.runs {
		if j.runs[i].writer == writer {
			return &j.runs[i], nil
		}
	}
	next, ok := j.next[writer]
	if !ok {
		// This process never journaled an event of writer, so SQLite
		// holds all there is.
		if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE writer = ?`, writer).Scan(&next); err != nil {
			return nil, fmt.Errorf("store: reading the last event of %s: %w", writer, err)
		}
		j.next[writer] = next
	}
	j.runs = append(j.runs, writerRun{writer: writer, start: next, cur: next, end: next})
	return &j.runs[len(j.runs)-1], nil
}

// checkSlow checks a batch that does not simply continue its chains: a
// seq twice in it, or one below a writer's next seq that SQLite holds.
// j.mu is held, so nothing is journaled meanwhile: once the indexer has
// caught up, SQLite holds everything there is.
func (j *journal) checkSlow(ctx context.Context, s *SQLite, events []recording.Stored) error {
	type key struct {
		w   string
		seq int64
	}
	seen := make(map[key]bool, len(events))
	var older []key
	for _, e := range events {
		k := key{e.Writer, e.Seq}
		if seen[k] {
			return fmt.Errorf("store: appending events: %s/%d is twice in the batch: %w", e.Writer, e.Seq, ErrDuplicate)
		}
		seen[k] = true
		if r, _ := j.run(ctx, s, e.Writer); e.Seq < r.start {
			older = append(older, k)
		}
	}
	if len(older) == 0 {
		return nil
	}
	if err := s.waitIndexed(ctx); err != nil {
		return err
	}
	for _, k := range older {
		var one int
		err := s.r.QueryRowContext(ctx, `SELECT 1 FROM events WHERE writer = ? AND seq = ?`, k.w, k.seq).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("store: appending events %s/%d: %w", k.w, k.seq, ErrDuplicate)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: checking event %s/%d: %w", k.w, k.seq, err)
		}
	}
	return nil
}

// roll makes sure a segment takes the next record of n bytes: the first
// append opens one, and a full one is sealed for a new one.
func (j *journal) roll(n int) error {
	if j.seg != nil && (j.seg.size == int64(journalHeaderSize) || j.seg.size+int64(n) <= j.limit) {
		return nil
	}
	// Another process's Open deletes a ".new" file it can lock: one it
	// opened between this process creating the file and locking it makes
	// newSegment fail, so a new name is tried.
	seg, err := j.newSegment()
	for try := 1; err != nil && try < 3; try++ {
		seg, err = j.newSegment()
	}
	if err != nil {
		return fmt.Errorf("store: starting a journal segment in %s: %w; check the directory's permissions and free space", j.dir, err)
	}
	old := j.seg
	j.seg = seg
	j.qmu.Lock()
	j.segs = append(j.segs, seg)
	j.qmu.Unlock()
	if old != nil {
		j.seal(old)
	}
	return nil
}

// newSegment creates a segment file with a fresh name, locks it and makes
// its header and its directory entry durable. It is made under a name
// Open does not replay and renamed once locked: another process's Open
// must never take, find empty and delete a segment this one is about to
// write to.
func (j *journal) newSegment() (*segment, error) {
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	name := fmt.Sprintf("%020d-%d-%s", time.Now().UnixNano(), os.Getpid(), hex.EncodeToString(rnd))
	tmp, path := filepath.Join(j.dir, name+journalTempSuffix), filepath.Join(j.dir, name+journalSuffix)
	f, direct, err := createSegmentFile(tmp, j.noDirect)
	if err != nil {
		return nil, err
	}
	header, key := appendHeader(make([]byte, 0, journalHeaderSize))
	seg := &segment{f: f, fd: int(f.Fd()), path: path, size: int64(len(header)), zeroed: int64(len(header)),
		key: key, direct: direct}
	err = syscall.Flock(seg.fd, syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err != nil:
	case direct:
		if err = seg.writeHeaderDirect(header); errors.Is(err, syscall.EINVAL) {
			j.noDirect = true // roll tries again, through the page cache
		}
	default:
		if _, err = f.WriteAt(header, 0); err == nil {
			err = seg.zeroAhead(seg.size)
		}
	}
	if err == nil {
		err = syscall.Fdatasync(seg.fd)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		_ = os.Remove(path)
		_ = f.Close()
		return nil, err
	}
	return seg, nil
}

// syncDir makes the directory's entries (a new segment's name) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write appends rec at the segment's end, durably (put). When that fails,
// the file is cut back to where the record began and synced, so the
// refused batch can never be replayed (its seqs go to the next batch);
// when that fails too, the journal refuses every later append.
func (j *journal) write(seg *segment, rec []byte) error {
	off := seg.size
	err := j.put(seg, rec)
	if seg.direct && errors.Is(err, syscall.EINVAL) {
		// A file system that opened the file for direct I/O but wants
		// another alignment: this record and the rest go through the
		// page cache (the bytes before off are unchanged either way).
		j.noDirect = true
		if err = seg.leaveDirect(); err == nil {
			err = j.put(seg, rec)
		}
	}
	if err == nil {
		seg.size += int64(len(rec))
		return nil
	}
	err = fmt.Errorf("store: writing the journal %s: %w", seg.path, err)
	if uerr := undoWrite(seg, off); uerr != nil {
		err = fmt.Errorf("%w; cutting the file back to offset %d failed too (%v), so no event is accepted until countersign restarts (check the disk)", err, off, uerr)
		j.qmu.Lock()
		j.failed = err
		j.qmu.Unlock()
		j.log.Error("store: the journal refuses every append", "segment", seg.path, "err", err)
	}
	return err
}

// put writes rec at the segment's end and makes it durable: one direct
// write, or a write and fdatasync.
func (j *journal) put(seg *segment, rec []byte) error {
	end := seg.size + int64(len(rec))
	if seg.direct {
		end = alignUp(end) // the write goes to the block boundary
	}
	if err := seg.zeroAhead(end); err != nil {
		return err
	}
	if seg.direct {
		var err error
		j.dbuf, err = seg.writeDirect(j.dbuf, rec)
		return err
	}
	if _, err := seg.f.WriteAt(rec, seg.size); err != nil {
		return err
	}
	return syscall.Fdatasync(seg.fd)
}

func undoWrite(seg *segment, off int64) error {
	seg.zeroed = off
	if seg.direct {
		// Direct writes of zeros start at a block boundary; the block
		// that holds off is written whole by the next record's write.
		seg.zeroed = alignUp(off)
	}
	if err := seg.f.Truncate(off); err != nil {
		return err
	}
	return syscall.Fdatasync(seg.fd)
}

// zeros is what zeroAhead writes; aligned for direct writes.
var zeros = alignedBuf(nil, zeroChunk)

// zeroAhead makes sure the file holds zeros up to end, writing a chunk
// beyond it when it does not; a direct write is durable on its own, a
// buffered one by the caller's fdatasync.
func (seg *segment) zeroAhead(end int64) error {
	for seg.zeroed < end {
		if _, err := writeAt(seg.f, zeros, seg.zeroed); err != nil {
			return err
		}
		seg.zeroed += zeroChunk
	}
	return nil
}

// enqueue hands a durable record to the indexer.
func (j *journal) enqueue(r journalRecord) {
	j.qmu.Lock()
	j.queue = append(j.queue, r)
	j.queuedBytes += r.size
	r.seg.pending++
	j.journaled++
	j.qmu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default: // the indexer is already told
	}
}

// seal marks seg as taking no more appends, and deletes it if the indexer
// has stored all of it.
func (j *journal) seal(seg *segment) {
	j.qmu.Lock()
	seg.sealed = true
	done := seg.pending == 0
	if done {
		j.forget(seg)
	}
	j.qmu.Unlock()
	if done {
		j.remove(seg)
	}
}

// forget drops seg from the open segments; j.qmu is held.
func (j *journal) forget(seg *segment) {
	for i, s := range j.segs {
		if s == seg {
			j.segs = append(j.segs[:i], j.segs[i+1:]...)
			return
		}
	}
}

// remove deletes a segment whose every record is in SQLite, then closes
// it (which releases its lock). A segment that cannot be deleted is
// replayed by the next Open: its events are in SQLite already, so that
// stores nothing twice.
//
// Once a sync has failed, no segment is deleted any more: the failed
// fsync may have dropped WAL pages the kernel then counts as written, and
// SQLite's recovery stops at the first missing frame, so a later fsync
// that succeeds does not make later commits durable either.
func (j *journal) remove(seg *segment) {
	j.qmu.Lock()
	failed := j.syncFailed
	j.qmu.Unlock()
	err := failed
	if err == nil {
		err = j.sync()
	}
	if err != nil {
		// The indexer commits without fsync (withoutSync): until SQLite's
		// files are synced the segment is what makes its events durable.
		if failed == nil {
			j.qmu.Lock()
			j.syncFailed = err
			j.qmu.Unlock()
			j.log.Error("store: SQLite's files could not be synced, so no indexed journal segment is deleted any more; the next start replays them harmlessly (check the disk)", "segment", seg.path, "err", err)
		}
		j.qmu.Lock()
		j.kept = append(j.kept, seg)
		j.qmu.Unlock()
		return
	}
	if err := os.Remove(seg.path); err != nil {
		j.log.Warn("store: an indexed journal segment could not be deleted; the next start replays it harmlessly", "segment", seg.path, "err", err)
	}
	_ = seg.f.Close()
}

// close stops appends, lets the indexer store everything journaled, and
// deletes the segments. What the indexer could not store stays in its
// segment file for the next Open.
func (j *journal) close() error {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		seg := j.seg
		j.seg = nil
		j.mu.Unlock()
		close(j.stop)
		<-j.done
		if seg != nil {
			j.seal(seg)
		}
		j.qmu.Lock()
		left, open, lastErr, syncErr := len(j.queue), j.segs, j.indexErr, j.syncFailed
		kept := j.kept
		j.segs, j.kept = nil, nil
		j.qmu.Unlock()
		var paths []string
		for _, s := range open {
			paths = append(paths, s.path)
			_ = s.f.Close()
		}
		for _, s := range kept {
			_ = s.f.Close()
		}
		switch {
		case left > 0:
			j.closeErr = fmt.Errorf("store: %d journaled batches could not be stored in SQLite (%v); they are kept in %v and stored when the database is next opened", left, lastErr, paths)
		case syncErr != nil:
			j.closeErr = fmt.Errorf("store: SQLite's files could not be synced (%v), so the journal's segments are kept in %s and replayed when the database is next opened; check the disk", syncErr, j.dir)
		}
	})
	return j.closeErr
}
