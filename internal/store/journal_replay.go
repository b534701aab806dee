package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/countersign/countersign/internal/recording"
)

// openJournal creates the journal directory if needed, replays what
// processes that are gone left in it, and starts the indexer.
func (s *SQLite) openJournal(ctx context.Context) error {
	dir := journalDir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: creating the journal directory %s: %w; check the path and its permissions", dir, err)
	}
	// The directory's own entry must be durable before a segment in it
	// is: newSegment syncs the journal directory, not its parent.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("store: syncing the directory of %s: %w", dir, err)
	}
	if err := s.replayJournal(ctx, dir); err != nil {
		return err
	}
	s.journal = newJournal(dir, s.syncSQLite)
	go s.runIndexer()
	return nil
}

// replayJournal stores in SQLite the events of every segment no live
// process holds (its writer died before its indexer stored them), then
// deletes the segment. Segments are replayed oldest first (their names
// start with their creation time).
func (s *SQLite) replayJournal(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: reading the journal directory %s: %w", dir, err)
	}
	for _, ent := range entries {
		path := filepath.Join(dir, ent.Name())
		switch {
		case ent.IsDir():
		case strings.HasSuffix(ent.Name(), journalSuffix):
			if err := s.replaySegment(ctx, path); err != nil {
				return err
			}
		case strings.HasSuffix(ent.Name(), journalTempSuffix):
			if err := removeDeadTemp(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeDeadTemp deletes a segment whose creation a process did not
// finish (it died before renaming it): it never held a record.
func removeDeadTemp(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // being created by a live process
	}
	if stillAt(f, path) {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("store: deleting the unfinished journal segment %s: %w", path, err)
		}
	}
	return nil
}

// replaySegment replays one segment unless a live process holds its lock.
func (s *SQLite) replaySegment(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted since the directory was read: indexed
	}
	if err != nil {
		return fmt.Errorf("store: opening the journal segment %s: %w; check its permissions", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil // a live process writes it and will index it
		}
		return fmt.Errorf("store: locking the journal segment %s: %w", path, err)
	}
	if !stillAt(f, path) {
		return nil // its owner indexed and deleted it before we locked it
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("store: reading the journal segment %s: %w", path, err)
	}
	if err := s.replayData(ctx, data); err != nil {
		return fmt.Errorf("store: replaying the journal segment %s: %w; the file is kept and the store is not opened: "+
			"it holds acknowledged events of the recording, so keep a copy, and restore or repair it before starting again", path, err)
	}
	if err := s.syncSQLite(); err != nil {
		return fmt.Errorf("store: replaying the journal segment %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("store: deleting the replayed journal segment %s: %w", path, err)
	}
	return nil
}

// stillAt reports whether path still names the file f is open on.
func stillAt(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// tornTail is where the valid records of a segment end and how many bytes
// after them are not the zeros written ahead (0 when none).
func tornTail(data []byte, recs []segmentRecord) (off, n int) {
	off, _, _ = readHeader(data) // segmentRecords read it: no error
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		off = last.off + recordHeaderSize + len(last.payload)
	}
	rest := data[off:]
	end := len(rest)
	for end > 0 && rest[end-1] == 0 {
		end--
	}
	return off, end
}

// replayData stores the events of a segment's records, many records per
// transaction.
func (s *SQLite) replayData(ctx context.Context, data []byte) error {
	recs, err := segmentRecords(data)
	if err != nil {
		return err
	}
	if off, n := tornTail(data, recs); n > 0 {
		// Normally the write a crash interrupted, never acknowledged; said
		// aloud because damage reaching the end of a file looks the same.
		slog.Warn("store: dropped the torn end of a journal segment (a write a crash interrupted)",
			"offset", off, "bytes", n)
	}
	marks, err := s.retainedThrough(ctx)
	if err != nil {
		return err
	}
	var events []recording.Stored
	for i, r := range recs {
		n := len(events)
		if events, err = decodeRecord(events, r.payload); err != nil {
			return fmt.Errorf("the record at offset %d: %w", r.off, err)
		}
		events = append(events[:n], slices.DeleteFunc(events[n:], func(e recording.Stored) bool {
			through, ok := marks[e.Writer]
			return ok && e.Seq <= through
		})...)
		if len(events) > 0 && (len(events) >= indexBatchEvents || i == len(recs)-1) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.storeEvents(events); err != nil {
				return err
			}
			events = events[:0]
		}
	}
	return nil
}

// retainedThrough maps each writer to the seq through which retention
// deleted its events. A segment that outlived that deletion (a quiet
// gateway's segment can be older than the retention cutoff when the
// process dies) must not bring the deleted events back.
func (s *SQLite) retainedThrough(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT writer, through FROM retention_marks`)
	if err != nil {
		return nil, fmt.Errorf("reading the retention marks: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			w       string
			through int64
		)
		if err := rows.Scan(&w, &through); err != nil {
			return nil, fmt.Errorf("reading the retention marks: %w", err)
		}
		out[w] = through
	}
	return out, rows.Err()
}
