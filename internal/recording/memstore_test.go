package recording_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// memStore is a minimal in-memory Store for the chain logic's unit tests;
// the same attacks also run against the real SQLite store (sqlite_test.go).
type memStore struct {
	mu      sync.Mutex
	writers []string
	events  map[string][]recording.Stored
	cps     map[string][]recording.Checkpoint
	marks   map[string]recording.RetentionMark
	fail    atomic.Bool // AppendEvents and AddCheckpoint fail while set
}

func newMemStore() *memStore {
	return &memStore{events: map[string][]recording.Stored{}, cps: map[string][]recording.Checkpoint{}}
}

var errStoreDown = errors.New("store down (test)")

func (m *memStore) AppendEvents(_ context.Context, evs []recording.Stored) error {
	if m.fail.Load() {
		return errStoreDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		list := m.events[e.Writer]
		if n := len(list); n > 0 && list[n-1].Seq >= e.Seq {
			return errors.New("duplicate seq")
		}
	}
	for _, e := range evs {
		if !slices.Contains(m.writers, e.Writer) {
			m.writers = append(m.writers, e.Writer)
		}
		e.Data = bytes.Clone(e.Data)
		m.events[e.Writer] = append(m.events[e.Writer], e)
	}
	return nil
}

func (m *memStore) Events(_ context.Context, w string, from int64, limit int) ([]recording.Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []recording.Stored
	for _, e := range m.events[w] {
		if e.Seq >= from && (limit == 0 || len(out) < limit) {
			e.Data = bytes.Clone(e.Data)
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) Writers(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.writers), nil
}

func (m *memStore) AddCheckpoint(_ context.Context, c recording.Checkpoint) error {
	if m.fail.Load() {
		return errStoreDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.cps[c.Writer] {
		if have.Seq == c.Seq {
			return errors.New("checkpoint exists") // as the real stores: one per (writer, seq)
		}
	}
	m.cps[c.Writer] = append(m.cps[c.Writer], c)
	return nil
}

func (m *memStore) Checkpoints(_ context.Context, w string) ([]recording.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.cps[w]), nil
}

// The attacks, done the way someone with write access to the store would.

func (m *memStore) changeData(t *testing.T, w string, seq int64) {
	m.edit(t, w, seq, func(e *recording.Stored) { e.Data = bytes.Replace(e.Data, []byte("7"), []byte("8"), 1) })
}

func (m *memStore) edit(t *testing.T, w string, seq int64, f func(*recording.Stored)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.events[w] {
		if m.events[w][i].Seq == seq {
			f(&m.events[w][i])
			return
		}
	}
	t.Fatalf("no event %d in %s", seq, w)
}

func (m *memStore) deleteEvent(t *testing.T, w string, seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[w] = slices.DeleteFunc(m.events[w], func(e recording.Stored) bool { return e.Seq == seq })
}

func (m *memStore) swapSeq(t *testing.T, w string, a, b int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.events[w]
	i := slices.IndexFunc(list, func(e recording.Stored) bool { return e.Seq == a })
	j := slices.IndexFunc(list, func(e recording.Stored) bool { return e.Seq == b })
	list[i].Seq, list[j].Seq = b, a
	list[i], list[j] = list[j], list[i] // the store orders by seq
}

func (m *memStore) deleteTail(t *testing.T, w string, from int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[w] = slices.DeleteFunc(m.events[w], func(e recording.Stored) bool { return e.Seq >= from })
	m.cps[w] = slices.DeleteFunc(m.cps[w], func(c recording.Checkpoint) bool { return c.Seq >= from })
}

// memStore is a Pruner too, so the retention logic runs on it as on the
// real stores.

func (m *memStore) DeleteEvents(_ context.Context, w string, through int64, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	m.events[w] = slices.DeleteFunc(m.events[w], func(e recording.Stored) bool {
		if e.Seq <= through && n < int64(limit) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

func (m *memStore) DeleteCheckpoints(_ context.Context, w string, before int64, keep []int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	m.cps[w] = slices.DeleteFunc(m.cps[w], func(c recording.Checkpoint) bool {
		if c.Seq < before && !slices.Contains(keep, c.Seq) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

func (m *memStore) PutRetentionMark(_ context.Context, mk recording.RetentionMark) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[string]recording.RetentionMark{}
	}
	if have, ok := m.marks[mk.Writer]; !ok || mk.Through > have.Through {
		m.marks[mk.Writer] = mk
	}
	return nil
}

func (m *memStore) RetentionMarks(context.Context) ([]recording.RetentionMark, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []recording.RetentionMark
	for _, mk := range m.marks {
		out = append(out, mk)
	}
	return out, nil
}

func (m *memStore) setMarkThrough(t *testing.T, w string, through int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mk, ok := m.marks[w]
	if !ok {
		t.Fatalf("no retention mark for %s", w)
	}
	mk.Through = through
	m.marks[w] = mk
}

func (m *memStore) deleteMark(t *testing.T, w string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.marks[w]; !ok {
		t.Fatalf("no retention mark for %s", w)
	}
	delete(m.marks, w)
}
