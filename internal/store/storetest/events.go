package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/store"
)

// Chain returns n chained events of writer from seq on, as the recording
// makes them (times cut to microseconds, hashes over the canonical form).
// Benchmarks use it too.
func Chain(writer string, from int64, n int) []recording.Stored {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := make([]byte, recording.HashSize)
	var buf []byte
	out := make([]recording.Stored, n)
	for i := range out {
		seq := from + int64(i)
		e := recording.Stored{
			Writer: writer, Seq: seq, Time: base.Add(time.Duration(seq) * 1001 * time.Microsecond),
			Type: recording.TypeOperation, Session: "s-1", Resource: "pg-prod", Actor: "https://idp|alice",
			Data:     json.RawMessage(fmt.Sprintf(`{"kind":"write","text":"UPDATE t SET a = %d","n":%d}`, seq, seq)),
			PrevHash: prev,
		}
		e.Hash, buf = recording.ChainHash(buf, prev, e)
		out[i], prev = e, e.Hash
	}
	return out
}

func chain(writer string, from int64, n int) []recording.Stored { return Chain(writer, from, n) }

func appendOK(t *testing.T, st store.Store, evs []recording.Stored) {
	t.Helper()
	if err := st.AppendEvents(ctxOf(t), evs); err != nil {
		t.Fatalf("AppendEvents(%d events from seq %d): %v", len(evs), evs[0].Seq, err)
	}
}

func events(t *testing.T, st store.Store, w string, from int64, limit int) []recording.Stored {
	t.Helper()
	got, err := st.Events(ctxOf(t), w, from, limit)
	if err != nil {
		t.Fatalf("Events(%s, %d, %d): %v", w, from, limit, err)
	}
	return got
}

func testEventsRoundTrip(t *testing.T, st store.Store) {
	w := unique("w-rt")
	want := chain(w, 1, 5)
	// Odd but legal values come back byte for byte: no data, empty
	// strings, unicode, JSON whose spacing and key order jsonb would change.
	want[1].Data = nil
	want[2].Session, want[2].Resource, want[2].Actor = "", "", ""
	want[3].Data = json.RawMessage(`{"z": 1,  "a":"é\u0000ß"}`)
	want[4].Time = time.Date(2262, 1, 1, 0, 0, 0, 999999000, time.UTC)
	appendOK(t, st, want)
	got := events(t, st, w, 1, 0)
	if len(got) != len(want) {
		t.Fatalf("Events returned %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// sameEvent compares every field the chain hash covers, bytes exactly.
func sameEvent(a, b recording.Stored) bool {
	return a.Writer == b.Writer && a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Time.Location() == time.UTC &&
		a.Type == b.Type && a.Session == b.Session && a.Resource == b.Resource && a.Actor == b.Actor &&
		string(a.Data) == string(b.Data) && slices.Equal(a.PrevHash, b.PrevHash) && slices.Equal(a.Hash, b.Hash)
}

func testEventsPaging(t *testing.T, st store.Store) {
	w := unique("w-page")
	all := chain(w, 1, 30)
	// Appended out of seq order, in three commits: Events orders by seq.
	appendOK(t, st, all[20:])
	appendOK(t, st, all[:10])
	appendOK(t, st, all[10:20])
	appendOK(t, st, chain(unique("w-other"), 1, 3)) // another chain stays apart
	cases := []struct {
		from        int64
		limit       int
		first, last int64 // 0, 0: none
	}{
		{1, 0, 1, 30}, {1, 10, 1, 10}, {11, 10, 11, 20}, {25, 100, 25, 30}, {31, 0, 0, 0}, {0, 1, 1, 1},
	}
	for _, c := range cases {
		got := events(t, st, w, c.from, c.limit)
		if c.first == 0 {
			if len(got) != 0 {
				t.Errorf("Events(from %d) = %d events, want none", c.from, len(got))
			}
			continue
		}
		if len(got) != int(c.last-c.first+1) || got[0].Seq != c.first || got[len(got)-1].Seq != c.last {
			t.Errorf("Events(from %d, limit %d) = %d events, want seq %d..%d", c.from, c.limit, len(got), c.first, c.last)
			continue
		}
		for i, e := range got {
			if !sameEvent(e, all[c.first-1+int64(i)]) {
				t.Errorf("Events(from %d)[%d] = seq %d, differs from what was appended", c.from, i, e.Seq)
			}
		}
	}
	if got := events(t, st, unique("w-none"), 1, 0); len(got) != 0 {
		t.Errorf("Events of an unknown writer = %d events, want none", len(got))
	}
}

func testEventsDuplicate(t *testing.T, st store.Store) {
	w := unique("w-dup")
	appendOK(t, st, chain(w, 1, 3))
	// A batch that overlaps the stored chain fails whole: seq 4 and 5 must
	// not be stored either.
	err := st.AppendEvents(ctxOf(t), chain(w, 3, 3))
	wantErrIs(t, "AppendEvents(existing seq)", err, store.ErrDuplicate)
	if got := events(t, st, w, 1, 0); len(got) != 3 {
		t.Fatalf("after a refused batch the chain has %d events, want 3 (all or none)", len(got))
	}
	appendOK(t, st, chain(w, 4, 2))
}

func testEventsDuplicateInBatch(t *testing.T, st store.Store) {
	w := unique("w-dupb")
	evs := chain(w, 1, 4)
	evs[3].Seq = 2
	wantErrIs(t, "AppendEvents(seq twice in a batch)", st.AppendEvents(ctxOf(t), evs), store.ErrDuplicate)
	if got := events(t, st, w, 1, 0); len(got) != 0 {
		t.Fatalf("after a refused batch the chain has %d events, want none", len(got))
	}
}

func testEventsEmpty(t *testing.T, st store.Store) {
	if err := st.AppendEvents(ctxOf(t), nil); err != nil {
		t.Fatalf("AppendEvents(nil): %v", err)
	}
}

func testWriters(t *testing.T, st store.Store) {
	a, b, c := unique("w-a"), unique("w-b"), unique("w-c")
	appendOK(t, st, chain(b, 1, 1))
	appendOK(t, st, chain(a, 1, 1))
	appendOK(t, st, chain(b, 2, 1))
	// A batch of two chains registers both.
	appendOK(t, st, append(chain(c, 1, 1), chain(unique("w-d"), 1, 1)...))
	got, err := st.Writers(ctxOf(t))
	if err != nil {
		t.Fatalf("Writers: %v", err)
	}
	ib, ia, ic := slices.Index(got, b), slices.Index(got, a), slices.Index(got, c)
	if ib < 0 || ia < 0 || ic < 0 {
		t.Fatalf("Writers = %v, misses one of %s %s %s", got, b, a, c)
	}
	if !(ib < ia && ia < ic) {
		t.Errorf("Writers lists %s at %d, %s at %d, %s at %d; want oldest first", b, ib, a, ia, c, ic)
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(got)))); n != len(got) {
		t.Errorf("Writers lists a writer twice: %v", got)
	}
}

func testCheckpoints(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	w := unique("w-cp")
	evs := chain(w, 1, 4)
	appendOK(t, st, evs)
	sig := sha256.Sum256([]byte("signature"))
	mk := func(e recording.Stored, final bool) store.Checkpoint {
		return store.Checkpoint{Writer: w, Seq: e.Seq, Hash: e.Hash, Time: e.Time.Add(time.Second),
			Signature: append(sig[:], sig[:]...), KeyID: "ed25519:abcd", Final: final}
	}
	want := []store.Checkpoint{mk(evs[1], false), mk(evs[3], true)}
	for _, c := range []store.Checkpoint{want[1], want[0]} { // stored out of order
		if err := st.AddCheckpoint(ctx, c); err != nil {
			t.Fatalf("AddCheckpoint(%d): %v", c.Seq, err)
		}
	}
	wantErrIs(t, "AddCheckpoint(same seq)", st.AddCheckpoint(ctx, want[0]), store.ErrDuplicate)
	got, err := st.Checkpoints(ctx, w)
	if err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Checkpoints = %+v\nwant          %+v", got, want)
	}
	// A chain that closes before any event still gets its checkpoint.
	empty := store.Checkpoint{Writer: unique("w-cp0"), Hash: make([]byte, 32), Time: evs[0].Time, Signature: sig[:], KeyID: "k", Final: true}
	if err := st.AddCheckpoint(ctx, empty); err != nil {
		t.Fatalf("AddCheckpoint(seq 0): %v", err)
	}
	if got, err := st.Checkpoints(ctx, unique("w-none")); err != nil || len(got) != 0 {
		t.Errorf("Checkpoints(unknown) = %v, %v; want none", got, err)
	}
}

func testAdminEvents(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	actor := unique("admin")
	before := now(t, st)
	for i := range 3 {
		e := store.AdminEvent{Actor: actor, Action: fmt.Sprintf("token.issue.%d", i), Detail: `{"token_id":"tok-1"}`}
		if err := st.AddAdminEvent(ctx, e); err != nil {
			t.Fatalf("AddAdminEvent: %v", err)
		}
	}
	fixed := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	if err := st.AddAdminEvent(ctx, store.AdminEvent{Time: fixed, Actor: actor, Action: "config.reload"}); err != nil {
		t.Fatalf("AddAdminEvent(with time): %v", err)
	}
	all, err := st.AdminEvents(ctx, 0)
	if err != nil {
		t.Fatalf("AdminEvents: %v", err)
	}
	var mine []store.AdminEvent
	for _, e := range all {
		if e.Actor == actor {
			mine = append(mine, e)
		}
	}
	wantActions := []string{"config.reload", "token.issue.2", "token.issue.1", "token.issue.0"}
	var actions []string
	for i, e := range mine {
		actions = append(actions, e.Action)
		if i > 0 && e.ID >= mine[i-1].ID {
			t.Errorf("AdminEvents not newest first: id %d after %d", e.ID, mine[i-1].ID)
		}
	}
	if !slices.Equal(actions, wantActions) {
		t.Fatalf("AdminEvents = %v, want newest first %v", actions, wantActions)
	}
	if !mine[0].Time.Equal(fixed) || mine[1].Time.Before(before) || mine[1].Detail != `{"token_id":"tok-1"}` {
		t.Errorf("AdminEvents[0..1] = %+v, %+v: want the given time, then the store's clock and the detail", mine[0], mine[1])
	}
	if got, err := st.AdminEvents(ctx, 2); err != nil || len(got) != 2 {
		t.Errorf("AdminEvents(limit 2) = %d events, %v; want 2", len(got), err)
	}
}
