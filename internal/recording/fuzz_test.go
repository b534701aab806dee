package recording_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// VerifyExport reads files from anywhere: it must never panic.
func FuzzVerifyExport(f *testing.F) {
	st := newMemStore()
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	l, err := recording.Open(f.Context(), st, recording.Options{Key: key, Writer: "w-fuzz", CheckpointEvery: 2,
		Clock: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Append(f.Context(), recording.Event{Type: recording.TypeOperation, Data: i}).Wait(f.Context())
	}
	l.Close(f.Context())
	var buf bytes.Buffer
	if err := recording.Export(f.Context(), st, &buf, time.Time{}, time.Time{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"kind":"checkpoint","writer":"w","seq":-1,"hash":""}` + "\n"))
	f.Add([]byte(`{"kind":"event","writer":"w","seq":9223372036854775807,"hash":"00","prev_hash":"00"}` + "\n"))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := recording.VerifyExport(bytes.NewReader(b), pub)
		if err == nil {
			_ = rep.String()
		}
	})
}

// A witness file is read from outside the store: whatever it holds, the
// comparison must never panic, and a line it cannot read is not a pass.
func FuzzVerifyWitness(f *testing.F) {
	st := newMemStore()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	var witness bytes.Buffer
	sink := lineSink{w: &witness}
	l, err := recording.Open(f.Context(), st, recording.Options{Key: key, Writer: "w-fuzz", CheckpointEvery: 2,
		Sinks: []recording.Sink{sink}, Clock: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Append(f.Context(), recording.Event{Type: recording.TypeOperation, Data: i}).Wait(f.Context())
	}
	l.Close(f.Context())
	f.Add(witness.Bytes())
	f.Add([]byte(`{"kind":"checkpoint","writer":"w-fuzz","seq":99,"hash":"00"}` + "\n"))
	f.Add([]byte(`{"kind":"checkpoint","writer":"w-other","seq":1,"hash":"zz"}` + "\n{\n"))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "w.jsonl")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := recording.VerifyWitness(context.Background(), st, path, pub)
		if err == nil {
			_ = rep.String()
		}
	})
}

// lineSink writes what a FileSink would, synchronously.
type lineSink struct{ w *bytes.Buffer }

func (s lineSink) Event(e recording.Stored) { s.write(recording.EventLine(e)) }

func (s lineSink) Checkpoint(c recording.Checkpoint) { s.write(recording.CheckpointLine(c)) }

func (s lineSink) write(l recording.Line) {
	b, _ := json.Marshal(l)
	s.w.Write(append(b, '\n'))
}
