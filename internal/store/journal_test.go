package store_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// childKey is the crash child's signing key, so the parent verifies its
// checkpoints.
var childKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

const (
	childDBEnv    = "COUNTERSIGN_JOURNAL_CHILD_DB"
	childPauseEnv = "COUNTERSIGN_JOURNAL_CHILD_PAUSE"
)

// TestJournalChild is the process TestJournalCrash kills: it records
// through a real Log on the store and prints each acknowledged seq. With
// the pause set, the indexer stops after the first events, so the rest is
// durable only in the journal when the process dies.
func TestJournalChild(t *testing.T) {
	path := os.Getenv(childDBEnv)
	if path == "" {
		t.Skip("run by TestJournalCrash")
	}
	ctx := context.Background()
	st := openAt(t, path)
	log, err := recording.Open(ctx, st, recording.Options{Writer: "w-crash", Key: childKey, CheckpointEvery: 10_000, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		if i == 20 && os.Getenv(childPauseEnv) != "" {
			store.PauseIndexerForTest(st) // never resumed: the process is killed
		}
		c := log.Append(ctx, recording.Event{Type: recording.TypeOperation, SessionID: "s-1", Resource: "pg",
			Actor: "https://idp|alice", Data: map[string]any{"text": fmt.Sprintf("UPDATE t SET a = %d", i)}})
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "acked %d\n", c.Seq())
		out.Flush()
	}
}

// TestJournalCrash kills a recording process with SIGKILL (no Close, no
// indexer drain) and reopens its store: every acknowledged event is
// there, and the trail verifies.
func TestJournalCrash(t *testing.T) {
	t.Parallel()
	for _, pause := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexer-paused=%v", pause), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "crash.db")
			acked := runChildUntil(t, path, pause, 200)
			if pause {
				segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg"))
				if len(segs) != 1 {
					t.Fatalf("after the crash the journal holds %d segments, want 1 (the killed process's)", len(segs))
				}
			}
			ctx := context.Background()
			st := openAt(t, path)
			defer st.Close()
			evs, err := st.Events(ctx, "w-crash", 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(evs)) < acked {
				t.Fatalf("after the crash %d events are stored; %d were acknowledged", len(evs), acked)
			}
			rep, err := recording.Verify(ctx, st, childKey.Public().(ed25519.PublicKey), recording.VerifyOptions{})
			if err != nil || !rep.OK() {
				t.Fatalf("the trail does not verify after the crash: %v\n%s", err, rep)
			}
			if segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg")); len(segs) != 0 {
				t.Errorf("replayed segments were not deleted: %v", segs)
			}
		})
	}
}

// runChildUntil runs TestJournalChild on path and SIGKILLs it once it has
// acknowledged n events; it returns the last acknowledged seq.
func runChildUntil(t *testing.T, path string, pause bool, n int64) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path)
	if pause {
		cmd.Env = append(cmd.Env, childPauseEnv+"=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked int64
	sc := bufio.NewScanner(stdout)
	for acked < n && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if acked < n {
		t.Fatalf("the child stopped after %d acknowledged events: %s", acked, stderr.String())
	}
	return acked
}

// journaled writes a store whose last batches are only in the journal,
// then copies the database and its journal elsewhere while the store is
// live (its indexer paused, so the copy is what a crash would leave). It
// returns the copy's path and its only segment.
func journaled(t *testing.T, indexed, pending []recording.Stored) (path, seg string) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "live.db")
	st := openAt(t, src)
	defer st.Close()
	if len(indexed) > 0 {
		appendOK(t, st, indexed)
		if _, err := st.Events(ctx, indexed[0].Writer, 1, 1); err != nil { // waits for the indexer
			t.Fatal(err)
		}
	}
	resume := store.PauseIndexerForTest(st)
	defer resume()
	for _, e := range pending {
		appendOK(t, st, []recording.Stored{e})
	}
	path = filepath.Join(t.TempDir(), "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		copyFile(t, src+suffix, path+suffix)
	}
	segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(src), "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("the live store has %d segments, want 1", len(segs))
	}
	if err := os.Mkdir(store.JournalDirForTest(path), 0o700); err != nil {
		t.Fatal(err)
	}
	seg = filepath.Join(store.JournalDirForTest(path), filepath.Base(segs[0]))
	copyFile(t, segs[0], seg)
	return path, seg
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err == nil {
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// openAt opens the SQLite store at path or fails the test.
func openAt(t *testing.T, path string) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	return st
}

func appendOK(t *testing.T, st store.Store, evs []recording.Stored) {
	t.Helper()
	if err := st.AppendEvents(context.Background(), evs); err != nil {
		t.Fatalf("AppendEvents(seq %d..): %v", evs[0].Seq, err)
	}
}

func seqs(t *testing.T, st store.Store, w string) []int64 {
	t.Helper()
	evs, err := st.Events(context.Background(), w, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// TestJournalReplay damages a crashed store's segment in the ways a crash
// or a disk can, and opens it: a torn last record is dropped (its caller
// never heard success), anything else refuses to open, naming the file.
func TestJournalReplay(t *testing.T) {
	t.Parallel()
	chain := storetest.Chain("w-r", 1, 6)
	cases := []struct {
		name   string
		damage func(t *testing.T, seg string, end int64) // end: where the last record ends
		want   []int64                                   // seqs stored after the open
		err    string                                    // the open's error, "" for none
	}{
		{name: "intact", damage: func(*testing.T, string, int64) {}, want: []int64{1, 2, 3, 4, 5, 6}},
		{name: "last record cut", want: []int64{1, 2, 3, 4, 5},
			damage: func(t *testing.T, seg string, size int64) { truncate(t, seg, size-10) }},
		{name: "last record's header cut", want: []int64{1, 2, 3, 4, 5},
			damage: func(t *testing.T, seg string, size int64) { last, _ := lastRecord(t, seg); truncate(t, seg, last+5) }},
		{name: "byte of the last record flipped", want: []int64{1, 2, 3, 4, 5},
			damage: func(t *testing.T, seg string, size int64) { flip(t, seg, size-3) }},
		{name: "zeros after the last record", want: []int64{1, 2, 3, 4, 5, 6},
			damage: func(t *testing.T, seg string, size int64) { appendBytes(t, seg, make([]byte, 1<<20)) }},
		{name: "byte of a middle record flipped", err: "is corrupt and a valid record follows",
			damage: func(t *testing.T, seg string, size int64) { flip(t, seg, int64(len(store.SegmentHeaderForTest()))+20) }},
		{name: "length of a middle record changed", err: "is corrupt and a valid record follows",
			damage: func(t *testing.T, seg string, size int64) { flip(t, seg, int64(len(store.SegmentHeaderForTest()))) }},
		{name: "header replaced", err: "not a countersign journal segment",
			damage: func(t *testing.T, seg string, size int64) { flip(t, seg, 1) }},
		{name: "an indexed event changed in the journal", err: "two different events claim one place",
			damage: func(t *testing.T, seg string, size int64) {
				changed := storetest.Chain("w-r", 1, 3)
				changed[1].Data = []byte(`{"forged":true}`)
				appendBytes(t, seg, store.SegmentRecordForTest(t, seg, changed[1:2]))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, seg := journaled(t, chain[:3], chain[3:])
			_, end := lastRecord(t, seg)
			truncate(t, seg, end) // the zeros written ahead: one case puts them back
			tc.damage(t, seg, end)
			st, err := store.OpenSQLite(context.Background(), path)
			if tc.err != "" {
				if err == nil {
					st.Close()
					t.Fatalf("Open succeeded; want an error saying %q", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), seg) {
					t.Fatalf("Open: %v; want it to say %q and name %s", err, tc.err, seg)
				}
				if _, serr := os.Stat(seg); serr != nil {
					t.Fatalf("the segment that could not be replayed is gone: %v", serr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Close()
			if got := seqs(t, st, "w-r"); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("after replay the chain holds %v, want %v", got, tc.want)
			}
			// The torn batch's seq is free again, and the chain goes on.
			appendOK(t, st, chain[len(tc.want):])
		})
	}
}

// lastRecord is where the segment's last record starts and ends, read by
// the records' lengths up to the zeros written ahead.
func lastRecord(t *testing.T, seg string) (start, end int64) {
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(len(store.SegmentHeaderForTest()))
	for off+8 <= int64(len(b)) {
		n := int64(b[off]) | int64(b[off+1])<<8 | int64(b[off+2])<<16 | int64(b[off+3])<<24
		if n == 0 {
			break
		}
		start, off = off, off+8+n
	}
	return start, off
}

func truncate(t *testing.T, path string, size int64) {
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, more []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(more); err != nil {
		t.Fatal(err)
	}
}

// TestJournalBarrier: what AppendEvents acknowledged is read back at
// once, by every reading method, even while the indexer is behind; a
// checkpoint waits for the events it covers.
func TestJournalBarrier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t)
	defer st.Close()
	all := storetest.Chain("w-b", 1, 200)
	for i, e := range all {
		appendOK(t, st, []recording.Stored{e})
		got, err := st.Events(ctx, "w-b", e.Seq, 0)
		if err != nil || len(got) != 1 || string(got[0].Hash) != string(e.Hash) {
			t.Fatalf("Events right after appending seq %d: %d events, %v", e.Seq, len(got), err)
		}
		if i%50 == 0 {
			cp := store.Checkpoint{Writer: "w-b", Seq: e.Seq, Hash: e.Hash, Time: e.Time, Signature: []byte("sig"), KeyID: "k"}
			if err := st.AddCheckpoint(ctx, cp); err != nil {
				t.Fatal(err)
			}
			if cps, err := st.Checkpoints(ctx, "w-b"); err != nil || cps[len(cps)-1].Seq != e.Seq {
				t.Fatalf("Checkpoints after AddCheckpoint(%d): %v, %v", e.Seq, cps, err)
			}
		}
	}
	if ws, err := st.Writers(ctx); err != nil || len(ws) != 1 || ws[0] != "w-b" {
		t.Fatalf("Writers = %v, %v", ws, err)
	}
}

// TestJournalIndexerFails: SQLite refuses the indexer's inserts (a
// trigger an operator's mistake could leave). Appends stay durable; reads
// wait and then name the indexer's error; Close keeps the segment, and
// the next Open stores its events once SQLite takes them again.
func TestJournalIndexerFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.db")
	st := openAt(t, path)
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	chain := storetest.Chain("w-f", 1, 4)
	appendOK(t, st, chain[:2])
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = st.Events(short, "w-f", 1, 0)
	if err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("Events while the indexer fails = %v; want an error naming the indexer's", err)
	}
	appendOK(t, st, chain[2:3])
	if err := st.Close(); err == nil || !strings.Contains(err.Error(), "kept in") {
		t.Fatalf("Close with unindexed events = %v; want an error saying where they are kept", err)
	}
	segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("after Close the journal holds %v, want the unindexed segment", segs)
	}
	if _, err := raw.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	st = openAt(t, path)
	defer st.Close()
	appendOK(t, st, chain[3:])
	if got := seqs(t, st, "w-f"); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("after reopening the chain holds %v, want [1 2 3 4]", got)
	}
}

// TestJournalWriteFails: a write the journal cannot make, nor undo, fails
// the batch and every later one (fail closed), and the refused batch is
// not replayed later.
func TestJournalWriteFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	st := openAt(t, path)
	chain := storetest.Chain("w-w", 1, 4)
	appendOK(t, st, chain[:2])
	store.BreakJournalForTest(t, st)
	if err := st.AppendEvents(ctx, chain[2:3]); err == nil {
		t.Fatal("AppendEvents on a journal that cannot be written succeeded")
	}
	if err := st.AppendEvents(ctx, chain[2:3]); err == nil || !strings.Contains(err.Error(), "no event is accepted") {
		t.Fatalf("the next AppendEvents = %v; want the journal to refuse every append", err)
	}
	if err := st.Ping(ctx); err == nil {
		t.Fatal("Ping succeeds while the journal refuses every append; readiness would lie")
	}
	if got := seqs(t, st, "w-w"); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("the chain holds %v, want [1 2]", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openAt(t, path)
	defer st.Close()
	if got := seqs(t, st, "w-w"); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("after reopening the chain holds %v, want [1 2]", got)
	}
}

// TestJournalSegmentsRoll: with small segments, appends move on to new
// files; the indexed ones are deleted, and Close leaves none.
func TestJournalSegmentsRoll(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "roll.db")
	st := openAt(t, path)
	store.SetSegmentLimitForTest(st, 2048)
	chain := storetest.Chain("w-roll", 1, 300)
	for i := 0; i < len(chain); i += 3 {
		appendOK(t, st, chain[i:i+3])
	}
	if got := seqs(t, st, "w-roll"); len(got) != len(chain) {
		t.Fatalf("the chain holds %d events, want %d", len(got), len(chain))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*")); len(segs) != 0 {
		t.Fatalf("after Close the journal holds %v", segs)
	}
	fi, err := os.Stat(store.JournalDirForTest(path))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("journal directory: %v, %v; want mode 0700", fi, err)
	}
}

// TestJournalSecondProcessSkipsLiveSegment: a second store on the same
// file (a CLI command beside the gateway) does not replay the segment a
// live store holds, and sees its events once indexed.
func TestJournalSecondProcessSkipsLiveSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "two.db")
	live := openAt(t, path)
	defer live.Close()
	resume := store.PauseIndexerForTest(live)
	appendOK(t, live, storetest.Chain("w-live", 1, 2))
	other, err := store.OpenSQLite(ctx, path)
	if err != nil {
		resume()
		t.Fatal(err)
	}
	got := seqs(t, other, "w-live")
	resume()
	if len(got) != 0 {
		t.Fatalf("a second store replayed a live store's segment: %v", got)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, live, "w-live"); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("the live store reads %v, want [1 2]", got)
	}
}

// TestJournalDuplicateWhileIndexerBehind: a batch that repeats seqs only
// the journal holds yet is never accepted: it waits for the indexer (and
// fails when its context ends first), then is refused as a duplicate.
func TestJournalDuplicateWhileIndexerBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t)
	defer st.Close()
	chain := storetest.Chain("w-d", 1, 5)
	resume := store.PauseIndexerForTest(st)
	appendOK(t, st, chain[:3])
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := st.AppendEvents(short, chain[1:3])
	resume()
	if err == nil {
		t.Fatal("a batch repeating journaled seqs was accepted while the indexer was behind")
	}
	if err := st.AppendEvents(ctx, chain[1:4]); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("AppendEvents(seq 2-4 after 1-3) = %v, want ErrDuplicate", err)
	}
	appendOK(t, st, chain[3:])
	if got := seqs(t, st, "w-d"); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("the chain holds %v, want [1 2 3 4 5]", got)
	}
}

// TestJournalCallerReusesBuffers: the indexer stores what was appended,
// not what the caller's reused buffers hold afterwards.
func TestJournalCallerReusesBuffers(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	defer st.Close()
	resume := store.PauseIndexerForTest(st)
	evs := storetest.Chain("w-reuse", 1, 2)
	want := string(evs[1].Data) + string(evs[1].Hash)
	appendOK(t, st, evs)
	for i := range evs {
		clear(evs[i].Data)
		clear(evs[i].Hash)
	}
	resume()
	got, err := st.Events(context.Background(), "w-reuse", 2, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Events: %d, %v", len(got), err)
	}
	if string(got[0].Data)+string(got[0].Hash) != want {
		t.Fatalf("the stored event changed with the caller's buffers: %q", got[0].Data)
	}
}

// TestJournalReplayKeepsRetentionDeletions: retention deleted events a
// dead process's segment still holds; replaying the segment does not
// bring them back.
func TestJournalReplayKeepsRetentionDeletions(t *testing.T) {
	t.Parallel()
	chain := storetest.Chain("w-ret", 1, 6)
	path, _ := journaled(t, nil, chain)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO retention_marks (writer, through, hash, time, signature, key_id)
		VALUES ('w-ret', 4, x'00', 1, x'00', 'k')`); err != nil {
		t.Fatal(err)
	}
	st := openAt(t, path)
	defer st.Close()
	if got := seqs(t, st, "w-ret"); fmt.Sprint(got) != "[5 6]" {
		t.Fatalf("after replay the chain holds %v, want [5 6]: retention's deletions came back", got)
	}
}

// TestJournalPingWhileIndexerFails: while SQLite refuses the indexer,
// every read of the recording waits and appends pile up until they are
// refused; readiness must say so instead of answering ready.
func TestJournalPingWhileIndexerFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ping.db")
	st := openAt(t, path)
	defer st.Close()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	chain := storetest.Chain("w-ping", 1, 2)
	appendOK(t, st, chain[:1])
	// Events returns the indexer's error only once the indexer has failed.
	for {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = st.Events(short, "w-ping", 1, 0)
		cancel()
		if err != nil && strings.Contains(err.Error(), "refused by the test") {
			break
		}
	}
	if err := st.Ping(ctx); err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("Ping while the indexer fails = %v; want an error naming the indexer's", err)
	}
	if _, err := raw.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, st, "w-ping"); fmt.Sprint(got) != "[1]" {
		t.Fatalf("the chain holds %v, want [1]", got)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping once the indexer caught up = %v", err)
	}
}

// TestJournalKeepsSegmentsAfterSyncFails: an fsync of SQLite's files that
// fails may have dropped WAL pages, and SQLite's recovery stops at the
// first missing frame, so a later fsync that succeeds does not make later
// commits durable either. After one failed sync no segment may be
// deleted: the journal stays the durable copy until the next Open
// replays it.
func TestJournalKeepsSegmentsAfterSyncFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "syncfail.db")
	st := openAt(t, path)
	store.SetSegmentLimitForTest(st, 2048)
	store.FailSyncOnceForTest(st)
	chain := storetest.Chain("w-sf", 1, 120)
	for i := 0; i < len(chain); i += 3 {
		appendOK(t, st, chain[i:i+3])
		if _, err := st.Events(ctx, "w-sf", 1, 1); err != nil { // each batch indexed before the next roll
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("after a failed sync the journal holds %d segments; want every segment since kept", len(segs))
	}
	if err := st.Ping(ctx); err == nil {
		t.Fatal("Ping succeeds after SQLite's files could not be synced")
	}
	// Another process opening the store meanwhile (a CLI command) must not
	// replay and delete them: its sync succeeding says nothing of the pages
	// the failed one may have dropped. The segments stay locked.
	other, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg")); len(after) < len(segs) {
		t.Fatalf("another open while the store ran took %d kept segments of %d", len(segs)-len(after), len(segs))
	}
	if err := st.Close(); err != nil {
		t.Log(err)
	}
	st = openAt(t, path)
	defer st.Close()
	if got := seqs(t, st, "w-sf"); len(got) != len(chain) {
		t.Fatalf("after reopening the chain holds %d events, want %d", len(got), len(chain))
	}
	if segs, _ := filepath.Glob(filepath.Join(store.JournalDirForTest(path), "*.seg")); len(segs) != 0 {
		t.Fatalf("the replay left %v", segs)
	}
}

// TestJournalReplayRefusesEveryChangedField: a journal record that gives
// an indexed (writer, seq) a different value in any one field refuses the
// open; no field is left out of the comparison.
func TestJournalReplayRefusesEveryChangedField(t *testing.T) {
	t.Parallel()
	chain := storetest.Chain("w-cf", 1, 3)
	cases := []struct {
		name   string
		change func(e *recording.Stored)
	}{
		{"time", func(e *recording.Stored) { e.Time = e.Time.Add(time.Microsecond) }},
		{"type", func(e *recording.Stored) { e.Type = "forged" }},
		{"session", func(e *recording.Stored) { e.Session = "s-2" }},
		{"resource", func(e *recording.Stored) { e.Resource = "pg-other" }},
		{"actor", func(e *recording.Stored) { e.Actor = "https://idp|mallory" }},
		{"data", func(e *recording.Stored) { e.Data = []byte(`{"forged":true}`) }},
		{"prev_hash", func(e *recording.Stored) { e.PrevHash = append([]byte{1}, e.PrevHash[1:]...) }},
		{"hash", func(e *recording.Stored) { e.Hash = append([]byte{1}, e.Hash[1:]...) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, seg := journaled(t, chain, nil)
			_, end := lastRecord(t, seg)
			truncate(t, seg, end) // the zeros written ahead
			changed := chain[1]
			tc.change(&changed)
			appendBytes(t, seg, store.SegmentRecordForTest(t, seg, []recording.Stored{changed}))
			st, err := store.OpenSQLite(context.Background(), path)
			if err == nil {
				st.Close()
				t.Fatalf("Open replayed a journal event whose %s differs from SQLite's", tc.name)
			}
			if !strings.Contains(err.Error(), "two different events claim one place") {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}
